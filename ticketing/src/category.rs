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

    /// The category the text most likely is about: the one with the longest keyword (or name)
    /// found in it, so 污水井盖 beats 井盖; on a tie the earlier category in ID order (the order
    /// of the file). Whitespace in the text is ignored, since speech recognition puts spaces
    /// between words. `None` when nothing matches.
    pub fn suggest(&self, text: &str) -> Option<&Category> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut best: Option<(&Category, usize)> = None;
        for category in self.by_id.values() {
            let words = std::iter::once(&category.name).chain(&category.keywords);
            for word in words.filter(|w| !w.is_empty() && text.contains(w.as_str())) {
                let len = word.chars().count();
                if best.is_none_or(|(_, longest)| len > longest) {
                    best = Some((category, len));
                }
            }
        }
        best.map(|(category, _)| category)
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

    fn real() -> Catalogue {
        Catalogue::from_toml(include_str!("../../config/categories.toml")).unwrap()
    }

    fn suggested(text: &str) -> Option<String> {
        real().suggest(text).map(|c| c.id.clone())
    }

    #[test]
    fn the_longest_keyword_wins() {
        // 井盖坏了 (无主井盖) is a keyword too, but 污水井盖 is longer.
        assert_eq!(suggested("小区门口污水井盖坏了").as_deref(), Some("C0102"));
        assert_eq!(
            suggested("路口的井盖坏了，差点掉下去").as_deref(),
            Some("C0114")
        );
        assert_eq!(
            suggested("魏武大道芍花路路口的路灯不亮").as_deref(),
            Some("C0118")
        );
        assert_eq!(suggested("红绿灯坏了一直闪黄灯").as_deref(), Some("C0210"));
        assert_eq!(
            suggested("人民医院门口乱停车，救护车进不去").as_deref(),
            Some("E0505")
        );
    }

    #[test]
    fn names_count_and_whitespace_is_ignored() {
        // 暴露垃圾 is the name of E0102, not one of its keywords.
        assert_eq!(suggested("小区门口暴露垃圾").as_deref(), Some("E0102"));
        assert_eq!(suggested("路 灯 不 亮").as_deref(), Some("C0118"));
    }

    #[test]
    fn ties_go_to_the_earlier_category_and_nothing_matches_nothing() {
        // 候车亭 (C0203) and 牛皮癣 (E0201) are both 3 characters: C0203 comes first.
        assert_eq!(suggested("候车亭上全是牛皮癣").as_deref(), Some("C0203"));
        assert_eq!(suggested("我想问问今天天气怎么样"), None);
        assert_eq!(
            Catalogue::default()
                .suggest("井盖丢了")
                .map(|c| c.id.as_str()),
            None
        );
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
