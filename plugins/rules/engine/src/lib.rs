//! Tenure's rule engine. A rule set (YAML or JSON) says, per destination, who is
//! in scope, how attributes map, which rules add groups, licenses, apps, a
//! container, an expiry or tickets, and what applies when no rule did. Conditions
//! and expressions are CEL (`cel` crate) with the Entra-equivalent function
//! library of [`functions`].
//!
//! Plain Rust, free of any WebAssembly binding: the `rules` plugin wraps it, and
//! the benchmark runs the same code natively as its baseline.

pub mod compile;
pub mod dates;
pub mod document;
pub mod entra;
mod fast;
pub mod functions;
pub mod help;
pub mod limits;
pub mod macros;
pub mod markers;
pub mod model;

use cel::{Context, Value};
pub use compile::CompileError;
use compile::{Destination, Expr, ListKind, Mapping, Outputs, Part, Source, Template};
use markers::Marker;
pub use model::{Attr, Desired, Person, Ticket, Trace, TraceLevel, UniqueName};
use std::fmt;
use std::sync::Arc;

/// An expression failed on a real record: names the destination, the field of the
/// rule set, the expression and why. The host holds the event until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// `destinations.ad.rules[eng].when`, `destinations.ad.attributes.mail`, ...
    pub field: String,
    pub reason: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// What the evaluation is for.
pub struct Request<'a> {
    /// The lifecycle event (`joiner`, `mover`, ...), visible to rules as `event`.
    pub event: &'a str,
    /// Destinations to produce accounts for; others in the rule set are skipped.
    pub destinations: &'a [String],
    pub now_ms: i64,
    pub trace: TraceLevel,
}

/// The result: accounts for the destinations in scope, and the trace.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub accounts: Vec<Desired>,
    pub trace: Vec<Trace>,
}

/// A compiled rule set.
pub struct RuleSet {
    root: Context<'static, 'static>,
    /// Custom attribute names the expressions read (see `fast::CustomNames`).
    custom_names: fast::CustomNames,
    destinations: Vec<Destination>,
    description: Option<String>,
}

impl RuleSet {
    /// Parses and compiles a rule-set document; the error names the field and the position.
    pub fn parse(text: &str) -> Result<Self, CompileError> {
        limits::with_stack(|| Self::parse_here(text))
    }

    fn parse_here(text: &str) -> Result<Self, CompileError> {
        let env = Arc::new(macros::env().map_err(|reason| CompileError {
            field: String::new(),
            reason,
        })?);
        let (doc, destinations, custom_names) = compile::document(text, env.clone())?;
        let mut root = Context::with_env(env);
        functions::register(&mut root).map_err(|reason| CompileError {
            field: String::new(),
            reason,
        })?;
        Ok(RuleSet {
            root,
            custom_names,
            destinations,
            description: doc.description,
        })
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Destination names, sorted.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.destinations.iter().map(|d| d.name.as_str())
    }

    /// Number of rules over all destinations.
    pub fn rule_count(&self) -> usize {
        self.destinations.iter().map(|d| d.rules.len()).sum()
    }

    /// Evaluates the rule set for one person.
    pub fn evaluate(&self, person: &Person, request: &Request<'_>) -> Result<Evaluation, EvalError> {
        limits::with_stack(|| self.evaluate_here(person, request))
    }

    fn evaluate_here(&self, person: &Person, request: &Request<'_>) -> Result<Evaluation, EvalError> {
        functions::begin_evaluation(request.now_ms, person.seed());
        let view = model::View(person);
        let custom = self.custom_names.resolve(view);
        let now = dates::from_millis(request.now_ms).map_err(|reason| EvalError {
            field: "now".into(),
            reason,
        })?;
        let event = Value::String(Arc::new(request.event.to_string()));
        let now = Value::Timestamp(now);
        let person_map = std::cell::OnceCell::new();
        let mut out = Evaluation::default();
        for dest in &self.destinations {
            if !request.destinations.iter().any(|d| d == &dest.name) {
                continue;
            }
            let run = Run {
                apps: std::cell::RefCell::new(Value::List(Arc::new(Vec::new()))),
                root: &self.root,
                person: view,
                custom: &custom,
                person_map: &person_map,
                event: &event,
                now: &now,
                destination: Value::String(Arc::new(dest.name.clone())),
                dest,
                level: request.trace,
            };
            if let Some(desired) = run.destination(&mut out.trace)? {
                out.accounts.push(desired);
            }
        }
        Ok(out)
    }
}

