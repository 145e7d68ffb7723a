//! A fast path for the CEL that rule sets are mostly made of: person fields,
//! literals, `&&` `||` `!`, `==` `!=` `<` `<=` `>` `>=`, `in`, `+`, the ternary,
//! `has()`, `size()`, the string methods and the function library. Such an
//! expression is lowered once to a small tree over the person's field slots and
//! evaluated without the interpreter's scopes and lookups.
//!
//! It never changes an answer: an expression with anything else is left to the
//! CEL interpreter, and whenever the fast path meets an error it steps aside and
//! the interpreter evaluates the expression and reports (the tests compare both
//! on a corpus of expressions).

use crate::functions;
use cel::Value;
use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};
use std::cmp::Ordering;
use std::sync::Arc;

/// The standard person fields, in slot order.
pub(crate) const FIELDS: [&str; 20] = [
    "id",
    "ids",
    "given_name",
    "family_name",
    "preferred_name",
    "email",
    "emails",
    "phone",
    "phones",
    "title",
    "department",
    "team",
    "location",
    "country",
    "time_zone",
    "manager",
    "employment_type",
    "start_date",
    "end_date",
    "status",
];

/// Variables besides `person`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    Event,
    Destination,
    Now,
    N,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum StrMethod {
    StartsWith,
    EndsWith,
    Contains,
    Matches,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

type Imp = fn(&[Value]) -> Result<Value, String>;

/// A lowered expression.
pub(crate) enum Node {
    Lit(Value),
    Field(usize),
    Custom(usize),
    HasCustom(usize),
    Var(Var),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Eq(Box<Node>, Box<Node>),
    Ne(Box<Node>, Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    Add(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Size(Box<Node>),
    Method(StrMethod, Box<Node>, Box<Node>),
    Call(&'static str, Imp, Vec<Node>),
    List(Vec<Node>),
}

/// What an evaluation reads: the person and the variables.
pub(crate) struct Scope<'a> {
    pub person: crate::model::View<'a>,
    /// The person's custom attributes, numbered as in `CustomNames`.
    pub custom: &'a [Option<&'a crate::model::Attr>],
    pub event: &'a Value,
    pub destination: &'a Value,
    pub now: &'a Value,
    pub n: Option<i64>,
}

/// Custom attribute names the rule set reads, numbered: each person's are
/// looked up once per evaluation, then read by number.
#[derive(Default)]
pub(crate) struct CustomNames(std::cell::RefCell<Vec<String>>);

impl CustomNames {
    fn id(&self, name: &str) -> usize {
        let mut names = self.0.borrow_mut();
        match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        }
    }

    /// A person's custom attributes in this numbering.
    pub(crate) fn resolve<'a>(&self, person: crate::model::View<'a>) -> Vec<Option<&'a crate::model::Attr>> {
        self.0.borrow().iter().map(|n| person.custom(n)).collect()
    }
}

