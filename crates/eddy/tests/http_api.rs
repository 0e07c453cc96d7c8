//! The HTTP API of the real binary, route by route: shapes, status codes, error objects.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::{Server, data};
use serde_json::{Value, json};

fn movies() -> Vec<u8> {
    std::fs::read(data("meilisearch/small_movies.json")).expect("movies")
}

fn task(s: &Server, uid: u64) -> Value {
    let r = s.get(&format!("/tasks/{uid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Asserts the task is already finished with `status` when first asked.
fn assert_task(s: &Server, uid: u64, status: &str) -> Value {
    let t = task(s, uid);
    assert_eq!(t["status"], status, "{t}");
    for k in ["enqueuedAt", "startedAt", "finishedAt"] {
        let ts = t[k].as_str().expect("timestamp");
        assert!(ts.ends_with('Z') && ts.contains('.'), "{k} = {ts}");
    }
    assert!(
        t["duration"].as_str().is_some_and(|d| d.starts_with("PT")),
        "{t}"
    );
    t
}

fn count(s: &Server, index: &str) -> u64 {
    let r = s.get(&format!("/indexes/{index}/stats"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["numberOfDocuments"].as_u64().expect("count")
}

#[test]
fn meta_routes_and_index_lifecycle() {
    let (s, _dir) = Server::start(&[]);
    assert_eq!(s.get("/health").body, json!({"status": "available"}));
    let v = s.get("/version").body;
    assert!(
        v["pkgVersion"].is_string() && v["commitSha"].is_string(),
        "{v}"
    );

    let created = s.post_json("/indexes", &json!({"uid": "books", "primaryKey": "isbn"}));
    let t = assert_task(&s, created.task_uid(), "succeeded");
    assert_eq!(t["type"], "indexCreation");
    assert_eq!(t["details"]["primaryKey"], "isbn");
    let again = s.post_json("/indexes", &json!({"uid": "books"}));
    let t = assert_task(&s, again.task_uid(), "failed");
    assert_eq!(t["error"]["code"], "index_already_exists");
    assert_eq!(
        t["error"]["link"],
        "https://docs.meilisearch.com/errors#index_already_exists"
    );
    for uid in ["a1", "a2", "a3"] {
        s.post_json("/indexes", &json!({"uid": uid})).task_uid();
    }
    let index = s.get("/indexes/books").body;
    assert_eq!(index["uid"], "books");
    assert_eq!(index["primaryKey"], "isbn");
    assert!(
        index["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let page = s.get("/indexes?offset=1&limit=2").body;
    assert_eq!(page["total"], 4);
    assert_eq!(page["offset"], 1);
    assert_eq!(page["limit"], 2);
    let uids: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, vec!["a2", "a3"]);
    s.get("/indexes?limit=-1")
        .assert_error(400, "invalid_index_limit");
    s.get("/indexes?offset=x")
        .assert_error(400, "invalid_index_offset");
    s.get("/indexes?foo=1").assert_error(400, "bad_request");

    // Update the primary key while the index is empty.
    let r = s.send(
        "PATCH",
        "/indexes/a1",
        "application/json",
        br#"{"primaryKey":"code"}"#,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(s.get("/indexes/a1").body["primaryKey"], "code");
    // Not once documents exist under another key.
    let r = s.send(
        "POST",
        "/indexes/books/documents",
        "application/json",
        br#"[{"isbn":1,"t":"x"}]"#,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    let r = s.send(
        "PATCH",
        "/indexes/books",
        "application/json",
        br#"{"primaryKey":"t"}"#,
    );
    let t = assert_task(&s, r.task_uid(), "failed");
    assert_eq!(t["error"]["code"], "index_primary_key_already_exists");

    let r = s.delete("/indexes/a2");
    let t = assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(t["type"], "indexDeletion");
    s.get("/indexes/a2").assert_error(404, "index_not_found");
    let r = s.delete("/indexes/a2");
    assert_eq!(
        assert_task(&s, r.task_uid(), "failed")["error"]["code"],
        "index_not_found"
    );

    s.get("/indexes/bad%20uid")
        .assert_error(400, "invalid_index_uid");
    s.post_json("/indexes", &json!({"uid": "bad uid!"}))
        .assert_error(400, "invalid_index_uid");
    s.post_json("/indexes", &json!({"primaryKey": "id"}))
        .assert_error(400, "missing_index_uid");
    s.post_json("/indexes", &json!({"uid": "x", "nope": 1}))
        .assert_error(400, "bad_request");
    s.post_json("/indexes", &json!({"uid": 12}))
        .assert_error(400, "invalid_index_uid");

    let stats = s.get("/stats").body;
    assert!(stats["databaseSize"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["indexes"]["books"]["numberOfDocuments"], 1);
    assert_eq!(
        stats["indexes"]["books"]["fieldDistribution"],
        json!({"isbn": 1, "t": 1})
    );
    assert!(
        stats["lastUpdate"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    s.get("/indexes/nope/stats")
        .assert_error(404, "index_not_found");
    s.get("/no/such/route").assert_error(404, "not_found");
    s.send("PUT", "/health", "application/json", b"{}")
        .assert_error(405, "method_not_allowed");
}

#[test]
fn documents_in_every_format() {
    let (s, _dir) = Server::start(&[]);
    // JSON array into a missing index: created, primary key inferred (`id`).
    let r = s.send(
        "POST",
        "/indexes/movies/documents",
        "application/json",
        &movies(),
    );
    let t = assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(t["details"]["receivedDocuments"], 31);
    assert_eq!(t["details"]["indexedDocuments"], 31);
    assert_eq!(s.get("/indexes/movies").body["primaryKey"], "id");
    assert_eq!(count(&s, "movies"), 31);

    // NDJSON and CSV with typed columns, primaryKey given.
    let nd = std::fs::read(data("meilisearch/songs.ndjson")).unwrap();
    let r = s.send(
        "POST",
        "/indexes/songs_nd/documents?primaryKey=id",
        "application/x-ndjson",
        &nd,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(count(&s, "songs_nd"), 225);
    let csv = std::fs::read(data("meilisearch/songs.csv")).unwrap();
    let r = s.send(
        "POST",
        "/indexes/songs_csv/documents?primaryKey=id",
        "text/csv",
        &csv,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(count(&s, "songs_csv"), 499);
    let r = s.send(
        "POST",
        "/indexes/typed/documents?csvDelimiter=%3B",
        "text/csv",
        b"id:number;title;price:number\n1;Hello;2.5\n2;World;\n",
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(
        s.get("/indexes/typed/documents/1").body,
        json!({"id": 1, "title": "Hello", "price": 2.5})
    );
    assert_eq!(
        s.get("/indexes/typed/documents/2").body["price"],
        Value::Null
    );

    // Replace (POST) drops fields; update (PUT) merges them.
    let r = s.send(
        "POST",
        "/indexes/movies/documents",
        "application/json",
        br#"{"id":"287947","title":"Shazam 2"}"#,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(
        s.get("/indexes/movies/documents/287947").body,
        json!({"id": "287947", "title": "Shazam 2"})
    );
    let r = s.send(
        "PUT",
        "/indexes/movies/documents",
        "application/json",
        br#"[{"id":"287947","year":2023}]"#,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(
        s.get("/indexes/movies/documents/287947").body,
        json!({"id": "287947", "title": "Shazam 2", "year": 2023})
    );
    assert_eq!(count(&s, "movies"), 31);

    // Get one with fields; list and fetch with offset/limit/fields.
    let one = s
        .get("/indexes/movies/documents/287947?fields=title,year")
        .body;
    assert_eq!(one, json!({"title": "Shazam 2", "year": 2023}));
    let page = s
        .get("/indexes/movies/documents?offset=5&limit=3&fields=id")
        .body;
    assert_eq!(page["total"], 31);
    assert_eq!(page["offset"], 5);
    assert_eq!(page["limit"], 3);
    let results = page["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|d| d.as_object().unwrap().keys().eq(["id"]))
    );
    let fetched = s
        .post_json(
            "/indexes/movies/documents/fetch",
            &json!({"offset": 30, "limit": 10, "fields": ["title"]}),
        )
        .body;
    assert_eq!(fetched["results"].as_array().unwrap().len(), 1);
    assert_eq!(fetched["total"], 31);
    let by_ids = s
        .post_json(
            "/indexes/movies/documents/fetch",
            &json!({"ids": ["287947", "nope"]}),
        )
        .body;
    assert_eq!(by_ids["total"], 1);
    s.post_json("/indexes/movies/documents/fetch", &json!({"limit": -2}))
        .assert_error(400, "invalid_document_limit");
    s.post_json(
        "/indexes/movies/documents/fetch",
        &json!({"fields": "title"}),
    )
    .assert_error(400, "invalid_document_fields");
    s.post_json(
        "/indexes/movies/documents/fetch",
        &json!({"filter": "a = 1"}),
    )
    .assert_error(400, "invalid_document_filter");
    s.get("/indexes/movies/documents?limit=abc")
        .assert_error(400, "invalid_document_limit");
    s.get("/indexes/movies/documents/does-not-exist")
        .assert_error(404, "document_not_found");
    s.get("/indexes/nope/documents")
        .assert_error(404, "index_not_found");
    s.get("/indexes/nope/documents/1")
        .assert_error(404, "index_not_found");

    // Deletes: one, batch, all.
    let r = s.delete("/indexes/movies/documents/287947");
    let t = assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(t["type"], "documentDeletion");
    assert_eq!(t["details"]["deletedDocuments"], 1);
    s.get("/indexes/movies/documents/287947")
        .assert_error(404, "document_not_found");
    let ids: Vec<String> = s.get("/indexes/movies/documents?limit=3&fields=id").body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let r = s.post_json("/indexes/movies/documents/delete-batch", &json!(ids));
    assert_eq!(
        assert_task(&s, r.task_uid(), "succeeded")["details"]["deletedDocuments"],
        3
    );
    assert_eq!(count(&s, "movies"), 27);
    s.post_json("/indexes/movies/documents/delete-batch", &json!({"ids": 1}))
        .assert_error(400, "bad_request");
    s.post_json("/indexes/movies/documents/delete", &json!({}))
        .assert_error(400, "missing_document_filter");
    let r = s.delete("/indexes/movies/documents");
    assert_task(&s, r.task_uid(), "succeeded");
    assert_eq!(count(&s, "movies"), 0);

    // State-dependent failures are failed tasks; nothing is written.
    let r = s.send(
        "POST",
        "/indexes/typed/documents",
        "application/json",
        br#"[{"id":3},{"title":"no id"}]"#,
    );
    let t = assert_task(&s, r.task_uid(), "failed");
    assert_eq!(t["error"]["code"], "missing_document_id");
    let r = s.send(
        "POST",
        "/indexes/typed/documents",
        "application/json",
        br#"{"id":"bad id!"}"#,
    );
    assert_eq!(
        assert_task(&s, r.task_uid(), "failed")["error"]["code"],
        "invalid_document_id"
    );
    let r = s.send(
        "POST",
        "/indexes/noid/documents",
        "application/json",
        br#"{"title":"x"}"#,
    );
    assert_eq!(
        assert_task(&s, r.task_uid(), "failed")["error"]["code"],
        "index_primary_key_no_candidate_found"
    );
    assert_eq!(count(&s, "typed"), 2);
}

#[test]
fn bad_payloads_are_refused_and_nothing_is_written() {
    let (s, _dir) = Server::start(&["--http-payload-size-limit", "1MB"]);
    let r = s.send(
        "POST",
        "/indexes/m/documents",
        "application/json",
        br#"[{"id":1}]"#,
    );
    let first = r.task_uid();
    let tasks_before = s.get("/tasks").body["total"].clone();

    s.send(
        "POST",
        "/indexes/m/documents",
        "application/json",
        br#"[{"id":2},"#,
    )
    .assert_error(400, "malformed_payload");
    s.send("POST", "/indexes/m/documents", "application/json", b"[1,2]")
        .assert_error(400, "malformed_payload");
    s.send(
        "POST",
        "/indexes/m/documents",
        "application/x-ndjson",
        b"{\"id\":3}\n{",
    )
    .assert_error(400, "malformed_payload");
    s.send(
        "POST",
        "/indexes/m/documents",
        "text/csv",
        b"id:number\nabc\n",
    )
    .assert_error(400, "malformed_payload");
    s.send("POST", "/indexes/m/documents", "application/json", b"")
        .assert_error(400, "missing_payload");
    s.send("POST", "/indexes/m/documents", "text/plain", br#"{"id":4}"#)
        .assert_error(415, "invalid_content_type");
    s.send_with("POST", "/indexes/m/documents", &[], br#"{"id":4}"#)
        .assert_error(415, "missing_content_type");
    s.send(
        "POST",
        "/indexes/m/documents?csvDelimiter=ab",
        "text/csv",
        b"id\n5\n",
    )
    .assert_error(400, "invalid_document_csv_delimiter");
    s.send(
        "POST",
        "/indexes/bad%20uid/documents",
        "application/json",
        br#"{"id":4}"#,
    )
    .assert_error(400, "invalid_index_uid");
    s.send(
        "POST",
        "/indexes/m/documents?unknown=1",
        "application/json",
        br#"{"id":4}"#,
    )
    .assert_error(400, "bad_request");
    // Over the limit, plain and compressed (a bomb is cut at the limit).
    let big = format!("[{{\"id\":9,\"t\":\"{}\"}}]", "x".repeat(1_100_000));
    s.send(
        "POST",
        "/indexes/m/documents",
        "application/json",
        big.as_bytes(),
    )
    .assert_error(413, "payload_too_large");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(big.as_bytes()).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 100_000);
    s.send_with(
        "POST",
        "/indexes/m/documents",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb,
    )
    .assert_error(413, "payload_too_large");
    s.send_with(
        "POST",
        "/indexes/m/documents",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        b"not gzip at all",
    )
    .assert_error(400, "malformed_payload");
    s.send_with(
        "POST",
        "/indexes/m/documents",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "zstd"),
        ],
        br#"{"id":4}"#,
    )
    .assert_error(415, "invalid_content_type");
    // JSON routes too.
    s.send("POST", "/indexes", "application/json", b"{")
        .assert_error(400, "malformed_payload");
    s.send("POST", "/indexes", "text/plain", br#"{"uid":"x"}"#)
        .assert_error(415, "invalid_content_type");
    s.send("POST", "/indexes/m/search", "application/json", b"")
        .assert_error(400, "missing_payload");

    assert_eq!(count(&s, "m"), 1);
    assert_eq!(
        s.get("/tasks").body["total"],
        tasks_before,
        "a refused request made a task"
    );
    assert_eq!(s.get("/tasks").body["results"][0]["uid"], first);

    // Accepted encodings: gzip, deflate (zlib and raw) and br.
    let doc = br#"[{"id":10,"title":"compressed"}]"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(doc).unwrap();
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zl.write_all(br#"[{"id":11}]"#).unwrap();
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(br#"[{"id":12}]"#).unwrap();
    }
    for (encoding, body) in [
        ("gzip", gz.finish().unwrap()),
        ("deflate", zl.finish().unwrap()),
        ("br", br),
    ] {
        let r = s.send_with(
            "POST",
            "/indexes/m/documents",
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", encoding),
            ],
            &body,
        );
        assert_task(&s, r.task_uid(), "succeeded");
    }
    assert_eq!(count(&s, "m"), 4);
    assert_eq!(s.get("/indexes/m/documents/10").body["title"], "compressed");
}

#[test]
fn search_both_pagination_shapes_and_errors() {
    let (s, _dir) = Server::start(&[]);
    let docs: Vec<Value> = (0..50)
        .map(|i| json!({"id": i, "title": format!("common word{i}"), "extra": i}))
        .collect();
    s.send(
        "POST",
        "/indexes/m/documents",
        "application/json",
        json!(docs).to_string().as_bytes(),
    )
    .task_uid();
    let r = s.post_json(
        "/indexes/m/search",
        &json!({"q": "common", "limit": 5, "offset": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "hits",
            "query",
            "processingTimeMs",
            "limit",
            "offset",
            "estimatedTotalHits"
        ]
    );
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["estimatedTotalHits"], 50);
    assert_eq!(r.body["query"], "common");
    let r = s.get("/indexes/m/search?q=word7&attributesToRetrieve=title&showRankingScore=true");
    assert_eq!(r.status, 200, "{}", r.text);
    let hit = &r.body["hits"][0];
    assert_eq!(hit["title"], "common word7");
    assert!(hit.get("id").is_none(), "{hit}");
    let score = hit["_rankingScore"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));

    let r = s.post_json(
        "/indexes/m/search",
        &json!({"q": "common", "page": 3, "hitsPerPage": 20}),
    );
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "hits",
            "query",
            "processingTimeMs",
            "hitsPerPage",
            "page",
            "totalPages",
            "totalHits"
        ]
    );
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 10);
    assert_eq!(r.body["totalHits"], 50);
    assert_eq!(r.body["totalPages"], 3);
    let r = s.get("/indexes/m/search?hitsPerPage=7");
    assert_eq!(r.body["page"], 1);
    assert_eq!(r.body["totalPages"], 8);

    // pagination.maxTotalHits caps the window and the totals.
    let r = s.send(
        "PATCH",
        "/indexes/m/settings",
        "application/json",
        br#"{"pagination":{"maxTotalHits":12}}"#,
    );
    assert_task(&s, r.task_uid(), "succeeded");
    let r = s.post_json(
        "/indexes/m/search",
        &json!({"q": "common", "offset": 10, "limit": 5}),
    );
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 2, "{}", r.text);
    assert_eq!(r.body["estimatedTotalHits"], 12);
    assert_eq!(r.body["limit"], 5);
    let r = s.post_json("/indexes/m/search", &json!({"page": 2, "hitsPerPage": 10}));
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["totalHits"], 12);
    assert_eq!(r.body["totalPages"], 2);

    for (body, code) in [
        (json!({"limit": -1}), "invalid_search_limit"),
        (json!({"limit": "5"}), "invalid_search_limit"),
        (json!({"offset": -1}), "invalid_search_offset"),
        (json!({"q": 5}), "invalid_search_q"),
        (json!({"page": -1}), "invalid_search_page"),
        (json!({"hitsPerPage": "x"}), "invalid_search_hits_per_page"),
        (
            json!({"matchingStrategy": "some"}),
            "invalid_search_matching_strategy",
        ),
        (
            json!({"attributesToRetrieve": 1}),
            "invalid_search_attributes_to_retrieve",
        ),
        (
            json!({"showRankingScore": 1}),
            "invalid_search_show_ranking_score",
        ),
        (json!({"filter": "id > 3"}), "invalid_search_filter"),
        (json!({"wat": true}), "bad_request"),
    ] {
        let r = s.post_json("/indexes/m/search", &body);
        r.assert_error(400, code);
        let field = body.as_object().unwrap().keys().next().unwrap();
        assert!(
            r.body["message"].as_str().unwrap().contains(field.as_str()) || code.contains("filter"),
            "{}",
            r.text
        );
    }
    s.get("/indexes/m/search?limit=-5")
        .assert_error(400, "invalid_search_limit");
    s.get("/indexes/m/search?foo=1")
        .assert_error(400, "bad_request");
    s.post_json("/indexes/nope/search", &json!({}))
        .assert_error(404, "index_not_found");
    s.send("POST", "/indexes/m/search", "text/plain", b"{}")
        .assert_error(415, "invalid_content_type");
}

fn list(s: &Server, query: &str) -> Value {
    let r = s.get(&format!("/tasks?{query}"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

fn uids(v: &Value) -> Vec<u64> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uid"].as_u64().unwrap())
        .collect()
}

#[test]
fn tasks_filters_paging_cancel_delete_batches() {
    let (s, _dir) = Server::start(&[]);
    let a = s
        .send(
            "POST",
            "/indexes/a/documents",
            "application/json",
            br#"{"id":1}"#,
        )
        .task_uid();
    let b = s.post_json("/indexes", &json!({"uid": "b"})).task_uid();
    let failed = s.post_json("/indexes", &json!({"uid": "b"})).task_uid();
    let c = s
        .send(
            "POST",
            "/indexes/a/documents",
            "application/json",
            br#"{"id":2}"#,
        )
        .task_uid();
    assert!(a < b && b < failed && failed < c, "uids grow");

    let all = list(&s, "");
    assert_eq!(uids(&all), vec![c, failed, b, a]);
    assert_eq!(all["total"], 4);
    assert_eq!(all["limit"], 20);
    assert_eq!(all["from"], c);
    assert_eq!(all["next"], Value::Null);
    let page = list(&s, "limit=2");
    assert_eq!(uids(&page), vec![c, failed]);
    assert_eq!(page["next"], b);
    let page = list(&s, &format!("limit=2&from={b}"));
    assert_eq!(uids(&page), vec![b, a]);
    assert_eq!(uids(&list(&s, "reverse=true")), vec![a, b, failed, c]);
    assert_eq!(uids(&list(&s, "statuses=failed")), vec![failed]);
    assert_eq!(uids(&list(&s, "types=indexCreation")), vec![failed, b]);
    assert_eq!(uids(&list(&s, "indexUids=a")), vec![c, a]);
    assert_eq!(uids(&list(&s, &format!("uids={a},{c}"))), vec![c, a]);
    assert_eq!(uids(&list(&s, &format!("batchUids={b}"))), vec![b]);
    assert_eq!(uids(&list(&s, "statuses=*&types=*")).len(), 4);
    assert!(uids(&list(&s, "canceledBy=1")).is_empty());
    let t_b = task(&s, b);
    let enq = t_b["enqueuedAt"].as_str().unwrap();
    let fin = task(&s, failed)["finishedAt"].as_str().unwrap().to_string();
    assert_eq!(
        uids(&list(&s, &format!("afterEnqueuedAt={enq}"))),
        vec![c, failed]
    );
    assert_eq!(uids(&list(&s, &format!("beforeEnqueuedAt={enq}"))), vec![a]);
    assert_eq!(
        uids(&list(
            &s,
            &format!(
                "beforeFinishedAt={fin}&afterStartedAt={}",
                task(&s, a)["startedAt"].as_str().unwrap()
            )
        )),
        vec![b]
    );
    assert!(uids(&list(&s, "afterFinishedAt=2999-01-01")).is_empty());
    assert_eq!(uids(&list(&s, "beforeStartedAt=2999-01-01")).len(), 4);
    for (query, code) in [
        ("uids=x", "invalid_task_uids"),
        ("batchUids=x", "invalid_task_batch_uids"),
        ("statuses=done", "invalid_task_statuses"),
        ("types=x", "invalid_task_types"),
        ("indexUids=a%20b", "invalid_task_index_uids"),
        ("canceledBy=x", "invalid_task_canceled_by"),
        ("limit=x", "invalid_task_limit"),
        ("from=-1", "invalid_task_from"),
        ("reverse=maybe", "invalid_task_reverse"),
        ("beforeEnqueuedAt=x", "invalid_task_before_enqueued_at"),
        ("afterEnqueuedAt=x", "invalid_task_after_enqueued_at"),
        ("beforeStartedAt=x", "invalid_task_before_started_at"),
        ("afterStartedAt=x", "invalid_task_after_started_at"),
        ("beforeFinishedAt=x", "invalid_task_before_finished_at"),
        ("afterFinishedAt=x", "invalid_task_after_finished_at"),
        ("nope=1", "bad_request"),
    ] {
        s.get(&format!("/tasks?{query}")).assert_error(400, code);
    }
    s.get("/tasks/999999").assert_error(404, "task_not_found");
    s.get("/tasks/abc").assert_error(400, "invalid_task_uids");

    // Cancel and delete need a filter.
    s.send("POST", "/tasks/cancel", "application/json", b"")
        .assert_error(400, "missing_task_filters");
    s.delete("/tasks").assert_error(400, "missing_task_filters");
    s.delete("/tasks?limit=3").assert_error(400, "bad_request");
    let cancel = s
        .send(
            "POST",
            "/tasks/cancel?statuses=enqueued,processing",
            "application/json",
            b"",
        )
        .task_uid();
    let t = assert_task(&s, cancel, "succeeded");
    assert_eq!(t["type"], "taskCancelation");
    assert_eq!(
        t["details"]["originalFilter"],
        "?statuses=enqueued,processing"
    );
    assert_eq!(t["details"]["canceledTasks"], 0);
    let del = s.delete(&format!("/tasks?uids={a},{failed}")).task_uid();
    let t = assert_task(&s, del, "succeeded");
    assert_eq!(t["type"], "taskDeletion");
    assert_eq!(t["details"]["deletedTasks"], 2);
    assert_eq!(
        t["details"]["originalFilter"],
        format!("?uids={a},{failed}")
    );
    s.get(&format!("/tasks/{a}"))
        .assert_error(404, "task_not_found");
    assert_eq!(uids(&list(&s, "")), vec![del, cancel, c, b]);

    // Batches: one per task, same uid.
    let batch = s.get(&format!("/batches/{c}"));
    assert_eq!(batch.status, 200, "{}", batch.text);
    assert_eq!(batch.body["uid"], c);
    assert_eq!(batch.body["stats"]["totalNbTasks"], 1);
    assert_eq!(batch.body["stats"]["status"]["succeeded"], 1);
    assert_eq!(batch.body["stats"]["types"]["documentAdditionOrUpdate"], 1);
    assert_eq!(batch.body["stats"]["indexUids"]["a"], 1);
    assert!(
        batch.body["finishedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let batches = s.get("/batches?limit=2").body;
    assert_eq!(uids(&batches), vec![del, cancel]);
    assert_eq!(batches["next"], c);
    s.get("/batches/424242")
        .assert_error(404, "batch_not_found");
}

#[test]
fn master_key_protects_every_route_but_health() {
    let (s, _dir) = Server::start(&["--master-key", "a-very-secret-master-key"]);
    assert_eq!(s.get("/health").status, 200);
    s.get("/indexes")
        .assert_error(401, "missing_authorization_header");
    s.get("/version")
        .assert_error(401, "missing_authorization_header");
    let wrong = s
        .agent
        .get(s.url("/indexes"))
        .header("Authorization", "Bearer nope")
        .call();
    common::Resp::from(wrong).assert_error(403, "invalid_api_key");
    let ok = s
        .agent
        .get(s.url("/indexes"))
        .header("Authorization", "Bearer a-very-secret-master-key")
        .call();
    assert_eq!(common::Resp::from(ok).status, 200);
    let write = s.send(
        "POST",
        "/indexes/x/documents",
        "application/json",
        br#"{"id":1}"#,
    );
    write.assert_error(401, "missing_authorization_header");
}

#[test]
fn production_needs_a_long_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "serve",
            "--env",
            "production",
            "--master-key",
            "short",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--db-path")
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 bytes"));
}

#[test]
fn webhooks_and_experimental_features_are_stored() {
    let (mut s, _dir) = Server::start(&[]);
    assert_eq!(s.get("/webhooks").body, json!({"results": []}));
    let r = s.post_json(
        "/webhooks",
        &json!({"url": "http://127.0.0.1:9/hook", "headers": {"x-a": "1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let uuid = r.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(r.body["isEditable"], true);
    let r = s.send(
        "PATCH",
        &format!("/webhooks/{uuid}"),
        "application/json",
        br#"{"headers":{"x-a":null,"x-b":"2"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["headers"], json!({"x-b": "2"}));
    s.post_json("/webhooks", &json!({"url": "not a url"}))
        .assert_error(400, "invalid_webhook_url");
    s.post_json(
        "/webhooks",
        &json!({"url": "http://x", "headers": {"a": 1}}),
    )
    .assert_error(400, "invalid_webhook_headers");
    s.get("/webhooks/nope")
        .assert_error(404, "webhook_not_found");

    let f = s.get("/experimental-features").body;
    assert_eq!(f["metrics"], false);
    let r = s.send(
        "PATCH",
        "/experimental-features",
        "application/json",
        br#"{"metrics":true}"#,
    );
    assert_eq!(r.body["metrics"], true, "{}", r.text);
    s.send(
        "PATCH",
        "/experimental-features",
        "application/json",
        br#"{"nope":true}"#,
    )
    .assert_error(400, "bad_request");

    s.restart();
    let hooks = s.get("/webhooks").body;
    assert_eq!(hooks["results"][0]["uuid"], uuid.as_str());
    assert_eq!(
        s.get(&format!("/webhooks/{uuid}")).body["url"],
        "http://127.0.0.1:9/hook"
    );
    assert_eq!(s.get("/experimental-features").body["metrics"], true);
    assert_eq!(s.delete(&format!("/webhooks/{uuid}")).status, 204);
    s.get(&format!("/webhooks/{uuid}"))
        .assert_error(404, "webhook_not_found");
}

#[test]
fn sigterm_flushes_and_exits_zero_and_a_second_server_is_refused() {
    let (mut s, _dir) = Server::start(&[]);
    let r = s.send(
        "POST",
        "/indexes/m/documents",
        "application/json",
        &movies(),
    );
    let uid = r.task_uid();

    // A second server on the same directory exits non-zero and says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .arg("--db-path")
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already in use by another eddy process"),
        "{stderr}"
    );

    let status = s.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(
        s.stderr().contains("engine flushed and closed"),
        "{}",
        s.stderr()
    );
    s.restart();
    // Closed cleanly: nothing left to replay, everything there.
    assert!(s.stderr().contains("records_replayed=0"), "{}", s.stderr());
    assert_eq!(count(&s, "m"), 31);
    assert_eq!(task(&s, uid)["status"], "succeeded");
}

#[test]
fn overload_answers_503_with_retry_after() {
    let (s, _dir) = Server::start(&[
        "--memory-budget",
        "256KiB",
        "--merge-strategy",
        "manual",
        "--overload-wait-ms",
        "50",
    ]);
    let mut saw_overload = false;
    for i in 0..200 {
        let docs: Vec<Value> = (0..50)
            .map(|j| json!({"id": i * 100 + j, "text": "lorem ipsum dolor sit amet ".repeat(8)}))
            .collect();
        let r = s.send(
            "POST",
            "/indexes/m/documents",
            "application/json",
            json!(docs).to_string().as_bytes(),
        );
        if r.status == 503 {
            r.assert_error(503, "too_many_search_requests");
            assert!(
                r.retry_after
                    .as_deref()
                    .is_some_and(|v| v.parse::<u64>().unwrap() >= 1),
                "{r:?}"
            );
            saw_overload = true;
            break;
        }
        r.task_uid();
    }
    assert!(saw_overload, "the memory budget never pushed back");
    // Reads keep working.
    assert_eq!(s.get("/indexes/m/search?q=lorem").status, 200);
}

#[test]
fn environment_variables_configure_the_server_and_startup_says_what_was_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env-db");
    let port = common::free_port();
    let log = dir.path().join("stderr");
    let spawn = || {
        // No subcommand: `eddy` alone serves, configured by the environment only.
        std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
            .env("MEILI_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MEILI_DB_PATH", &db)
            .env("MEILI_MASTER_KEY", "env-master-key-0123456789")
            .env("MEILI_ENV", "production")
            .env("MEILI_HTTP_PAYLOAD_SIZE_LIMIT", "2KB")
            .env("MEILI_NO_ANALYTICS", "true")
            .env("MEILI_LOG_LEVEL", "info")
            .env("EDDY_WRITE_BUFFER", "1MiB")
            .env("EDDY_MEMORY_BUDGET", "64MiB")
            .env("EDDY_MERGE_STRATEGY", "immediate")
            .env("EDDY_DURABILITY", "fsync")
            .env("EDDY_OVERLOAD_WAIT_MS", "100")
            .env("EDDY_HTTP_READ_TIMEOUT_MS", "5000")
            .env("EDDY_HTTP_THREADS", "2")
            .env("MEILI_MAX_INDEXING_THREADS", "2")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let agent = common::agent();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !agent
        .get(format!("{base}/health"))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(std::time::Instant::now() < deadline, "not healthy");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let no_key = agent.get(format!("{base}/indexes")).call();
    common::Resp::from(no_key).assert_error(401, "missing_authorization_header");
    let auth = "Bearer env-master-key-0123456789";
    let big = format!("[{{\"id\":1,\"t\":\"{}\"}}]", "x".repeat(3000));
    let r = agent
        .post(format!("{base}/indexes/e/documents"))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send(big.as_bytes());
    common::Resp::from(r).assert_error(413, "payload_too_large");
    let r = agent
        .post(format!("{base}/indexes/e/documents"))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send(&br#"[{"id":1,"t":"small"}]"#[..]);
    assert_eq!(common::Resp::from(r).status, 202);
    // The data went where MEILI_DB_PATH says, and the startup line says so.
    assert!(db.join("wal").is_dir() && db.join("LOCK").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("data directory opened"), "{text}");
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains("records_replayed="), "{text}");
    assert!(
        !text.contains("env-master-key-0123456789"),
        "the master key was logged"
    );
    // SIGKILL, restart: the startup line reports what the log replayed.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !agent
        .get(format!("{base}/health"))
        .call()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy after restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("documents_recovered="), "{text}");
    let r = agent
        .get(format!("{base}/indexes/e/documents/1"))
        .header("Authorization", auth)
        .call();
    assert_eq!(common::Resp::from(r).body["t"], "small");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::Read as _;
    let (mut s, _dir) = Server::start(&[]);
    let body = br#"[{"id":1,"title":"in flight"}]"#;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST /indexes/f/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(&body[..10]).unwrap();
    // Let the server read the headers: the request is now in flight, waiting for its body.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let pid = s.pid();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    tcp.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let status = s.terminate_wait();
    assert!(status.success(), "exit status {status}");
    s.restart();
    assert_eq!(count(&s, "f"), 1);
}
