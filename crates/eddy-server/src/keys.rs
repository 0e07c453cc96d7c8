//! API keys: what a key may do (actions × index patterns, expiry), how its secret value is
//! derived, and where keys live.
//!
//! A key's value is never stored: it is the hex HMAC-SHA256 of the key's uid keyed with the
//! master key, so it is stable for a given master key and changes for every key when the
//! master key does (which revokes them all). Keys are records of the metadata store
//! (`apikey:<uid>`), cached in memory; every comparison of a secret is constant-time and no
//! secret is ever logged (the types holding one do not print it in `Debug`).

use std::sync::{Mutex, RwLock};

use eddy_engine::task::format_time;
use eddy_engine::{Code, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::params;

/// Prefix of key records in the metadata store.
const PREFIX: &str = "apikey:";
/// Set once the default keys were made, so that deleting them does not bring them back.
const INITIALIZED: &str = "apikeys-initialized";

/// Every action a key can be granted: Meilisearch's list, with `*` and the `<group>.*`
/// wildcards.
pub const ACTIONS: &[&str] = &[
    "*",
    "search",
    "documents.*",
    "documents.add",
    "documents.get",
    "documents.delete",
    "indexes.*",
    "indexes.create",
    "indexes.get",
    "indexes.update",
    "indexes.delete",
    "indexes.swap",
    "tasks.*",
    "tasks.cancel",
    "tasks.delete",
    "tasks.get",
    "settings.*",
    "settings.get",
    "settings.update",
    "stats.*",
    "stats.get",
    "metrics.*",
    "metrics.get",
    "dumps.*",
    "dumps.create",
    "snapshots.*",
    "snapshots.create",
    "version",
    "keys.*",
    "keys.create",
    "keys.get",
    "keys.update",
    "keys.delete",
    "experimental.*",
    "experimental.get",
    "experimental.update",
    "webhooks.*",
    "webhooks.get",
    "webhooks.create",
    "webhooks.update",
    "webhooks.delete",
];

/// Whether a list of granted actions covers `needed` (`*`, the exact action, or its group's
/// `<group>.*`).
pub fn grants(granted: &[String], needed: &str) -> bool {
    granted.iter().any(|a| {
        a == "*"
            || a == needed
            || a.strip_suffix(".*").is_some_and(|group| {
                needed
                    .strip_prefix(group)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
    })
}

/// Whether an index pattern (`*`, `prefix*` or an exact uid) covers `index`.
pub fn pattern_matches(pattern: &str, index: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => index.starts_with(prefix),
        None => pattern == index,
    }
}

/// Whether any pattern of a list covers `index`.
pub fn any_pattern_matches(patterns: &[String], index: &str) -> bool {
    patterns.iter().any(|p| pattern_matches(p, index))
}

/// The value of the key `uid` under `master_key`: hex HMAC-SHA256(master key, uid).
pub fn derive_key(master_key: &str, uid: &str) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master_key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(uid.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two secrets (the length may leak, the content does not).
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// An API key as stored (never with its value).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// UUID v4, hyphenated.
    pub uid: String,
    /// Optional name.
    pub name: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// Granted actions.
    pub actions: Vec<String>,
    /// Index patterns.
    pub indexes: Vec<String>,
    /// Expiry, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last update time.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("actions", &self.actions)
            .field("indexes", &self.indexes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// The key as `/keys` shows it, with its value under `master_key`.
    pub fn to_json(&self, master_key: &str) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "key": derive_key(master_key, &self.uid),
            "uid": self.uid,
            "actions": self.actions,
            "indexes": self.indexes,
            "expiresAt": self.expires_at.map(format_time),
            "createdAt": format_time(self.created_at),
            "updatedAt": format_time(self.updated_at),
        })
    }
}

/// A random UUID v4, hyphenated.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether `s` is a hyphenated UUID (any version), lowercased or not.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

struct Entry {
    key: ApiKey,
    value: String,
}

