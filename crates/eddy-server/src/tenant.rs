//! Tenant tokens: JWTs signed (HS256, HS384 or HS512) with the value of an API key, whose
//! `searchRules` restrict which indexes a search may reach and force a filter on each.
//!
//! Verification order matters: the header must name an HMAC algorithm (never `none`, never an
//! asymmetric one), the unverified payload only names the parent key (`apiKeyUid`), the
//! signature is checked in constant time with that key's value, and only then are the claims
//! trusted (`exp`, `searchRules`). The HMAC comes from RustCrypto (`hmac`, `sha2`); the
//! format around it is three base64url segments, which is all a JWS in compact form is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};
use time::OffsetDateTime;

use crate::keys::{ApiKey, KeyStore, grants, pattern_matches};

/// Longest token accepted, in bytes (a token travels in a header; this bounds the work).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token is refused. Every reason answers `403 invalid_api_key`; the reason is only for
/// logs at debug level and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url segments of JSON.
    Malformed,
    /// `alg` is not HS256, HS384 or HS512.
    Algorithm,
    /// `apiKeyUid` is missing or names no key.
    UnknownKey,
    /// The signature does not match the parent key's value.
    Signature,
    /// `exp` is in the past (or not a number).
    Expired,
    /// The parent key expired.
    KeyExpired,
    /// The parent key may not search.
    NoSearchAction,
    /// `searchRules` is missing or of the wrong shape.
    Rules,
}

/// What a token's `searchRules` allow: index patterns, each with an optional forced filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRules {
    rules: Vec<(String, Option<Value>)>,
}

impl SearchRules {
    /// Parses `searchRules`: a list of index patterns, or a map from pattern to `null` or
    /// `{"filter": …}` (a string or an array).
    ///
    /// # Errors
    /// [`TokenError::Rules`] for any other shape.
    pub fn parse(value: &Value) -> Result<SearchRules, TokenError> {
        let mut rules = Vec::new();
        match value {
            Value::Array(items) => {
                for item in items {
                    let Value::String(pattern) = item else {
                        return Err(TokenError::Rules);
                    };
                    rules.push((pattern.clone(), None));
                }
            }
            Value::Object(map) => {
                for (pattern, rule) in map {
                    let filter = match rule {
                        Value::Null => None,
                        Value::Object(o) => match o.get("filter") {
                            None | Some(Value::Null) => None,
                            Some(f @ (Value::String(_) | Value::Array(_))) => Some(f.clone()),
                            Some(_) => return Err(TokenError::Rules),
                        },
                        _ => return Err(TokenError::Rules),
                    };
                    rules.push((pattern.clone(), filter));
                }
            }
            _ => return Err(TokenError::Rules),
        }
        Ok(SearchRules { rules })
    }

    /// The rule for `index`: `None` when the token does not reach it, else the forced filter
    /// (if any). An exact uid wins over patterns, and a longer pattern over a shorter one.
    pub fn rule_for(&self, index: &str) -> Option<Option<&Value>> {
        self.rules
            .iter()
            .filter(|(pattern, _)| pattern_matches(pattern, index))
            .max_by_key(|(pattern, _)| (pattern == index, pattern.len()))
            .map(|(_, filter)| filter.as_ref())
    }
}

/// A verified tenant token.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The key that signed it.
    pub key: ApiKey,
    /// What it may search.
    pub rules: SearchRules,
}

impl Tenant {
    /// Whether the token may search `index`: the parent key covers it and a rule reaches it.
    pub fn may_search(&self, index: &str) -> bool {
        crate::keys::any_pattern_matches(&self.key.indexes, index)
            && self.rules.rule_for(index).is_some()
    }
}

/// Whether a bearer value looks like a JWT (three dot-separated segments).
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|b| **b == b'.').count() == 2
}

