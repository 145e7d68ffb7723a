//! Compiling a document: every CEL expression is parsed once, and every error
//! names the field (`destinations.ad.rules[eng].when`) and the position.

use crate::document::{self, DestinationDoc, MappingDoc, OutputsDoc};
use crate::model::Attr;
use cel::{Env, Program};
use std::fmt;
use std::sync::Arc;

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where in the document (`destinations.ad.rules[eng].when`); empty for the document itself.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// One compiled CEL expression.
pub(crate) struct Expr {
    /// Where it is written (`destinations.ad.rules[eng].when`), for errors.
    pub field: String,
    pub program: Program,
    /// The fast path's form, when the expression is within what it covers.
    pub fast: Option<crate::fast::Node>,
    pub source: String,
    /// Person fields it reads (`department`, `custom.level`), for the trace.
    pub reads: Vec<String>,
    /// Whether it uses the naming counter `n`.
    pub uses_n: bool,
    /// Whether it reads `apps` (the app assignments the rules gave the account), so it
    /// is evaluated after the rules.
    pub uses_apps: bool,
}

// Built once per rule set and read on every evaluation: no box, no indirection.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Part {
    Literal(String),
    Expr(Expr),
}

/// Text with `${cel}` parts; `$$` is a literal `$`.
pub(crate) struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    pub fn uses_n(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Expr(e) if e.uses_n))
    }
}

#[allow(clippy::large_enum_variant)]
pub(crate) enum Source {
    From(Vec<String>),
    Value(Attr),
    Expr(Expr),
    Template(Template),
}

pub(crate) struct Mapping {
    pub attribute: String,
    pub source: Source,
    pub default: Option<Attr>,
    pub required: bool,
    /// Where it was written, for errors.
    pub field: String,
}