/// Every API key, cached from the metadata store. Without a master key there are no key
/// values (and `/keys` answers `missing_master_key`).
pub struct KeyStore {
    master_key: Option<String>,
    entries: RwLock<Vec<Entry>>,
    /// Serializes writes so the cache and the store change in the same order.
    writes: Mutex<()>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

fn store_error(e: eddy_engine::Error) -> ApiError {
    ApiError::from(e)
}

impl KeyStore {
    /// Loads the keys, creating the default keys on a database that never had any.
    ///
    /// # Errors
    /// When the metadata store fails.
    pub fn open(engine: &Engine, master_key: Option<String>) -> Result<KeyStore, ApiError> {
        let meta = engine.meta();
        if meta
            .record::<bool>(INITIALIZED)
            .map_err(store_error)?
            .is_none()
        {
            let now = OffsetDateTime::now_utc();
            let defaults = [
                (
                    "Default Search API Key",
                    "Use it to search from the frontend",
                    "search",
                ),
                (
                    "Default Admin API Key",
                    "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend",
                    "*",
                ),
            ];
            for (name, description, action) in defaults {
                let key = ApiKey {
                    uid: new_uuid(),
                    name: Some(name.to_string()),
                    description: Some(description.to_string()),
                    actions: vec![action.to_string()],
                    indexes: vec!["*".to_string()],
                    expires_at: None,
                    created_at: now,
                    updated_at: now,
                };
                meta.put_record(&format!("{PREFIX}{}", key.uid), Some(&key))
                    .map_err(store_error)?;
            }
            meta.put_record(INITIALIZED, Some(&true))
                .map_err(store_error)?;
        }
        let keys = meta.records::<ApiKey>(PREFIX).map_err(store_error)?;
        let entries = keys
            .into_iter()
            .map(|(_, key)| Entry {
                value: master_key
                    .as_deref()
                    .map(|m| derive_key(m, &key.uid))
                    .unwrap_or_default(),
                key,
            })
            .collect();
        Ok(KeyStore {
            master_key,
            entries: RwLock::new(entries),
            writes: Mutex::new(()),
        })
    }

    /// The master key, if one is set.
    pub fn master_key(&self) -> Option<&str> {
        self.master_key.as_deref()
    }