/// Evaluates one CEL expression for a person with the full function library, as
/// a rule would (the fast path where it applies). The preview and test tools use
/// it, and so do the library's tests.
pub fn evaluate_expression(source: &str, person: &Person, now_ms: i64) -> Result<Attr, String> {
    evaluate_one(source, person, now_ms, Mode::Fast)
}

/// Evaluates one expression in Entra's syntax (see [`entra`]) for a person.
pub fn evaluate_entra(source: &str, person: &Person, now_ms: i64) -> Result<Attr, String> {
    let cel = entra::translate(source)?;
    evaluate_one(&cel, person, now_ms, Mode::Translated)
}

/// The same with the CEL interpreter only: the reference the fast path is tested against.
#[doc(hidden)]
pub fn evaluate_expression_interpreted(source: &str, person: &Person, now_ms: i64) -> Result<Attr, String> {
    evaluate_one(source, person, now_ms, Mode::Interpreted)
}

/// Whether the fast path covers an expression (for tests).
#[doc(hidden)]
pub fn has_fast_path(source: &str) -> bool {
    with_tools(|compiler, _| {
        Ok(compiler
            .expr("expression", source)
            .is_ok_and(|e| e.fast.is_some()))
    })
    .unwrap_or(false)
}

/// One compiler and one root context per thread for single expressions (building
/// CEL's standard environment and the library each time would dominate).
fn with_tools<T>(
    f: impl FnOnce(&compile::Compiler, &Context<'static, 'static>) -> Result<T, String>,
) -> Result<T, String> {
    thread_local! {
        static TOOLS: std::cell::OnceCell<Result<(compile::Compiler, Context<'static, 'static>), String>> =
            const { std::cell::OnceCell::new() };
    }
    TOOLS.with(|tools| {
        let built = tools.get_or_init(|| {
            let env = Arc::new(macros::env()?);
            let compiler = compile::Compiler::new(env.clone()).map_err(|e| e.to_string())?;
            let mut root = Context::with_env(env);
            functions::register(&mut root)?;
            Ok((compiler, root))
        });
        match built {
            Ok((compiler, root)) => f(compiler, root),
            Err(e) => Err(e.clone()),
        }
    })
}

/// How [`evaluate_one`] compiles and runs an expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As a rule would: the fast path where it applies.
    Fast,
    /// The CEL interpreter only.
    Interpreted,
    /// Translated from Entra's syntax (a few levels deeper allowed), fast path on.
    Translated,
}

fn evaluate_one(source: &str, person: &Person, now_ms: i64, mode: Mode) -> Result<Attr, String> {
    limits::with_stack(|| {
        with_tools(|compiler, root| evaluate_with(compiler, root, source, person, now_ms, mode))
    })
}

fn evaluate_with(
    compiler: &compile::Compiler,
    root: &Context<'static, 'static>,
    source: &str,
    person: &Person,
    now_ms: i64,
    mode: Mode,
) -> Result<Attr, String> {
    let compiled = match mode {
        Mode::Translated => compiler.translated_expr("expression", source),
        Mode::Fast | Mode::Interpreted => compiler.expr("expression", source),
    };
    let mut expr = compiled.map_err(|e| e.to_string())?;
    if mode == Mode::Interpreted {
        expr.fast = None;
    }
    functions::begin_evaluation(now_ms, person.seed());
    let custom = compiler.custom_names.resolve(model::View(person));
    let person_map = std::cell::OnceCell::new();
    let event = Value::String(Arc::new("update".into()));
    let now = Value::Timestamp(dates::from_millis(now_ms)?);
    let dest = Destination {
        name: "expression".into(),
        scope: None,
        attributes: Vec::new(),
        unique: Vec::new(),
        rules: Vec::new(),
        defaults: compile::Outputs::default(),
        guard_count: 0,
    };
    let run = Run {
        apps: std::cell::RefCell::new(Value::List(Arc::new(Vec::new()))),
        root,
        person: model::View(person),
        custom: &custom,
        person_map: &person_map,
        event: &event,
        now: &now,
        destination: Value::String(Arc::new(dest.name.clone())),
        dest: &dest,
        level: TraceLevel::None,
    };
    let value = run.eval(&expr).map_err(|e| e.reason)?;
    match markers::marker(&value) {
        Some(Marker::Candidates(c)) => Ok(Attr::Many(c.to_vec())),
        Some(Marker::IgnoreFlow) => Ok(Attr::Absent),
        _ => to_attr("expression", &value).map_err(|e| e.reason),
    }
}

