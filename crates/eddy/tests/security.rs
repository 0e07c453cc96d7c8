//! Security of the real binary over HTTP: API keys, the authorization matrix (every route ×
//! every action × index patterns × key states), tenant tokens and their attacks, and hostile
//! input that must be refused with the documented error while the server keeps serving.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Resp, Server};
use eddy_server::keys::{ACTIONS, grants, pattern_matches};
use eddy_server::tenant::sign;
use serde_json::{Value, json};

const MASTER: &str = "master-key-of-16-bytes";

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// A request with an optional secret and an optional JSON body.
fn call(s: &Server, method: &str, path: &str, secret: Option<&str>, body: Option<&Value>) -> Resp {
    let auth = secret.map(bearer);
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let mut bytes = body.map(|b| b.to_string().into_bytes());
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    } else if matches!(method, "POST" | "PUT" | "PATCH") {
        bytes = Some(Vec::new());
    }
    s.request(method, path, &headers, bytes.as_deref())
}

fn master(s: &Server, method: &str, path: &str, body: Option<&Value>) -> Resp {
    call(s, method, path, Some(MASTER), body)
}

fn create_key(s: &Server, body: Value) -> Value {
    let r = master(s, "POST", "/keys", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn start() -> (Server, tempfile::TempDir) {
    Server::start(&["--master-key", MASTER])
}

fn seed(s: &Server) {
    for index in ["movies", "other"] {
        let docs = json!([{"id": 1, "title": "star wars", "tenant": "a"},
                          {"id": 2, "title": "star trek", "tenant": "b"}]);
        let r = master(
            s,
            "POST",
            &format!("/indexes/{index}/documents"),
            Some(&docs),
        );
        assert_eq!(r.status, 202, "{}", r.text);
    }
}

#[test]
fn keys_lifecycle_and_persistence() {
    let (mut s, _dir) = start();
    let list = master(&s, "GET", "/keys", None);
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["total"], 2);
    let names: Vec<&str> = list.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Default Search API Key"), "{names:?}");
    assert!(names.contains(&"Default Admin API Key"), "{names:?}");
    for k in list.body["results"].as_array().unwrap() {
        for field in [
            "uid",
            "key",
            "name",
            "description",
            "actions",
            "indexes",
            "expiresAt",
            "createdAt",
            "updatedAt",
        ] {
            assert!(k.get(field).is_some(), "{field} missing in {k}");
        }
    }

    // Known answer: the value of a key is hex HMAC-SHA256(master key, uid).
    let uid = "76cf8b87-fd12-4688-ad34-260d930ca4f4";
    let created = create_key(
        &s,
        json!({"uid": uid, "name": "ci", "actions": ["documents.*", "search"], "indexes": ["movies*"], "expiresAt": null}),
    );
    let value = "3a76eac0eef0ac58e922cc1338b2e85058c45b72132f19431ce1b9f54d75aa59";
    assert_eq!(created["key"], value);
    assert_eq!(created["uid"], uid);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    master(
        &s,
        "POST",
        "/keys",
        Some(&json!({"uid": uid, "actions": ["search"], "indexes": ["*"], "expiresAt": null})),
    )
    .assert_error(409, "api_key_already_exists");

    // By uid and by value.
    assert_eq!(
        master(&s, "GET", &format!("/keys/{uid}"), None).body["key"],
        value
    );
    assert_eq!(
        master(&s, "GET", &format!("/keys/{value}"), None).body["uid"],
        uid
    );
    master(
        &s,
        "GET",
        "/keys/00000000-0000-4000-8000-000000000000",
        None,
    )
    .assert_error(404, "api_key_not_found");

    // Only name and description change.
    let r = master(
        &s,
        "PATCH",
        &format!("/keys/{uid}"),
        Some(&json!({"name": "renamed", "description": "d"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["actions"], json!(["documents.*", "search"]));
    master(
        &s,
        "PATCH",
        &format!("/keys/{uid}"),
        Some(&json!({"actions": ["*"]})),
    )
    .assert_error(400, "immutable_api_key_actions");
    master(
        &s,
        "PATCH",
        &format!("/keys/{uid}"),
        Some(&json!({"indexes": ["*"]})),
    )
    .assert_error(400, "immutable_api_key_indexes");
    master(
        &s,
        "PATCH",
        &format!("/keys/{uid}"),
        Some(&json!({"expiresAt": null})),
    )
    .assert_error(400, "immutable_api_key_expires_at");
    master(
        &s,
        "POST",
        "/keys",
        Some(&json!({"actions": ["fly"], "indexes": ["*"], "expiresAt": null})),
    )
    .assert_error(400, "invalid_api_key_actions");
    master(
        &s,
        "POST",
        "/keys",
        Some(&json!({"actions": ["search"], "indexes": ["*"], "expiresAt": "2000-01-01"})),
    )
    .assert_error(400, "invalid_api_key_expires_at");

    // The key works, and survives a restart with the same value.
    let docs = json!([{"id": 1, "title": "x"}]);
    assert_eq!(
        call(
            &s,
            "POST",
            "/indexes/movies/documents",
            Some(value),
            Some(&docs)
        )
        .status,
        202
    );
    s.restart();
    assert!(!s.stderr().contains(value), "a key value reached the log");
    assert!(
        !s.stderr().contains(MASTER),
        "the master key reached the log"
    );
    let after = master(&s, "GET", &format!("/keys/{uid}"), None);
    assert_eq!(after.body["name"], "renamed");
    assert_eq!(after.body["key"], value);
    assert_eq!(
        call(&s, "GET", "/indexes/movies/documents/1", Some(value), None).status,
        200
    );
    assert_eq!(master(&s, "GET", "/keys", None).body["total"], 3);

    // Deleted: gone, refused, and still gone after a restart.
    assert_eq!(
        master(&s, "DELETE", &format!("/keys/{uid}"), None).status,
        204
    );
    call(&s, "GET", "/indexes/movies/documents/1", Some(value), None)
        .assert_error(403, "invalid_api_key");
    s.restart();
    master(&s, "GET", &format!("/keys/{uid}"), None).assert_error(404, "api_key_not_found");
    assert_eq!(master(&s, "GET", "/keys", None).body["total"], 2);
}

#[test]
fn keys_need_a_master_key_and_production_refuses_to_start_without_one() {
    let (s, _dir) = Server::start(&[]);
    // Development without a key: open, and said so at startup.
    assert_eq!(s.get("/indexes").status, 200);
    assert!(
        s.stderr().contains("no master key is set"),
        "{}",
        s.stderr()
    );
    s.get("/keys").assert_error(401, "missing_master_key");

    for key in [None, Some("fifteen-bytes!!")] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"));
        cmd.args(["serve", "--env", "production", "--http-addr", "127.0.0.1:0"])
            .arg("--db-path")
            .arg(dir.path().join("db"))
            .env_remove("MEILI_MASTER_KEY");
        if let Some(k) = key {
            cmd.args(["--master-key", k]);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("at least 16 bytes"), "{stderr}");
        if let Some(k) = key {
            assert!(!stderr.contains(k), "the key was printed: {stderr}");
        }
    }
}

/// One route of the matrix.
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    action: &'static str,
    index: Option<&'static str>,
}

fn routes(victim_key: &str) -> Vec<Route> {
    let mut out = Vec::new();
    let mut add = |method, path: String, body: Option<Value>, action, index| {
        out.push(Route {
            method,
            path,
            body,
            action,
            index,
        });
    };
    add("GET", "/version".into(), None, "version", None);
    add("GET", "/stats".into(), None, "stats.get", None);
    add("GET", "/indexes".into(), None, "indexes.get", None);
    add("GET", "/tasks".into(), None, "tasks.get", None);
    add("GET", "/tasks/0".into(), None, "tasks.get", None);
    add("GET", "/batches".into(), None, "tasks.get", None);
    add("GET", "/batches/0".into(), None, "tasks.get", None);
    add(
        "POST",
        "/tasks/cancel?uids=999999".into(),
        None,
        "tasks.cancel",
        None,
    );
    add(
        "DELETE",
        "/tasks?uids=999999".into(),
        None,
        "tasks.delete",
        None,
    );
    add("GET", "/keys".into(), None, "keys.get", None);
    add("GET", format!("/keys/{victim_key}"), None, "keys.get", None);
    add(
        "POST",
        "/keys".into(),
        Some(json!({"actions": ["search"], "indexes": ["*"]})),
        "keys.create",
        None,
    );
    add(
        "PATCH",
        format!("/keys/{victim_key}"),
        Some(json!({"name": "v"})),
        "keys.update",
        None,
    );
    add(
        "DELETE",
        "/keys/00000000-0000-4000-8000-000000000000".into(),
        None,
        "keys.delete",
        None,
    );
    add("GET", "/webhooks".into(), None, "webhooks.get", None);
    add(
        "POST",
        "/webhooks".into(),
        Some(json!({"url": "not a url"})),
        "webhooks.create",
        None,
    );
    add(
        "GET",
        "/experimental-features".into(),
        None,
        "experimental.get",
        None,
    );
    add(
        "PATCH",
        "/experimental-features".into(),
        Some(json!({})),
        "experimental.update",
        None,
    );
    for index in ["movies", "other"] {
        let i = Some(index);
        add(
            "POST",
            "/indexes".into(),
            Some(json!({"uid": format!("{index}_new")})),
            "indexes.create",
            Some(if index == "movies" {
                "movies_new"
            } else {
                "other_new"
            }),
        );
        add("GET", format!("/indexes/{index}"), None, "indexes.get", i);
        add(
            "PATCH",
            format!("/indexes/{index}"),
            Some(json!({})),
            "indexes.update",
            i,
        );
        add(
            "DELETE",
            format!("/indexes/{index}_gone"),
            None,
            "indexes.delete",
            Some(if index == "movies" {
                "movies_gone"
            } else {
                "other_gone"
            }),
        );
        add(
            "GET",
            format!("/indexes/{index}/stats"),
            None,
            "stats.get",
            i,
        );
        add(
            "GET",
            format!("/indexes/{index}/documents"),
            None,
            "documents.get",
            i,
        );
        add(
            "GET",
            format!("/indexes/{index}/documents/1"),
            None,
            "documents.get",
            i,
        );
        add(
            "POST",
            format!("/indexes/{index}/documents/fetch"),
            Some(json!({})),
            "documents.get",
            i,
        );
        add(
            "POST",
            format!("/indexes/{index}/documents"),
            Some(json!([{"id": 3, "title": "x"}])),
            "documents.add",
            i,
        );
        add(
            "PUT",
            format!("/indexes/{index}/documents"),
            Some(json!([{"id": 3, "year": 1}])),
            "documents.add",
            i,
        );
        add(
            "DELETE",
            format!("/indexes/{index}/documents/3"),
            None,
            "documents.delete",
            i,
        );
        add(
            "POST",
            format!("/indexes/{index}/documents/delete-batch"),
            Some(json!([4])),
            "documents.delete",
            i,
        );
        add(
            "GET",
            format!("/indexes/{index}/search?q=star"),
            None,
            "search",
            i,
        );
        add(
            "POST",
            format!("/indexes/{index}/search"),
            Some(json!({"q": "star"})),
            "search",
            i,
        );
        add(
            "GET",
            format!("/indexes/{index}/settings"),
            None,
            "settings.get",
            i,
        );
        add(
            "PATCH",
            format!("/indexes/{index}/settings"),
            Some(json!({})),
            "settings.update",
            i,
        );
    }
    out
}

/// The model: does a key with these actions and indexes pass this route?
fn allowed(actions: &[String], indexes: &[String], route: &Route) -> bool {
    grants(actions, route.action)
        && route
            .index
            .is_none_or(|i| indexes.iter().any(|p| pattern_matches(p, i)))
}

fn assert_allowed(r: &Resp, what: &str) {
    assert!(
        r.status != 401 && r.status != 403,
        "{what}: {} {}",
        r.status,
        r.text
    );
    assert!(r.status != 500, "{what}: {}", r.text);
}

#[test]
fn authorization_matrix() {
    let (s, _dir) = start();
    seed(&s);
    let victim = create_key(
        &s,
        json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
    );
    let victim_uid = victim["uid"].as_str().unwrap().to_string();
    let routes = routes(&victim_uid);
    let patterns: [&[&str]; 3] = [&["*"], &["movies*"], &["other"]];
    let mut cases = 0;
    // Valid keys: every action × every index pattern.
    for action in ACTIONS {
        for pattern in patterns {
            let key = create_key(
                &s,
                json!({"actions": [action], "indexes": pattern, "expiresAt": null}),
            );
            let secret = key["key"].as_str().unwrap();
            let actions = vec![action.to_string()];
            let indexes: Vec<String> = pattern.iter().map(|p| p.to_string()).collect();
            for route in &routes {
                let r = call(
                    &s,
                    route.method,
                    &route.path,
                    Some(secret),
                    route.body.as_ref(),
                );
                let what = format!(
                    "{} {} with {action} on {pattern:?}",
                    route.method, route.path
                );
                if allowed(&actions, &indexes, route) {
                    assert_allowed(&r, &what);
                } else {
                    r.assert_error(403, "invalid_api_key");
                }
                cases += 1;
            }
        }
    }
    // Other key states on every route: the master key passes; a missing header is 401; a
    // wrong, expired or deleted key, or a tenant token off the search routes, is 403.
    let expiring = create_key(
        &s,
        json!({"actions": ["*"], "indexes": ["*"], "expiresAt": (time_in(2))}),
    );
    let deleted = create_key(
        &s,
        json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null}),
    );
    assert_eq!(
        master(
            &s,
            "DELETE",
            &format!("/keys/{}", deleted["uid"].as_str().unwrap()),
            None
        )
        .status,
        204
    );
    let search_key = create_key(
        &s,
        json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
    );
    let token = sign(
        "HS256",
        search_key["key"].as_str().unwrap(),
        &json!({"apiKeyUid": search_key["uid"], "searchRules": ["movies"]}),
    );
    // Wait until the expiring key has expired (its expiry is two seconds away).
    std::thread::sleep(Duration::from_millis(2500));
    let wrong = "0".repeat(64);
    for route in &routes {
        let what = format!("{} {}", route.method, route.path);
        assert_allowed(
            &call(
                &s,
                route.method,
                &route.path,
                Some(MASTER),
                route.body.as_ref(),
            ),
            &what,
        );
        call(&s, route.method, &route.path, None, route.body.as_ref())
            .assert_error(401, "missing_authorization_header");
        for secret in [
            wrong.as_str(),
            expiring["key"].as_str().unwrap(),
            deleted["key"].as_str().unwrap(),
            &MASTER[1..],
            "",
        ] {
            call(
                &s,
                route.method,
                &route.path,
                Some(secret),
                route.body.as_ref(),
            )
            .assert_error(403, "invalid_api_key");
        }
        let r = call(
            &s,
            route.method,
            &route.path,
            Some(&token),
            route.body.as_ref(),
        );
        if route.action == "search" && route.index == Some("movies") {
            assert_eq!(r.status, 200, "{what}: {}", r.text);
        } else {
            r.assert_error(403, "invalid_api_key");
        }
        cases += 8;
    }
    assert!(cases > 5000, "only {cases} cases");
    // /health stays public.
    assert_eq!(s.get("/health").status, 200);
    assert!(!s.stderr().contains("panicked"), "{}", s.stderr());
}

