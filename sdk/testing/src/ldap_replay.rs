//! Recorded LDAP results, answered in order by a local LDAP server that stands in for the
//! plugin's LDAP connections. The plugin reaches it through the host's own LDAP capability
//! (grants, subtrees, writable attributes, generated passwords), so a fixture exercises the
//! real path, as [`crate::replay`] does for HTTP.
//!
//! ```json
//! "ldap": [
//!   { "op": "search", "base": "OU=Staff,DC=acme,DC=test", "scope": "subtree",
//!     "filter": "(employeeID=1001)", "entries": [] },
//!   { "op": "add", "dn": "CN=Ada,OU=Staff,DC=acme,DC=test",
//!     "attributes": { "sAMAccountName": ["ada"], "unicodePwd": "*" } },
//!   { "op": "modify", "dn": "CN=Ada,OU=Staff,DC=acme,DC=test",
//!     "changes": [ { "op": "replace", "attribute": "userAccountControl", "values": ["514"] } ],
//!     "result": { "code": 50, "message": "insufficient access" } } ]
//! ```
//!
//! Each connection binds as `cn=<connection name>` (any password is accepted), so a recording
//! may name the connection it belongs to. What a recording leaves out is not checked; a value
//! list written `"*"` accepts any values (a generated password, a timestamp). Filters are
//! compared parsed, so spacing does not matter but attribute names and values do. The
//! protocol codec reads filter values as UTF-8 text: a recorded binary anchor (objectGUID)
//! must use bytes that are, such as ASCII letters (`{"base64": "QUJDREVGR0hJSktMTU5PUA=="}`).

use crate::tape::{ServerTask, SharedTape, Tape};
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindResponse, LdapFilter, LdapModifyType, LdapMsg, LdapOp, LdapPartialAttribute, LdapResult,
    LdapResultCode, LdapSearchResultEntry, LdapSearchScope,
};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio_util::codec::Framed;

/// One LDAP request the plugin is expected to send, and its recorded result. (Unknown
/// fields are refused by the request, which holds every field but these two.)
#[derive(Debug, Clone, Deserialize)]
pub struct LdapExchange {
    /// The named connection it goes to (may be left out when the plugin has one).
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(flatten)]
    pub request: LdapRequest,
    /// The result code and message (success when left out).
    #[serde(default)]
    pub result: RecordedResult,
}

/// The request, by operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LdapRequest {
    Search {
        base: String,
        #[serde(default)]
        scope: Option<Scope>,
        /// The filter, parsed and compared with the one sent.
        #[serde(default)]
        filter: Option<String>,
        /// The attributes asked for, in any order.
        #[serde(default)]
        attributes: Option<Vec<String>>,
        /// The entries returned.
        #[serde(default)]
        entries: Vec<RecordedEntry>,
    },
    Add {
        dn: String,
        /// Every attribute sent, with its values (`"*"`: any values).
        #[serde(default)]
        attributes: Option<BTreeMap<String, Values>>,
    },
    Modify {
        dn: String,
        /// Every change sent, in order.
        #[serde(default)]
        changes: Option<Vec<RecordedChange>>,
    },
    ModifyDn {
        dn: String,
        new_rdn: String,
        #[serde(default)]
        delete_old_rdn: Option<bool>,
        #[serde(default)]
        new_superior: Option<String>,
    },
    Delete {
        dn: String,
    },
}

/// A search scope as written in a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

/// Attribute values in a recording: texts, or `"*"` for any.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Values {
    Listed(Vec<String>),
    Any(String),
}

/// One change of a modify request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedChange {
    /// `add`, `delete` or `replace`.
    pub op: String,
    pub attribute: String,
    #[serde(default)]
    pub values: Option<Values>,
}

/// A returned entry: its DN and attributes (texts, or `{"base64": "..."}` for bytes).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedEntry {
    pub dn: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<Json>>,
}

/// A recorded result code and message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResult {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub matched_dn: String,
}

