//! Search features over HTTP: filters, facets, facet search, sort, distinct, geo,
//! highlighting and cropping, settings sub-routes, multi-search.

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{Server, data};
use serde_json::{Value, json};

fn movies() -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(data("meilisearch/small_movies.json")).unwrap()).unwrap()
}

fn succeeded(s: &Server, r: &common::Resp) -> Value {
    let uid = r.task_uid();
    let t = s.get(&format!("/tasks/{uid}")).body;
    assert_eq!(t["status"], "succeeded", "{t}");
    t
}

fn load_movies(s: &Server) {
    let r = s.post_json("/indexes/movies/documents", &Value::Array(movies()));
    succeeded(s, &r);
    let r = s.send(
        "PATCH",
        "/indexes/movies/settings",
        "application/json",
        json!({
            "filterableAttributes": ["genre", "release_date", "id"],
            "sortableAttributes": ["release_date", "title"]
        })
        .to_string()
        .as_bytes(),
    );
    succeeded(s, &r);
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filters_facets_sort_distinct_and_delete_by_filter() {
    let (s, _dir) = Server::start(&[]);
    load_movies(&s);
    let all = movies();
    let mut genres: BTreeMap<String, u64> = BTreeMap::new();
    let mut without_genre = 0;
    for m in &all {
        match m["genre"].as_str() {
            Some(g) => *genres.entry(g.to_string()).or_default() += 1,
            None => without_genre += 1,
        }
    }
    assert!(without_genre > 0);

    // Filter (string and array forms), GET and POST.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"filter": "genre = ACTION", "limit": 100}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["estimatedTotalHits"], genres["action"]);
    assert!(
        r.body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["genre"] == "action")
    );
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"filter": [["genre = action", "genre = drama"], "release_date > 0"], "limit": 100}),
    );
    assert_eq!(
        r.body["estimatedTotalHits"],
        genres["action"] + genres.get("drama").copied().unwrap_or(0)
    );
    let r = s.get("/indexes/movies/search?filter=genre%20%3D%20action&limit=100");
    assert_eq!(r.body["estimatedTotalHits"], genres["action"]);

    // Errors: position and non-filterable attribute, worded as Meilisearch.
    let r = s.post_json("/indexes/movies/search", &json!({"filter": "title = x"}));
    r.assert_error(400, "invalid_search_filter");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Attribute `title` is not filterable. Available filterable attribute patterns are: `genre`, `id`, `release_date`.\n1:6 title = x"),
        "{}",
        r.text
    );
    let r = s.post_json("/indexes/movies/search", &json!({"filter": "genre = "}));
    r.assert_error(400, "invalid_search_filter");
    s.post_json("/indexes/movies/search", &json!({"sort": ["overview:asc"]}))
        .assert_error(400, "invalid_search_sort");
    s.post_json("/indexes/movies/search", &json!({"facets": ["title"]}))
        .assert_error(400, "invalid_search_facets");

    // Facets.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"facets": ["genre", "release_date"], "limit": 0}),
    );
    let dist: BTreeMap<String, u64> = r.body["facetDistribution"]["genre"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(dist, genres);
    let dates: Vec<i64> = all
        .iter()
        .map(|m| m["release_date"].as_i64().unwrap())
        .collect();
    assert_eq!(
        r.body["facetStats"]["release_date"]["min"]
            .as_f64()
            .unwrap(),
        *dates.iter().min().unwrap() as f64
    );

    // Sort, both directions, GET and POST.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"sort": ["release_date:desc"], "limit": 100}),
    );
    let got: Vec<i64> = r.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["release_date"].as_i64().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted);
    let r = s.get("/indexes/movies/search?sort=release_date:asc&limit=1");
    assert_eq!(
        r.body["hits"][0]["release_date"].as_i64().unwrap(),
        *dates.iter().min().unwrap()
    );

    // Distinct: one hit per genre, and every movie without one.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"distinct": "genre", "limit": 100}),
    );
    assert_eq!(r.body["estimatedTotalHits"], genres.len() + without_genre);

    // Facet search.
    let r = s.post_json(
        "/indexes/movies/facet-search",
        &json!({"facetName": "genre", "facetQuery": "act"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["facetHits"],
        json!([{"value": "action", "count": genres["action"]}])
    );
    s.post_json(
        "/indexes/movies/facet-search",
        &json!({"facetName": "title"}),
    )
    .assert_error(400, "invalid_facet_search_facet_name");

    // Documents routes with filters.
    let r = s.post_json(
        "/indexes/movies/documents/fetch",
        &json!({"filter": "genre = action", "limit": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["total"], genres["action"]);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    let r = s.get("/indexes/movies/documents?filter=genre%20%3D%20action");
    assert_eq!(r.body["total"], genres["action"]);
    s.get("/indexes/movies/documents?filter=overview%20%3D%20x")
        .assert_error(400, "invalid_document_filter");
    let r = s.post_json(
        "/indexes/movies/documents/fetch",
        &json!({"sort": ["release_date:asc"], "limit": 100, "fields": ["release_date"]}),
    );
    let got: Vec<i64> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["release_date"].as_i64().unwrap())
        .collect();
    let mut want = got.clone();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(got.len(), all.len());
    s.get("/indexes/movies/documents?sort=overview:asc")
        .assert_error(400, "invalid_document_sort");

    // Delete by filter.
    let r = s.post_json(
        "/indexes/movies/documents/delete",
        &json!({"filter": "genre = action"}),
    );
    let t = succeeded(&s, &r);
    assert_eq!(t["details"]["deletedDocuments"], genres["action"]);
    assert_eq!(t["details"]["originalFilter"], "\"genre = action\"");
    let r = s.post_json("/indexes/movies/search", &json!({"limit": 0}));
    assert_eq!(
        r.body["estimatedTotalHits"].as_u64().unwrap(),
        all.len() as u64 - genres["action"]
    );
    s.post_json(
        "/indexes/movies/documents/delete",
        &json!({"filter": "genre ="}),
    )
    .assert_error(400, "invalid_document_filter");
}

#[test]
fn geo_radius_bounding_box_and_geo_sort() {
    let (s, _dir) = Server::start(&[]);
    let cities = std::fs::read(data("meilisearch/world-cities.json")).unwrap();
    let r = s.send(
        "POST",
        "/indexes/cities/documents?primaryKey=geonameid",
        "application/json",
        &cities,
    );
    succeeded(&s, &r);
    let settings = std::fs::read(data("meilisearch/world-cities.settings.json")).unwrap();
    let r = s.send(
        "PATCH",
        "/indexes/cities/settings",
        "application/json",
        &settings,
    );
    succeeded(&s, &r);
    let r = s.post_json(
        "/indexes/cities/search",
        &json!({
            "filter": "_geoRadius(48.8566, 2.3522, 300000)",
            "sort": ["_geoPoint(48.8566, 2.3522):asc"],
            "limit": 50
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    let distances: Vec<i64> = hits
        .iter()
        .map(|h| h["_geoDistance"].as_i64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances.iter().all(|d| *d <= 300_000));
    assert_eq!(hits[0]["name"], "Paris");
    let r = s.post_json(
        "/indexes/cities/search",
        &json!({"filter": "_geoBoundingBox([49, 3], [48, 2])", "limit": 100}),
    );
    for h in r.body["hits"].as_array().unwrap() {
        let (lat, lng) = (
            h["_geo"]["lat"].as_f64().unwrap(),
            h["_geo"]["lng"].as_f64().unwrap(),
        );
        assert!((48.0..=49.0).contains(&lat) && (2.0..=3.0).contains(&lng));
    }
    s.post_json(
        "/indexes/cities/search",
        &json!({"filter": "_geoRadius(100, 2, 10)"}),
    )
    .assert_error(400, "invalid_search_filter");
    // Sort by population, descending, over a filter.
    let r = s.get("/indexes/cities/search?sort=population:desc&limit=3");
    let pops: Vec<i64> = r.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["population"].as_i64().unwrap())
        .collect();
    assert!(pops.windows(2).all(|w| w[0] >= w[1]), "{pops:?}");
}

#[test]
fn highlighting_cropping_and_matches_position() {
    let (s, _dir) = Server::start(&[]);
    load_movies(&s);
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({
            "q": "shazam magic",
            "attributesToHighlight": ["title"],
            "attributesToCrop": ["overview:5"],
            "cropMarker": "[…]",
            "highlightPreTag": "<b>",
            "highlightPostTag": "</b>",
            "showMatchesPosition": true
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let hit = &r.body["hits"][0];
    assert_eq!(hit["id"], "287947");
    assert_eq!(hit["_formatted"]["title"], "<b>Shazam</b>!");
    let overview = hit["_formatted"]["overview"].as_str().unwrap();
    assert!(
        overview.starts_with("[…]") && overview.contains("magic"),
        "{overview}"
    );
    assert_eq!(overview.split_whitespace().count(), 5, "{overview}");
    assert_eq!(
        hit["_matchesPosition"]["title"],
        json!([{"start": 0, "length": 6}])
    );
    assert_eq!(hit["title"], "Shazam!");
    // Typo and prefix matches are highlighted too.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"q": "shazan", "attributesToHighlight": ["*"]}),
    );
    assert_eq!(r.body["hits"][0]["_formatted"]["title"], "<em>Shazam</em>!");
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"q": "shaz", "attributesToHighlight": ["title"]}),
    );
    assert_eq!(r.body["hits"][0]["_formatted"]["title"], "<em>Shaz</em>am!");
}

#[test]
fn settings_sub_routes_round_trip_and_reset() {
    let (s, _dir) = Server::start(&[]);
    let r = s.post_json("/indexes", &json!({"uid": "x"}));
    succeeded(&s, &r);
    let defaults = s.get("/indexes/x/settings").body;
    for (route, field, method, value) in [
        (
            "ranking-rules",
            "rankingRules",
            "PUT",
            json!(["sort", "words", "bm25", "year:desc"]),
        ),
        (
            "distinct-attribute",
            "distinctAttribute",
            "PUT",
            json!("sku"),
        ),
        (
            "searchable-attributes",
            "searchableAttributes",
            "PUT",
            json!(["title", "body"]),
        ),
        (
            "displayed-attributes",
            "displayedAttributes",
            "PUT",
            json!(["title"]),
        ),
        ("stop-words", "stopWords", "PUT", json!(["the", "a"])),
        ("synonyms", "synonyms", "PUT", json!({"nyc": ["new york"]})),
        (
            "filterable-attributes",
            "filterableAttributes",
            "PUT",
            json!(["genre"]),
        ),
        (
            "sortable-attributes",
            "sortableAttributes",
            "PUT",
            json!(["year"]),
        ),
        ("dictionary", "dictionary", "PUT", json!(["J.R.R."])),
        ("separator-tokens", "separatorTokens", "PUT", json!(["|"])),
        (
            "non-separator-tokens",
            "nonSeparatorTokens",
            "PUT",
            json!(["@"]),
        ),
        ("search-cutoff-ms", "searchCutoffMs", "PUT", json!(150)),
        ("prefix-search", "prefixSearch", "PUT", json!("disabled")),
        (
            "proximity-precision",
            "proximityPrecision",
            "PUT",
            json!("byAttribute"),
        ),
        ("facet-search", "facetSearch", "PUT", json!(false)),
        (
            "pagination",
            "pagination",
            "PATCH",
            json!({"maxTotalHits": 50}),
        ),
        (
            "faceting",
            "faceting",
            "PATCH",
            json!({"maxValuesPerFacet": 7}),
        ),
        (
            "typo-tolerance",
            "typoTolerance",
            "PATCH",
            json!({"enabled": false}),
        ),
    ] {
        let path = format!("/indexes/x/settings/{route}");
        assert_eq!(s.get(&path).body, defaults[field], "{route}");
        let wrong = if method == "PUT" { "PATCH" } else { "PUT" };
        s.send(
            wrong,
            &path,
            "application/json",
            value.to_string().as_bytes(),
        )
        .assert_error(405, "method_not_allowed");
        let r = s.send(
            method,
            &path,
            "application/json",
            value.to_string().as_bytes(),
        );
        let t = succeeded(&s, &r);
        assert_eq!(t["type"], "settingsUpdate");
        let got = s.get(&path).body;
        if value.is_object() && field != "synonyms" {
            for (k, v) in value.as_object().unwrap() {
                assert_eq!(got[k], *v, "{route}");
            }
        } else {
            assert_eq!(got, value, "{route}");
        }
        let r = s.delete(&path);
        succeeded(&s, &r);
        assert_eq!(s.get(&path).body, defaults[field], "{route} reset");
    }
    let r = s.send(
        "PUT",
        "/indexes/x/settings/ranking-rules",
        "application/json",
        br#"["nope"]"#,
    );
    r.assert_error(400, "invalid_settings_ranking_rules");
    s.get("/indexes/x/settings/nope")
        .assert_error(404, "not_found");
}

#[test]
fn settings_are_applied_to_search() {
    let (s, _dir) = Server::start(&[]);
    load_movies(&s);
    let patch = |body: Value| {
        let r = s.send(
            "PATCH",
            "/indexes/movies/settings",
            "application/json",
            body.to_string().as_bytes(),
        );
        succeeded(&s, &r);
    };
    // Searchable attributes restrict matching; displayed attributes restrict output.
    let r = s.post_json("/indexes/movies/search", &json!({"q": "superhero"}));
    let with_overview = r.body["estimatedTotalHits"].as_u64().unwrap();
    assert!(with_overview > 0);
    patch(json!({"searchableAttributes": ["title"], "displayedAttributes": ["id", "title"]}));
    let r = s.post_json("/indexes/movies/search", &json!({"q": "superhero"}));
    assert_eq!(r.body["estimatedTotalHits"], 0, "{}", r.text);
    let r = s.post_json("/indexes/movies/search", &json!({"q": "shazam"}));
    assert_eq!(
        r.body["hits"][0],
        json!({"id": "287947", "title": "Shazam!"})
    );
    // Custom ranking rule.
    patch(
        json!({"searchableAttributes": null, "displayedAttributes": null,
                 "rankingRules": ["release_date:asc", "words"]}),
    );
    let r = s.post_json("/indexes/movies/search", &json!({"limit": 100}));
    let got: Vec<i64> = r.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["release_date"].as_i64().unwrap())
        .collect();
    assert!(got.windows(2).all(|w| w[0] <= w[1]));
    // Sort needs the sort rule.
    s.post_json("/indexes/movies/search", &json!({"sort": ["title:asc"]}))
        .assert_error(400, "invalid_search_sort");
    // maxTotalHits and maxValuesPerFacet.
    patch(
        json!({"rankingRules": null, "pagination": {"maxTotalHits": 5},
                 "faceting": {"maxValuesPerFacet": 2}}),
    );
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"facets": ["genre"], "limit": 100}),
    );
    assert_eq!(r.body["hits"].as_array().unwrap().len(), 5);
    assert_eq!(
        r.body["facetDistribution"]["genre"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    ids(&r.body);
}

#[test]
fn multi_search_per_query_and_federated() {
    let (s, _dir) = Server::start(&[]);
    load_movies(&s);
    let r = s.post_json(
        "/indexes/songs/documents",
        &json!([{"id": 1, "title": "Shazam song"}, {"id": 2, "title": "Other"}]),
    );
    succeeded(&s, &r);
    let r = s.post_json(
        "/multi-search",
        &json!({"queries": [
            {"indexUid": "movies", "q": "shazam", "limit": 1},
            {"indexUid": "songs", "q": "shazam"}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["indexUid"], "movies");
    assert_eq!(results[0]["hits"][0]["id"], "287947");
    assert_eq!(results[1]["indexUid"], "songs");
    assert_eq!(results[1]["hits"][0]["id"], 1);
    let r = s.post_json(
        "/multi-search",
        &json!({"federation": {"limit": 5}, "queries": [
            {"indexUid": "movies", "q": "shazam"},
            {"indexUid": "songs", "q": "shazam", "federationOptions": {"weight": 5.0}}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{}", r.text);
    assert_eq!(hits[0]["_federation"]["indexUid"], "songs");
    assert_eq!(hits[0]["_federation"]["queriesPosition"], 1);
    assert_eq!(hits[1]["_federation"]["indexUid"], "movies");
    assert_eq!(r.body["estimatedTotalHits"], 2);
    let r = s.post_json(
        "/multi-search",
        &json!({"queries": [{"indexUid": "movies", "filter": "title = x"}]}),
    );
    r.assert_error(400, "invalid_search_filter");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Inside `.queries[0]`:")
    );
}

#[test]
fn ranking_score_details_follow_the_ranking_rules() {
    let (s, _dir) = Server::start(&[]);
    load_movies(&s);
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({
            "q": "captain marvel war",
            "sort": ["release_date:desc"],
            "showRankingScoreDetails": true,
            "limit": 5
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let hits = r.body["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert_eq!(hits[0]["id"], "299537", "{}", r.body);
    let mut previous_words = u64::MAX;
    for hit in hits {
        let d = &hit["_rankingScoreDetails"];
        let words = &d["words"];
        assert_eq!(words["order"], 0, "{d}");
        assert_eq!(words["maxMatchingWords"], 3, "{d}");
        let m = words["matchingWords"].as_u64().unwrap();
        assert!((1..=3).contains(&m), "{d}");
        assert!(
            m <= previous_words,
            "hits are ranked by matching words first"
        );
        previous_words = m;
        assert_eq!(words["score"].as_f64().unwrap(), m as f64 / 3.0);
        let sort = &d["release_date:desc"];
        assert_eq!(sort["order"], 1, "{d}");
        assert_eq!(sort["value"], hit["release_date"], "{d}");
        // Meilisearch's typo/proximity/attribute/exactness are BM25 here: no entries.
        assert_eq!(d.as_object().unwrap().len(), 2, "{d}");
    }
    assert_eq!(hits[0]["_rankingScoreDetails"]["words"]["matchingWords"], 3);
    // A placeholder search has only the sort entry; without the parameter, no details.
    let r = s.post_json(
        "/indexes/movies/search",
        &json!({"sort": ["title:asc"], "showRankingScoreDetails": true, "limit": 1}),
    );
    let d = &r.body["hits"][0]["_rankingScoreDetails"];
    assert_eq!(
        *d,
        json!({"title:asc": {"order": 0, "value": r.body["hits"][0]["title"]}})
    );
    let r = s.get("/indexes/movies/search?q=captain&showRankingScoreDetails=true");
    assert_eq!(
        r.body["hits"][0]["_rankingScoreDetails"]["words"]["matchingWords"], 1,
        "{}",
        r.body
    );
    let r = s.get("/indexes/movies/search?q=captain");
    assert!(r.body["hits"][0].get("_rankingScoreDetails").is_none());
    s.post_json(
        "/indexes/movies/search",
        &json!({"q": "x", "showRankingScoreDetails": "yes"}),
    )
    .assert_error(400, "invalid_search_show_ranking_score_details");
}

#[test]
fn multi_word_synonyms_and_search_cutoff() {
    let (s, _dir) = Server::start(&[]);
    let docs = json!([
        {"id": 1, "title": "the golden gate in San Francisco"},
        {"id": 2, "title": "a weekend in SF"},
        {"id": 3, "title": "New York at night"},
        {"id": 4, "title": "the big apple"},
        {"id": 5, "title": "NYC subway"},
        {"id": 6, "title": "san diego francisco"},
        {"id": 7, "title": "big red apple"},
    ]);
    succeeded(&s, &s.post_json("/indexes/syn/documents", &docs));
    let r = s.send(
        "PUT",
        "/indexes/syn/settings/synonyms",
        "application/json",
        json!({"san francisco": ["sf"], "sf": ["san francisco"], "nyc": ["new york", "big apple"]})
            .to_string()
            .as_bytes(),
    );
    succeeded(&s, &r);
    let found = |q: &str, strategy: &str| -> Vec<u64> {
        let r = s.post_json(
            "/indexes/syn/search",
            &json!({"q": q, "matchingStrategy": strategy}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let mut ids: Vec<u64> = r.body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(found("san francisco", "all"), [1, 2, 6]);
    assert_eq!(found("sf", "last"), [1, 2]);
    assert_eq!(found("nyc", "last"), [3, 4, 5]);
    // One-way: `big apple` and `new york` are not keys.
    assert_eq!(found("big apple", "all"), [4, 7]);
    assert_eq!(found("new york", "all"), [3]);
    assert_eq!(found("weekend sf", "all"), [2]);
    // Words matched through synonyms are highlighted, positioned and cropped around, in the
    // declared direction only.
    let formatted = |q: &str| -> BTreeMap<u64, (Value, Value)> {
        let r = s.post_json(
            "/indexes/syn/search",
            &json!({"q": q, "attributesToHighlight": ["title"], "showMatchesPosition": true}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["id"].as_u64().unwrap(),
                    (
                        h["_formatted"]["title"].clone(),
                        h["_matchesPosition"].clone(),
                    ),
                )
            })
            .collect()
    };
    let nyc = formatted("nyc");
    assert_eq!(nyc[&3].0, "<em>New</em> <em>York</em> at night");
    assert_eq!(
        nyc[&3].1,
        json!({"title": [{"start": 0, "length": 3}, {"start": 4, "length": 4}]})
    );
    assert_eq!(nyc[&4].0, "the <em>big</em> <em>apple</em>");
    assert_eq!(nyc[&5].0, "<em>NYC</em> subway");
    let sf = formatted("sf");
    assert_eq!(
        sf[&1].0,
        "the golden gate in <em>San</em> <em>Francisco</em>"
    );
    assert_eq!(sf[&2].0, "a weekend in <em>SF</em>");
    assert_eq!(formatted("san francisco")[&2].0, "a weekend in <em>SF</em>");
    // `big apple` is not a key: `NYC` is not a match of it.
    assert!(!formatted("big apple").contains_key(&5));
    assert_eq!(
        formatted("big apple")[&4].0,
        "the <em>big</em> <em>apple</em>"
    );
    let r = s.post_json(
        "/indexes/syn/search",
        &json!({"q": "nyc", "attributesToCrop": ["title:2"]}),
    );
    let cropped: Vec<&str> = r.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["id"] == 4)
        .map(|h| h["_formatted"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(cropped, ["…big apple"]);

    // searchCutoffMs: 0 on an index larger than one clock check (below maxTotalHits) still
    // answers, never fails.
    let many: Vec<Value> = (0..900)
        .map(|i| json!({"id": i, "title": format!("common item {i}"), "n": i}))
        .collect();
    succeeded(
        &s,
        &s.post_json("/indexes/big/documents", &Value::Array(many)),
    );
    let search = || {
        let r = s.post_json(
            "/indexes/big/search",
            &json!({"q": "common", "facets": ["n"], "limit": 5}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    };
    let r = s.send(
        "PATCH",
        "/indexes/big/settings",
        "application/json",
        br#"{"filterableAttributes": ["n"]}"#,
    );
    succeeded(&s, &r);
    let full = search();
    assert_eq!(full["estimatedTotalHits"], 900, "{full}");
    let r = s.send(
        "PUT",
        "/indexes/big/settings/search-cutoff-ms",
        "application/json",
        b"0",
    );
    succeeded(&s, &r);
    let partial = search();
    let total = partial["estimatedTotalHits"].as_u64().unwrap();
    assert!(total < 900, "{partial}");
    // Degraded search still answers a full page (the remaining ranking rules skipped).
    let hits = partial["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{partial}");
    assert!(partial["facetDistribution"]["n"].is_object(), "{partial}");
    // Even when the only matches lie past the first clock check.
    let r = s.post_json(
        "/indexes/big/search",
        &json!({"q": "common", "filter": "n >= 890", "limit": 5}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let ns: Vec<u64> = r.body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns.len(), 5, "{}", r.body);
    assert!(ns.iter().all(|n| *n >= 890), "{ns:?}");
    assert_eq!(
        s.get("/indexes/big/settings/search-cutoff-ms").body,
        json!(0)
    );
}

#[test]
fn a_rebuilding_settings_task_answers_enqueued_and_can_be_canceled() {
    let (s, _dir) = Server::start(&[]);
    const N: u64 = 30_000;
    let docs: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "t": format!("w{}zzbar", i % 50)}))
        .collect();
    succeeded(
        &s,
        &s.post_json("/indexes/rb/documents?primaryKey=id", &Value::Array(docs)),
    );
    // Every other write answers its final status; a settings change that rebuilds answers
    // `enqueued` (never `processing`, which no Meilisearch 202 carries).
    let r = s.send(
        "PATCH",
        "/indexes/rb/settings",
        "application/json",
        br#"{"separatorTokens": ["zz"]}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "enqueued", "{}", r.body);
    assert_eq!(r.body["type"], "settingsUpdate", "{}", r.body);
    let uid = r.task_uid();
    let written = s.post_json(
        "/indexes/rb/documents",
        &json!([{"id": N, "t": "newzzbar"}]),
    );
    assert_eq!(written.status, 202);
    assert_eq!(written.body["status"], "succeeded", "{}", written.body);
    // Cancel it (the rebuild of 30,000 documents is normally still running).
    let r = s.send(
        "POST",
        &format!("/tasks/cancel?uids={uid}"),
        "application/json",
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["type"], "taskCancelation");
    let cancel_uid = r.task_uid();
    let cancel = s.get(&format!("/tasks/{cancel_uid}")).body;
    assert_eq!(cancel["status"], "succeeded", "{cancel}");
    assert_eq!(cancel["details"]["matchedTasks"], 1, "{cancel}");
    let task = s.get(&format!("/tasks/{uid}")).body;
    let bar = |s: &Server| {
        s.post_json("/indexes/rb/search", &json!({"q": "\"bar\"", "limit": 0}))
            .body["estimatedTotalHits"]
            .clone()
    };
    if cancel["details"]["canceledTasks"] == 1 {
        assert_eq!(task["status"], "canceled", "{task}");
        assert_eq!(task["canceledBy"], cancel_uid, "{task}");
        assert!(task["finishedAt"].is_string(), "{task}");
        assert_eq!(
            s.get("/indexes/rb/settings/separator-tokens").body,
            json!([])
        );
        assert_eq!(bar(&s), 0);
        assert_eq!(
            s.get("/indexes/rb/stats").body["isIndexing"],
            false,
            "the rebuild is abandoned"
        );
    } else {
        // The rebuild won the race: it finished before the cancelation arrived.
        eprintln!("the rebuild finished before its cancelation: {task}");
        assert_eq!(cancel["details"]["canceledTasks"], 0, "{cancel}");
        assert_ne!(task["status"], "canceled", "{task}");
    }
    assert_eq!(s.get("/indexes/rb/stats").body["numberOfDocuments"], N + 1);
    assert_eq!(
        s.get(&format!("/indexes/rb/documents/{N}")).body["t"],
        "newzzbar"
    );
}
