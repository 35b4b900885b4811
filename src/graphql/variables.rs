//! Checks the request's variables against the operation's variable
//! definitions before anything runs.
//!
//! The GraphQL specification coerces variables before execution, so a wrong
//! type is a request error (no `data`, HTTP 400 for
//! `application/graphql-response+json`). async-graphql checks some values
//! while validating and the rest only when the field runs, where the mistake
//! becomes a field error with `data: null`. This closes that gap for the
//! types the schema knows: built-in scalars, enums, input objects and lists.
//! Values are never echoed back: a variable may hold a password.
use async_graphql::{
    parser::types::ExecutableDocument,
    registry::{MetaType, MetaTypeName, Registry},
    InputType, ServerError, ServerResult, Value, Variables,
};

fn invalid(path: &str, expected: &str) -> ServerError {
    crate::error::coded(
        "BAD_USER_INPUT",
        format!("variable ${path} does not have the expected type {expected}"),
    )
}

/// Checks the variables of the operation that will run. With several
/// operations in one document the operation name decides, which this stage
/// does not see; those are left to execution.
pub fn check(
    registry: &Registry,
    doc: &ExecutableDocument,
    variables: &Variables,
) -> ServerResult<()> {
    let mut operations = doc.operations.iter();
    let (Some((_, operation)), None) = (operations.next(), operations.next()) else {
        return Ok(());
    };
    for definition in &operation.node.variable_definitions {
        let definition = &definition.node;
        let name = definition.name.node.as_str();
        let ty = definition.var_type.node.to_string();
        match variables.get(&definition.name.node) {
            Some(value) => check_value(registry, &ty, value, name)?,
            None if definition.default_value.is_none() && !definition.var_type.node.nullable => {
                return Err(invalid(name, &ty));
            }
            None => {}
        }
    }
    Ok(())
}

fn check_value(registry: &Registry, ty: &str, value: &Value, path: &str) -> ServerResult<()> {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => {
            if matches!(value, Value::Null) {
                return Err(invalid(path, ty));
            }
            check_value(registry, inner, value, path)
        }
        MetaTypeName::List(inner) => match value {
            Value::Null => Ok(()),
            Value::List(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                check_value(registry, inner, item, &format!("{path}[{i}]"))
            }),
            // A single value stands for a list of one.
            single => check_value(registry, inner, single, path),
        },
        MetaTypeName::Named(name) => {
            if matches!(value, Value::Null) {
                return Ok(());
            }
            check_named(registry, name, value, path)
        }
    }
}

fn check_named(registry: &Registry, name: &str, value: &Value, path: &str) -> ServerResult<()> {
    match registry.types.get(name) {
        Some(MetaType::Scalar { .. }) if name == "DateTime" => {
            <chrono::DateTime<chrono::Utc> as InputType>::parse(Some(value.clone()))
                .map(drop)
                .map_err(|_| invalid(path, name))
        }
        Some(MetaType::Scalar {
            is_valid: Some(is_valid),
            ..
        }) if !is_valid(value) => Err(invalid(path, name)),
        Some(MetaType::Enum { enum_values, .. }) => {
            let known = match value {
                Value::String(s) => enum_values.contains_key(s.as_str()),
                Value::Enum(e) => enum_values.contains_key(e.as_str()),
                _ => false,
            };
            if known {
                Ok(())
            } else {
                Err(invalid(path, name))
            }
        }
        Some(MetaType::InputObject { input_fields, .. }) => {
            let Value::Object(fields) = value else {
                return Err(invalid(path, name));
            };
            if let Some(unknown) = fields
                .keys()
                .find(|k| !input_fields.contains_key(k.as_str()))
            {
                return Err(invalid(&format!("{path}.{unknown}"), "(no such field)"));
            }
            for field in input_fields.values() {
                let field_path = format!("{path}.{}", field.name);
                match fields.get(field.name.as_str()) {
                    Some(v) => check_value(registry, &field.ty, v, &field_path)?,
                    None if field.default_value.is_none()
                        && MetaTypeName::create(&field.ty).is_non_null() =>
                    {
                        return Err(invalid(&field_path, &field.ty));
                    }
                    None => {}
                }
            }
            Ok(())
        }
        // Other scalars without a validator are checked when parsed;
        // unknown types are reported by validation.
        _ => Ok(()),
    }
}
