//! Authentication and authorization of every request.
//!
//! Without a master key every route is open. With one, every route but `/health` needs
//! `Authorization: Bearer <secret>`, where the secret is the master key, an API key's value,
//! or (on search routes only) a tenant token. [`rule`] is the one table from a route to the
//! action it needs and the index it touches; [`middleware`] applies it before any handler
//! runs and hands the handler an [`Access`] (as a request extension) for what only the
//! handler can decide: which indexes a listing shows, which tasks a key sees, the index named
//! in a body.
//!
//! Tenant tokens force a filter. The middleware merges it into the request itself, before the
//! handler parses it: a JSON body's `filter` becomes the array `[forced…, requested…]` (outer
//! items are ANDed, and each is parsed on its own, so no requested text can escape the forced
//! one), and a `GET` query string's `filter` becomes `(forced) AND (requested)` only after the
//! requested filter parsed on its own. `/multi-search` queries are checked (and merged) one by
//! one the same way, so the handlers need not know about tokens at all.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eddy_engine::Code;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::keys::{ApiKey, KeyStore, any_pattern_matches, grants, secret_eq};
use crate::state::AppState;
use crate::tenant::{self, Tenant};

/// Who is asking, once authenticated.
#[derive(Debug, Clone)]
pub enum Access {
    /// No master key is set: everything is open.
    Open,
    /// The master key.
    Master,
    /// An API key.
    Key(Box<ApiKey>),
    /// A tenant token.
    Tenant(Box<Tenant>),
}

impl Access {
    fn patterns(&self) -> Option<&[String]> {
        match self {
            Access::Open | Access::Master => None,
            Access::Key(key) => Some(&key.indexes),
            Access::Tenant(t) => Some(&t.key.indexes),
        }
    }

    /// Whether every index is reachable.
    pub fn all_indexes(&self) -> bool {
        match self {
            Access::Tenant(_) => false,
            other => other.patterns().is_none_or(|p| p.iter().any(|p| p == "*")),
        }
    }

    /// Whether `index` is reachable (for a tenant token: searchable).
    pub fn index_allowed(&self, index: &str) -> bool {
        match self {
            Access::Open | Access::Master => true,
            Access::Key(key) => any_pattern_matches(&key.indexes, index),
            Access::Tenant(t) => t.may_search(index),
        }
    }

    /// The index patterns that restrict listings (`None`: no restriction).
    pub fn index_patterns(&self) -> Option<Vec<String>> {
        if self.all_indexes() {
            None
        } else {
            self.patterns().map(<[String]>::to_vec)
        }
    }

    /// Refuses an index this access may not reach, as Meilisearch does (`invalid_api_key`).
    ///
    /// # Errors
    /// `invalid_api_key` (403).
    pub fn check_index(&self, index: &str) -> Result<(), ApiError> {
        if self.index_allowed(index) {
            Ok(())
        } else {
            Err(invalid_api_key())
        }
    }