impl Mapping {
    /// Whether it reads the rules' app assignments (evaluated after the rules).
    pub fn uses_apps(&self) -> bool {
        match &self.source {
            Source::Expr(e) => e.uses_apps,
            Source::Template(t) => t.parts.iter().any(|p| matches!(p, Part::Expr(e) if e.uses_apps)),
            Source::From(_) | Source::Value(_) => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Group,
    DistributionList,
    M365Group,
    License,
    App,
}

impl ListKind {
    pub fn label(self) -> &'static str {
        match self {
            ListKind::Group => "group",
            ListKind::DistributionList => "distribution-list",
            ListKind::M365Group => "m365-group",
            ListKind::License => "license",
            ListKind::App => "app",
        }
    }
}

pub(crate) struct TicketOut {
    pub template: String,
    pub fields: Vec<(String, Template)>,
}

#[derive(Default)]
pub(crate) struct Outputs {
    pub container: Option<Template>,
    pub lists: Vec<(ListKind, Template)>,
    /// Kinds a rule set to an explicit empty list: the defaults add none of them.
    pub cleared: Vec<ListKind>,
    pub enabled: Option<bool>,
    pub expires: Option<Expr>,
    pub attributes: Vec<Mapping>,
    pub tickets: Vec<TicketOut>,
}

pub(crate) struct Rule {
    pub name: String,
    pub priority: i64,
    pub when: Expr,
    /// A cheap pre-test that rules the condition out for most people.
    pub guard: Option<crate::fast::Guard>,
    /// The trace's reason when it matches.
    pub reason: String,
    pub then: Outputs,
    pub stop: bool,
}

pub(crate) struct Unique {
    pub attribute: String,
    pub candidates: Vec<Template>,
    pub unique_in: Vec<String>,
    pub max_n: u32,
    pub rename_on_change: bool,
    pub field: String,
}

pub(crate) struct Destination {
    pub name: String,
    /// Distinct rule guards (see `fast::Guard::key`).
    pub guard_count: usize,
    pub scope: Option<Expr>,
    pub attributes: Vec<Mapping>,
    pub unique: Vec<Unique>,
    pub rules: Vec<Rule>,
    pub defaults: Outputs,
}

pub(crate) struct Compiler {
    env: Arc<Env>,
    pub custom_names: crate::fast::CustomNames,
    reads: regex::Regex,
    counter: regex::Regex,
    apps: regex::Regex,
}

fn err(field: &str, reason: impl Into<String>) -> CompileError {
    CompileError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl Compiler {
    pub fn new(env: Arc<Env>) -> Result<Self, CompileError> {
        let re = |p: &str| regex::Regex::new(p).map_err(|e| err("", e.to_string()));
        Ok(Compiler {
            env,
            custom_names: crate::fast::CustomNames::default(),
            reads: re(r"\bperson\.((?:custom\.)?[A-Za-z_][A-Za-z0-9_]*)")?,
            counter: re(r"(?:^|[^.\w])n(?:[^\w]|$)")?,
            apps: re(r"(?:^|[^.\w])apps(?:[^\w]|$)")?,
        })
    }

    pub fn expr(&self, field: &str, source: &str) -> Result<Expr, CompileError> {
        self.expr_within(field, source, crate::limits::MAX_DEPTH)
    }

    /// An expression Tenure translated from Entra's syntax (checked as written): its
    /// translation may nest a few levels deeper.
    pub fn translated_expr(&self, field: &str, source: &str) -> Result<Expr, CompileError> {
        self.expr_within(
            field,
            source,
            crate::limits::MAX_DEPTH + crate::limits::TRANSLATION_SLACK,
        )
    }

    fn expr_within(&self, field: &str, source: &str, max_depth: usize) -> Result<Expr, CompileError> {
        if source.trim().is_empty() {
            return Err(err(field, "empty expression"));
        }
        crate::limits::check_with(source, max_depth)
            .map_err(|reason| err(field, format!("{reason} in {}", crate::limits::quoted(source))))?;
        let program = self.env.compile(source).map_err(|errors| {
            let reason = errors
                .errors
                .iter()
                .map(|e| format!("line {}, column {}: {}", e.pos.0, e.pos.1 + 1, e.msg))
                .collect::<Vec<_>>()
                .join("; ");
            err(field, format!("{reason} in {}", crate::limits::quoted(source)))
        })?;
        let mut reads: Vec<String> = self
            .reads
            .captures_iter(source)
            .map(|c| c[1].to_string())
            .collect();
        reads.sort();
        reads.dedup();
        Ok(Expr {
            field: field.to_string(),
            fast: crate::fast::lower(program.expression(), &self.custom_names),
            program,
            source: source.to_string(),
            reads,
            uses_n: self.counter.is_match(source),
            uses_apps: self.apps.is_match(source),
        })
    }

    pub fn template(&self, field: &str, text: &str) -> Result<Template, CompileError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = closing_brace(body).ok_or_else(|| {
                    err(
                        field,
                        format!(
                            "unclosed `${{` at character {} of {text:?}",
                            text.len() - rest.len() + i + 1
                        ),
                    )
                })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Expr(self.expr(field, &body[..end])?));
                rest = &body[end + 1..];
            } else {
                literal.push('$');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    fn mapping(&self, field: &str, attribute: &str, doc: &MappingDoc) -> Result<Mapping, CompileError> {
        let (source, default, required) = match doc {
            MappingDoc::Template(t) => (Source::Template(self.template(field, t)?), None, false),
            MappingDoc::Full(m) => {
                let given = [
                    m.from.is_some(),
                    m.value.is_some(),
                    m.expr.is_some(),
                    m.entra.is_some(),
                ];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(err(field, "give exactly one of from, value, expr or entra"));
                }
                let source = if let Some(from) = &m.from {
                    let path: Vec<String> = from.split('.').map(str::to_string).collect();
                    if path.iter().any(String::is_empty) {
                        return Err(err(
                            &format!("{field}.from"),
                            format!("{from:?} is not an attribute path"),
                        ));
                    }
                    Source::From(path)
                } else if let Some(v) = &m.value {
                    Source::Value(json_attr(&format!("{field}.value"), v)?)
                } else if let Some(e) = &m.entra {
                    let at = format!("{field}.entra");
                    let cel = crate::entra::translate(e).map_err(|reason| err(&at, reason))?;
                    Source::Expr(self.translated_expr(&at, &cel)?)
                } else {
                    Source::Expr(self.expr(&format!("{field}.expr"), m.expr.as_deref().unwrap_or_default())?)
                };
                let default = m
                    .default
                    .as_ref()
                    .map(|d| json_attr(&format!("{field}.default"), d))
                    .transpose()?;
                (source, default, m.required)
            }
        };
        Ok(Mapping {
            attribute: attribute.to_string(),
            source,
            default,
            required,
            field: field.to_string(),
        })
    }

