//! Validation of query strings and JSON bodies, with Meilisearch's error codes and messages:
//! an unknown parameter or field is `bad_request` naming it and listing the known ones; a
//! value of the wrong type is the parameter's own code (`invalid_search_limit`…) naming the
//! parameter, what was expected and what was found.

use eddy_engine::Code;
use serde_json::{Map, Value};

use crate::error::ApiError;

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A parsed query string.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl QueryParams {
    /// Parses `a=1&b=2` (percent-decoded). Repeated parameters: the last one counts.
    ///
    /// # Errors
    /// `bad_request` for a query string that does not decode.
    pub fn parse(raw: Option<&str>) -> Result<QueryParams, ApiError> {
        let raw = raw.unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?;
        Ok(QueryParams {
            pairs,
            raw: raw.to_string(),
        })
    }

    /// The query string as received (without `?`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Refuses parameters not in `known`.
    ///
    /// # Errors
    /// `bad_request` naming the first unknown parameter.
    pub fn only(&self, known: &[&str]) -> Result<&QueryParams, ApiError> {
        if let Some((name, _)) = self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "Unknown parameter `{name}`: expected one of {}",
                quoted(known)
            )));
        }
        Ok(self)
    }

    /// Whether any of `names` is present.
    pub fn has_any(&self, names: &[&str]) -> bool {
        self.pairs.iter().any(|(k, _)| names.contains(&k.as_str()))
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// `code` naming the parameter when the value is not a non-negative integer.
    pub fn usize(&self, name: &str, code: Code) -> Result<Option<usize>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    ApiError::new(
                        code,
                        format!(
                            "Invalid value in parameter `{name}`: could not parse `{v}` as a positive integer"
                        ),
                    )
                })
            })
            .transpose()
    }

    /// A boolean parameter.
    ///
    /// # Errors
    /// `code` naming the parameter when the value is not `true` or `false`.
    pub fn bool(&self, name: &str, code: Code) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::new(
                    code,
                    format!(
                        "Invalid value in parameter `{name}`: could not parse `{v}` as a boolean, expected either `true` or `false`"
                    ),
                )),
            })
            .transpose()
    }

    /// A comma-separated list (blank items dropped).
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    }
}

/// How a JSON value is described in error messages: `a string: \`"x"\``.
pub fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a positive integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind}: `{}`", eddy_engine::document::abbreviate(v))
}

/// The error for a field of the wrong type.
pub fn wrong_type(code: Code, field: &str, expected: &str, found: &Value) -> ApiError {
    ApiError::new(
        code,
        format!(
            "Invalid value type at `.{field}`: expected {expected}, but found {}",
            describe(found)
        ),
    )
}

/// A JSON body that must be an object with only known fields.
///
/// # Errors
/// `bad_request` when the value is not an object or has an unknown field.
pub fn object(value: Value, known: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let map = match value {
        Value::Object(map) => map,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid value type: expected an object, but found {}",
                describe(&other)
            )));
        }
    };
    if let Some(name) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unknown field `{name}`: expected one of {}",
            quoted(known)
        )));
    }
    Ok(map)
}

/// A non-negative integer field (`null` = absent).
///
/// # Errors
/// `code` when the value is of another type or negative.
pub fn usize_field(
    map: &Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<usize>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong_type(code, name, "a positive integer", v)),
    }
}

/// A boolean field (`null` = absent).
///
/// # Errors
/// `code` when the value is of another type.
pub fn bool_field(
    map: &Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<bool>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(code, name, "a boolean", v)),
    }
}

/// A string field (`null` = absent).
///
/// # Errors
/// `code` when the value is of another type.
pub fn string_field(
    map: &Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong_type(code, name, "a string", v)),
    }
}

/// An array-of-strings field (`null` = absent).
///
/// # Errors
/// `code` when the value is not an array of strings.
pub fn string_list_field(
    map: &Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<Vec<String>>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong_type(code, &format!("{name}[{i}]"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(wrong_type(code, name, "an array", v)),
    }
}

/// Whether a value asks for nothing: absent, `null`, `false`, an empty string, array or object.
pub fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// The error for a feature that a later version of eddy will support.
pub fn not_supported_yet(code: Code, what: &str) -> ApiError {
    ApiError::new(code, format!("{what} is not supported by eddy yet."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parameters() {
        let q = QueryParams::parse(Some("limit=5&fields=a,%20b,&reverse=true&limit=7")).unwrap();
        assert_eq!(q.usize("limit", Code::InvalidIndexLimit).unwrap(), Some(7));
        assert_eq!(q.list("fields").unwrap(), vec!["a", "b"]);
        assert_eq!(
            q.bool("reverse", Code::InvalidTaskReverse).unwrap(),
            Some(true)
        );
        let err = q.only(&["limit"]).unwrap_err();
        assert_eq!(err.body().code, "bad_request");
        assert!(
            err.body().message.contains("`fields`"),
            "{}",
            err.body().message
        );
        let q = QueryParams::parse(Some("limit=-1")).unwrap();
        let err = q.usize("limit", Code::InvalidIndexLimit).unwrap_err();
        assert_eq!(err.body().code, "invalid_index_limit");
        assert!(err.body().message.contains("`limit`"));
    }

    #[test]
    fn json_fields() {
        let map = object(
            json!({"limit": -1, "q": 3, "attributesToRetrieve": ["a", 1]}),
            &["limit", "q", "attributesToRetrieve"],
        )
        .unwrap();
        let err = usize_field(&map, "limit", Code::InvalidSearchLimit).unwrap_err();
        assert_eq!(err.body().code, "invalid_search_limit");
        assert!(
            err.body().message.contains("negative integer"),
            "{}",
            err.body().message
        );
        assert!(string_field(&map, "q", Code::InvalidSearchQ).is_err());
        assert!(
            string_list_field(
                &map,
                "attributesToRetrieve",
                Code::InvalidSearchAttributesToRetrieve
            )
            .is_err()
        );
        let err = object(json!({"nope": 1}), &["q"]).unwrap_err();
        assert_eq!(err.body().code, "bad_request");
        assert!(err.body().message.contains("`nope`"));
        assert!(object(json!([1]), &["q"]).is_err());
    }
}