    /// The filter a tenant token forces on searches of `index`.
    pub fn forced_filter(&self, index: &str) -> Option<Value> {
        match self {
            Access::Tenant(t) => t.rules.rule_for(index).flatten().cloned(),
            _ => None,
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The action a key must grant.
    pub action: &'static str,
    /// The index named in the path, if any.
    pub index: Option<String>,
    /// Whether a tenant token is accepted (search routes).
    pub tenant: bool,
}

fn rule_of(action: &'static str, index: Option<&str>) -> Option<Rule> {
    Some(Rule {
        action,
        index: index.map(percent_decode),
        tenant: action == "search",
    })
}

/// Decodes `%XX` escapes of a path segment (as the router does before handlers see it).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The action table: what `method path` needs. `None` for `/health`, which is public. A route
/// this table does not know needs the `*` action, so a route added without a line here is
/// closed to restricted keys rather than open to them.
pub fn rule(method: &Method, path: &str) -> Option<Rule> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = method.as_str();
    let action: &'static str = match (m, segments.as_slice()) {
        ("GET", ["health"]) => return None,
        ("GET", ["version"]) => "version",
        ("GET", ["stats"]) => "stats.get",
        ("GET", ["metrics"]) => "metrics.get",
        ("GET", ["indexes"]) => "indexes.get",
        ("POST", ["indexes"]) => "indexes.create",
        ("POST", ["swap-indexes"]) => "indexes.swap",
        ("POST", ["multi-search"]) => "search",
        ("GET", ["tasks"] | ["tasks", _] | ["batches"] | ["batches", _]) => "tasks.get",
        ("POST", ["tasks", "cancel"]) => "tasks.cancel",
        ("DELETE", ["tasks"]) => "tasks.delete",
        ("GET", ["keys"] | ["keys", _]) => "keys.get",
        ("POST", ["keys"]) => "keys.create",
        ("PATCH", ["keys", _]) => "keys.update",
        ("DELETE", ["keys", _]) => "keys.delete",
        ("POST", ["dumps"]) => "dumps.create",
        ("POST", ["snapshots"]) => "snapshots.create",
        ("GET", ["webhooks"] | ["webhooks", _]) => "webhooks.get",
        ("POST", ["webhooks"]) => "webhooks.create",
        ("PATCH", ["webhooks", _]) => "webhooks.update",
        ("DELETE", ["webhooks", _]) => "webhooks.delete",
        ("GET", ["experimental-features"]) => "experimental.get",
        ("PATCH", ["experimental-features"]) => "experimental.update",
        (_, ["indexes", uid, rest @ ..]) => {
            let action = match (m, rest) {
                ("GET", []) => "indexes.get",
                ("PATCH", []) => "indexes.update",
                ("DELETE", []) => "indexes.delete",
                ("GET", ["stats"]) => "stats.get",
                ("GET", ["documents"] | ["documents", _]) => "documents.get",
                ("POST", ["documents", "fetch"]) => "documents.get",
                ("POST" | "PUT", ["documents"]) => "documents.add",
                ("DELETE", ["documents"] | ["documents", _]) => "documents.delete",
                ("POST", ["documents", "delete-batch" | "delete"]) => "documents.delete",
                ("GET" | "POST", ["search"]) => "search",
                ("POST", ["facet-search" | "similar"]) => "search",
                ("GET", ["settings"] | ["settings", _]) => "settings.get",
                ("PATCH" | "PUT" | "DELETE", ["settings"] | ["settings", _]) => "settings.update",
                _ => "*",
            };
            return rule_of(action, Some(uid));
        }
        _ => "*",
    };
    rule_of(action, None)
}

fn invalid_api_key() -> ApiError {
    ApiError::new(Code::InvalidApiKey, "The provided API key is invalid.")
}

fn missing_header() -> ApiError {
    ApiError::new(
        Code::MissingAuthorizationHeader,
        "The Authorization header is missing. It must use the bearer authorization method.",
    )
}