/// One destination's evaluation.
struct Run<'r> {
    /// The app assignments the rules gave the account so far (`apps`, Entra's
    /// `[appRoleAssignments]`).
    apps: std::cell::RefCell<Value>,
    root: &'r Context<'static, 'static>,
    person: model::View<'r>,
    custom: &'r [Option<&'r Attr>],
    /// The CEL map of the person, built the first time the interpreter needs it.
    person_map: &'r std::cell::OnceCell<Value>,
    event: &'r Value,
    now: &'r Value,
    destination: Value,
    dest: &'r Destination,
    level: TraceLevel,
}

fn fail(field: impl Into<String>, reason: impl Into<String>) -> EvalError {
    EvalError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A CEL value as an attribute value (a redacted value's own text).
fn to_attr(field: &str, v: &Value) -> Result<Attr, EvalError> {
    Ok(match v {
        Value::Null => Attr::Absent,
        Value::Opaque(_) => match markers::marker(v) {
            Some(Marker::Redacted(t)) => Attr::Text(t.to_owned()),
            Some(Marker::Candidates(_)) => {
                return Err(fail(
                    field,
                    "SelectUniqueValue must be the whole expression of a mapping",
                ));
            }
            Some(Marker::IgnoreFlow) | None => Attr::Absent,
        },
        Value::Bool(b) => Attr::Flag(*b),
        Value::Int(n) => Attr::Number(*n),
        Value::UInt(n) => i64::try_from(*n)
            .map(Attr::Number)
            .unwrap_or_else(|_| Attr::Text(n.to_string())),
        Value::List(items) => Attr::Many(
            items
                .iter()
                .filter_map(|i| functions::as_text(i).transpose())
                .collect::<Result<_, _>>()
                .map_err(|reason| fail(field, reason))?,
        ),
        Value::String(t) => Attr::Text(t.as_str().to_owned()),
        other => match functions::as_text(other).map_err(|reason| fail(field, reason))? {
            Some(t) => Attr::Text(t),
            None => Attr::Absent,
        },
    })
}

/// Whether a value is, or holds, a redacted one.
fn is_redacted(v: &Value) -> bool {
    match v {
        Value::List(items) => items.iter().any(is_redacted),
        other => matches!(markers::marker(other), Some(Marker::Redacted(_))),
    }
}

/// How a value shows in a trace: redacted values as `[redacted]`.
fn shown(v: &Value, field: &str) -> Attr {
    if is_redacted(v) {
        return Attr::Text("[redacted]".into());
    }
    to_attr(field, v).unwrap_or_else(|e| Attr::Text(format!("<{}>", e.reason)))
}

impl Run<'_> {
    fn scope(&self, n: Option<i64>) -> fast::Scope<'_> {
        fast::Scope {
            person: self.person,
            custom: self.custom,
            event: self.event,
            destination: &self.destination,
            now: self.now,
            n,
        }
    }

    fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        self.eval_n(e, None)
    }

    /// Evaluates with the fast path when it covers the expression; otherwise (or
    /// when it steps aside on an error) with the CEL interpreter.
    fn eval_n(&self, e: &Expr, n: Option<i64>) -> Result<Value, EvalError> {
        let field = e.field.as_str();
        if let Some(node) = &e.fast
            && let Ok(v) = node.eval(&self.scope(n))
        {
            return Ok(v);
        }
        let mut ctx = self.root.new_inner_scope();
        ctx.add_variable_from_value(
            "person",
            self.person_map.get_or_init(|| self.person.to_map()).clone(),
        );
        ctx.add_variable_from_value("event", self.event.clone());
        ctx.add_variable_from_value("now", self.now.clone());
        ctx.add_variable_from_value("destination", self.destination.clone());
        if let Some(n) = n {
            ctx.add_variable_from_value("n", Value::Int(n));
        }
        if e.uses_apps {
            ctx.add_variable_from_value("apps", self.apps.borrow().clone());
        }
        // A custom attribute the person does not have reads as null, as in Entra (a
        // variable named by the whole path wins over the map's missing key; `has()`
        // still tests the map).
        for read in &e.reads {
            if let Some(name) = read.strip_prefix("custom.")
                && self.person.custom(name).is_none()
            {
                ctx.add_variable_from_value(format!("person.custom.{name}"), Value::Null);
            }
        }
        e.program.execute(&ctx).map_err(|err| {
            fail(
                field,
                format!(
                    "{} in {}",
                    limits::brief(err.to_string()),
                    limits::quoted(&e.source)
                ),
            )
        })
    }

    fn condition(&self, e: &Expr) -> Result<bool, EvalError> {
        if let Some(node) = &e.fast
            && let Ok(b) = node.test(&self.scope(None))
        {
            return Ok(b);
        }
        let field = e.field.as_str();
        match self.eval(e)? {
            Value::Bool(b) => Ok(b),
            other => Err(fail(
                field,
                format!(
                    "a condition must be true or false, {} gave a {}",
                    limits::quoted(&e.source),
                    functions::type_name(&other)
                ),
            )),
        }
    }

    /// A template's text; `None` when any part is null or empty (a missing value yields nothing).
    fn template(&self, n: Option<i64>, t: &Template) -> Result<Option<String>, EvalError> {
        let mut out = String::new();
        for part in &t.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Expr(e) => {
                    // A person field or a literal: its text, without copying.
                    if let Some(text) = e.fast.as_ref().and_then(|f| f.text_ref(&self.scope(n))) {
                        if text.is_empty() {
                            return Ok(None);
                        }
                        out.push_str(text);
                        continue;
                    }
                    let value = self.eval_n(e, n)?;
                    if matches!(markers::marker(&value), Some(Marker::IgnoreFlow)) {
                        return Ok(None);
                    }
                    match functions::text_of(&value).map_err(|reason| {
                        fail(&e.field, format!("{reason} in {}", limits::quoted(&e.source)))
                    })? {
                        Some(t) if !t.is_empty() => out.push_str(&t),
                        _ => return Ok(None),
                    }
                }
            }
        }
        Ok(Some(out))
    }

    fn inputs<'a>(&self, reads: impl Iterator<Item = &'a String>) -> Vec<(String, Attr)> {
        let mut seen: Vec<(String, Attr)> = Vec::new();
        for r in reads {
            if !seen.iter().any(|(k, _)| k == r) {
                let path: Vec<&str> = r.split('.').collect();
                let value = match self.person.text_path(&path) {
                    Some(t) => Attr::Text(t.to_owned()),
                    None => shown(&self.person.lookup(&path), r),
                };
                seen.push((r.clone(), value));
            }
        }
        seen
    }

    fn trace(
        &self,
        trace: &mut Vec<Trace>,
        rule: &str,
        matched: bool,
        reason: String,
        inputs: Vec<(String, Attr)>,
        contributed: Vec<String>,
    ) {
        let keep = match self.level {
            TraceLevel::None => false,
            TraceLevel::Matched => matched,
            TraceLevel::All => true,
        };
        if keep {
            trace.push(Trace {
                destination: self.dest.name.clone(),
                rule: rule.to_string(),
                matched,
                reason,
                inputs,
                contributed,
            });
        }
    }

    /// A mapping's value: `None` when it must not flow (IgnoreFlowIfNullOrEmpty).
    fn mapping(&self, m: &Mapping, unique: &mut Vec<UniqueName>) -> Result<Option<(Attr, Value)>, EvalError> {
        let value = match &m.source {
            Source::From(path) => match self.person.text_path(path) {
                // Text straight from the person: one copy, into the output.
                Some(t) if !t.is_empty() => return Ok(Some((Attr::Text(t.to_owned()), Value::Null))),
                _ => self.person.lookup(path),
            },
            Source::Value(a) => return Ok(Some((a.clone(), a.to_cel()))),
            Source::Expr(e) => self.eval(e)?,
            Source::Template(t) => match self.template(None, t)? {
                Some(s) => Value::String(Arc::new(s)),
                None => Value::Null,
            },
        };
        match markers::marker(&value) {
            Some(Marker::IgnoreFlow) => return Ok(None),
            Some(Marker::Candidates(c)) => {
                unique.push(UniqueName {
                    attribute: m.attribute.clone(),
                    candidates: c.to_vec(),
                    unique_in: vec![self.dest.name.clone()],
                    rename_on_change: false,
                });
                return Ok(None);
            }
            _ => {}
        }
        let attr = to_attr(&m.field, &value)?;
        let empty = matches!(&attr, Attr::Absent) || matches!(&attr, Attr::Text(t) if t.is_empty());
        if empty {
            if let Some(d) = &m.default {
                return Ok(Some((d.clone(), d.to_cel())));
            }
            if m.required {
                return Err(fail(
                    &m.field,
                    format!("required attribute {} has no value for this person", m.attribute),
                ));
            }
        }
        Ok(Some((attr, value)))
    }

    fn destination(&self, trace: &mut Vec<Trace>) -> Result<Option<Desired>, EvalError> {
        let d = self.dest;
        if let Some(scope) = &d.scope {
            let inside = self.condition(scope)?;
            if !inside {
                // Out of scope is always traced when tracing: it decides everything else.
                if self.level != TraceLevel::None {
                    trace.push(Trace {
                        destination: d.name.clone(),
                        rule: "scope".into(),
                        matched: false,
                        reason: format!("out of scope: `{}` is false", scope.source),
                        inputs: self.inputs(scope.reads.iter()),
                        contributed: Vec::new(),
                    });
                }
                return Ok(None);
            }
        }
        let mut desired = Desired {
            destination: d.name.clone(),
            attributes: Vec::new(),
            container: None,
            groups: Vec::new(),
            licenses: Vec::new(),
            apps: Vec::new(),
            enabled: true,
            expires_at: None,
            tickets: Vec::new(),
            unique: Vec::new(),
            redacted: Vec::new(),
        };
        let mut state = State::default();
        for m in d.attributes.iter().filter(|m| !m.uses_apps()) {
            if let Some((attr, value)) = self.mapping(m, &mut desired.unique)? {
                note_redacted(&mut desired.redacted, &m.attribute, &value);
                set_attribute(&mut desired.attributes, &m.attribute, attr);
            }
        }
        for u in &d.unique {
            desired.unique.retain(|x| x.attribute != u.attribute);
            desired.unique.push(self.unique(u)?);
        }
        let mut guards: Vec<Option<bool>> = vec![None; d.guard_count];
        for rule in &d.rules {
            let ruled_out = rule.guard.as_ref().is_some_and(|g| {
                let known = &mut guards[g.key];
                !*known.get_or_insert_with(|| g.admits(self.person))
            });
            let matched = !ruled_out && self.condition(&rule.when)?;
            let inputs = || self.inputs(rule.when.reads.iter());
            if !matched {
                if self.level == TraceLevel::All {
                    self.trace(
                        trace,
                        &rule.name,
                        false,
                        format!("`{}` is false", rule.when.source),
                        inputs(),
                        Vec::new(),
                    );
                }
                continue;
            }
            let contributed = self.apply(&rule.then, &mut desired, &mut state, false)?;
            if self.level != TraceLevel::None {
                self.trace(
                    trace,
                    &rule.name,
                    true,
                    rule.reason.clone(),
                    inputs(),
                    contributed,
                );
            }
            if rule.stop {
                break;
            }
        }
        let contributed = self.apply(&d.defaults, &mut desired, &mut state, true)?;
        if !contributed.is_empty() {
            self.trace(
                trace,
                "defaults",
                true,
                "fields no rule set".into(),
                Vec::new(),
                contributed,
            );
        }
        if let Some(enabled) = state.enabled {
            desired.enabled = enabled;
        }
        // Mappings of the app assignments (AppRoleAssignmentsComplex), once the rules gave them.
        if d.attributes.iter().any(|m| m.uses_apps()) {
            *self.apps.borrow_mut() = Value::List(Arc::new(
                desired
                    .apps
                    .iter()
                    .map(|a| Value::String(Arc::new(a.clone())))
                    .collect(),
            ));
            for m in d.attributes.iter().filter(|m| m.uses_apps()) {
                if let Some((attr, value)) = self.mapping(m, &mut desired.unique)? {
                    note_redacted(&mut desired.redacted, &m.attribute, &value);
                    set_attribute(&mut desired.attributes, &m.attribute, attr);
                }
            }
        }
        Ok(Some(desired))
    }

    fn unique(&self, u: &compile::Unique) -> Result<UniqueName, EvalError> {
        let mut candidates: Vec<String> = Vec::new();
        let mut push = |c: Option<String>| {
            if let Some(c) = c.filter(|c| !c.is_empty())
                && !candidates.contains(&c)
            {
                candidates.push(c);
            }
        };
        for t in &u.candidates {
            if t.uses_n() {
                for n in 2..=i64::from(u.max_n) {
                    push(self.template(Some(n), t)?);
                }
            } else {
                push(self.template(None, t)?);
            }
        }
        if candidates.is_empty() {
            return Err(fail(
                &u.field,
                format!("no candidate for {} has a value for this person", u.attribute),
            ));
        }
        Ok(UniqueName {
            attribute: u.attribute.clone(),
            candidates,
            unique_in: u.unique_in.clone(),
            rename_on_change: u.rename_on_change,
        })
    }

    /// Applies a rule's (or the defaults') outputs. Single-valued fields: the
    /// first rule to set one wins. Lists add up. Defaults fill only what no rule set.
    fn apply(
        &self,
        o: &Outputs,
        desired: &mut Desired,
        state: &mut State,
        defaults: bool,
    ) -> Result<Vec<String>, EvalError> {
        let mut contributed = Vec::new();
        if let Some(t) = &o.container
            && desired.container.is_none()
            && let Some(c) = self.template(None, t)?
        {
            if self.level != TraceLevel::None {
                contributed.push(labelled("container", &c));
            }
            desired.container = Some(c);
        }
        for (kind, t) in &o.lists {
            if defaults && state.lists_set.contains(kind) {
                continue;
            }
            let Some(v) = self.template(None, t)? else {
                continue;
            };
            let list = match kind {
                ListKind::Group | ListKind::DistributionList | ListKind::M365Group => &mut desired.groups,
                ListKind::License => &mut desired.licenses,
                ListKind::App => &mut desired.apps,
            };
            if !list.contains(&v) {
                if self.level != TraceLevel::None {
                    contributed.push(labelled(kind.label(), &v));
                }
                list.push(v);
            }
        }
        if !defaults {
            for kind in o.lists.iter().map(|(k, _)| k).chain(&o.cleared) {
                if !state.lists_set.contains(kind) {
                    state.lists_set.push(*kind);
                }
            }
        }
        if let Some(e) = o.enabled
            && state.enabled.is_none()
        {
            state.enabled = Some(e);
            contributed.push(format!("enabled:{e}"));
        }
        if let Some(e) = &o.expires
            && desired.expires_at.is_none()
        {
            let v = self.eval(e)?;
            if v != Value::Null {
                let when = dates::parse(&v).map_err(|reason| fail(&e.field, reason))?;
                let text = dates::rfc3339(&when);
                contributed.push(format!("expires:{text}"));
                desired.expires_at = Some(text);
            }
        }
        for m in &o.attributes {
            if state.attributes_set.contains(&m.attribute) {
                continue;
            }
            if defaults
                && desired
                    .attributes
                    .iter()
                    .any(|(k, v)| k == &m.attribute && *v != Attr::Absent)
            {
                continue;
            }
            if let Some((attr, value)) = self.mapping(m, &mut desired.unique)? {
                note_redacted(&mut desired.redacted, &m.attribute, &value);
                contributed.push(format!("attribute:{}={}", m.attribute, trace_text(&value, &attr)));
                set_attribute(&mut desired.attributes, &m.attribute, attr);
                state.attributes_set.push(m.attribute.clone());
            }
        }
        for t in &o.tickets {
            let mut fields = Vec::new();
            for (k, v) in &t.fields {
                let text = self.template(None, v)?.unwrap_or_default();
                fields.push((k.clone(), text));
            }
            contributed.push(format!("ticket:{}", t.template));
            desired.tickets.push(Ticket {
                template: t.template.clone(),
                fields,
            });
        }
        Ok(contributed)
    }
}

