//! The service's OpenAPI 3.1 description, served at `GET /openapi.json`. The paths are
//! written here next to the routes; every body schema is generated from the Rust types the
//! handlers serialise (via `schemars`), so the spec cannot drift from the responses. A copy is
//! checked in at `crates/shotgrade-server/openapi.json` (`shotgrade serve --print-openapi`
//! writes it) and a test keeps the two equal.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};
use shotgrade_core::{Row, ScoredRow};

use crate::{ErrorBody, ModelsInfo};

/// Where the checked-in copy lives, relative to the repository root.
pub const CHECKED_IN_PATH: &str = "crates/shotgrade-server/openapi.json";

/// A JSON error response with the given description.
fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// The common error responses of the scoring routes.
fn scoring_errors() -> Value {
    json!({
        "400": error("unknown `scene` or `profile`, or a malformed multipart body (kind `config` or `bad_request`)"),
        "401": error("missing or wrong API key (kind `unauthorized`)"),
        "413": error("the body is larger than the server's limit (kind `body_too_large`)"),
        "503": {
            "description": "the queue is full (kind `queue_full`) or the server is shutting down; retry after the `Retry-After` seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        },
        "504": error("not graded within the server's request timeout (kind `timeout`)"),
    })
}

fn query_parameters() -> Value {
    json!([
        {
            "name": "scene", "in": "query", "required": false,
            "description": "Scoring scene (see `GET /v1/models` for the list); the default scene when absent.",
            "schema": {"type": "string"}
        },
        {
            "name": "profile", "in": "query", "required": false,
            "description": "Marketplace profile to check the image against (see `GET /v1/models`).",
            "schema": {"type": "string"}
        }
    ])
}

/// The complete OpenAPI document.
pub fn spec() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let row = generator.subschema_for::<Row>();
    let scored = generator.subschema_for::<ScoredRow>();
    // Error responses refer to it by name (see `error`); this puts it in the components.
    let _ = generator.subschema_for::<ErrorBody>();
    let models = generator.subschema_for::<ModelsInfo>();
    let schemas = generator.take_definitions(true);
    let mut score_errors = scoring_errors();
    score_errors["422"] = error(
        "the image could not be read or graded (kind `corrupt`, `unsupported_format`, `too_large` or `io`; `path` names it)",
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "shotgrade",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Grades e-commerce product photos: background class, product position, aesthetics and cleanliness, combined into one 0-100 score with reasons a seller can act on. Every response carries an `x-request-id` header (the client's own, or a new UUID).",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Only when the server was started with an API key."}
            }
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/v1/score": {"post": {
                "summary": "Grade one image",
                "description": "The image as the raw body (any content type), or as the multipart field `file`.",
                "parameters": query_parameters(),
                "requestBody": {"required": true, "content": {
                    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
                    "image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}},
                    "multipart/form-data": {"schema": {
                        "type": "object", "required": ["file"],
                        "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}
                    }}
                }},
                "responses": merge(json!({
                    "200": {"description": "the graded image", "content": {"application/json": {"schema": scored}}},
                }), score_errors),
            }},
            "/v1/score/batch": {"post": {
                "summary": "Grade many images",
                "description": "Every part of the multipart body is an image. One row per part, in order; parts that could not be graded (or found the queue full) are error rows in place.",
                "parameters": query_parameters(),
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "contentMediaType": "application/octet-stream"}
                }}}},
                "responses": merge(json!({
                    "200": {"description": "one row per part", "content": {"application/json": {"schema": {"type": "array", "items": row}}}},
                }), scoring_errors()),
            }},
            "/v1/models": {"get": {
                "summary": "Model versions, classes, scenes, profiles and the weights' hash",
                "responses": {
                    "200": {"description": "what the service grades with", "content": {"application/json": {"schema": models}}},
                    "401": error("missing or wrong API key (kind `unauthorized`)"),
                }
            }},
            "/healthz": {"get": {
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"status": {"const": "ok"}}
                }}}}}
            }},
            "/readyz": {"get": {
                "summary": "Readiness: weights loaded and the queue not saturated",
                "security": [],
                "responses": {
                    "200": {"description": "ready", "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"status": {"const": "ready"}, "weights": {"type": "string"}}
                    }}}},
                    "503": error("the queue is at least 90 % full (kind `saturated`)"),
                }
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (OpenMetrics text)",
                "security": [],
                "responses": {"200": {"description": "requests by route and status, latency, images, queue depth, batch sizes, inference time", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}}
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
        }
    })
}

/// `a` with `b`'s keys added (both objects).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a_map), Value::Object(b_map)) = (a.as_object_mut(), b) {
        a_map.extend(b_map);
    }
    a
}

/// The spec as the checked-in file holds it: pretty JSON with a final newline.
pub fn pretty() -> String {
    let mut text = serde_json::to_string_pretty(&spec()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let spec = spec();
        let schemas = spec["components"]["schemas"]
            .as_object()
            .expect("components.schemas");
        let text = spec.to_string();
        let mut refs = 0;
        for part in text.split("\"$ref\":\"").skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("reference outside components: {target}"));
            assert!(schemas.contains_key(name), "dangling reference {target}");
            refs += 1;
        }
        assert!(refs > 10, "only {refs} references: schemas were inlined?");
        for name in [
            "ScoredRow",
            "Row",
            "ErrorBody",
            "ModelsInfo",
            "Scores",
            "Reason",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn scoring_routes_document_every_status() {
        let spec = spec();
        let score = &spec["paths"]["/v1/score"]["post"]["responses"];
        for status in ["200", "400", "401", "413", "422", "503", "504"] {
            assert!(score.get(status).is_some(), "/v1/score lacks {status}");
        }
        let scored = &spec["components"]["schemas"]["ScoredRow"]["properties"];
        for field in ["path", "scores", "background", "position", "reasons"] {
            assert!(scored.get(field).is_some(), "ScoredRow lacks {field}");
        }
    }
}
