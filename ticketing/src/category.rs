//! The category catalogue (案件分类): CJ/T 214-style 部件 and 事件 classes read from
//! `config/categories.toml`.
//!
//! A category ID is a kind letter and a 4-digit 小类 code: `C0101` is the component 上水井盖,
//! `E0102` the event 暴露垃圾. The first two digits are the 大类.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limit::Limit;

/// 部件 (a physical thing that is broken or missing) or 事件 (something happening).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CategoryKind {
    /// 部件, IDs start with `C`.
    Component,
    /// 事件, IDs start with `E`.
    Event,
}

impl CategoryKind {
    fn prefix(self) -> char {
        match self {
            CategoryKind::Component => 'C',
            CategoryKind::Event => 'E',
        }
    }
}

/// One 小类, the unit a ticket is classified by.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Category {
    /// `C0101`.
    pub id: String,
    /// 部件 or 事件.
    pub kind: CategoryKind,
    /// 大类 code, `01`.
    pub major_code: String,
    /// 大类 name, 公用设施.
    pub major_name: String,
    /// 小类 name, 上水井盖.
    pub name: String,
    /// 处置 limit for this category, overriding the default.
    #[schema(value_type = Option<String>, example = "2h")]
    pub dispose: Option<Limit>,
    /// 处置 limit when the ticket is 紧急.
    #[schema(value_type = Option<String>, example = "1h")]
    pub dispose_urgent: Option<Limit>,
    /// Department usually dispatched to.
    pub department: Option<String>,
    /// Words citizens use for it.
    pub keywords: Vec<String>,
}

/// All categories, looked up by ID.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    by_id: BTreeMap<String, Category>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    major: Vec<MajorDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MajorDoc {
    kind: CategoryKind,
    code: String,
    name: String,
    #[serde(default)]
    minor: Vec<MinorDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinorDoc {
    code: String,
    name: String,
    dispose: Option<Limit>,
    dispose_urgent: Option<Limit>,
    department: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

/// Why a catalogue could not be loaded; the message names the entry.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Not valid TOML or wrong keys.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A code that breaks the numbering rules or repeats.
    #[error("{0}")]
    Invalid(String),
}

impl Catalogue {
    /// Parses and checks the catalogue: 2-digit 大类, 4-digit 小类 under their 大类, no repeats.
    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let doc: FileDoc = toml::from_str(text)?;
        let mut by_id = BTreeMap::new();
        for major in doc.major {
            if major.code.len() != 2 || !major.code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CatalogueError::Invalid(format!(
                    "major `{}` ({}): the code must be 2 digits",
                    major.code, major.name
                )));
            }
            for minor in major.minor {
                if minor.code.len() != 4
                    || !minor.code.bytes().all(|b| b.is_ascii_digit())
                    || !minor.code.starts_with(&major.code)
                {
                    return Err(CatalogueError::Invalid(format!(
                        "minor `{}` ({}): the code must be 4 digits starting with its major code {}",
                        minor.code, minor.name, major.code
                    )));
                }
                let id = format!("{}{}", major.kind.prefix(), minor.code);
                let category = Category {
                    id: id.clone(),
                    kind: major.kind,
                    major_code: major.code.clone(),
                    major_name: major.name.clone(),
                    name: minor.name,
                    dispose: minor.dispose,
                    dispose_urgent: minor.dispose_urgent,
                    department: minor.department,
                    keywords: minor.keywords,
                };
                if by_id.insert(id.clone(), category).is_some() {
                    return Err(CatalogueError::Invalid(format!(
                        "category {id} appears twice"
                    )));
                }
            }
        }
        Ok(Catalogue { by_id })
    }

    /// The category with this ID.
    pub fn get(&self, id: &str) -> Option<&Category> {
        self.by_id.get(id)
    }

    /// All categories in ID order.
    pub fn iter(&self) -> impl Iterator<Item = &Category> {
        self.by_id.values()
    }

    /// Number of 小类.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no category is configured.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[major]]
kind = "component"
code = "01"
name = "公用设施"
[[major.minor]]
code = "0101"
name = "上水井盖"
dispose = "2h"
[[major]]
kind = "event"
code = "01"
name = "市容环境"
[[major.minor]]
code = "0101"
name = "暴露垃圾"
dispose = "1wd"
"#;

    #[test]
    fn components_and_events_share_codes_but_not_ids() {
        let c = Catalogue::from_toml(SAMPLE).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("C0101").unwrap().name, "上水井盖");
        assert_eq!(c.get("E0101").unwrap().name, "暴露垃圾");
        assert_eq!(c.get("E0101").unwrap().dispose, Some(Limit::WorkingDays(1)));
        assert!(c.get("0101").is_none());
    }

    #[test]
    fn bad_codes_are_named() {
        let bad = SAMPLE.replace(
            "code = \"0101\"\nname = \"上水井盖\"",
            "code = \"0201\"\nname = \"上水井盖\"",
        );
        let err = Catalogue::from_toml(&bad).unwrap_err().to_string();
        assert!(
            err.contains("0201") && err.contains("major code 01"),
            "{err}"
        );
        let dup = format!("{SAMPLE}\n[[major.minor]]\ncode = \"0101\"\nname = \"又一个\"\n");
        assert!(
            Catalogue::from_toml(&dup)
                .unwrap_err()
                .to_string()
                .contains("E0101 appears twice")
        );
        let unknown = SAMPLE.replace("dispose = \"2h\"", "dispose = \"2h\"\ncolour = \"red\"");
        assert!(
            Catalogue::from_toml(&unknown)
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
    }
}
