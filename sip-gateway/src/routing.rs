//! Which hotline owns a dialed number: the Request-URI user part (`12319`, `+8655112319`,
//! `055112319`, `tel:` forms with separators) normalised and looked up among the configured
//! numbers and aliases. Sans-IO.

use std::collections::HashMap;

/// The number table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_number: HashMap<String, String>,
}

impl Routes {
    /// Builds the table from `(hotline number, aliases)` pairs.
    pub fn new<I, A>(hotlines: I) -> Routes
    where
        I: IntoIterator<Item = (String, A)>,
        A: IntoIterator<Item = String>,
    {
        let mut by_number = HashMap::new();
        for (number, aliases) in hotlines {
            by_number.insert(normalize(&number), number.clone());
            for alias in aliases {
                by_number.insert(normalize(&alias), number.clone());
            }
        }
        Routes { by_number }
    }

    /// The hotline numbers, each once, sorted.
    pub fn hotlines(&self) -> Vec<&str> {
        let mut h: Vec<&str> = self.by_number.values().map(String::as_str).collect();
        h.sort_unstable();
        h.dedup();
        h
    }

    /// The hotline a dialed number reaches, if any.
    pub fn route(&self, dialed: &str) -> Option<&str> {
        let n = normalize(dialed);
        if n.is_empty() {
            return None;
        }
        self.by_number.get(&n).map(String::as_str)
    }
}

/// Keeps a leading `+` and the digits; drops visual separators (`-`, `.`, spaces, brackets)
/// and URI parameters (`;phone-context=...`).
pub fn normalize(dialed: &str) -> String {
    let number = dialed.split(';').next().unwrap_or("").trim();
    let mut out = String::with_capacity(number.len());
    for (i, c) in number.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' => out.push(c),
            '-' | '.' | ' ' | '(' | ')' => {}
            // Anything else (letters, `*`, `#`) makes it a name, kept as is for exact match.
            _ => return number.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::new([
            (
                "12319".to_string(),
                vec!["+8655112319".to_string(), "055112319".to_string()],
            ),
            ("12345".to_string(), vec!["+86-551-12345".to_string()]),
        ])
    }

    #[test]
    fn numbers_and_aliases_reach_their_hotline() {
        let r = routes();
        assert_eq!(r.route("12319"), Some("12319"));
        assert_eq!(r.route("+8655112319"), Some("12319"));
        assert_eq!(r.route("0551-12319"), Some("12319"));
        assert_eq!(r.route("+8655112345"), Some("12345"));
        assert_eq!(r.route("12345;phone-context=+86551"), Some("12345"));
    }

    #[test]
    fn unknown_and_empty_numbers_do_not_route() {
        let r = routes();
        assert_eq!(r.route("110"), None);
        assert_eq!(r.route(""), None);
        assert_eq!(r.route("+"), None);
        assert_eq!(r.route("12319x"), None);
    }
}
