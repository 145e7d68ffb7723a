//! The API's OpenAPI 3.1 description, built from the same table as the router
//! ([`crate::routes`]): each route states its roles, parameters, body and answers
//! next to its handler, and the schemas come from the Rust types the handlers read
//! and write (schemars, JSON Schema 2020-12, which OpenAPI 3.1 uses as it is).

use crate::auth::{Allowed, Role};
use axum::http::Method;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// Writes one type's schema (a `$ref` into the components where the type is named).
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// A bearer token whose role is one of these.
    Roles(&'static [Role]),
    /// A source's webhook signature (the source's own scheme), no token.
    Signature,
    /// The metrics token, when one is configured.
    MetricsToken,
    /// Anyone (health checks, this description).
    Public,
}

/// A body of a request or an answer.
#[derive(Clone, Copy)]
struct Content {
    media_type: &'static str,
    /// `None`: any bytes of that media type.
    schema: Option<SchemaFn>,
}

/// One answer a route may give.
#[derive(Clone, Copy)]
struct Answer {
    status: u16,
    description: &'static str,
    content: Option<Content>,
}

/// The description of one route, written next to it in the router.
pub struct Doc {
    tag: &'static str,
    summary: &'static str,
    access: Access,
    path: Vec<(&'static str, SchemaFn)>,
    query: Option<SchemaFn>,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<(Content, bool)>,
    answers: Vec<Answer>,
}

impl Doc {
    /// A route in the group `tag`, doing `summary`; open to anyone until access is set.
    pub fn new(tag: &'static str, summary: &'static str) -> Doc {
        Doc {
            tag,
            summary,
            access: Access::Public,
            path: Vec::new(),
            query: None,
            headers: Vec::new(),
            body: None,
            answers: Vec::new(),
        }
    }

    /// Callable with a token of one of `R`'s roles (the handler's `Authed<R>`).
    pub fn roles<R: Allowed>(mut self) -> Doc {
        self.access = Access::Roles(R::ROLES);
        self
    }

    /// How the caller proves who it is, when not by a role's token.
    pub fn access(mut self, access: Access) -> Doc {
        self.access = access;
        self
    }

    /// A path parameter (`{name}` in the route) of type `T`.
    pub fn path<T: JsonSchema>(mut self, name: &'static str) -> Doc {
        self.path.push((name, schema_of::<T>));
        self
    }

    /// The query parameters: the fields of `T`.
    pub fn query<T: JsonSchema>(mut self) -> Doc {
        self.query = Some(schema_of::<T>);
        self
    }

    /// An optional request header.
    pub fn header(mut self, name: &'static str, description: &'static str) -> Doc {
        self.headers.push((name, description));
        self
    }

    /// A JSON request body of type `T` (`required`: whether it may be left out).
    pub fn json<T: JsonSchema>(mut self, required: bool) -> Doc {
        let content = Content {
            media_type: "application/json",
            schema: Some(schema_of::<T>),
        };
        self.body = Some((content, required));
        self
    }

    /// A request body of any bytes (a plugin, a source's file, a webhook delivery).
    pub fn bytes(mut self, media_type: &'static str) -> Doc {
        let content = Content {
            media_type,
            schema: None,
        };
        self.body = Some((content, true));
        self
    }

    /// A JSON answer of type `T`.
    pub fn answers<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Doc {
        let content = Content {
            media_type: "application/json",
            schema: Some(schema_of::<T>),
        };
        self.answers.push(Answer {
            status,
            description,
            content: Some(content),
        });
        self
    }

    /// An answer without a body.
    pub fn answers_empty(mut self, status: u16, description: &'static str) -> Doc {
        self.answers.push(Answer {
            status,
            description,
            content: None,
        });
        self
    }

    /// A text answer (CSV, JSON lines, Prometheus text) with its media type.
    pub fn answers_text(mut self, status: u16, media_type: &'static str, description: &'static str) -> Doc {
        let content = Content {
            media_type,
            schema: None,
        };
        self.answers.push(Answer {
            status,
            description,
            content: Some(content),
        });
        self
    }

    /// Error answers this route gives besides the ones every route of its kind gives.
    pub fn errors(mut self, statuses: &[u16]) -> Doc {
        for &status in statuses {
            self.answers.push(error_answer(status));
        }
        self
    }

