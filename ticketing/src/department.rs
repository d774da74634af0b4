//! Departments (专业部门) that work orders are dispatched to, read from `config/departments.toml`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A department that receives work orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Short code used in tickets and user accounts (`CG-HW`).
    pub code: String,
    /// Full name.
    pub name: String,
    /// `city`, `district`, `utility` or `street`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Duty phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// Where work-order e-mails go.
    #[serde(default)]
    pub email: Option<String>,
}

/// All departments, in file order.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    departments: Vec<Department>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    department: Vec<Department>,
}

/// Why the department list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Not valid TOML or wrong keys.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A bad or repeated code.
    #[error("{0}")]
    Invalid(String),
}

impl Directory {
    /// Parses and checks codes (`[A-Z0-9-]+`, unique).
    pub fn from_toml(text: &str) -> Result<Self, DirectoryError> {
        let doc: FileDoc = toml::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for d in &doc.department {
            let ok = !d.code.is_empty()
                && d.code.len() <= 32
                && d.code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(DirectoryError::Invalid(format!(
                    "department code `{}` ({}): use capital letters, digits and dashes",
                    d.code, d.name
                )));
            }
            if !seen.insert(d.code.clone()) {
                return Err(DirectoryError::Invalid(format!(
                    "department {} appears twice",
                    d.code
                )));
            }
        }
        Ok(Directory {
            departments: doc.department,
        })
    }

    /// The department with this code.
    pub fn get(&self, code: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.code == code)
    }

    /// All departments.
    pub fn iter(&self) -> impl Iterator<Item = &Department> {
        self.departments.iter()
    }

    /// Number of departments.
    pub fn len(&self) -> usize {
        self.departments.len()
    }

    /// True when none is configured.
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked() {
        let ok =
            Directory::from_toml("[[department]]\ncode = \"CG-HW\"\nname = \"环卫处\"\n").unwrap();
        assert_eq!(ok.get("CG-HW").unwrap().name, "环卫处");
        let err = Directory::from_toml("[[department]]\ncode = \"cg hw\"\nname = \"环卫处\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("`cg hw`"), "{err}");
        let dup = "[[department]]\ncode = \"A\"\nname = \"a\"\n[[department]]\ncode = \"A\"\nname = \"b\"\n";
        assert!(
            Directory::from_toml(dup)
                .unwrap_err()
                .to_string()
                .contains("A appears twice")
        );
    }
}