/// A running LDAP replay server; it stops when dropped.
pub struct LdapReplay {
    addr: SocketAddr,
    tape: SharedTape<LdapExchange>,
    _server: ServerTask,
}

impl LdapReplay {
    /// Starts a server on loopback that answers `exchanges` in order; each recorded filter
    /// must parse.
    pub async fn start(exchanges: Vec<LdapExchange>) -> Result<Self, String> {
        for (i, e) in exchanges.iter().enumerate() {
            if let LdapRequest::Search { filter: Some(f), .. } = &e.request {
                recorded_filter(f).map_err(|err| format!("ldap[{i}].filter {f:?}: {err}"))?;
            }
            check_recording(&e.request).map_err(|why| format!("ldap[{i}].{why}"))?;
            LdapResultCode::try_from(e.result.code).map_err(|_| {
                format!(
                    "ldap[{i}].result.code {} is not an LDAP result code",
                    e.result.code
                )
            })?;
        }
        let tape = Tape::shared(exchanges);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = tape.clone();
        let server = ServerTask(tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        }));
        Ok(LdapReplay {
            addr,
            tape,
            _server: server,
        })
    }

    /// The URL a named connection gets.
    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    /// The DN a named connection binds as.
    pub fn bind_dn(connection: &str) -> String {
        format!("cn={connection}")
    }

    /// What went wrong: requests that matched no recording, then recordings never requested.
    pub fn problems(&self) -> Vec<String> {
        Tape::lock(&self.tape)
            .problems(|e| format!("recorded LDAP {} was never requested", describe(&e.request)))
    }
}

/// What a recording cannot mean: values written as text other than `"*"`, or entry values
/// that are neither text nor `{"base64": "..."}`.
fn check_recording(request: &LdapRequest) -> Result<(), String> {
    let star = |v: &Values, at: &str| match v {
        Values::Any(text) if text != "*" => Err(format!("{at}: a list of values, or \"*\" for any")),
        _ => Ok(()),
    };
    match request {
        LdapRequest::Search { entries, .. } => {
            for (i, e) in entries.iter().enumerate() {
                for (name, values) in &e.attributes {
                    for v in values {
                        let bytes = match v {
                            Json::String(_) => true,
                            Json::Object(o) => o
                                .get("base64")
                                .and_then(Json::as_str)
                                .and_then(base64_decode)
                                .is_some(),
                            _ => false,
                        };
                        if !bytes {
                            let at = format!("entries[{i}].attributes.{name}");
                            return Err(format!("{at}: {v} is neither text nor {{\"base64\": \"...\"}}"));
                        }
                    }
                }
            }
            Ok(())
        }
        LdapRequest::Add {
            attributes: Some(attributes),
            ..
        } => attributes
            .iter()
            .try_for_each(|(name, v)| star(v, &format!("attributes.{name}"))),
        LdapRequest::Modify {
            changes: Some(changes),
            ..
        } => changes.iter().enumerate().try_for_each(|(i, c)| match &c.values {
            Some(v) => star(v, &format!("changes[{i}].values")),
            None => Ok(()),
        }),
        _ => Ok(()),
    }
}

fn describe(request: &LdapRequest) -> String {
    match request {
        LdapRequest::Search { base, filter, .. } => {
            format!(
                "search of {base:?} for {}",
                filter.as_deref().unwrap_or("anything")
            )
        }
        LdapRequest::Add { dn, .. } => format!("add of {dn:?}"),
        LdapRequest::Modify { dn, .. } => format!("modify of {dn:?}"),
        LdapRequest::ModifyDn { dn, .. } => format!("modify-dn of {dn:?}"),
        LdapRequest::Delete { dn } => format!("delete of {dn:?}"),
    }
}

