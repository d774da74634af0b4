//! Flow definitions: the TOML format, its validation and the checked [`Flow`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

/// The language a caller hears; the gateway picks `prompts/<lang>/<name>.wav`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 普通话 (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The code used in prompt folders: `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A flow file that cannot be used, with the file, the node (when one is to blame) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{problem}", node.as_ref().map(|n| format!("node `{n}`: ")).unwrap_or_default())]
pub struct FlowError {
    /// The file name given to [`Flow::from_toml`].
    pub file: String,
    /// The node at fault, if the problem belongs to one.
    pub node: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a flow file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file is not TOML, or its top level does not have the expected keys.
    #[error("not a flow definition: {0}")]
    Syntax(String),
    /// The file defines no node.
    #[error("no nodes are defined (add `[nodes.<name>]` tables)")]
    NoNodes,
    /// `start` names no node.
    #[error("`start = \"{0}\"` names no node")]
    UnknownStart(String),
    /// The node's table does not describe a node kind (unknown kind, missing or unknown field).
    #[error("{0}")]
    Definition(String),
    /// A field names a node that does not exist.
    #[error("`{field}` goes to `{target}`, which is not a node in this file")]
    UnknownTarget {
        /// The field holding the target.
        field: String,
        /// The missing node.
        target: String,
    },
    /// No path from `start` leads to the node.
    #[error(
        "unreachable: no path from the start node leads here (remove it or point a node at it)"
    )]
    Unreachable,
    /// A cycle of nodes can be walked forever without the caller pressing a key.
    #[error("loop without caller input: {}; put a menu or collect node in the loop", .0.join(" → "))]
    LoopWithoutInput(Vec<String>),
    /// A prompt list that must not be empty is missing or empty.
    #[error("`{0}` must list at least one prompt")]
    MissingPrompts(String),
    /// A prompt name is not a logical name (`welcome`, `digits/3`).
    #[error(
        "prompt name `{0}` is not a logical name (letters, digits, `_`, `-`, `/` between parts)"
    )]
    BadPromptName(String),
    /// A key is not a single DTMF digit.
    #[error("key `{0}` is not a single DTMF key (0-9, *, #)")]
    BadDigitKey(String),
    /// Digit counts out of range.
    #[error("min_digits = {min}, max_digits = {max}: need 1 ≤ min ≤ max ≤ 32")]
    DigitRange {
        /// `min_digits`.
        min: u32,
        /// `max_digits`.
        max: u32,
    },
    /// A duration outside its allowed range.
    #[error("`{field}` = {value} is out of range ({range})")]
    OutOfRange {
        /// The field.
        field: String,
        /// Its value.
        value: u64,
        /// The range allowed.
        range: &'static str,
    },
    /// A transfer number that is not a dialable number.
    #[error("transfer number `{0}` is not dialable (digits, optional leading +)")]
    BadNumber(String),
    /// A name field (queue, variable, prefix) is empty or has odd characters.
    #[error("`{field}` = `{value}` must be non-empty letters, digits, `_` or `-`")]
    BadName {
        /// The field.
        field: String,
        /// Its value.
        value: String,
    },
    /// A lookup reads a variable that no collect node stores.
    #[error("variable `{0}` is read here but no collect node stores it")]
    VariableNeverCollected(String),
}

// ---- the file format -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    hotline: String,
    start: String,
    #[serde(default)]
    nodes: BTreeMap<String, toml::Table>,
}

