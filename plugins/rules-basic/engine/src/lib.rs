//! A small table-driven rule engine: conditions on a person's flat attributes
//! decide groups, container, licenses, apps, enablement and attribute values.
//!
//! It is the logic of the `rules-basic` example plugin, kept free of any
//! WebAssembly binding so that the benchmark can run the same code natively.
//!
//! Rule-set format, one statement per line (`#` starts a comment):
//!
//! ```text
//! destination ad
//! rule eng: department == "Engineering" and title ^= "Senior" => group:Eng-Senior, ou:OU=Eng
//! rule any-sales: department in ["Sales", "Field Sales"] => group:Sales, license:CRM
//! rule contractor: employment_type == "contractor" => group:Contractors, stop
//! default => ou:OU=People, group:All-Staff
//! set displayName = "{given_name} {family_name}"
//! ```
//!
//! Operators: `==`, `!=`, `^=` (starts with), `$=` (ends with), `*=` (contains),
//! `in [..]`, `present`, `absent`, joined with `and`/`or` (`and` binds tighter).
//! Outputs: `group:`, `ou:`, `license:`, `app:`, `disable`, `stop`.

use std::fmt;

/// A flat view of a person: attribute name -> text value, borrowed from the person.
pub type Record<'a> = Vec<(&'a str, &'a str)>;

/// Why a rule set was refused, with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    Ne(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    In(Vec<String>),
    Present,
    Absent,
}

#[derive(Debug, Clone, PartialEq)]
struct Test {
    attribute: String,
    op: Op,
}

/// Disjunction of conjunctions.
#[derive(Debug, Clone, PartialEq)]
struct Condition(Vec<Vec<Test>>);

#[derive(Debug, Clone, PartialEq)]
enum Output {
    Group(String),
    Container(String),
    License(String),
    App(String),
    Disable,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    name: String,
    condition: Condition,
    outputs: Vec<Output>,
    stop: bool,
}

/// An attribute whose value is a template over the record: `{field}` placeholders.
#[derive(Debug, Clone, PartialEq)]
struct Mapping {
    attribute: String,
    template: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Destination {
    name: String,
    rules: Vec<Rule>,
    defaults: Vec<Output>,
    mappings: Vec<Mapping>,
}

/// A parsed rule set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    destinations: Vec<Destination>,
}

/// The desired state for one destination.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    pub destination: String,
    pub attributes: Vec<(String, String)>,
    pub container: Option<String>,
    pub groups: Vec<String>,
    pub licenses: Vec<String>,
    pub apps: Vec<String>,
    pub enabled: bool,
}

/// How much of an evaluation goes into the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceLevel {
    None,
    /// Only the rules that matched (and the defaults that applied).
    Matched,
    /// Every rule tested.
    All,
}

/// One rule tested: whether it matched, the values it saw, what it added.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub destination: String,
    pub rule: String,
    pub matched: bool,
    pub inputs: Vec<(String, Option<String>)>,
    pub contributed: Vec<String>,
}

impl RuleSet {
    /// Parses the text format described in the crate docs.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut set = RuleSet::default();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |reason: String| ParseError {
                line: line_no,
                reason,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix("destination ") {
                set.destinations.push(Destination {
                    name: name.trim().to_string(),
                    ..Default::default()
                });
                continue;
            }
            let dest = set
                .destinations
                .last_mut()
                .ok_or_else(|| err("a `destination NAME` line must come first".into()))?;
            if let Some(rest) = line.strip_prefix("rule ") {
                let (name, body) = rest
                    .split_once(':')
                    .ok_or_else(|| err("expected `rule NAME: CONDITION => OUTPUTS`".into()))?;
                let (cond, outs) = body.split_once("=>").ok_or_else(|| err("missing `=>`".into()))?;
                let condition = parse_condition(cond).map_err(err)?;
                let (outputs, stop) = parse_outputs(outs).map_err(err)?;
                dest.rules.push(Rule {
                    name: name.trim().to_string(),
                    condition,
                    outputs,
                    stop,
                });
            } else if let Some(rest) = line.strip_prefix("default") {
                let outs = rest
                    .trim()
                    .strip_prefix("=>")
                    .ok_or_else(|| err("expected `default => OUTPUTS`".into()))?;
                dest.defaults = parse_outputs(outs).map_err(err)?.0;
            } else if let Some(rest) = line.strip_prefix("set ") {
                let (attr, value) = rest
                    .split_once('=')
                    .ok_or_else(|| err("expected `set ATTR = \"TEMPLATE\"`".into()))?;
                let template =
                    unquote(value.trim()).ok_or_else(|| err("template must be a quoted string".into()))?;
                dest.mappings.push(Mapping {
                    attribute: attr.trim().to_string(),
                    template,
                });
            } else {
                return Err(err(format!("unknown statement {line:?}")));
            }
        }
        Ok(set)
    }

    /// Number of rules across all destinations.
    pub fn rule_count(&self) -> usize {
        self.destinations.iter().map(|d| d.rules.len()).sum()
    }

    /// Evaluates every destination named in `destinations` (all when empty).
    pub fn evaluate(
        &self,
        record: &Record,
        destinations: &[String],
        level: TraceLevel,
        trace: &mut Vec<Trace>,
    ) -> Vec<Desired> {
        self.destinations
            .iter()
            .filter(|d| destinations.is_empty() || destinations.contains(&d.name))
            .map(|d| evaluate_destination(d, record, level, trace))
            .collect()
    }
}