    /// The master key, or `missing_master_key` (the `/keys` routes need one).
    ///
    /// # Errors
    /// `missing_master_key` when none is set.
    pub fn require_master_key(&self) -> Result<&str, ApiError> {
        self.master_key.as_deref().ok_or_else(|| {
            ApiError::new(
                Code::MissingMasterKey,
                "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.",
            )
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Entry>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key whose value is `secret`, compared in constant time against every key (so the
    /// time taken does not depend on which key, if any, matched).
    pub fn by_value(&self, secret: &[u8]) -> Option<ApiKey> {
        self.master_key.as_ref()?;
        let mut found = None;
        for entry in self.read().iter() {
            if secret_eq(entry.value.as_bytes(), secret) {
                found = Some(entry.key.clone());
            }
        }
        found
    }

    /// The key with this uid.
    pub fn by_uid(&self, uid: &str) -> Option<ApiKey> {
        self.read()
            .iter()
            .find(|e| e.key.uid.eq_ignore_ascii_case(uid))
            .map(|e| e.key.clone())
    }

    /// The key named by a `/keys/{key or uid}` path segment.
    pub fn by_uid_or_value(&self, text: &str) -> Option<ApiKey> {
        if is_uuid(text) {
            self.by_uid(text)
        } else {
            self.by_value(text.as_bytes())
        }
    }

    /// Every key, newest first.
    pub fn list(&self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = self.read().iter().map(|e| e.key.clone()).collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.uid.cmp(&b.uid)));
        keys
    }

    /// Stores a new or changed key (durably), then updates the cache.
    ///
    /// # Errors
    /// When the metadata store fails.
    pub fn put(&self, engine: &Engine, key: ApiKey) -> Result<(), ApiError> {
        let _guard = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        engine
            .meta()
            .put_record(&format!("{PREFIX}{}", key.uid), Some(&key))
            .map_err(store_error)?;
        let value = self
            .master_key
            .as_deref()
            .map(|m| derive_key(m, &key.uid))
            .unwrap_or_default();
        let mut entries = self.write();
        match entries.iter_mut().find(|e| e.key.uid == key.uid) {
            Some(e) => e.key = key,
            None => entries.push(Entry { key, value }),
        }
        Ok(())
    }

    /// Deletes a key (durably), then drops it from the cache.
    ///
    /// # Errors
    /// When the metadata store fails.
    pub fn delete(&self, engine: &Engine, uid: &str) -> Result<(), ApiError> {
        let _guard = self
            .writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        engine
            .meta()
            .put_record::<ApiKey>(&format!("{PREFIX}{uid}"), None)
            .map_err(store_error)?;
        self.write().retain(|e| e.key.uid != uid);
        Ok(())
    }
}

/// Fields of `POST /keys`.
const CREATE_FIELDS: [&str; 6] = [
    "description",
    "name",
    "uid",
    "actions",
    "indexes",
    "expiresAt",
];

fn optional_text(
    map: &Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<String>, ApiError> {
    params::string_field(map, name, code)
}

/// Parses an `expiresAt`: RFC 3339, `YYYY-MM-DDTHH:MM:SS` or `YYYY-MM-DD` (UTC), in the future.
fn expires_at(value: &Value, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, ApiError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        other => {
            return Err(params::wrong_type(
                Code::InvalidApiKeyExpiresAt,
                "expiresAt",
                "a string",
                other,
            ));
        }
    };
    let bad = || {
        ApiError::new(
            Code::InvalidApiKeyExpiresAt,
            format!(
                "Invalid value at `.expiresAt`: `{}` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'.",
                params::describe(value)
            ),
        )
    };
    use time::format_description::well_known::Rfc3339;
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let datetime =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let spaced =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let date = time::macros::format_description!("[year]-[month]-[day]");
        time::PrimitiveDateTime::parse(text, &datetime)
            .or_else(|_| time::PrimitiveDateTime::parse(text, &spaced))
            .map(time::PrimitiveDateTime::assume_utc)
            .ok()
            .or_else(|| {
                time::Date::parse(text, &date)
                    .ok()
                    .map(|d| d.with_time(time::Time::MIDNIGHT).assume_utc())
            })
    });
    match parsed {
        Some(t) if t > now => Ok(Some(t)),
        _ => Err(bad()),
    }
}

fn string_list(
    map: &Map<String, Value>,
    name: &str,
    invalid: Code,
    missing: Code,
) -> Result<Vec<String>, ApiError> {
    match map.get(name) {
        None => Err(ApiError::new(missing, format!("Missing field `{name}`"))),
        Some(_) => Ok(params::string_list_field(map, name, invalid)?.unwrap_or_default()),
    }
}

/// Validates a `POST /keys` body into a new key.
///
/// # Errors
/// `bad_request` for unknown fields, `missing_api_key_*` / `invalid_api_key_*` otherwise.
pub fn new_key(body: Value, now: OffsetDateTime) -> Result<ApiKey, ApiError> {
    let map = params::object(body, &CREATE_FIELDS)?;
    let name = optional_text(&map, "name", Code::InvalidApiKeyName)?;
    let description = optional_text(&map, "description", Code::InvalidApiKeyDescription)?;
    let uid = match map.get("uid") {
        None | Some(Value::Null) => new_uuid(),
        Some(Value::String(s)) if is_uuid(s) => s.to_ascii_lowercase(),
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidApiKeyUid,
                format!(
                    "Invalid value at `.uid`: invalid UUID: {}",
                    params::describe(other)
                ),
            ));
        }
    };
    let actions = string_list(
        &map,
        "actions",
        Code::InvalidApiKeyActions,
        Code::MissingApiKeyActions,
    )?;
    for (i, action) in actions.iter().enumerate() {
        if !ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::new(
                Code::InvalidApiKeyActions,
                format!(
                    "Unknown value `{action}` at `.actions[{i}]`: expected one of {}",
                    ACTIONS
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let indexes = string_list(
        &map,
        "indexes",
        Code::InvalidApiKeyIndexes,
        Code::MissingApiKeyIndexes,
    )?;
    for (i, pattern) in indexes.iter().enumerate() {
        let base = pattern.strip_suffix('*').unwrap_or(pattern);
        let valid = pattern == "*"
            || (!base.is_empty()
                && base.len() <= 400
                && base
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !valid {
            return Err(ApiError::new(
                Code::InvalidApiKeyIndexes,
                format!(
                    "Invalid value at `.indexes[{i}]`: `{pattern}` is not a valid index uid pattern. Index uid patterns can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), optionally followed by `*`, or `*` alone."
                ),
            ));
        }
    }
    let expires_at = match map.get("expiresAt") {
        None => {
            return Err(ApiError::new(
                Code::MissingApiKeyExpiresAt,
                "Missing field `expiresAt`",
            ));
        }
        Some(v) => expires_at(v, now)?,
    };
    Ok(ApiKey {
        uid,
        name,
        description,
        actions,
        indexes,
        expires_at,
        created_at: now,
        updated_at: now,
    })
}

/// Applies a `PATCH /keys/{key}` body: only `name` and `description` change.
///
/// # Errors
/// `immutable_api_key_*` for the other fields, `bad_request` for unknown ones.
pub fn patch_key(key: &mut ApiKey, body: Value, now: OffsetDateTime) -> Result<(), ApiError> {
    let map = match body {
        Value::Object(map) => map,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid value type: expected an object, but found {}",
                params::describe(&other)
            )));
        }
    };
    for (field, code) in [
        ("uid", Code::ImmutableApiKeyUid),
        ("key", Code::ImmutableApiKeyKey),
        ("actions", Code::ImmutableApiKeyActions),
        ("indexes", Code::ImmutableApiKeyIndexes),
        ("expiresAt", Code::ImmutableApiKeyExpiresAt),
        ("createdAt", Code::ImmutableApiKeyCreatedAt),
        ("updatedAt", Code::ImmutableApiKeyUpdatedAt),
    ] {
        if map.contains_key(field) {
            return Err(ApiError::new(
                code,
                format!("Immutable field `{field}`: expected one of `description`, `name`"),
            ));
        }
    }
    let map = params::object(Value::Object(map), &["name", "description"])?;
    if map.contains_key("name") {
        key.name = optional_text(&map, "name", Code::InvalidApiKeyName)?;
    }
    if map.contains_key("description") {
        key.description = optional_text(&map, "description", Code::InvalidApiKeyDescription)?;
    }
    key.updated_at = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_derivation_known_answer() {
        // HMAC-SHA256(key = "master-key-of-16-bytes", message = the uid), hex.
        // Computed independently (Python: hmac.new(k, uid, sha256).hexdigest()).
        assert_eq!(
            derive_key(
                "master-key-of-16-bytes",
                "76cf8b87-fd12-4688-ad34-260d930ca4f4"
            ),
            KNOWN_ANSWER
        );
        assert_ne!(
            derive_key("another-master-key", "76cf8b87-fd12-4688-ad34-260d930ca4f4"),
            KNOWN_ANSWER
        );
    }

    const KNOWN_ANSWER: &str = "3a76eac0eef0ac58e922cc1338b2e85058c45b72132f19431ce1b9f54d75aa59";

    #[test]
    fn actions_and_patterns() {
        let granted = vec!["documents.*".to_string(), "search".to_string()];
        assert!(grants(&granted, "documents.add"));
        assert!(grants(&granted, "search"));
        assert!(!grants(&granted, "documentsx.add"));
        assert!(!grants(&granted, "indexes.get"));
        assert!(grants(&["*".to_string()], "keys.get"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("movies*", "movies_fr"));
        assert!(pattern_matches("movies*", "movies"));
        assert!(!pattern_matches("movies*", "movie"));
        assert!(!pattern_matches("movies", "movies_fr"));
    }

    #[test]
    fn creation_is_validated() {
        let now = OffsetDateTime::now_utc();
        let ok = new_key(
            json!({"actions": ["search"], "indexes": ["movies*"], "expiresAt": null}),
            now,
        )
        .unwrap();
        assert!(is_uuid(&ok.uid));
        for (body, code) in [
            (
                json!({"indexes": ["*"], "expiresAt": null}),
                "missing_api_key_actions",
            ),
            (
                json!({"actions": ["search"], "expiresAt": null}),
                "missing_api_key_indexes",
            ),
            (
                json!({"actions": ["search"], "indexes": ["*"]}),
                "missing_api_key_expires_at",
            ),
            (
                json!({"actions": ["fly"], "indexes": ["*"], "expiresAt": null}),
                "invalid_api_key_actions",
            ),
            (
                json!({"actions": ["search"], "indexes": ["a b"], "expiresAt": null}),
                "invalid_api_key_indexes",
            ),
            (
                json!({"actions": ["search"], "indexes": ["*"], "expiresAt": "2001-01-01"}),
                "invalid_api_key_expires_at",
            ),
            (
                json!({"actions": ["search"], "indexes": ["*"], "expiresAt": "soon"}),
                "invalid_api_key_expires_at",
            ),
            (
                json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null, "uid": "x"}),
                "invalid_api_key_uid",
            ),
            (
                json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null, "key": "x"}),
                "bad_request",
            ),
        ] {
            let err = new_key(body.clone(), now).unwrap_err();
            assert_eq!(err.body().code, code, "{body}");
        }
        let later = new_key(
            json!({"actions": ["*"], "indexes": ["*"], "expiresAt": "2999-01-01T00:00:00Z"}),
            now,
        )
        .unwrap();
        assert!(!later.is_expired(now));
    }

    #[test]
    fn only_name_and_description_change() {
        let now = OffsetDateTime::now_utc();
        let mut key = new_key(
            json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
            now,
        )
        .unwrap();
        patch_key(&mut key, json!({"name": "n", "description": "d"}), now).unwrap();
        assert_eq!(key.name.as_deref(), Some("n"));
        for (body, code) in [
            (json!({"actions": ["*"]}), "immutable_api_key_actions"),
            (json!({"indexes": ["*"]}), "immutable_api_key_indexes"),
            (json!({"expiresAt": null}), "immutable_api_key_expires_at"),
            (json!({"uid": "x"}), "immutable_api_key_uid"),
            (json!({"key": "x"}), "immutable_api_key_key"),
            (json!({"other": 1}), "bad_request"),
        ] {
            let err = patch_key(&mut key, body.clone(), now).unwrap_err();
            assert_eq!(err.body().code, code, "{body}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let now = OffsetDateTime::now_utc();
        let key = new_key(
            json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
            now,
        )
        .unwrap();
        let value = derive_key("master-key-of-16-bytes", &key.uid);
        assert!(!format!("{key:?}").contains(&value));
    }
}