/// RFC 3339, `secs` from now.
fn time_in(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[test]
fn restricted_keys_see_only_their_indexes_tasks_and_stats() {
    let (s, _dir) = start();
    seed(&s);
    let key = create_key(
        &s,
        json!({"actions": ["*"], "indexes": ["movies*"], "expiresAt": null}),
    );
    let k = key["key"].as_str().unwrap();
    let indexes = call(&s, "GET", "/indexes", Some(k), None).body;
    assert_eq!(indexes["total"], 1, "{indexes}");
    assert_eq!(indexes["results"][0]["uid"], "movies");
    let stats = call(&s, "GET", "/stats", Some(k), None).body;
    assert!(
        stats["indexes"].get("movies").is_some() && stats["indexes"].get("other").is_none(),
        "{stats}"
    );
    let tasks = call(&s, "GET", "/tasks?limit=100", Some(k), None).body;
    let seen: Vec<&str> = tasks["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["indexUid"].as_str().unwrap_or("-"))
        .collect();
    assert!(
        !seen.is_empty() && seen.iter().all(|i| *i == "movies"),
        "{seen:?}"
    );
    assert_eq!(tasks["total"], seen.len());
    // A task of `other` looks like no task at all.
    let all = master(&s, "GET", "/tasks?indexUids=other", None).body;
    let other_task = all["results"][0]["uid"].as_u64().unwrap();
    call(&s, "GET", &format!("/tasks/{other_task}"), Some(k), None)
        .assert_error(404, "task_not_found");
    call(&s, "GET", &format!("/batches/{other_task}"), Some(k), None)
        .assert_error(404, "batch_not_found");
    // Asking for the other index's tasks explicitly finds nothing either.
    assert_eq!(
        call(&s, "GET", "/tasks?indexUids=other", Some(k), None).body["total"],
        0
    );
    // Deleting tasks by filter only reaches the key's indexes.
    let r = call(&s, "DELETE", "/tasks?statuses=succeeded", Some(k), None);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        master(&s, "GET", &format!("/tasks/{other_task}"), None).status,
        200
    );
    // Creating an index outside the patterns is refused (the uid is in the body).
    call(
        &s,
        "POST",
        "/indexes",
        Some(k),
        Some(&json!({"uid": "other2"})),
    )
    .assert_error(403, "invalid_api_key");
    assert_eq!(
        call(
            &s,
            "POST",
            "/indexes",
            Some(k),
            Some(&json!({"uid": "movies2"}))
        )
        .status,
        202
    );
}

fn search_with(s: &Server, token: &str, index: &str, body: Value) -> Resp {
    call(
        s,
        "POST",
        &format!("/indexes/{index}/search"),
        Some(token),
        Some(&body),
    )
}

#[test]
fn tenant_token_attacks() {
    let (s, _dir) = start();
    seed(&s);
    let parent = create_key(
        &s,
        json!({"actions": ["search"], "indexes": ["movies", "other"], "expiresAt": null}),
    );
    let uid = parent["uid"].as_str().unwrap();
    let secret = parent["key"].as_str().unwrap();
    let rules = json!({"apiKeyUid": uid, "searchRules": {"movies": null}});

    for alg in ["HS256", "HS384", "HS512"] {
        let t = sign(alg, secret, &rules);
        assert_eq!(
            search_with(&s, &t, "movies", json!({"q": "star"})).status,
            200,
            "{alg}"
        );
        // GET search too.
        assert_eq!(
            call(&s, "GET", "/indexes/movies/search?q=star", Some(&t), None).status,
            200
        );
    }
    let good = sign("HS256", secret, &rules);
    // searchRules escaping to another index, even one the parent key covers.
    search_with(&s, &good, "other", json!({"q": "star"})).assert_error(403, "invalid_api_key");
    // Not a search route.
    call(&s, "GET", "/indexes/movies/documents", Some(&good), None)
        .assert_error(403, "invalid_api_key");
    call(&s, "GET", "/indexes/movies", Some(&good), None).assert_error(403, "invalid_api_key");

    // Tampered payload: the signature of the original claims with wider claims.
    let wide = sign(
        "HS256",
        secret,
        &json!({"apiKeyUid": uid, "searchRules": ["*"]}),
    );
    let mut parts: Vec<&str> = good.split('.').collect();
    let wide_payload = wide.split('.').nth(1).unwrap();
    parts[1] = wide_payload;
    let tampered = parts.join(".");
    search_with(&s, &tampered, "other", json!({})).assert_error(403, "invalid_api_key");
    search_with(&s, &tampered, "movies", json!({})).assert_error(403, "invalid_api_key");

    // alg: none, with and without a signature.
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&rules)
    );
    search_with(&s, &none, "movies", json!({})).assert_error(403, "invalid_api_key");
    let none_signed = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "none"})),
        b64(&rules),
        good.split('.').nth(2).unwrap()
    );
    search_with(&s, &none_signed, "movies", json!({})).assert_error(403, "invalid_api_key");
    // Other algorithms than HMAC are refused even with an HMAC signature.
    let rs = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256"})),
        b64(&rules),
        good.split('.').nth(2).unwrap()
    );
    search_with(&s, &rs, "movies", json!({})).assert_error(403, "invalid_api_key");
    // Signed with the master key instead of the key's value.
    let with_master = sign("HS256", MASTER, &rules);
    search_with(&s, &with_master, "movies", json!({})).assert_error(403, "invalid_api_key");
    // Expired.
    let expired = sign(
        "HS256",
        secret,
        &json!({"apiKeyUid": uid, "searchRules": ["movies"], "exp": 1_000_000_000}),
    );
    search_with(&s, &expired, "movies", json!({})).assert_error(403, "invalid_api_key");
    let future = sign(
        "HS256",
        secret,
        &json!({"apiKeyUid": uid, "searchRules": ["movies"], "exp": 4_000_000_000u64}),
    );
    assert_eq!(search_with(&s, &future, "movies", json!({})).status, 200);
    // Unknown apiKeyUid, missing searchRules.
    let unknown = sign(
        "HS256",
        secret,
        &json!({"apiKeyUid": "00000000-0000-4000-8000-000000000000", "searchRules": ["*"]}),
    );
    search_with(&s, &unknown, "movies", json!({})).assert_error(403, "invalid_api_key");
    let no_rules = sign("HS256", secret, &json!({"apiKeyUid": uid}));
    search_with(&s, &no_rules, "movies", json!({})).assert_error(403, "invalid_api_key");
    // A parent key that may not search, or not this index.
    let no_search = create_key(
        &s,
        json!({"actions": ["documents.get"], "indexes": ["*"], "expiresAt": null}),
    );
    let t = sign(
        "HS256",
        no_search["key"].as_str().unwrap(),
        &json!({"apiKeyUid": no_search["uid"], "searchRules": ["*"]}),
    );
    search_with(&s, &t, "movies", json!({})).assert_error(403, "invalid_api_key");
    let narrow = create_key(
        &s,
        json!({"actions": ["search"], "indexes": ["other"], "expiresAt": null}),
    );
    let t = sign(
        "HS256",
        narrow["key"].as_str().unwrap(),
        &json!({"apiKeyUid": narrow["uid"], "searchRules": ["*"]}),
    );
    search_with(&s, &t, "movies", json!({})).assert_error(403, "invalid_api_key");
    assert_eq!(search_with(&s, &t, "other", json!({})).status, 200);
    // Deleting the parent key revokes its tokens.
    assert_eq!(
        master(&s, "DELETE", &format!("/keys/{uid}"), None).status,
        204
    );
    search_with(&s, &good, "movies", json!({})).assert_error(403, "invalid_api_key");
}