fn lookup<'a>(record: &Record<'a>, name: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())
}

fn evaluate_destination(
    d: &Destination,
    record: &Record,
    level: TraceLevel,
    trace: &mut Vec<Trace>,
) -> Desired {
    let mut out = Desired {
        destination: d.name.clone(),
        enabled: true,
        ..Default::default()
    };
    let mut any = false;
    for rule in &d.rules {
        let matched = rule
            .condition
            .0
            .iter()
            .any(|all| all.iter().all(|t| test(t, lookup(record, &t.attribute))));
        let traced = level == TraceLevel::All || (level == TraceLevel::Matched && matched);
        let contributed = if matched {
            apply(&rule.outputs, &mut out, traced)
        } else {
            Vec::new()
        };
        if traced {
            let inputs = rule
                .condition
                .0
                .iter()
                .flatten()
                .map(|t| {
                    (
                        t.attribute.clone(),
                        lookup(record, &t.attribute).map(str::to_string),
                    )
                })
                .collect();
            trace.push(Trace {
                destination: d.name.clone(),
                rule: rule.name.clone(),
                matched,
                inputs,
                contributed,
            });
        }
        any |= matched;
        if matched && rule.stop {
            break;
        }
    }
    // Defaults fill what no rule decided, so nobody is left unassigned.
    let defaults: Vec<Output> = d
        .defaults
        .iter()
        .filter(|o| match o {
            Output::Container(_) => out.container.is_none(),
            Output::Group(_) => !any,
            _ => !any,
        })
        .cloned()
        .collect();
    if !defaults.is_empty() && level != TraceLevel::None {
        let contributed = apply(&defaults, &mut out, true);
        trace.push(Trace {
            destination: d.name.clone(),
            rule: "default".into(),
            matched: true,
            inputs: vec![],
            contributed,
        });
    } else if !defaults.is_empty() {
        apply(&defaults, &mut out, false);
    }
    for m in &d.mappings {
        out.attributes
            .push((m.attribute.clone(), render(&m.template, record)));
    }
    out
}

fn apply(outputs: &[Output], out: &mut Desired, traced: bool) -> Vec<String> {
    let mut contributed = Vec::with_capacity(if traced { outputs.len() } else { 0 });
    for o in outputs {
        match o {
            Output::Group(g) => push_unique(&mut out.groups, g),
            Output::License(l) => push_unique(&mut out.licenses, l),
            Output::App(a) => push_unique(&mut out.apps, a),
            Output::Container(c) => {
                if out.container.is_none() {
                    out.container = Some(c.clone());
                }
            }
            Output::Disable => out.enabled = false,
        }
        if traced {
            contributed.push(describe(o));
        }
    }
    contributed
}

fn describe(o: &Output) -> String {
    match o {
        Output::Group(g) => format!("group:{g}"),
        Output::Container(c) => format!("ou:{c}"),
        Output::License(l) => format!("license:{l}"),
        Output::App(a) => format!("app:{a}"),
        Output::Disable => "disable".into(),
    }
}

fn push_unique(list: &mut Vec<String>, v: &str) {
    if !list.iter().any(|x| x == v) {
        list.push(v.to_string());
    }
}

fn test(t: &Test, value: Option<&str>) -> bool {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match (&t.op, value) {
        (Op::Present, v) => v.is_some(),
        (Op::Absent, v) => v.is_none(),
        (Op::Ne(x), v) => v.is_none_or(|v| !eq(v, x)),
        (_, None) => false,
        (Op::Eq(x), Some(v)) => eq(v, x),
        (Op::Prefix(x), Some(v)) => v.len() >= x.len() && v.is_char_boundary(x.len()) && eq(&v[..x.len()], x),
        (Op::Suffix(x), Some(v)) => {
            v.len() >= x.len() && v.is_char_boundary(v.len() - x.len()) && eq(&v[v.len() - x.len()..], x)
        }
        (Op::Contains(x), Some(v)) => {
            x.is_empty()
                || v.as_bytes()
                    .windows(x.len())
                    .any(|w| w.eq_ignore_ascii_case(x.as_bytes()))
        }
        (Op::In(xs), Some(v)) => xs.iter().any(|x| eq(v, x)),
    }
}

fn render(template: &str, record: &Record) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                let name = &rest[start + 1..start + end];
                out.push_str(lookup(record, name).unwrap_or(""));
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

fn unquote(s: &str) -> Option<String> {
    s.strip_prefix('"')?.strip_suffix('"').map(str::to_string)
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    let mut any = Vec::new();
    for alt in split_keyword(text, " or ") {
        let mut all = Vec::new();
        for part in split_keyword(&alt, " and ") {
            all.push(parse_test(part.trim())?);
        }
        any.push(all);
    }
    Ok(Condition(any))
}