/// Answers one client connection until it unbinds or goes away.
async fn serve(socket: tokio::net::TcpStream, tape: SharedTape<LdapExchange>) {
    let mut framed = Framed::new(socket, LdapCodec::default());
    let mut connection = String::new();
    while let Some(msg) = framed.next().await {
        let LdapMsg { msgid, op, ctrl } = match msg {
            Ok(msg) => msg,
            Err(e) => {
                Tape::lock(&tape).unexpected(format!(
                    "an LDAP request on {connection} the replay server cannot read ({e:?}); filter values \
                        must be UTF-8 here, so record binary anchors (objectGUID) with UTF-8 bytes"
                ));
                return;
            }
        };
        let replies = match op {
            LdapOp::BindRequest(bind) => {
                connection = bind.dn.strip_prefix("cn=").unwrap_or(&bind.dn).to_string();
                vec![LdapOp::BindResponse(LdapBindResponse {
                    res: success(),
                    saslcreds: None,
                })]
            }
            LdapOp::UnbindRequest => break,
            LdapOp::AbandonRequest(_) => vec![],
            other => answer(&tape, &connection, other),
        };
        let paged = ctrl
            .iter()
            .any(|c| matches!(c, LdapControl::SimplePagedResults { .. }));
        for reply in replies {
            // The last page of a paged search says so with an empty cookie.
            let controls = match (&reply, paged) {
                (LdapOp::SearchResultDone(_), true) => vec![LdapControl::SimplePagedResults {
                    size: 0,
                    cookie: vec![],
                }],
                _ => vec![],
            };
            if framed
                .send(LdapMsg::new_with_ctrls(msgid, reply, controls))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

fn success() -> LdapResult {
    LdapResult {
        code: LdapResultCode::Success,
        matcheddn: String::new(),
        message: String::new(),
        referral: vec![],
    }
}

/// The replies to one operation: the recording's when it matches, else an error the plugin
/// sees (and the fixture reports).
fn answer(tape: &SharedTape<LdapExchange>, connection: &str, op: LdapOp) -> Vec<LdapOp> {
    let mut tape = Tape::lock(tape);
    match tape.take("LDAP requests", |next| matches(next, connection, &op)) {
        Ok(recorded) => replies(&recorded, &op),
        Err(why) => {
            tape.unexpected(format!("unexpected LDAP {} on {connection}: {why}", sent(&op)));
            let refused = LdapResult {
                code: LdapResultCode::UnwillingToPerform,
                matcheddn: String::new(),
                message: format!("not recorded: {why}"),
                referral: vec![],
            };
            vec![done(&op, refused)]
        }
    }
}

/// The response that ends an operation, with `result`.
fn done(op: &LdapOp, result: LdapResult) -> LdapOp {
    match op {
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(result),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(result),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(result),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(result),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(result),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(result),
        _ => LdapOp::ExtendedResponse(ldap3_proto::proto::LdapExtendedResponse {
            res: result,
            name: None,
            value: None,
        }),
    }
}

fn replies(recorded: &LdapExchange, op: &LdapOp) -> Vec<LdapOp> {
    let result = LdapResult {
        code: LdapResultCode::try_from(recorded.result.code).unwrap_or(LdapResultCode::Other),
        matcheddn: recorded.result.matched_dn.clone(),
        message: recorded.result.message.clone(),
        referral: vec![],
    };
    let mut out = Vec::new();
    if let LdapRequest::Search { entries, .. } = &recorded.request {
        out.extend(entries.iter().map(|e| LdapOp::SearchResultEntry(entry(e))));
    }
    out.push(done(op, result));
    out
}

fn entry(recorded: &RecordedEntry) -> LdapSearchResultEntry {
    let value = |v: &Json| match v {
        Json::String(text) => text.as_bytes().to_vec(),
        Json::Object(o) => o
            .get("base64")
            .and_then(Json::as_str)
            .and_then(base64_decode)
            .unwrap_or_default(),
        other => other.to_string().into_bytes(),
    };
    LdapSearchResultEntry {
        dn: recorded.dn.clone(),
        attributes: recorded
            .attributes
            .iter()
            .map(|(name, values)| LdapPartialAttribute {
                atype: name.clone(),
                vals: values.iter().map(value).collect(),
            })
            .collect(),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A sent operation, described for a failure.
fn sent(op: &LdapOp) -> String {
    match op {
        LdapOp::SearchRequest(s) => format!(
            "search of {:?} ({:?}) for {} asking for {:?}",
            s.base,
            s.scope,
            filter_text(&s.filter),
            s.attrs
        ),
        LdapOp::AddRequest(a) => format!("add of {:?} with {}", a.dn, attributes_text(&a.attributes)),
        LdapOp::ModifyRequest(m) => {
            let changes: Vec<String> = m
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        modify_type(&c.operation),
                        attributes_text(std::slice::from_ref(&c.modification))
                    )
                })
                .collect();
            format!("modify of {:?}: {}", m.dn, changes.join(", "))
        }
        LdapOp::ModifyDNRequest(m) => format!("modify-dn of {:?} to {:?}", m.dn, m.newrdn),
        LdapOp::DelRequest(dn) => format!("delete of {dn:?}"),
        other => format!("{other:?}"),
    }
}

/// Attributes and their values, described; a secret's values (a generated password) are not shown.
fn attributes_text(attributes: &[LdapPartialAttribute]) -> String {
    let one = |a: &LdapPartialAttribute| {
        if tenure_capabilities::ldap::is_secret(&a.atype) {
            return format!("{}=[{} secret value(s)]", a.atype, a.vals.len());
        }
        let values: Vec<String> = a
            .vals
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        format!("{}={values:?}", a.atype)
    };
    attributes.iter().map(one).collect::<Vec<_>>().join(" ")
}

fn filter_text(filter: &LdapFilter) -> String {
    match filter {
        LdapFilter::And(parts) => format!("(&{})", parts.iter().map(filter_text).collect::<String>()),
        LdapFilter::Or(parts) => format!("(|{})", parts.iter().map(filter_text).collect::<String>()),
        LdapFilter::Not(inner) => format!("(!{})", filter_text(inner)),
        LdapFilter::Equality(a, v) => format!("({a}={v})"),
        LdapFilter::Present(a) => format!("({a}=*)"),
        LdapFilter::GreaterOrEqual(a, v) => format!("({a}>={v})"),
        LdapFilter::LessOrEqual(a, v) => format!("({a}<={v})"),
        LdapFilter::Approx(a, v) => format!("({a}~={v})"),
        other => format!("{other:?}"),
    }
}

/// A recorded filter, parsed, with its values' RFC 4515 escapes (`\41`) undone, as the
/// server receives them.
fn recorded_filter(text: &str) -> Result<LdapFilter, String> {
    let parsed = ldap3_proto::parse_ldap_filter_str(text).map_err(|e| e.to_string())?;
    Ok(unescaped(parsed))
}

fn unescaped(filter: LdapFilter) -> LdapFilter {
    let value = |v: String| unescape(&v);
    match filter {
        LdapFilter::And(parts) => LdapFilter::And(parts.into_iter().map(unescaped).collect()),
        LdapFilter::Or(parts) => LdapFilter::Or(parts.into_iter().map(unescaped).collect()),
        LdapFilter::Not(inner) => LdapFilter::Not(Box::new(unescaped(*inner))),
        LdapFilter::Equality(a, v) => LdapFilter::Equality(a, value(v)),
        LdapFilter::GreaterOrEqual(a, v) => LdapFilter::GreaterOrEqual(a, value(v)),
        LdapFilter::LessOrEqual(a, v) => LdapFilter::LessOrEqual(a, value(v)),
        LdapFilter::Approx(a, v) => LdapFilter::Approx(a, value(v)),
        LdapFilter::Substring(a, mut sub) => {
            sub.initial = sub.initial.map(value);
            sub.any = sub.any.into_iter().map(value).collect();
            sub.final_ = sub.final_.map(value);
            LdapFilter::Substring(a, sub)
        }
        other => other,
    }
}

/// `\xx` escapes into their bytes (read as UTF-8, lossily).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn modify_type(t: &LdapModifyType) -> &'static str {
    match t {
        LdapModifyType::Add => "add",
        LdapModifyType::Delete => "delete",
        LdapModifyType::Replace => "replace",
        LdapModifyType::Increment => "increment",
    }
}

/// Whether `op` is what `want` recorded.
fn matches(want: &LdapExchange, connection: &str, op: &LdapOp) -> Result<(), String> {
    let expected = || format!("expected the {}", describe(&want.request));
    if want.connection.as_deref().is_some_and(|c| c != connection) {
        return Err(format!(
            "{} on {}",
            expected(),
            want.connection.as_deref().unwrap_or("")
        ));
    }
    match (&want.request, op) {
        (
            LdapRequest::Search {
                base,
                scope,
                filter,
                attributes,
                ..
            },
            LdapOp::SearchRequest(s),
        ) => {
            if !base.eq_ignore_ascii_case(&s.base) {
                return Err(expected());
            }
            if let Some(scope) = scope {
                let sent = match s.scope {
                    LdapSearchScope::Base => Some(Scope::Base),
                    LdapSearchScope::OneLevel => Some(Scope::OneLevel),
                    LdapSearchScope::Subtree => Some(Scope::Subtree),
                    LdapSearchScope::Children => None,
                };
                if sent != Some(*scope) {
                    return Err(format!("{}: scope {:?}, expected {scope:?}", expected(), s.scope));
                }
            }
            if let Some(f) = filter {
                let parsed = recorded_filter(f).map_err(|e| format!("recorded filter: {e}"))?;
                if parsed != s.filter {
                    return Err(format!("{}: filter {}", expected(), filter_text(&s.filter)));
                }
            }
            if let Some(want) = attributes {
                let lower = |v: &[String]| {
                    let mut v: Vec<String> = v.iter().map(|a| a.to_ascii_lowercase()).collect();
                    v.sort();
                    v
                };
                if lower(want) != lower(&s.attrs) {
                    return Err(format!("{}: attributes {:?}", expected(), s.attrs));
                }
            }
            Ok(())
        }
        (LdapRequest::Add { dn, attributes }, LdapOp::AddRequest(a)) => {
            if !dn.eq_ignore_ascii_case(&a.dn) {
                return Err(expected());
            }
            match attributes {
                None => Ok(()),
                Some(want) => {
                    same_attributes(want, &a.attributes).map_err(|why| format!("{}: {why}", expected()))
                }
            }
        }
        (LdapRequest::Modify { dn, changes }, LdapOp::ModifyRequest(m)) => {
            if !dn.eq_ignore_ascii_case(&m.dn) {
                return Err(expected());
            }
            let Some(want) = changes else { return Ok(()) };
            if want.len() != m.changes.len() {
                return Err(format!(
                    "{}: {} changes, expected {}",
                    expected(),
                    m.changes.len(),
                    want.len()
                ));
            }
            for (i, (w, got)) in want.iter().zip(&m.changes).enumerate() {
                let same = w.op.eq_ignore_ascii_case(modify_type(&got.operation))
                    && w.attribute.eq_ignore_ascii_case(&got.modification.atype)
                    && w.values
                        .as_ref()
                        .is_none_or(|v| same_values(v, &got.modification.vals));
                if !same {
                    return Err(format!("{}: change {i} differs", expected()));
                }
            }
            Ok(())
        }
        (
            LdapRequest::ModifyDn {
                dn,
                new_rdn,
                delete_old_rdn,
                new_superior,
            },
            LdapOp::ModifyDNRequest(m),
        ) => {
            let same = dn.eq_ignore_ascii_case(&m.dn)
                && new_rdn.eq_ignore_ascii_case(&m.newrdn)
                && delete_old_rdn.is_none_or(|d| d == m.deleteoldrdn)
                && new_superior.as_ref().is_none_or(|s| {
                    m.new_superior
                        .as_deref()
                        .is_some_and(|got| got.eq_ignore_ascii_case(s))
                });
            same.then_some(()).ok_or_else(expected)
        }
        (LdapRequest::Delete { dn }, LdapOp::DelRequest(got)) => {
            dn.eq_ignore_ascii_case(got).then_some(()).ok_or_else(expected)
        }
        _ => Err(expected()),
    }
}

/// Whether the attributes sent are exactly the recorded ones (names in any case).
fn same_attributes(want: &BTreeMap<String, Values>, sent: &[LdapPartialAttribute]) -> Result<(), String> {
    for a in sent {
        match want.iter().find(|(name, _)| name.eq_ignore_ascii_case(&a.atype)) {
            None => return Err(format!("attribute {} was not recorded", a.atype)),
            Some((name, values)) if !same_values(values, &a.vals) => {
                return Err(format!("attribute {name}: values differ"));
            }
            Some(_) => {}
        }
    }
    match want
        .keys()
        .find(|name| !sent.iter().any(|a| a.atype.eq_ignore_ascii_case(name)))
    {
        Some(missing) => Err(format!("attribute {missing} was not sent")),
        None => Ok(()),
    }
}

/// Whether the values sent are the recorded ones, in any order (`"*"`: any values).
fn same_values(want: &Values, sent: &[Vec<u8>]) -> bool {
    match want {
        Values::Any(star) => star == "*",
        Values::Listed(texts) => {
            let mut want: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
            let mut got: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
            want.sort();
            got.sort();
            want == got
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_sets_and_a_star_takes_any() {
        let sent = vec![b"b".to_vec(), b"a".to_vec()];
        assert!(same_values(&Values::Listed(vec!["a".into(), "b".into()]), &sent));
        assert!(!same_values(&Values::Listed(vec!["a".into()]), &sent));
        assert!(same_values(&Values::Any("*".into()), &sent));
        assert!(!same_values(&Values::Any("a".into()), &sent));
    }

    #[test]
    fn recorded_filters_are_unescaped_as_the_server_reads_them() {
        let f = recorded_filter(r"(&(objectGUID=\41\42)(cn=a\2ab))").unwrap();
        assert_eq!(
            f,
            LdapFilter::And(vec![
                LdapFilter::Equality("objectGUID".into(), "AB".into()),
                LdapFilter::Equality("cn".into(), "a*b".into()),
            ])
        );
        assert!(recorded_filter("(cn=").is_err());
    }

    #[test]
    fn recordings_that_cannot_mean_anything_are_refused() {
        let entry = serde_json::json!({"dn": "CN=a,DC=x", "attributes": {"g": [{"hex": "00"}]}});
        let bad_entry: LdapRequest = serde_json::from_value(serde_json::json!({
            "op": "search", "base": "DC=x", "entries": [entry]
        }))
        .unwrap();
        assert!(
            check_recording(&bad_entry)
                .unwrap_err()
                .contains("entries[0].attributes.g")
        );
        let bad_values: LdapRequest =
            serde_json::from_value(serde_json::json!({"op": "add", "dn": "CN=a", "attributes": {"cn": "a"}}))
                .unwrap();
        assert!(
            check_recording(&bad_values)
                .unwrap_err()
                .contains("attributes.cn")
        );
        let typo =
            serde_json::from_value::<LdapExchange>(serde_json::json!({"op": "delete", "dn": "x", "dm": "y"}));
        assert!(typo.unwrap_err().to_string().contains("dm"));
    }

    #[test]
    fn filters_print_as_sent() {
        let parsed = ldap3_proto::parse_ldap_filter_str("(&(objectClass=user)(employeeID=1001))").unwrap();
        assert_eq!(filter_text(&parsed), "(&(objectClass=user)(employeeID=1001))");
    }
}