    /// The errors implied by what the route takes: a token (401, 403), parameters
    /// and a body (400, 422), and the store (503), added to those listed.
    fn implied_errors(&self) -> Vec<u16> {
        let mut statuses = Vec::new();
        match self.access {
            Access::Roles(_) => statuses.extend([401, 403]),
            Access::MetricsToken | Access::Signature => statuses.push(401),
            Access::Public => {}
        }
        if !self.path.is_empty() || self.query.is_some() || !self.headers.is_empty() {
            statuses.extend([400, 422]);
        }
        if !self.path.is_empty() {
            statuses.push(404);
        }
        if self.body.is_some() {
            statuses.extend([413, 422]);
        }
        if matches!(self.access, Access::Roles(_)) {
            statuses.push(503);
        }
        statuses
    }
}

fn error_answer(status: u16) -> Answer {
    Answer {
        status,
        description: error_description(status),
        content: Some(Content {
            media_type: "application/json",
            schema: Some(schema_of::<crate::error::ErrorBody>),
        }),
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "a parameter or header could not be read",
        401 => "no valid credentials",
        403 => "the caller's role or sources do not allow this",
        404 => "not found",
        409 => "in conflict with the current state",
        413 => "the body is too large",
        415 => "the body's media type is not accepted",
        422 => "the input is invalid; the error names the field",
        429 => "too many requests; wait for Retry-After",
        502 => "a plugin or an upstream system failed",
        503 => "the store or a plugin is unavailable; retry",
        _ => "an error",
    }
}

/// A documented route: where it is, and its description.
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub doc: Doc,
}

/// The roles a documented route allows (`None`: not a role-token route).
pub fn roles_of(doc: &Doc) -> Option<&'static [Role]> {
    match doc.access {
        Access::Roles(roles) => Some(roles),
        _ => None,
    }
}

/// The OpenAPI 3.1 document of these operations.
pub fn document(operations: &[Operation]) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut generator = SchemaGenerator::new(settings.clone());
    // Query parameters are listed one by one, so their type is written out in place.
    let mut inline = SchemaGenerator::new(settings.with(|s| s.inline_subschemas = true));
    let mut paths = Map::new();
    for op in operations {
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let described = describe(op, &mut generator, &mut inline);
        if let Value::Object(methods) = entry {
            methods.insert(op.method.as_str().to_ascii_lowercase(), described);
        }
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tenure API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Events in, jobs, people, rule sets, plugins, reconciliation and the audit log. \
                Every route under /api/v1 takes `Authorization: Bearer <token>` or a person's \
                session cookie; the token's role or the person's roles (x-tenure-roles on each \
                operation) decide what it may call.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer",
                    "description": "An API token from the configuration; its role and tenant apply."},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::sessions::COOKIE,
                    "description": "A person's session from POST /api/v1/session; every change made \
                        with it carries the session's CSRF token in X-CSRF-Token."},
                "metrics": {"type": "http", "scheme": "bearer",
                    "description": "The metrics token, when one is configured."},
            },
        },
    })
}

fn describe(op: &Operation, generator: &mut SchemaGenerator, inline: &mut SchemaGenerator) -> Value {
    let doc = &op.doc;
    let mut out = Map::new();
    out.insert("operationId".into(), operation_id(&op.method, op.path).into());
    out.insert("summary".into(), doc.summary.into());
    out.insert("tags".into(), json!([doc.tag]));
    match doc.access {
        Access::Roles(roles) => {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            out.insert("security".into(), json!([{ "token": [] }, { "session": [] }]));
            out.insert("x-tenure-roles".into(), json!(names));
            out.insert(
                "description".into(),
                format!("Roles allowed: {}.", names.join(", ")).into(),
            );
        }
        Access::MetricsToken => {
            out.insert("security".into(), json!([{ "metrics": [] }, {}]));
        }
        Access::Signature => {
            out.insert("security".into(), json!([]));
            out.insert(
                "description".into(),
                "Authenticated by the source's webhook signature, not by a token.".into(),
            );
        }
        Access::Public => {
            out.insert("security".into(), json!([]));
        }
    }
    let mut parameters = Vec::new();
    for (name, schema) in &doc.path {
        parameters.push(json!({
            "name": name, "in": "path", "required": true, "schema": schema(generator),
        }));
    }
    if let Some(query) = doc.query {
        parameters.extend(query_parameters(query(inline)));
    }
    for (name, description) in &doc.headers {
        parameters.push(json!({
            "name": name, "in": "header", "required": false, "description": description,
            "schema": {"type": "string"},
        }));
    }
    if !parameters.is_empty() {
        out.insert("parameters".into(), parameters.into());
    }
    if let Some((content, required)) = doc.body {
        out.insert(
            "requestBody".into(),
            json!({ "required": required, "content": content_of(content, generator) }),
        );
    }
    let mut responses = Map::new();
    // The route's own answers (several media types of one status merge), then the implied
    // errors whose status it does not answer itself.
    for answer in &doc.answers {
        add_answer(&mut responses, answer, generator);
    }
    for status in doc.implied_errors() {
        if !responses.contains_key(&status.to_string()) {
            add_answer(&mut responses, &error_answer(status), generator);
        }
    }
    out.insert("responses".into(), responses.into());
    Value::Object(out)
}