fn d_timeout() -> u64 {
    5_000
}
fn d_retries() -> u32 {
    2
}
fn d_first() -> u64 {
    8_000
}
fn d_inter() -> u64 {
    4_000
}
fn d_term() -> String {
    "#".to_owned()
}
fn d_beep() -> String {
    "beep".to_owned()
}
fn d_lookup_timeout() -> u64 {
    5_000
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawNode {
    Play {
        prompts: Vec<String>,
        next: String,
    },
    Menu {
        prompts: Vec<String>,
        options: BTreeMap<String, String>,
        #[serde(default = "d_timeout")]
        timeout_ms: u64,
        #[serde(default = "d_retries")]
        max_retries: u32,
        #[serde(default)]
        no_input_prompts: Vec<String>,
        #[serde(default)]
        invalid_prompts: Vec<String>,
        fallback: String,
    },
    Collect {
        prompts: Vec<String>,
        var: String,
        min_digits: u32,
        max_digits: u32,
        #[serde(default = "d_term")]
        terminator: String,
        #[serde(default = "d_first")]
        first_digit_timeout_ms: u64,
        #[serde(default = "d_inter")]
        inter_digit_timeout_ms: u64,
        #[serde(default = "d_retries")]
        max_retries: u32,
        #[serde(default)]
        no_input_prompts: Vec<String>,
        #[serde(default)]
        invalid_prompts: Vec<String>,
        fallback: String,
        next: String,
    },
    Hours {
        open: String,
        closed: String,
    },
    Language {
        prompts: Vec<String>,
        choices: BTreeMap<String, Lang>,
        #[serde(default = "d_timeout")]
        timeout_ms: u64,
        #[serde(default = "d_retries")]
        max_retries: u32,
        #[serde(default)]
        no_input_prompts: Vec<String>,
        #[serde(default)]
        invalid_prompts: Vec<String>,
        next: String,
    },
    Record {
        prompts: Vec<String>,
        #[serde(default = "d_beep")]
        beep: String,
        max_seconds: u64,
        next: String,
    },
    Lookup {
        var: String,
        prefix: String,
        #[serde(default)]
        intro_prompts: Vec<String>,
        #[serde(default)]
        status_intro_prompts: Vec<String>,
        #[serde(default)]
        statuses: Vec<String>,
        #[serde(default)]
        unknown_status_prompts: Vec<String>,
        not_found_prompts: Vec<String>,
        #[serde(default = "d_lookup_timeout")]
        timeout_ms: u64,
        found: String,
        not_found: String,
        #[serde(default)]
        failed: Option<String>,
    },
    Queue {
        queue: String,
        fallback: String,
        #[serde(default)]
        voicemail: Option<String>,
        #[serde(default)]
        callback: Option<String>,
        #[serde(default)]
        overflow: Vec<String>,
    },
    Transfer {
        number: String,
        #[serde(default)]
        prompts: Vec<String>,
        #[serde(default)]
        failed: Option<String>,
    },
    Hangup {
        #[serde(default)]
        prompts: Vec<String>,
    },
}

// ---- the checked flow ------------------------------------------------------------------------

/// Retry policy shared by menu, collect and language nodes.
#[derive(Debug)]
pub(crate) struct Retry {
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub no_input: Vec<String>,
    pub invalid: Vec<String>,
    pub fallback: usize,
}

#[derive(Debug)]
pub(crate) enum Node {
    Play {
        prompts: Vec<String>,
        next: usize,
    },
    Menu {
        prompts: Vec<String>,
        options: BTreeMap<char, usize>,
        retry: Retry,
    },
    Collect {
        prompts: Vec<String>,
        var: String,
        min: usize,
        max: usize,
        terminator: char,
        inter_digit_ms: u64,
        retry: Retry,
        next: usize,
    },
    Hours {
        open: usize,
        closed: usize,
    },
    Language {
        prompts: Vec<String>,
        choices: BTreeMap<char, Lang>,
        retry: Retry,
        next: usize,
    },
    Record {
        prompts: Vec<String>,
        max_seconds: u64,
        next: usize,
    },
    Lookup {
        var: String,
        prefix: String,
        intro: Vec<String>,
        status_intro: Vec<String>,
        statuses: BTreeSet<String>,
        unknown_status: Vec<String>,
        not_found_prompts: Vec<String>,
        timeout_ms: u64,
        found: usize,
        not_found: usize,
        failed: Option<usize>,
    },
    Queue {
        queue: String,
        fallback: usize,
        voicemail: Option<usize>,
        callback: Option<usize>,
        overflow: BTreeMap<String, usize>,
    },
    Transfer {
        number: String,
        prompts: Vec<String>,
        failed: Option<usize>,
    },
    Hangup {
        prompts: Vec<String>,
    },
}

impl Node {
    /// Every edge out of the node, with whether it can be taken without caller input.
    fn edges(&self) -> Vec<(usize, bool)> {
        match self {
            Node::Play { next, .. } => vec![(*next, true)],
            Node::Menu { options, retry, .. } => {
                let mut e: Vec<_> = options.values().map(|&t| (t, false)).collect();
                e.push((retry.fallback, true));
                e
            }
            Node::Collect { retry, next, .. } => vec![(*next, false), (retry.fallback, true)],
            Node::Hours { open, closed } => vec![(*open, true), (*closed, true)],
            // A choice needs a key, but running out of retries also continues to `next`.
            Node::Language { next, .. } => vec![(*next, true)],
            Node::Record { next, .. } => vec![(*next, true)],
            Node::Lookup {
                found,
                not_found,
                failed,
                ..
            } => {
                let mut e = vec![(*found, true), (*not_found, true)];
                e.extend(failed.map(|f| (f, true)));
                e
            }
            Node::Queue {
                fallback,
                voicemail,
                callback,
                overflow,
                ..
            } => {
                let mut e = vec![(*fallback, true)];
                e.extend(voicemail.map(|t| (t, true)));
                e.extend(callback.map(|t| (t, true)));
                e.extend(overflow.values().map(|&t| (t, true)));
                e
            }
            Node::Transfer { failed, .. } => failed.map(|f| (f, true)).into_iter().collect(),
            Node::Hangup { .. } => vec![],
        }
    }
}

/// A checked IVR flow for one hotline: every target exists, every node is reachable, no loop runs
/// without caller input. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Flow {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: String,
    hotline: String,
    start: usize,
    names: Vec<String>,
    nodes: Vec<Node>,
}