/// Decides who is asking and whether the route allows it.
///
/// # Errors
/// `missing_authorization_header` (401) without a header, `invalid_api_key` (403) for a wrong,
/// expired or insufficient secret.
pub fn authorize(
    keys: &KeyStore,
    rule: Option<&Rule>,
    authorization: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<Access, ApiError> {
    let Some(master_key) = keys.master_key() else {
        return Ok(Access::Open);
    };
    let Some(rule) = rule else {
        return Ok(Access::Open);
    };
    let value = authorization.ok_or_else(missing_header)?;
    let secret = value
        .strip_prefix(b"Bearer ")
        .map(<[u8]>::trim_ascii)
        .ok_or_else(invalid_api_key)?;
    // Constant-time comparisons: the time taken must not tell how many leading bytes match.
    if secret_eq(secret, master_key.as_bytes()) {
        return Ok(Access::Master);
    }
    let access = if let Some(key) = keys.by_value(secret) {
        if key.is_expired(now) {
            return Err(invalid_api_key());
        }
        Access::Key(Box::new(key))
    } else if rule.tenant && tenant::looks_like_jwt(secret) {
        let token = std::str::from_utf8(secret).map_err(|_| invalid_api_key())?;
        match tenant::verify(token, keys, now) {
            Ok(t) => Access::Tenant(Box::new(t)),
            Err(reason) => {
                tracing::debug!(?reason, "tenant token refused");
                return Err(invalid_api_key());
            }
        }
    } else {
        return Err(invalid_api_key());
    };
    let granted = match &access {
        Access::Key(key) => grants(&key.actions, rule.action),
        Access::Tenant(_) => rule.tenant,
        Access::Open | Access::Master => true,
    };
    if !granted {
        return Err(invalid_api_key());
    }
    if let Some(index) = &rule.index {
        access.check_index(index)?;
    }
    Ok(access)
}

/// Merges a forced filter with a requested one into the array form (outer items ANDed).
pub fn combine_filters(forced: &Value, requested: Option<&Value>) -> Value {
    fn items(v: &Value) -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            Value::String(s) if s.trim().is_empty() => Vec::new(),
            other => vec![other.clone()],
        }
    }
    let mut all = items(forced);
    if let Some(r) = requested {
        all.extend(items(r));
    }
    Value::Array(all)
}

fn filter_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::InvalidSearchFilter, message.to_string())
}

/// Renders a filter in array form as one string, each piece parenthesized. Sound only because
/// every string piece must parse on its own first.
///
/// # Errors
/// `invalid_search_filter` for a piece that does not parse alone.
pub fn filter_to_string(filter: &Value) -> Result<String, ApiError> {
    fn piece(v: &Value) -> Result<String, ApiError> {
        match v {
            Value::String(s) => {
                eddy_filter::parse(s).map_err(filter_error)?;
                Ok(format!("({s})"))
            }
            Value::Array(or) => {
                let parts = or.iter().map(piece).collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(" OR ")))
            }
            other => Err(filter_error(format!(
                "Invalid value type at `.filter`: expected a string or an array, but found `{other}`"
            ))),
        }
    }
    match filter {
        Value::Array(and) => Ok(and
            .iter()
            .map(piece)
            .collect::<Result<Vec<_>, _>>()?
            .join(" AND ")),
        other => piece(other),
    }
}

/// Rewrites a search request of a tenant token (or checks a restricted key's multi-search)
/// so the handler sees the forced filters and only reachable indexes.
async fn rewrite(
    state: &AppState,
    access: &Access,
    rule: &Rule,
    request: Request,
) -> Result<Request, ApiError> {
    let multi = rule.index.is_none();
    let tenant = matches!(access, Access::Tenant(_));
    if !multi && !tenant {
        return Ok(request);
    }
    if multi && access.all_indexes() {
        return Ok(request);
    }
    let index = rule.index.clone().unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::GET {
        // GET /indexes/{uid}/search: the filter is in the query string.
        let Some(forced) = access.forced_filter(&index) else {
            return Ok(Request::from_parts(parts, body));
        };
        let query = parts.uri.query().unwrap_or("");
        let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?;
        let requested = pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "filter")
            .map(|(_, v)| Value::String(v.clone()));
        pairs.retain(|(k, _)| k != "filter");
        let combined = filter_to_string(&combine_filters(&forced, requested.as_ref()))?;
        pairs.push(("filter".into(), combined));
        let query = serde_urlencoded::to_string(&pairs)
            .map_err(|e| ApiError::internal(format!("query string: {e}")))?;
        let uri = format!("{}?{query}", parts.uri.path());
        parts.uri = uri
            .parse()
            .map_err(|_| ApiError::internal("rewritten search URI does not parse"))?;
        return Ok(Request::from_parts(parts, body));
    }
    let bytes = crate::body::read(&parts.headers, body, state.config.payload_limit_bytes).await?;
    let mut value: Value = match crate::body::parse_json_bytes(&bytes) {
        Ok(v) => v,
        // Not JSON: the handler answers with the right error from the same bytes.
        Err(_) => return Ok(rebuild(parts, bytes)),
    };
    if multi {
        let Some(queries) = value.get_mut("queries").and_then(Value::as_array_mut) else {
            return Ok(rebuild(parts, bytes));
        };
        for query in queries {
            let Some(uid) = query.get("indexUid").and_then(Value::as_str) else {
                continue;
            };
            let uid = uid.to_string();
            access.check_index(&uid)?;
            merge_into(access, &uid, query);
        }
    } else {
        merge_into(access, &index, &mut value);
    }
    let bytes =
        serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("search body: {e}")))?;
    Ok(rebuild(parts, bytes))
}