fn add_answer(responses: &mut Map<String, Value>, answer: &Answer, generator: &mut SchemaGenerator) {
    let entry = responses
        .entry(answer.status.to_string())
        .or_insert_with(|| json!({ "description": answer.description }));
    if let (Some(content), Value::Object(entry)) = (answer.content, entry) {
        let media = entry.entry("content").or_insert_with(|| json!({}));
        if let (Value::Object(media), Value::Object(this)) = (media, content_of(content, generator)) {
            media.extend(this);
        }
    }
}

/// `GET /api/v1/jobs/{id}` -> `get_api_v1_jobs_id`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn content_of(content: Content, generator: &mut SchemaGenerator) -> Value {
    let schema = match content.schema {
        Some(schema) => schema(generator).to_value(),
        None if content.media_type.starts_with("text/") || content.media_type.contains("json") => {
            json!({ "type": "string" })
        }
        None => json!({ "type": "string", "contentMediaType": content.media_type }),
    };
    json!({ content.media_type: { "schema": schema } })
}

/// One query parameter per property of an object schema.
fn query_parameters(schema: Schema) -> Vec<Value> {
    let value = schema.to_value();
    let required: Vec<&str> = value
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = value.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut parameter = json!({
                "name": name, "in": "query", "required": required.contains(&name.as_str()),
                "schema": without_null(schema),
            });
            if let Some(description) = schema.get("description") {
                parameter["description"] = description.clone();
            }
            parameter
        })
        .collect()
}

/// A query parameter is absent rather than null: `["integer", "null"]` -> `integer`.
fn without_null(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(Value::Array(types)) = schema.get("type") {
        let kept: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if kept.len() == 1 {
            schema["type"] = kept[0].clone();
        }
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("description");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_the_method_and_path() {
        assert_eq!(
            operation_id(&Method::GET, "/api/v1/jobs/{id}"),
            "get_api_v1_jobs_id"
        );
        assert_eq!(
            operation_id(&Method::POST, "/api/v1/rule-sets/{version}/publish"),
            "post_api_v1_rule_sets_version_publish"
        );
    }

    #[test]
    fn query_parameters_are_the_fields_without_null() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Q {
            /// How many.
            limit: Option<usize>,
            state: String,
        }
        let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
        let parameters = query_parameters(generator.root_schema_for::<Q>());
        let limit = parameters.iter().find(|p| p["name"] == "limit").expect("limit");
        assert_eq!(limit["required"], false);
        assert_eq!(limit["schema"]["type"], "integer");
        assert_eq!(limit["description"], "How many.");
        let state = parameters.iter().find(|p| p["name"] == "state").expect("state");
        assert_eq!(state["required"], true);
    }
}

#[cfg(test)]
mod document_tests {
    use serde_json::Value;

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_is_described_and_every_reference_resolves() {
        let doc = crate::openapi();
        if std::env::var_os("TENURE_PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        assert_eq!(doc["openapi"], "3.1.0");
        let operations = crate::operations();
        assert!(operations.len() >= 45, "{} operations", operations.len());
        for op in &operations {
            let method = op.method.as_str().to_ascii_lowercase();
            let described = &doc["paths"][op.path][&method];
            assert!(described.is_object(), "{method} {} is not described", op.path);
            assert!(described["responses"].as_object().is_some_and(|r| !r.is_empty()));
            // Each `{name}` in the path is a parameter.
            for name in op.path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
                let named = described["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(named, "{method} {}: {{{name}}} is not a parameter", op.path);
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap_or(r);
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }
}
