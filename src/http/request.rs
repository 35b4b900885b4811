//! Reading GraphQL-over-HTTP requests: the JSON body of a POST or the query
//! string of a GET, checked parameter by parameter so that a malformed
//! request gets a 400 with a precise message instead of a guess.
use async_graphql::{
    parser::types::{ExecutableDocument, OperationType},
    BatchRequest, Request,
};
use serde_json::{Map, Value};

/// Why a request cannot be run, with the code clients see.
#[derive(Debug)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            code: "BAD_REQUEST",
            message: message.into(),
        }
    }
}

/// Batching rules from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct BatchRules {
    pub enabled: bool,
    pub max_operations: usize,
}

/// Parses a POST body: one request object, or an array of them when batching
/// is on.
pub fn from_body(body: &[u8], rules: BatchRules) -> Result<BatchRequest, Rejection> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::bad("the request body is not valid JSON"))?;
    match value {
        Value::Object(params) => Ok(BatchRequest::Single(request(params)?)),
        Value::Array(items) => {
            if !rules.enabled {
                return Err(Rejection {
                    code: "BATCHING_DISABLED",
                    message: "batched requests are not accepted; send one operation per request"
                        .to_owned(),
                });
            }
            if items.is_empty() {
                return Err(Rejection::bad("a batch must hold at least one request"));
            }
            if items.len() > rules.max_operations {
                return Err(Rejection {
                    code: "BATCH_TOO_LARGE",
                    message: format!(
                        "a batch may hold at most {} operations, this one has {}",
                        rules.max_operations,
                        items.len()
                    ),
                });
            }
            let requests = items
                .into_iter()
                .map(|item| match item {
                    Value::Object(params) => request(params),
                    _ => Err(Rejection::bad(
                        "every item of a batch must be a request object",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BatchRequest::Batch(requests))
        }
        _ => Err(Rejection::bad(
            "the request body must be a JSON object with a query",
        )),
    }
}

/// Parses the query string of a GET: `query`, `operationName`, and
/// `variables`/`extensions` as JSON text.
pub fn from_query_string(raw: &str) -> Result<Request, Rejection> {
    let uri: axum::http::Uri = format!("/?{raw}")
        .parse()
        .map_err(|_| Rejection::bad("the query string is malformed"))?;
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .map_err(|_| Rejection::bad("the query string is malformed"))?;
    let mut params = Map::new();
    for (key, value) in pairs {
        let value = match key.as_str() {
            "variables" | "extensions" => serde_json::from_str(&value)
                .map_err(|_| Rejection::bad(format!("{key} must be a JSON object")))?,
            _ => Value::String(value),
        };
        if params.insert(key.clone(), value).is_some() {
            return Err(Rejection::bad(format!("{key} is given more than once")));
        }
    }
    request(params)
}

/// Checks each parameter's type as the GraphQL-over-HTTP specification
/// defines it, then builds the request.
fn request(mut params: Map<String, Value>) -> Result<Request, Rejection> {
    let query = match params.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) => return Err(Rejection::bad("the query parameter is required")),
        Some(_) => return Err(Rejection::bad("the query parameter must be a string")),
    };
    let mut request = Request::new(query);
    match params.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err(Rejection::bad("operationName must be a string or null")),
    }
    match params.remove("variables") {
        None | Some(Value::Null) => {}
        Some(variables @ Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        Some(_) => return Err(Rejection::bad("variables must be a JSON object or null")),
    }
    match params.remove("extensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(extensions)) => {
            for (key, value) in extensions {
                let value = async_graphql::Value::from_json(value)
                    .map_err(|_| Rejection::bad("extensions must be a JSON object or null"))?;
                request.extensions.insert(key, value);
            }
        }
        Some(_) => return Err(Rejection::bad("extensions must be a JSON object or null")),
    }
    Ok(request)
}

/// True when the operation the request would run (`operation_name`, or any
/// when none is named) is a mutation (or a subscription, which plain HTTP
/// cannot serve): GET must not run those. Takes the document the front door
/// parsed, so GET parses once.
pub fn is_write_operation(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    doc.operations.iter().any(|(name, op)| {
        let selected = match operation_name {
            Some(w) => name.map(|n| n.as_str()) == Some(w),
            None => true,
        };
        selected && op.node.ty != OperationType::Query
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: BatchRules = BatchRules {
        enabled: true,
        max_operations: 2,
    };

    #[test]
    fn parameters_of_the_wrong_type_are_rejected() {
        for body in [
            r#"{"qeury": "{ a }"}"#,
            r#"{"query": 1}"#,
            r#"{"query": "{ a }", "variables": "x"}"#,
            r#"{"query": "{ a }", "operationName": []}"#,
            r#"{"query": "{ a }", "extensions": true}"#,
            r#""{ a }""#,
            "[]",
        ] {
            assert!(from_body(body.as_bytes(), RULES).is_err(), "{body}");
        }
        assert!(from_body(br#"{"query": "{ a }", "variables": null}"#, RULES).is_ok());
    }

    #[test]
    fn batches_respect_the_rules() {
        let three = br#"[{"query": "{ a }"}, {"query": "{ a }"}, {"query": "{ a }"}]"#;
        assert_eq!(
            from_body(three, RULES).map(|_| ()).unwrap_err().code,
            "BATCH_TOO_LARGE"
        );
        let off = BatchRules {
            enabled: false,
            ..RULES
        };
        let one = br#"[{"query": "{ a }"}]"#;
        assert_eq!(
            from_body(one, off).map(|_| ()).unwrap_err().code,
            "BATCHING_DISABLED"
        );
    }

    #[test]
    fn get_parameters_are_decoded() {
        let request =
            from_query_string("query=%7B+a+%7D&operationName=A&variables=%7B%22x%22%3A1%7D")
                .map_err(|r| r.message)
                .unwrap();
        assert_eq!(request.query, "{ a }");
        assert_eq!(request.operation_name.as_deref(), Some("A"));
        assert!(from_query_string("query=%7B+a+%7D&variables=nope").is_err());
    }
}
