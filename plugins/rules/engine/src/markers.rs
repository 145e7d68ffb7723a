//! What three functions return instead of a plain value: `Redact` (a value that
//! flows but is shown as `[redacted]`), `IgnoreFlowIfNullOrEmpty` (the mapping is
//! dropped) and `SelectUniqueValue` (candidates the host picks from). They are
//! typed values of their own (CEL opaque values), so no data can forge one and no
//! string function can leak one: a library function that receives a redacted value
//! computes on its text and returns its result redacted; one that receives an
//! ignore-flow returns an ignore-flow; candidates may only be the whole expression.

use cel::Value;
use cel::objects::Opaque;
use std::sync::Arc;

/// A value `Redact` marked: it reaches the destination, traces and audits show `[redacted]`.
/// Its `Debug` (which CEL's error messages use) shows no text either.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `IgnoreFlowIfNullOrEmpty` met nothing: the mapping does not flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFlow;

/// `SelectUniqueValue`'s candidates, in order; the host claims the first one free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates(pub Vec<String>);

impl Opaque for Redacted {
    fn runtime_type_name(&self) -> &str {
        "tenure.Redacted"
    }
}

impl Opaque for IgnoreFlow {
    fn runtime_type_name(&self) -> &str {
        "tenure.IgnoreFlow"
    }
}

impl Opaque for Candidates {
    fn runtime_type_name(&self) -> &str {
        "tenure.Candidates"
    }
}

pub fn redacted(text: String) -> Value {
    Value::Opaque(Arc::new(Redacted(text)))
}

pub fn ignore_flow() -> Value {
    Value::Opaque(Arc::new(IgnoreFlow))
}

pub fn candidates(items: Vec<String>) -> Value {
    Value::Opaque(Arc::new(Candidates(items)))
}

/// The marker a value is, if it is one.
pub enum Marker<'a> {
    Redacted(&'a str),
    IgnoreFlow,
    Candidates(&'a [String]),
}

pub fn marker(v: &Value) -> Option<Marker<'_>> {
    let Value::Opaque(o) = v else { return None };
    let any: &dyn std::any::Any = o.as_ref();
    if let Some(r) = any.downcast_ref::<Redacted>() {
        return Some(Marker::Redacted(&r.0));
    }
    if any.downcast_ref::<IgnoreFlow>().is_some() {
        return Some(Marker::IgnoreFlow);
    }
    any.downcast_ref::<Candidates>().map(|c| Marker::Candidates(&c.0))
}