fn merge_into(access: &Access, index: &str, query: &mut Value) {
    let Some(forced) = access.forced_filter(index) else {
        return;
    };
    if let Some(map) = query.as_object_mut() {
        let combined = combine_filters(&forced, map.get("filter"));
        map.insert("filter".into(), combined);
    }
}

/// A request with a new (decompressed) body.
fn rebuild(mut parts: axum::http::request::Parts, bytes: Vec<u8>) -> Request {
    parts.headers.remove(header::CONTENT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Request::from_parts(parts, Body::from(bytes))
}

/// Middleware applying [`rule`] and [`authorize`] to every request.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let rule = rule(request.method(), request.uri().path());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let access = match authorize(
        &state.keys,
        rule.as_ref(),
        authorization,
        OffsetDateTime::now_utc(),
    ) {
        Ok(access) => access,
        Err(e) => return e.into_response(),
    };
    let mut request = request;
    if let Some(rule) = rule.as_ref().filter(|r| r.tenant) {
        request = match rewrite(&state, &access, rule, request).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
    }
    request.extensions_mut().insert(access);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_known_route_has_its_action() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(rule(&get, "/health"), None);
        let r = rule(&post, "/indexes/movies/search").unwrap();
        assert_eq!(r.action, "search");
        assert_eq!(r.index.as_deref(), Some("movies"));
        assert!(r.tenant);
        let r = rule(&Method::PUT, "/indexes/mo%76ies/documents").unwrap();
        assert_eq!(
            (r.action, r.index.as_deref()),
            ("documents.add", Some("movies"))
        );
        assert!(!r.tenant);
        assert_eq!(rule(&get, "/tasks/3").unwrap().action, "tasks.get");
        assert_eq!(
            rule(&Method::DELETE, "/keys/x").unwrap().action,
            "keys.delete"
        );
        assert_eq!(rule(&get, "/unknown/route").unwrap().action, "*");
        assert_eq!(
            rule(&Method::PATCH, "/indexes/m/documents").unwrap().action,
            "*"
        );
    }

    #[test]
    fn filters_are_anded_and_cannot_escape() {
        let forced = json!("tenant = 1");
        assert_eq!(
            combine_filters(&forced, Some(&json!("genre = a OR genre = b"))),
            json!(["tenant = 1", "genre = a OR genre = b"])
        );
        assert_eq!(
            combine_filters(
                &json!(["tenant = 1", ["a = 1", "b = 2"]]),
                Some(&json!([["c = 1"], "d = 2"]))
            ),
            json!(["tenant = 1", ["a = 1", "b = 2"], ["c = 1"], "d = 2"])
        );
        assert_eq!(combine_filters(&forced, None), json!(["tenant = 1"]));
        assert_eq!(
            combine_filters(&forced, Some(&json!(""))),
            json!(["tenant = 1"])
        );
        assert_eq!(
            filter_to_string(&json!(["tenant = 1", ["a = 1", "b = 2"]])).unwrap(),
            "(tenant = 1) AND ((a = 1) OR (b = 2))"
        );
        // An injection attempt does not parse on its own, so it is refused, not spliced.
        let escape = combine_filters(&forced, Some(&json!("x = 1) OR (y = 2")));
        assert_eq!(
            filter_to_string(&escape).unwrap_err().body().code,
            "invalid_search_filter"
        );
    }
}