/// Splits on a keyword outside quotes and brackets.
fn split_keyword(text: &str, keyword: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b'[' if !quoted => depth += 1,
            b']' if !quoted => depth -= 1,
            _ if !quoted && depth == 0 && text[i..].starts_with(keyword) => {
                parts.push(text[start..i].to_string());
                i += keyword.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(text[start..].to_string());
    parts
}

fn parse_test(text: &str) -> Result<Test, String> {
    if let Some(attr) = text.strip_suffix(" present") {
        return Ok(Test {
            attribute: attr.trim().into(),
            op: Op::Present,
        });
    }
    if let Some(attr) = text.strip_suffix(" absent") {
        return Ok(Test {
            attribute: attr.trim().into(),
            op: Op::Absent,
        });
    }
    if let Some((attr, list)) = text.split_once(" in ") {
        let inner = list
            .trim()
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .ok_or_else(|| format!("`in` needs a [\"a\", \"b\"] list in {text:?}"))?;
        let values = inner
            .split(',')
            .map(|v| unquote(v.trim()).ok_or_else(|| format!("list values must be quoted in {text:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Test {
            attribute: attr.trim().into(),
            op: Op::In(values),
        });
    }
    for (sym, make) in [
        ("==", Op::Eq as fn(String) -> Op),
        ("!=", Op::Ne),
        ("^=", Op::Prefix),
        ("$=", Op::Suffix),
        ("*=", Op::Contains),
    ] {
        if let Some((attr, value)) = text.split_once(sym) {
            let value = unquote(value.trim()).ok_or_else(|| format!("value must be quoted in {text:?}"))?;
            return Ok(Test {
                attribute: attr.trim().into(),
                op: make(value),
            });
        }
    }
    Err(format!("cannot read condition {text:?}"))
}

fn parse_outputs(text: &str) -> Result<(Vec<Output>, bool), String> {
    let mut outputs = Vec::new();
    let mut stop = false;
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once(':') {
            Some(("group", v)) => outputs.push(Output::Group(v.trim().into())),
            Some(("ou", v)) => outputs.push(Output::Container(v.trim().into())),
            Some(("license", v)) => outputs.push(Output::License(v.trim().into())),
            Some(("app", v)) => outputs.push(Output::App(v.trim().into())),
            _ if item == "disable" => outputs.push(Output::Disable),
            _ if item == "stop" => stop = true,
            _ => return Err(format!("unknown output {item:?}")),
        }
    }
    Ok((outputs, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = r#"
        destination ad
        rule eng: department == "Engineering" and title ^= "Senior" => group:Eng-Senior, ou:OU=Eng
        rule sales: department in ["Sales", "Field Sales"] or team *= "revenue" => group:Sales, license:CRM
        rule contractor: employment_type == "contractor" => group:Contractors, disable, stop
        rule never: department == "Nope" => group:Nope
        default => ou:OU=People, group:All-Staff
        set displayName = "{given_name} {family_name}"
    "#;

    fn rec<'a>(pairs: &[(&'a str, &'a str)]) -> Record<'a> {
        pairs.to_vec()
    }

    #[test]
    fn evaluates_with_precedence_defaults_and_trace() {
        let set = RuleSet::parse(SET).unwrap();
        assert_eq!(set.rule_count(), 4);
        let mut trace = Vec::new();
        let r = rec(&[
            ("department", "engineering"),
            ("title", "Senior Dev"),
            ("given_name", "Ada"),
            ("family_name", "Lovelace"),
        ]);
        let d = &set.evaluate(&r, &[], TraceLevel::All, &mut trace)[0];
        assert_eq!(d.groups, vec!["Eng-Senior"]);
        assert_eq!(d.container.as_deref(), Some("OU=Eng"));
        assert_eq!(
            d.attributes,
            vec![("displayName".to_string(), "Ada Lovelace".to_string())]
        );
        assert!(trace[0].matched && !trace[1].matched);
        assert_eq!(
            trace[0].inputs[0],
            ("department".to_string(), Some("engineering".to_string()))
        );

        let mut trace = Vec::new();
        let r = rec(&[("employment_type", "contractor"), ("team", "Revenue Ops")]);
        let d = &set.evaluate(&r, &["ad".into()], TraceLevel::All, &mut trace)[0];
        assert_eq!(d.groups, vec!["Sales", "Contractors"]);
        assert!(!d.enabled);
        assert_eq!(d.container.as_deref(), Some("OU=People"));
        assert!(trace.iter().all(|t| t.rule != "never"), "stop ends evaluation");

        let mut trace = Vec::new();
        let d = &set.evaluate(&rec(&[]), &[], TraceLevel::All, &mut trace)[0];
        assert_eq!(d.groups, vec!["All-Staff"]);
    }

    #[test]
    fn reports_bad_lines() {
        assert_eq!(
            RuleSet::parse("rule x: a == \"b\" => group:x").unwrap_err().line,
            1
        );
        let e = RuleSet::parse("destination d\nrule x: a ~ b => group:x").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("cannot read condition"));
        assert!(RuleSet::parse("destination d\nrule x: a == \"b\" => frob").is_err());
    }
}