/// Remembers that an attribute's value is redacted (or forgets that it was).
fn note_redacted(redacted: &mut Vec<String>, attribute: &str, value: &Value) {
    redacted.retain(|a| a != attribute);
    if is_redacted(value) {
        redacted.push(attribute.to_string());
    }
}

/// `label:value`, for a trace's contributions.
fn labelled(label: &str, value: &str) -> String {
    let mut s = String::with_capacity(label.len() + 1 + value.len());
    s.push_str(label);
    s.push(':');
    s.push_str(value);
    s
}

fn trace_text(value: &Value, attr: &Attr) -> String {
    match (value, attr) {
        (v, _) if is_redacted(v) => "[redacted]".into(),
        (_, Attr::Text(t)) => t.clone(),
        (_, Attr::Many(v)) => v.join(";"),
        (_, Attr::Number(n)) => n.to_string(),
        (_, Attr::Flag(b)) => b.to_string(),
        (_, Attr::Absent) => "(absent)".into(),
    }
}

fn set_attribute(attrs: &mut Vec<(String, Attr)>, name: &str, value: Attr) {
    match attrs.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => attrs.push((name.to_string(), value)),
    }
}

/// What rules have set so far in one destination.
#[derive(Default)]
struct State {
    enabled: Option<bool>,
    lists_set: Vec<ListKind>,
    attributes_set: Vec<String>,
}
