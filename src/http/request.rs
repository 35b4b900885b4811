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
    /// `MAX_QUERY_VARIABLES`: a body supplying more is refused while it is
    /// read, before the rest of its variables are built.
    pub max_variables: usize,
}

/// The code of a body refused for supplying too many variables.
pub const QUERY_TOO_LARGE: &str = "QUERY_TOO_LARGE";

/// Parses a POST body: one request object, or an array of them when batching
/// is on.
pub fn from_body(body: &[u8], rules: BatchRules) -> Result<BatchRequest, Rejection> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde::de::DeserializeSeed::deserialize(
        seed::Body {
            max_variables: rules.max_variables,
        },
        &mut reader,
    )
    .and_then(|value| reader.end().map(|()| value))
    .map_err(|e| {
        if e.to_string().starts_with(seed::TOO_MANY) {
            Rejection {
                code: QUERY_TOO_LARGE,
                message: format!("the query has more than {} variables", rules.max_variables),
            }
        } else {
            Rejection::bad("the request body is not valid JSON")
        }
    })?;
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

/// Reads a body as `serde_json::Value`, except that a `variables` object is
/// counted as it is read and refused past the limit: 50,000 variables cost
/// the reading of 101, not a map of 50,000 built twice (JSON, then
/// async-graphql's values) before the front door counts them.
mod seed {
    use std::fmt;

    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// Start of the error message that means "too many variables".
    pub const TOO_MANY: &str = "too many variables";

    /// The body, or one entry of a batch.
    pub struct Body {
        pub max_variables: usize,
    }

    impl<'de> DeserializeSeed<'de> for Body {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    /// Scalars are read as `Value` reads them; only maps and sequences
    /// differ.
    macro_rules! scalars {
        () => {
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::String(v))
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
        };
    }

    impl<'de> Visitor<'de> for Body {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a GraphQL request")
        }
        scalars!();
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if key == "variables" {
                    map.next_value_seed(Variables {
                        max: self.max_variables,
                    })?
                } else {
                    map.next_value::<Value>()?
                };
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element_seed(Body {
                max_variables: self.max_variables,
            })? {
                out.push(item);
            }
            Ok(Value::Array(out))
        }
    }

    /// A request's `variables`, refused at its `max + 1`th entry.
    struct Variables {
        max: usize,
    }

    impl<'de> DeserializeSeed<'de> for Variables {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Variables {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("the variables object")
        }
        scalars!();
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.len() == self.max {
                    return Err(A::Error::custom(TOO_MANY));
                }
                let value = map.next_value::<Value>()?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                out.push(item);
            }
            Ok(Value::Array(out))
        }
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
    // A persisted or trusted document may be named instead of sent
    // (`graphql::documents` resolves it).
    let document_id = match (params.remove("documentId"), params.remove("doc_id")) {
        (Some(Value::String(id)), None) | (None, Some(Value::String(id))) => Some(id),
        (None, None) => None,
        _ => return Err(Rejection::bad("documentId must be one string")),
    };
    let names_a_document = document_id.is_some()
        || params
            .get("extensions")
            .and_then(Value::as_object)
            .is_some_and(|e| e.contains_key("persistedQuery"));
    let query = match params.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) if names_a_document => String::new(),
        None | Some(Value::Null) => return Err(Rejection::bad("the query parameter is required")),
        Some(_) => return Err(Rejection::bad("the query parameter must be a string")),
    };
    let mut request = Request::new(query);
    if let Some(id) = document_id {
        request.extensions.insert(
            crate::graphql::documents::DOCUMENT_ID.to_owned(),
            async_graphql::Value::String(id),
        );
    }
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
        max_variables: 3,
    };

    #[test]
    fn a_body_with_too_many_variables_is_refused_as_it_is_read() {
        let three = br#"{"query": "{ a }", "variables": {"a": 1, "b": [2], "c": {"d": 3}}}"#;
        let Ok(BatchRequest::Single(request)) = from_body(three, RULES) else {
            panic!("three variables are within the limit");
        };
        assert_eq!(request.variables.len(), 3);
        for body in [
            r#"{"query": "{ a }", "variables": {"a": 1, "b": 2, "c": 3, "d": 4}}"#,
            r#"[{"query": "{ a }", "variables": {"a": 1, "b": 2, "c": 3, "d": 4, "#,
        ] {
            let rejection = from_body(body.as_bytes(), RULES).map(|_| ()).unwrap_err();
            assert_eq!(rejection.code, QUERY_TOO_LARGE, "{body}");
            assert!(rejection.message.contains("more than 3 variables"));
        }
        // The body as a whole is still checked as JSON.
        let trailing = br#"{"query": "{ a }"} x"#;
        assert_eq!(
            from_body(trailing, RULES).map(|_| ()).unwrap_err().code,
            "BAD_REQUEST"
        );
    }

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