/// Lowers an expression, or `None` when it uses anything the fast path does not cover.
pub(crate) fn lower(e: &IdedExpr, names: &CustomNames) -> Option<Node> {
    let lower = |e: &IdedExpr| lower(e, names);
    Some(match &e.expr {
        Expr::Literal(l) => Node::Lit(match l {
            LiteralValue::String(s) => Value::String(Arc::new(s.inner().to_string())),
            LiteralValue::Int(i) => Value::Int(*i.inner()),
            LiteralValue::Boolean(b) => Value::Bool(*b.inner()),
            LiteralValue::Null => Value::Null,
            _ => return None,
        }),
        Expr::Ident(name) => Node::Var(match name.as_str() {
            "event" => Var::Event,
            "destination" => Var::Destination,
            "now" => Var::Now,
            "n" => Var::N,
            _ => return None,
        }),
        Expr::Select(s) => {
            let path = s.operand.expr.qualified_name_segments_pub()?;
            match (path.as_slice(), s.test) {
                (["person"], false) => Node::Field(FIELDS.iter().position(|f| *f == s.field)?),
                (["person", "custom"], false) => Node::Custom(names.id(&s.field)),
                (["person", "custom"], true) => Node::HasCustom(names.id(&s.field)),
                _ => return None,
            }
        }
        Expr::List(l) if l.optional_indices.is_empty() => {
            Node::List(l.elements.iter().map(&lower).collect::<Option<_>>()?)
        }
        Expr::Call(c) => {
            let arg = |i: usize| c.args.get(i).and_then(lower).map(Box::new);
            match (c.func_name.as_str(), &c.target, c.args.len()) {
                (operators::LOGICAL_AND, None, 2) => Node::And(arg(0)?, arg(1)?),
                (operators::LOGICAL_OR, None, 2) => Node::Or(arg(0)?, arg(1)?),
                (operators::LOGICAL_NOT, None, 1) => Node::Not(arg(0)?),
                (operators::EQUALS, None, 2) => Node::Eq(arg(0)?, arg(1)?),
                (operators::NOT_EQUALS, None, 2) => Node::Ne(arg(0)?, arg(1)?),
                (operators::LESS, None, 2) => Node::Cmp(Cmp::Lt, arg(0)?, arg(1)?),
                (operators::LESS_EQUALS, None, 2) => Node::Cmp(Cmp::Le, arg(0)?, arg(1)?),
                (operators::GREATER, None, 2) => Node::Cmp(Cmp::Gt, arg(0)?, arg(1)?),
                (operators::GREATER_EQUALS, None, 2) => Node::Cmp(Cmp::Ge, arg(0)?, arg(1)?),
                (operators::IN, None, 2) => Node::In(arg(0)?, arg(1)?),
                (operators::ADD, None, 2) => Node::Add(arg(0)?, arg(1)?),
                (operators::CONDITIONAL, None, 3) => Node::Cond(arg(0)?, arg(1)?, arg(2)?),
                ("size", None, 1) => Node::Size(arg(0)?),
                ("size", Some(t), 0) => Node::Size(Box::new(lower(t)?)),
                (m @ ("startsWith" | "endsWith" | "contains" | "matches"), Some(t), 1) => {
                    let method = match m {
                        "startsWith" => StrMethod::StartsWith,
                        "endsWith" => StrMethod::EndsWith,
                        "contains" => StrMethod::Contains,
                        _ => StrMethod::Matches,
                    };
                    Node::Method(method, Box::new(lower(t)?), arg(0)?)
                }
                (name, None, _) => {
                    let (name, imp) = functions::lookup(name)?;
                    Node::Call(name, imp, c.args.iter().map(&lower).collect::<Option<_>>()?)
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// A qualified name (`person.custom`) from an AST node, if it is one.
trait QualifiedName {
    fn qualified_name_segments_pub(&self) -> Option<Vec<&str>>;
}

impl QualifiedName for Expr {
    fn qualified_name_segments_pub(&self) -> Option<Vec<&str>> {
        let mut segments = Vec::new();
        let mut expr = self;
        loop {
            match expr {
                Expr::Ident(name) => {
                    segments.push(name.as_str());
                    segments.reverse();
                    return Some(segments);
                }
                Expr::Select(select) if !select.test => {
                    segments.push(select.field.as_str());
                    expr = &select.operand.expr;
                }
                _ => return None,
            }
        }
    }
}

/// The fast path gives up (the interpreter takes over).
pub(crate) struct StepAside;

type R = Result<Value, StepAside>;

fn boolean(v: R) -> Result<bool, StepAside> {
    match v? {
        Value::Bool(b) => Ok(b),
        _ => Err(StepAside),
    }
}

/// A cheap pre-test of a condition: when the person's field does not hold this
/// text, the condition is false (its leftmost conjunct is `field == "text"`).
#[derive(Clone)]
pub(crate) struct Guard {
    pub slot: usize,
    pub text: Arc<String>,
    /// Index of this (slot, text) among the destination's distinct guards, so
    /// that each distinct test runs once per evaluation.
    pub key: usize,
}

impl Guard {
    /// Whether the condition may hold (false means it certainly does not).
    pub(crate) fn admits(&self, person: crate::model::View<'_>) -> bool {
        person.text(self.slot) == Some(self.text.as_str())
    }
}

impl Node {
    /// The guard of a condition, when its leftmost conjunct compares a person
    /// field with a text literal (`false && x` is false whatever `x` is).
    pub(crate) fn guard(&self) -> Option<Guard> {
        match self {
            Node::Eq(a, b) => match (a.as_ref(), b.as_ref()) {
                (Node::Field(slot), Node::Lit(Value::String(text)))
                | (Node::Lit(Value::String(text)), Node::Field(slot)) => Some(Guard {
                    slot: *slot,
                    text: text.clone(),
                    key: 0,
                }),
                _ => None,
            },
            Node::And(a, _) => a.guard(),
            _ => None,
        }
    }
}

/// A value borrowed from the scope or the tree, or computed.
enum Val<'a> {
    Ref(&'a Value),
    Own(Value),
    /// Text borrowed from the person.
    Str(&'a str),
}

impl Val<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Ref(Value::String(s)) => Some(s.as_str()),
            Val::Own(Value::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The value itself (text is copied only here).
    fn value(&self) -> Value {
        match self {
            Val::Ref(v) => (*v).clone(),
            Val::Own(v) => v.clone(),
            Val::Str(s) => Value::String(Arc::new((*s).to_string())),
        }
    }

    /// The value when it is not borrowed text.
    fn as_value(&self) -> Option<&Value> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
            Val::Str(_) => None,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Val::Own(v) => v,
            other => other.value(),
        }
    }
}

impl Node {
    /// Evaluates, borrowing literals, fields and variables instead of cloning them.
    fn get<'a>(&'a self, s: &Scope<'a>) -> Result<Val<'a>, StepAside> {
        Ok(match self {
            Node::Lit(v) => Val::Ref(v),
            Node::Field(i) => match s.person.field(*i).ok_or(StepAside)? {
                crate::model::FieldRef::Text(t) => Val::Str(t),
                crate::model::FieldRef::Value(v) => Val::Own(v),
            },
            // An attribute the person does not have reads as null (as in Entra).
            Node::Custom(id) => match s.custom.get(*id).copied().flatten() {
                Some(crate::model::Attr::Text(t)) => Val::Str(t),
                Some(other) => Val::Own(other.to_cel()),
                None => Val::Own(Value::Null),
            },
            Node::Var(Var::Event) => Val::Ref(s.event),
            Node::Var(Var::Destination) => Val::Ref(s.destination),
            Node::Var(Var::Now) => Val::Ref(s.now),
            other => Val::Own(other.eval(s)?),
        })
    }

    /// The text of a field or a text literal, borrowed (`None` for anything else).
    pub(crate) fn text_ref<'a>(&'a self, s: &Scope<'a>) -> Option<&'a str> {
        match self {
            Node::Lit(Value::String(t)) => Some(t.as_str()),
            Node::Field(i) => s.person.text(*i),
            Node::Custom(id) => match s.custom.get(*id).copied().flatten()? {
                crate::model::Attr::Text(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// Evaluates a condition to true or false without building values.
    pub(crate) fn test<'a>(&'a self, s: &Scope<'a>) -> Result<bool, StepAside> {
        Ok(match self {
            Node::And(a, b) => {
                let left = a.test(s);
                if matches!(left, Ok(false)) {
                    return Ok(false);
                }
                match (left, b.test(s)?) {
                    (Ok(true), right) => right,
                    (Err(_), false) => false,
                    _ => return Err(StepAside),
                }
            }
            Node::Or(a, b) => {
                let left = a.test(s);
                if matches!(left, Ok(true)) {
                    return Ok(true);
                }
                match (left, b.test(s)?) {
                    (Ok(false), right) => right,
                    (Err(_), true) => true,
                    _ => return Err(StepAside),
                }
            }
            Node::Not(a) => !a.test(s)?,
            Node::Eq(a, b) => {
                let (x, y) = (a.get(s)?, b.get(s)?);
                same(&x, &y)?
            }
            Node::Ne(a, b) => {
                let (x, y) = (a.get(s)?, b.get(s)?);
                !same(&x, &y)?
            }
            Node::Cmp(op, a, b) => {
                let (x, y) = (a.get(s)?, b.get(s)?);
                let ord = order(&x, &y)?;
                match op {
                    Cmp::Lt => ord == Ordering::Less,
                    Cmp::Le => ord != Ordering::Greater,
                    Cmp::Gt => ord == Ordering::Greater,
                    Cmp::Ge => ord != Ordering::Less,
                }
            }
            Node::In(a, b) => {
                let needle = a.get(s)?;
                match b.as_ref() {
                    // CEL builds the whole list first, so every element must evaluate.
                    Node::List(items) => {
                        let mut found = false;
                        for item in items {
                            let item = item.get(s)?;
                            found = found || same(&needle, &item)?;
                        }
                        found
                    }
                    other => match other.eval(s)? {
                        Value::List(items) => {
                            for item in items.iter() {
                                if same(&needle, &Val::Ref(item))? {
                                    return Ok(true);
                                }
                            }
                            false
                        }
                        _ => return Err(StepAside),
                    },
                }
            }
            Node::Method(m, t, a) => {
                let target = t.get(s)?;
                let arg = a.get(s)?;
                let (t, a) = (target.text().ok_or(StepAside)?, arg.text().ok_or(StepAside)?);
                match m {
                    StrMethod::StartsWith => t.starts_with(a),
                    StrMethod::EndsWith => t.ends_with(a),
                    StrMethod::Contains => t.contains(a),
                    StrMethod::Matches => functions::regex(a).map_err(|_| StepAside)?.is_match(t),
                }
            }
            other => match other.eval(s)? {
                Value::Bool(b) => b,
                _ => return Err(StepAside),
            },
        })
    }

    pub(crate) fn eval<'a>(&'a self, s: &Scope<'a>) -> R {
        Ok(match self {
            Node::Lit(v) => v.clone(),
            Node::Field(_) | Node::Custom(_) => self.get(s)?.into_value(),
            Node::HasCustom(id) => Value::Bool(s.custom.get(*id).copied().flatten().is_some()),
            Node::Var(Var::Event) => s.event.clone(),
            Node::Var(Var::Destination) => s.destination.clone(),
            Node::Var(Var::Now) => s.now.clone(),
            Node::Var(Var::N) => Value::Int(s.n.ok_or(StepAside)?),
            Node::And(..)
            | Node::Or(..)
            | Node::Not(_)
            | Node::Eq(..)
            | Node::Ne(..)
            | Node::Cmp(..)
            | Node::In(..)
            | Node::Method(..) => Value::Bool(self.test(s)?),
            Node::Add(a, b) => {
                let (x, y) = (a.get(s)?, b.get(s)?);
                match (x.text(), y.text()) {
                    (Some(x), Some(y)) => {
                        let mut out = String::with_capacity(x.len() + y.len());
                        out.push_str(x);
                        out.push_str(y);
                        Value::String(Arc::new(out))
                    }
                    _ => match (x.value(), y.value()) {
                        (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(y).ok_or(StepAside)?),
                        _ => return Err(StepAside),
                    },
                }
            }
            Node::Cond(c, a, b) => {
                if boolean(c.eval(s))? {
                    a.eval(s)?
                } else {
                    b.eval(s)?
                }
            }
            Node::Size(a) => {
                let v = a.get(s)?;
                match (v.text(), v.as_value()) {
                    (Some(x), _) => Value::Int(x.chars().count() as i64),
                    (None, Some(Value::List(l))) => Value::Int(l.len() as i64),
                    _ => return Err(StepAside),
                }
            }
            Node::Call(name, imp, args) => {
                let values = args.iter().map(|a| a.eval(s)).collect::<Result<Vec<_>, _>>()?;
                functions::invoke(name, *imp, &values).map_err(|_| StepAside)?
            }
            Node::List(items) => Value::List(Arc::new(
                items.iter().map(|i| i.eval(s)).collect::<Result<_, _>>()?,
            )),
        })
    }
}

/// CEL equality for the values the fast path produces; other pairs step aside.
fn same(a: &Val<'_>, b: &Val<'_>) -> Result<bool, StepAside> {
    if let (Some(x), Some(y)) = (a.text(), b.text()) {
        return Ok(x == y);
    }
    match (a.as_value(), b.as_value()) {
        (Some(x), Some(y)) => same_values(x, y),
        // Borrowed text against a value that is not text.
        (None, Some(v)) | (Some(v), None) => match v {
            Value::Int(_) | Value::Bool(_) | Value::Null | Value::Timestamp(_) => Ok(false),
            _ => Err(StepAside),
        },
        (None, None) => Err(StepAside),
    }
}

fn same_values(a: &Value, b: &Value) -> Result<bool, StepAside> {
    Ok(match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
        (Value::String(_) | Value::Int(_) | Value::Bool(_) | Value::Timestamp(_), Value::Null)
        | (Value::Null, Value::String(_) | Value::Int(_) | Value::Bool(_) | Value::Timestamp(_)) => false,
        (Value::String(_), Value::Int(_) | Value::Bool(_) | Value::Timestamp(_))
        | (Value::Int(_) | Value::Bool(_) | Value::Timestamp(_), Value::String(_)) => false,
        (Value::Int(_), Value::Bool(_)) | (Value::Bool(_), Value::Int(_)) => false,
        _ => return Err(StepAside),
    })
}

fn order(a: &Val<'_>, b: &Val<'_>) -> Result<Ordering, StepAside> {
    if let (Some(x), Some(y)) = (a.text(), b.text()) {
        return Ok(x.cmp(y));
    }
    match (a.as_value().ok_or(StepAside)?, b.as_value().ok_or(StepAside)?) {
        (Value::String(x), Value::String(y)) => Ok(x.as_str().cmp(y.as_str())),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Ok(x.cmp(y)),
        _ => Err(StepAside),
    }
}