impl Flow {
    /// Parses and validates a flow file. `file_name` is only used in error messages.
    pub fn from_toml(file_name: &str, text: &str) -> Result<Flow, FlowError> {
        let err = |node: Option<&str>, problem| FlowError {
            file: file_name.to_owned(),
            node: node.map(str::to_owned),
            problem,
        };
        let raw: RawFlow =
            toml::from_str(text).map_err(|e| err(None, Problem::Syntax(e.message().to_owned())))?;
        if raw.nodes.is_empty() {
            return Err(err(None, Problem::NoNodes));
        }
        let names: Vec<String> = raw.nodes.keys().cloned().collect();
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let start = *index
            .get(raw.start.as_str())
            .ok_or_else(|| err(None, Problem::UnknownStart(raw.start.clone())))?;

        let mut nodes = Vec::with_capacity(names.len());
        let mut collected_vars = BTreeSet::new();
        let mut read_vars = Vec::new();
        for (name, table) in &raw.nodes {
            let at = |problem| err(Some(name), problem);
            let node: RawNode = toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| at(Problem::Definition(e.message().to_owned())))?;
            let target = |field: &str, t: &str| {
                index.get(t).copied().ok_or_else(|| {
                    at(Problem::UnknownTarget {
                        field: field.to_owned(),
                        target: t.to_owned(),
                    })
                })
            };
            let prompts = |field: &str,
                           list: Vec<String>,
                           required: bool|
             -> Result<Vec<String>, FlowError> {
                if required && list.is_empty() {
                    return Err(at(Problem::MissingPrompts(field.to_owned())));
                }
                match list.iter().find(|p| !is_prompt_name(p)) {
                    Some(bad) => Err(at(Problem::BadPromptName(bad.clone()))),
                    None => Ok(list),
                }
            };
            let ms = |field: &str, value: u64| {
                if (100..=600_000).contains(&value) {
                    Ok(value)
                } else {
                    Err(at(Problem::OutOfRange {
                        field: field.to_owned(),
                        value,
                        range: "100 ms to 10 minutes",
                    }))
                }
            };
            let retries = |value: u32| {
                if value <= 10 {
                    Ok(value)
                } else {
                    Err(at(Problem::OutOfRange {
                        field: "max_retries".into(),
                        value: value.into(),
                        range: "0 to 10",
                    }))
                }
            };
            let ident = |field: &str, value: String| {
                if is_ident(&value) {
                    Ok(value)
                } else {
                    Err(at(Problem::BadName {
                        field: field.to_owned(),
                        value,
                    }))
                }
            };
            let key = |k: &str| match single_key(k) {
                Some(c) => Ok(c),
                None => Err(at(Problem::BadDigitKey(k.to_owned()))),
            };
            let node = match node {
                RawNode::Play { prompts: p, next } => Node::Play {
                    prompts: prompts("prompts", p, true)?,
                    next: target("next", &next)?,
                },
                RawNode::Menu {
                    prompts: p,
                    options,
                    timeout_ms,
                    max_retries,
                    no_input_prompts,
                    invalid_prompts,
                    fallback,
                } => {
                    if options.is_empty() {
                        return Err(at(Problem::Definition(
                            "`options` must map at least one key to a node".into(),
                        )));
                    }
                    let mut opts = BTreeMap::new();
                    for (k, t) in &options {
                        opts.insert(key(k)?, target(&format!("options.\"{k}\""), t)?);
                    }
                    Node::Menu {
                        prompts: prompts("prompts", p, true)?,
                        options: opts,
                        retry: Retry {
                            timeout_ms: ms("timeout_ms", timeout_ms)?,
                            max_retries: retries(max_retries)?,
                            no_input: prompts("no_input_prompts", no_input_prompts, false)?,
                            invalid: prompts("invalid_prompts", invalid_prompts, false)?,
                            fallback: target("fallback", &fallback)?,
                        },
                    }
                }
                RawNode::Collect {
                    prompts: p,
                    var,
                    min_digits,
                    max_digits,
                    terminator,
                    first_digit_timeout_ms,
                    inter_digit_timeout_ms,
                    max_retries,
                    no_input_prompts,
                    invalid_prompts,
                    fallback,
                    next,
                } => {
                    if min_digits == 0 || min_digits > max_digits || max_digits > 32 {
                        return Err(at(Problem::DigitRange {
                            min: min_digits,
                            max: max_digits,
                        }));
                    }
                    let terminator = match key(&terminator)? {
                        c @ ('#' | '*') => c,
                        _ => {
                            return Err(at(Problem::BadDigitKey(format!(
                                "{terminator}` as terminator (use `#` or `*`)"
                            ))));
                        }
                    };
                    let var = ident("var", var)?;
                    collected_vars.insert(var.clone());
                    Node::Collect {
                        prompts: prompts("prompts", p, true)?,
                        var,
                        min: min_digits as usize,
                        max: max_digits as usize,
                        terminator,
                        inter_digit_ms: ms("inter_digit_timeout_ms", inter_digit_timeout_ms)?,
                        retry: Retry {
                            timeout_ms: ms("first_digit_timeout_ms", first_digit_timeout_ms)?,
                            max_retries: retries(max_retries)?,
                            no_input: prompts("no_input_prompts", no_input_prompts, false)?,
                            invalid: prompts("invalid_prompts", invalid_prompts, false)?,
                            fallback: target("fallback", &fallback)?,
                        },
                        next: target("next", &next)?,
                    }
                }
                RawNode::Hours { open, closed } => Node::Hours {
                    open: target("open", &open)?,
                    closed: target("closed", &closed)?,
                },
                RawNode::Language {
                    prompts: p,
                    choices,
                    timeout_ms,
                    max_retries,
                    no_input_prompts,
                    invalid_prompts,
                    next,
                } => {
                    if choices.is_empty() {
                        return Err(at(Problem::Definition(
                            "`choices` must map at least one key to a language".into(),
                        )));
                    }
                    let mut ch = BTreeMap::new();
                    for (k, l) in &choices {
                        ch.insert(key(k)?, *l);
                    }
                    let next = target("next", &next)?;
                    Node::Language {
                        prompts: prompts("prompts", p, true)?,
                        choices: ch,
                        retry: Retry {
                            timeout_ms: ms("timeout_ms", timeout_ms)?,
                            max_retries: retries(max_retries)?,
                            no_input: prompts("no_input_prompts", no_input_prompts, false)?,
                            invalid: prompts("invalid_prompts", invalid_prompts, false)?,
                            fallback: next,
                        },
                        next,
                    }
                }
                RawNode::Record {
                    prompts: p,
                    beep,
                    max_seconds,
                    next,
                } => {
                    if !(1..=600).contains(&max_seconds) {
                        return Err(at(Problem::OutOfRange {
                            field: "max_seconds".into(),
                            value: max_seconds,
                            range: "1 to 600",
                        }));
                    }
                    let mut p = prompts("prompts", p, true)?;
                    p.extend(prompts("beep", vec![beep], true)?);
                    Node::Record {
                        prompts: p,
                        max_seconds,
                        next: target("next", &next)?,
                    }
                }
                RawNode::Lookup {
                    var,
                    prefix,
                    intro_prompts,
                    status_intro_prompts,
                    statuses,
                    unknown_status_prompts,
                    not_found_prompts,
                    timeout_ms,
                    found,
                    not_found,
                    failed,
                } => {
                    let var = ident("var", var)?;
                    read_vars.push((name.clone(), var.clone()));
                    let mut st = BTreeSet::new();
                    for s in statuses {
                        st.insert(ident("statuses", s)?);
                    }
                    Node::Lookup {
                        var,
                        prefix: ident("prefix", prefix)?,
                        intro: prompts("intro_prompts", intro_prompts, false)?,
                        status_intro: prompts("status_intro_prompts", status_intro_prompts, false)?,
                        statuses: st,
                        unknown_status: prompts(
                            "unknown_status_prompts",
                            unknown_status_prompts,
                            false,
                        )?,
                        not_found_prompts: prompts("not_found_prompts", not_found_prompts, true)?,
                        timeout_ms: ms("timeout_ms", timeout_ms)?,
                        found: target("found", &found)?,
                        not_found: target("not_found", &not_found)?,
                        failed: failed.map(|f| target("failed", &f)).transpose()?,
                    }
                }
                RawNode::Queue {
                    queue,
                    fallback,
                    voicemail,
                    callback,
                    overflow,
                } => {
                    let mut ov = BTreeMap::new();
                    for t in &overflow {
                        ov.insert(t.clone(), target("overflow", t)?);
                    }
                    Node::Queue {
                        queue: ident("queue", queue)?,
                        fallback: target("fallback", &fallback)?,
                        voicemail: voicemail.map(|t| target("voicemail", &t)).transpose()?,
                        callback: callback.map(|t| target("callback", &t)).transpose()?,
                        overflow: ov,
                    }
                }
                RawNode::Transfer {
                    number,
                    prompts: p,
                    failed,
                } => {
                    let digits = number.strip_prefix('+').unwrap_or(&number);
                    if digits.is_empty()
                        || digits.len() > 32
                        || !digits.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(at(Problem::BadNumber(number)));
                    }
                    Node::Transfer {
                        number,
                        prompts: prompts("prompts", p, false)?,
                        failed: failed.map(|f| target("failed", &f)).transpose()?,
                    }
                }
                RawNode::Hangup { prompts: p } => Node::Hangup {
                    prompts: prompts("prompts", p, false)?,
                },
            };
            nodes.push(node);
        }
        for (node, var) in read_vars {
            if !collected_vars.contains(&var) {
                return Err(err(Some(&node), Problem::VariableNeverCollected(var)));
            }
        }
        let flow = Inner {
            file: file_name.to_owned(),
            hotline: raw.hotline,
            start,
            names,
            nodes,
        };
        check_reachable(&flow).map_err(|i| err(Some(&flow.names[i]), Problem::Unreachable))?;
        check_input_free_loops(&flow)
            .map_err(|(i, path)| err(Some(&flow.names[i]), Problem::LoopWithoutInput(path)))?;
        Ok(Flow {
            inner: Arc::new(flow),
        })
    }

    /// The file name the flow was read from.
    pub fn file_name(&self) -> &str {
        &self.inner.file
    }

    /// The hotline the flow serves (`12319`).
    pub fn hotline(&self) -> &str {
        &self.inner.hotline
    }

    /// The name of the node a call starts in.
    pub fn start_node(&self) -> &str {
        self.name(self.inner.start)
    }

    /// Every node name, sorted.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.inner.names.iter().map(String::as_str)
    }

    /// Every queue a `queue` node names, so the ACD can check it knows them.
    pub fn queues(&self) -> BTreeSet<&str> {
        self.inner
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Queue { queue, .. } => Some(queue.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every logical prompt name the flow may play (without language), sorted, including
    /// `digits/0`…`digits/9` and `status/<status>` when the flow reads ticket numbers back, so the
    /// gateway can check that `prompts/<lang>/<name>.wav` exists for each language.
    pub fn prompt_names(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        let mut add = |list: &[String]| all.extend(list.iter().cloned());
        for node in &self.inner.nodes {
            match node {
                Node::Play { prompts, .. }
                | Node::Record { prompts, .. }
                | Node::Transfer { prompts, .. }
                | Node::Hangup { prompts } => add(prompts),
                Node::Menu { prompts, retry, .. }
                | Node::Collect { prompts, retry, .. }
                | Node::Language { prompts, retry, .. } => {
                    add(prompts);
                    add(&retry.no_input);
                    add(&retry.invalid);
                }
                Node::Lookup {
                    intro,
                    status_intro,
                    statuses,
                    unknown_status,
                    not_found_prompts,
                    ..
                } => {
                    add(intro);
                    add(status_intro);
                    add(unknown_status);
                    add(not_found_prompts);
                    add(&(0..10).map(|d| format!("digits/{d}")).collect::<Vec<_>>());
                    add(&statuses
                        .iter()
                        .map(|s| format!("status/{s}"))
                        .collect::<Vec<_>>());
                }
                Node::Hours { .. } | Node::Queue { .. } => {}
            }
        }
        all
    }

    pub(crate) fn start(&self) -> usize {
        self.inner.start
    }

    pub(crate) fn node(&self, i: usize) -> Option<&Node> {
        self.inner.nodes.get(i)
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        self.inner.names.get(i).map(String::as_str).unwrap_or("")
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.nodes.len()
    }
}

fn check_reachable(flow: &Inner) -> Result<(), usize> {
    let mut seen = vec![false; flow.nodes.len()];
    let mut stack = vec![flow.start];
    seen[flow.start] = true;
    while let Some(i) = stack.pop() {
        for (t, _) in flow.nodes[i].edges() {
            if !seen[t] {
                seen[t] = true;
                stack.push(t);
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(i) => Err(i),
        None => Ok(()),
    }
}

/// Depth-first search over the edges taken without caller input; a back edge is a loop.
fn check_input_free_loops(flow: &Inner) -> Result<(), (usize, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; flow.nodes.len()];
    for root in 0..flow.nodes.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (node, its input-free successors, next successor to visit)
        let mut path: Vec<(usize, Vec<usize>, usize)> = Vec::new();
        let free = |i: usize| -> Vec<usize> {
            flow.nodes[i]
                .edges()
                .into_iter()
                .filter(|e| e.1)
                .map(|e| e.0)
                .collect()
        };
        mark[root] = Mark::OnPath;
        path.push((root, free(root), 0));
        while let Some((node, succ, pos)) = path.last_mut() {
            let node = *node;
            if let Some(&t) = succ.get(*pos) {
                *pos += 1;
                match mark[t] {
                    Mark::New => {
                        mark[t] = Mark::OnPath;
                        path.push((t, free(t), 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|p| p.0 == t).unwrap_or(0);
                        let mut names: Vec<String> = path[from..]
                            .iter()
                            .map(|p| flow.names[p.0].clone())
                            .collect();
                        names.push(flow.names[t].clone());
                        return Err((t, names));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    Ok(())
}

fn single_key(k: &str) -> Option<char> {
    let mut chars = k.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ ('0'..='9' | '*' | '#')), None) => Some(c),
        _ => None,
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_prompt_name(s: &str) -> bool {
    s.len() <= 128 && s.split('/').all(is_ident)
}