    fn outputs(&self, field: &str, doc: &OutputsDoc) -> Result<Outputs, CompileError> {
        let mut lists = Vec::new();
        let mut cleared = Vec::new();
        for (kind, key, items) in [
            (ListKind::Group, "groups", &doc.groups),
            (
                ListKind::DistributionList,
                "distribution_lists",
                &doc.distribution_lists,
            ),
            (ListKind::M365Group, "m365_groups", &doc.m365_groups),
            (ListKind::License, "licenses", &doc.licenses),
            (ListKind::App, "apps", &doc.apps),
        ] {
            match items {
                Some(items) if items.is_empty() => cleared.push(kind),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        lists.push((kind, self.template(&format!("{field}.{key}[{i}]"), item)?));
                    }
                }
                None => {}
            }
        }
        let mut attributes = Vec::new();
        for (name, m) in &doc.attributes {
            attributes.push(self.mapping(&format!("{field}.attributes.{name}"), name, m)?);
        }
        let mut tickets = Vec::new();
        for (i, t) in doc.tickets.iter().enumerate() {
            if t.template.trim().is_empty() {
                return Err(err(
                    &format!("{field}.tickets[{i}].template"),
                    "must not be empty",
                ));
            }
            let mut fields = Vec::new();
            for (k, v) in &t.fields {
                fields.push((
                    k.clone(),
                    self.template(&format!("{field}.tickets[{i}].fields.{k}"), v)?,
                ));
            }
            tickets.push(TicketOut {
                template: t.template.clone(),
                fields,
            });
        }
        Ok(Outputs {
            container: doc
                .container
                .as_deref()
                .map(|c| self.template(&format!("{field}.container"), c))
                .transpose()?,
            lists,
            cleared,
            enabled: doc.enabled,
            expires: doc
                .expires
                .as_deref()
                .map(|e| self.expr(&format!("{field}.expires"), e))
                .transpose()?,
            attributes,
            tickets,
        })
    }

    pub fn destination(&self, name: &str, doc: &DestinationDoc) -> Result<Destination, CompileError> {
        let base = format!("destinations.{name}");
        let mut attributes = Vec::new();
        for (attr, m) in &doc.attributes {
            attributes.push(self.mapping(&format!("{base}.attributes.{attr}"), attr, m)?);
        }
        let mut unique = Vec::new();
        for (attr, u) in &doc.unique {
            let field = format!("{base}.unique.{attr}");
            if u.candidates.is_empty() {
                return Err(err(&format!("{field}.candidates"), "give at least one candidate"));
            }
            if u.max_n > 999 {
                return Err(err(&format!("{field}.max_n"), "at most 999"));
            }
            let mut candidates = Vec::new();
            for (i, c) in u.candidates.iter().enumerate() {
                candidates.push(self.template(&format!("{field}.candidates[{i}]"), c)?);
            }
            unique.push(Unique {
                attribute: attr.clone(),
                candidates,
                unique_in: if u.unique_in.is_empty() {
                    vec![name.to_string()]
                } else {
                    u.unique_in.clone()
                },
                max_n: u.max_n,
                rename_on_change: u.rename_on_change,
                field,
            });
        }
        let mut rules = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, r) in doc.rules.iter().enumerate() {
            let field = format!("{base}.rules[{i}]");
            if r.name.trim().is_empty() {
                return Err(err(&format!("{field}.name"), "must not be empty"));
            }
            if !seen.insert(r.name.as_str()) {
                return Err(err(
                    &format!("{field}.name"),
                    format!("a second rule named {:?}", r.name),
                ));
            }
            let field = format!("{base}.rules[{}]", r.name);
            let when = self.expr(&format!("{field}.when"), &r.when)?;
            rules.push(Rule {
                name: r.name.clone(),
                priority: r.priority,
                guard: when.fast.as_ref().and_then(|n| n.guard()),
                reason: if r.stop {
                    format!("`{}` is true; stop", r.when)
                } else {
                    format!("`{}` is true", r.when)
                },
                when,
                then: self.outputs(&format!("{field}.then"), &r.then)?,
                stop: r.stop,
            });
        }
        // Explicit precedence: ascending priority; the sort is stable, so ties keep document order.
        rules.sort_by_key(|r| r.priority);
        // Number the distinct guards: each is tested once per evaluation.
        let mut guard_keys: Vec<(usize, Arc<String>)> = Vec::new();
        for r in &mut rules {
            if let Some(g) = r.guard.as_mut() {
                g.key = match guard_keys.iter().position(|(s, t)| *s == g.slot && *t == g.text) {
                    Some(k) => k,
                    None => {
                        guard_keys.push((g.slot, g.text.clone()));
                        guard_keys.len() - 1
                    }
                };
            }
        }
        Ok(Destination {
            guard_count: guard_keys.len(),
            name: name.to_string(),
            scope: doc
                .scope
                .as_deref()
                .map(|s| self.expr(&format!("{base}.scope"), s))
                .transpose()?,
            attributes,
            unique,
            rules,
            defaults: self.outputs(&format!("{base}.defaults"), &doc.defaults)?,
        })
    }
}

/// The end of a `${...}` body, skipping braces inside string literals and maps.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A constant from the document as an attribute value.
pub(crate) fn json_attr(field: &str, v: &serde_json::Value) -> Result<Attr, CompileError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Attr::Absent,
        J::String(s) => Attr::Text(s.clone()),
        J::Bool(b) => Attr::Flag(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Attr::Number(i),
            None => Attr::Text(n.to_string()),
        },
        J::Array(items) => Attr::Many(
            items
                .iter()
                .map(|i| match i {
                    J::String(s) => Ok(s.clone()),
                    J::Number(n) => Ok(n.to_string()),
                    J::Bool(b) => Ok(b.to_string()),
                    _ => Err(err(field, "a list may hold only strings, numbers and booleans")),
                })
                .collect::<Result<_, _>>()?,
        ),
        J::Object(_) => return Err(err(field, "an object is not an attribute value")),
    })
}

/// Parses and compiles a document.
pub(crate) fn document(
    text: &str,
    env: Arc<Env>,
) -> Result<(document::Document, Vec<Destination>, crate::fast::CustomNames), CompileError> {
    if text.len() > 4 * 1024 * 1024 {
        return Err(err("", "rule set larger than 4 MiB"));
    }
    let doc = document::parse(text).map_err(|reason| err("", reason))?;
    let compiler = Compiler::new(env)?;
    let mut destinations = Vec::new();
    for (name, d) in &doc.destinations {
        destinations.push(compiler.destination(name, d)?);
    }
    Ok((doc, destinations, compiler.custom_names))
}