/// Forced filters: until the engine filters (issue 5), a filtered search is refused and a
/// token with a filter must fail closed (never answer unfiltered hits); once it filters, the
/// token's filter holds whatever the request's filter says.
#[test]
fn tenant_filters_are_anded_with_the_request_filter() {
    let (s, _dir) = start();
    seed(&s);
    let r = master(
        &s,
        "PATCH",
        "/indexes/movies/settings",
        Some(&json!({"filterableAttributes": ["tenant", "title"]})),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let parent = create_key(
        &s,
        json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
    );
    let token = sign(
        "HS256",
        parent["key"].as_str().unwrap(),
        &json!({"apiKeyUid": parent["uid"], "searchRules": {"movies": {"filter": "tenant = a"}}}),
    );
    let filtering = master(
        &s,
        "POST",
        "/indexes/movies/search",
        Some(&json!({"filter": "tenant = a"})),
    );
    let attacks = [
        json!({"q": "star"}),
        json!({"q": "star", "filter": "tenant = b"}),
        json!({"q": "star", "filter": "tenant = b OR tenant = a"}),
        json!({"q": "star", "filter": ["tenant = b", ["tenant = a", "tenant = b"]]}),
        json!({"q": "star", "filter": "tenant = b) OR (tenant = b"}),
        json!({"q": "star", "filter": "NOT tenant = a"}),
    ];
    for body in &attacks {
        let r = search_with(&s, &token, "movies", body.clone());
        if filtering.status == 200 {
            // Every hit satisfies the forced filter.
            if r.status == 200 {
                for hit in r.body["hits"].as_array().unwrap() {
                    assert_eq!(hit["tenant"], "a", "{body} → {}", r.text);
                }
            } else {
                r.assert_error(400, "invalid_search_filter");
            }
        } else {
            r.assert_error(400, "invalid_search_filter");
        }
    }
    // GET: the filter string cannot be spliced into the forced one.
    let r = call(
        &s,
        "GET",
        "/indexes/movies/search?q=star&filter=tenant%20%3D%20b)%20OR%20(tenant%20%3D%20b",
        Some(&token),
        None,
    );
    r.assert_error(400, "invalid_search_filter");
    let r = call(
        &s,
        "GET",
        "/indexes/movies/search?q=star&filter=tenant%20%3D%20b",
        Some(&token),
        None,
    );
    if r.status == 200 {
        assert!(r.body["hits"].as_array().unwrap().is_empty(), "{}", r.text);
    } else {
        r.assert_error(400, "invalid_search_filter");
    }
}

fn raw_send(s: &Server, bytes: &[u8]) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    tcp.write_all(bytes)?;
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn hostile_payloads_get_the_documented_error_and_the_server_keeps_serving() {
    let (s, _dir) = Server::start(&[
        "--master-key",
        MASTER,
        "--http-payload-size-limit",
        "1MB",
        "--http-read-timeout-ms",
        "500",
    ]);
    seed(&s);
    let auth = bearer(MASTER);
    let post = |path: &str, ctype: &str, body: &[u8]| {
        s.request(
            "POST",
            path,
            &[("Authorization", &auth), ("Content-Type", ctype)],
            Some(body),
        )
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // Nesting: 129 levels is too deep everywhere a JSON body is read; 100 is fine.
    post(
        "/indexes/movies/documents",
        "application/json",
        format!("[{{\"id\":9,\"a\":{}}}]", deep(128)).as_bytes(),
    )
    .assert_error(400, "malformed_payload");
    post(
        "/indexes/movies/documents",
        "application/x-ndjson",
        format!("{{\"id\":9,\"a\":{}}}\n", deep(200)).as_bytes(),
    )
    .assert_error(400, "malformed_payload");
    post(
        "/indexes/movies/search",
        "application/json",
        format!("{{\"q\":{}}}", deep(129)).as_bytes(),
    )
    .assert_error(400, "malformed_payload");
    post(
        "/keys",
        "application/json",
        format!("{{\"actions\":{}}}", deep(500)).as_bytes(),
    )
    .assert_error(400, "malformed_payload");
    assert_eq!(
        post(
            "/indexes/movies/documents",
            "application/json",
            format!("[{{\"id\":9,\"a\":{}}}]", deep(100)).as_bytes()
        )
        .status,
        202
    );
    // Invalid UTF-8, huge numbers, duplicate keys.
    post(
        "/indexes/movies/documents",
        "application/json",
        b"[{\"id\":10,\"t\":\"\xff\xfe\"}]",
    )
    .assert_error(400, "malformed_payload");
    post(
        "/indexes/movies/search",
        "application/json",
        b"{\"q\":\"\xc3\x28\"}",
    )
    .assert_error(400, "malformed_payload");
    post("/indexes/movies/documents", "text/csv", b"id,t\n11,\xff\n")
        .assert_error(400, "malformed_payload");
    post(
        "/indexes/movies/search",
        "application/json",
        br#"{"limit": 1e400}"#,
    )
    .assert_error(400, "malformed_payload");
    post(
        "/indexes/movies/search",
        "application/json",
        br#"{"limit": 18446744073709551616}"#,
    )
    .assert_error(400, "invalid_search_limit");
    post(
        "/indexes/movies/documents",
        "application/json",
        br#"[{"id": 12, "n": 1e999}]"#,
    )
    .assert_error(400, "malformed_payload");
    let r = post(
        "/indexes/movies/documents",
        "application/json",
        br#"[{"id": 13, "t": "first", "t": "last"}]"#,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let doc = call(
        &s,
        "GET",
        "/indexes/movies/documents/13",
        Some(MASTER),
        None,
    );
    assert_eq!(doc.body["t"], "last", "duplicate keys: the last one wins");
    // A huge limit is bounded by maxTotalHits; a long query string is fine.
    let r = post(
        "/indexes/movies/search",
        "application/json",
        br#"{"q": "star", "limit": 9007199254740991}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let long_q = json!({"q": "star ".repeat(50_000)});
    assert_eq!(
        post(
            "/indexes/movies/search",
            "application/json",
            long_q.to_string().as_bytes()
        )
        .status,
        200
    );
    let long_word = json!({"q": "a".repeat(500_000)});
    assert_eq!(
        post(
            "/indexes/movies/search",
            "application/json",
            long_word.to_string().as_bytes()
        )
        .status,
        200
    );
    // Invalid ids and uids.
    post(
        "/indexes/movies/documents",
        "application/json",
        br#"[{"id": "a b"}]"#,
    );
    post(
        &format!("/indexes/{}/documents", "x".repeat(401)),
        "application/json",
        br#"[{"id": 1}]"#,
    )
    .assert_error(400, "invalid_index_uid");
    // Filter nesting is capped by the filter parser (never a stack overflow).
    let deep_filter = json!({"filter": format!("{}a = 1{}", "(".repeat(5000), ")".repeat(5000))});
    let r = post(
        "/indexes/movies/search",
        "application/json",
        deep_filter.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    // Compressed bombs in every encoding are cut at the limit.
    let bomb_src = vec![b' '; 50 << 20];
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&bomb_src).unwrap();
        e.finish().unwrap()
    };
    let zlib = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&bomb_src).unwrap();
        e.finish().unwrap()
    };
    let br = {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
            w.write_all(&bomb_src).unwrap();
        }
        out
    };
    for (encoding, body) in [("gzip", &gz), ("deflate", &zlib), ("br", &br)] {
        assert!(
            body.len() < 1_000_000,
            "{encoding} bomb is {} bytes",
            body.len()
        );
        for path in ["/indexes/movies/documents", "/indexes/movies/search"] {
            s.request(
                "POST",
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", encoding),
                ],
                Some(body),
            )
            .assert_error(413, "payload_too_large");
        }
    }
    // Headers that never finish, and a body that stalls: dropped after the read timeout.
    let answer = raw_send(&s, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let stalled = raw_send(
        &s,
        format!("POST /indexes/movies/documents HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"id\":").as_bytes(),
    )
    .unwrap();
    assert!(
        stalled.is_empty() || stalled.starts_with("HTTP/1.1 400"),
        "{stalled}"
    );
    // Garbage on the wire.
    let garbage = raw_send(&s, b"\x00\x01\x02 nonsense\r\n\r\n").unwrap();
    assert!(!garbage.starts_with("HTTP/1.1 200"), "{garbage}");

    // Still serving, nothing panicked, nothing half-written.
    assert_eq!(s.get("/health").status, 200);
    let stats = call(&s, "GET", "/indexes/movies/stats", Some(MASTER), None);
    assert_eq!(stats.body["numberOfDocuments"], 4, "{}", stats.text);
    assert!(!s.stderr().contains("panicked"), "{}", s.stderr());
}