fn decode_json(segment: &str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

fn signature_ok(alg: &str, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    macro_rules! verify {
        ($hash:ty) => {{
            match <Hmac<$hash> as Mac>::new_from_slice(secret) {
                Ok(mut mac) => {
                    mac.update(message);
                    // `verify_slice` compares in constant time.
                    mac.verify_slice(signature).is_ok()
                }
                Err(_) => false,
            }
        }};
    }
    match alg {
        "HS256" => verify!(Sha256),
        "HS384" => verify!(Sha384),
        "HS512" => verify!(Sha512),
        _ => false,
    }
}

/// Verifies a tenant token against the key store at `now`.
///
/// # Errors
/// The first [`TokenError`] met.
pub fn verify(token: &str, keys: &KeyStore, now: OffsetDateTime) -> Result<Tenant, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = decode_json(header)?;
    let alg = header_json
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Algorithm)?;
    if !matches!(alg, "HS256" | "HS384" | "HS512") {
        return Err(TokenError::Algorithm);
    }
    let claims = decode_json(payload)?;
    let uid = claims
        .get("apiKeyUid")
        .and_then(Value::as_str)
        .ok_or(TokenError::UnknownKey)?;
    let key = keys.by_uid(uid).ok_or(TokenError::UnknownKey)?;
    let master = keys.master_key().ok_or(TokenError::UnknownKey)?;
    let secret = crate::keys::derive_key(master, &key.uid);
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
    if !signature_ok(alg, secret.as_bytes(), signed, &signature) {
        return Err(TokenError::Signature);
    }
    // From here on the claims are the parent key holder's.
    match claims.get("exp") {
        None | Some(Value::Null) => {}
        Some(exp) => {
            let exp = exp.as_i64().ok_or(TokenError::Expired)?;
            if exp <= now.unix_timestamp() {
                return Err(TokenError::Expired);
            }
        }
    }
    if key.is_expired(now) {
        return Err(TokenError::KeyExpired);
    }
    if !grants(&key.actions, "search") {
        return Err(TokenError::NoSearchAction);
    }
    let rules = SearchRules::parse(claims.get("searchRules").ok_or(TokenError::Rules)?)?;
    Ok(Tenant { key, rules })
}

/// Signs claims as a tenant token (used by tests and benchmarks; clients sign their own).
pub fn sign(alg: &str, secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{payload}");
    macro_rules! mac {
        ($hash:ty) => {{
            let mut mac = <Hmac<$hash> as Mac>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(message.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }};
    }
    let signature = match alg {
        "HS384" => mac!(Sha384),
        "HS512" => mac!(Sha512),
        _ => mac!(Sha256),
    };
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_pick_the_most_specific_pattern() {
        let rules = SearchRules::parse(&json!({
            "*": null,
            "movies*": {"filter": "genre = comedy"},
            "movies_fr": {"filter": ["lang = fr"]},
        }))
        .unwrap();
        assert_eq!(rules.rule_for("songs"), Some(None));
        assert_eq!(
            rules.rule_for("movies_en"),
            Some(Some(&json!("genre = comedy")))
        );
        assert_eq!(
            rules.rule_for("movies_fr"),
            Some(Some(&json!(["lang = fr"])))
        );
        let list = SearchRules::parse(&json!(["movies"])).unwrap();
        assert_eq!(list.rule_for("movies"), Some(None));
        assert_eq!(list.rule_for("movies2"), None);
        for bad in [
            json!("movies"),
            json!([1]),
            json!({"m": 1}),
            json!({"m": {"filter": 3}}),
        ] {
            assert_eq!(SearchRules::parse(&bad), Err(TokenError::Rules), "{bad}");
        }
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt(b"a.b.c"));
        assert!(!looks_like_jwt(b"abcdef0123"));
        let t = sign("HS256", "secret", &json!({"a": 1}));
        assert!(looks_like_jwt(t.as_bytes()));
        let (message, sig) = t.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert!(signature_ok("HS256", b"secret", message.as_bytes(), &sig));
        assert!(!signature_ok("HS256", b"other", message.as_bytes(), &sig));
        assert!(!signature_ok("none", b"secret", message.as_bytes(), &sig));
        assert!(!signature_ok("HS512", b"secret", message.as_bytes(), &sig));
    }
}
