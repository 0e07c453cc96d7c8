//! Semantics of every operator on small documents, with the examples of Meilisearch's docs
//! and of the `IS NULL` / `IS EMPTY` specification (Meilisearch PR #3571).

use serde_json::{Value as Json, json};

use super::*;
use crate::{parse, parse_json};

fn f(s: &str) -> Filter {
    match parse(s) {
        Ok(Some(filter)) => filter,
        other => panic!("{s:?} should parse, got {other:?}"),
    }
}

/// Indices of the documents `filter` matches.
fn selected(filter: &str, docs: &[Json]) -> Vec<usize> {
    let filter = f(filter);
    (0..docs.len())
        .filter(|&i| matches(&filter, &docs[i]))
        .collect()
}

fn one(filter: &str, doc: Json) -> bool {
    matches(&f(filter), &doc)
}

#[test]
fn string_equality_is_normalized() {
    assert!(one("genre = HORROR", json!({"genre": "Horror"})));
    assert!(one("genre = horror", json!({"genre": "  Horror "})));
    assert!(one("genre = ' HORROR'", json!({"genre": "horror"})));
    assert!(one("name = 'CAFÉ'", json!({"name": "cafe\u{301}"})));
    assert!(!one("name = cafe", json!({"name": "café"})));
    assert!(one("name = 'ﬁne'", json!({"name": "FINE"})));
    assert!(!one("genre = horror", json!({"genre": "horror movie"})));
    assert!(one(
        "'dog race' = 'Bernese Mountain'",
        json!({"dog race": "bernese mountain"})
    ));
}

#[test]
fn numbers_compare_numerically_and_strings_stay_strings() {
    assert!(one("price = 10", json!({"price": 10})));
    assert!(one("price = 10.0", json!({"price": 10})));
    assert!(one("price = '1e1'", json!({"price": 10.0})));
    assert!(one("price = 10", json!({"price": "10"})));
    assert!(!one("price = 10", json!({"price": "10.0"})));
    assert!(!one("price = ten", json!({"price": 10})));
    assert!(one("price = -0", json!({"price": 0})));
    assert!(one("price > 10", json!({"price": 10.5})));
    assert!(!one("price > 10", json!({"price": 10})));
    assert!(one("price >= 10", json!({"price": 10})));
    assert!(one("price < 10", json!({"price": -3})));
    assert!(!one("price <= 10", json!({"price": 11})));
    assert!(one("price <= 10", json!({"price": 10})));
}

#[test]
fn comparisons_also_compare_strings_bytewise() {
    // milli always adds the string range to the numeric one.
    assert!(one("price > 10", json!({"price": "9"})));
    assert!(!one("price > 10", json!({"price": "10"})));
    assert!(one("price > 10", json!({"price": "abc"})));
    assert!(one("name >= B", json!({"name": "b"})));
    assert!(!one("name > b", json!({"name": "B"})));
    assert!(one("name < b", json!({"name": "Apple"})));
    assert!(one("name > 'apple pie'", json!({"name": "Apple tart"})));
    assert!(!one("flag > true", json!({"flag": true})));
    assert!(one("flag >= true", json!({"flag": true})));
    assert!(!one("price > abc", json!({"price": 1000})));
}

#[test]
fn to_is_inclusive_and_needs_numeric_bounds_for_numbers() {
    let docs = [
        json!({"r": 10}),
        json!({"r": 20}),
        json!({"r": 15.5}),
        json!({"r": 21}),
        json!({"r": 9}),
    ];
    assert_eq!(selected("r 10 TO 20", &docs), vec![0, 1, 2]);
    assert_eq!(selected("r 20 TO 10", &docs), Vec::<usize>::new());
    assert_eq!(selected("r 10 TO abc", &docs), Vec::<usize>::new());
    let strings = [
        json!({"r": "15"}),
        json!({"r": "100"}),
        json!({"r": "3"}),
        json!({"r": "b"}),
    ];
    assert_eq!(selected("r 10 TO 20", &strings), vec![0, 1]);
    assert_eq!(selected("r a TO C", &strings), vec![3]);
}

#[test]
fn any_array_element_can_satisfy_a_condition() {
    // Meilisearch's "Combining filter conditions" example.
    let docs = [
        json!({"id": 0, "size": [0, "small"], "colour": "blue"}),
        json!({"id": 1, "size": 1}),
        json!({"id": 2, "size": [2, 20]}),
    ];
    assert_eq!(selected("size = 0 OR size = 1", &docs), vec![0, 1]);
    assert_eq!(
        selected("size = 0 AND size = 2 OR colour = \"blue\"", &docs),
        vec![0]
    );
    // The docs answer [2]; since v1.15 (meilisearch PR #5535) `>` also compares strings, and
    // "small" > "5", so document 0 matches as well.
    assert_eq!(selected("size > 5 AND size < 5", &docs), vec![0, 2]);
    assert_eq!(selected("size = SMALL", &docs), vec![0]);
    assert_eq!(selected("size IN [20, 1]", &docs), vec![1, 2]);
    assert_eq!(selected("size 3 TO 19", &docs), Vec::<usize>::new());
}

#[test]
fn negations_are_complements_and_match_missing_attributes() {
    let docs = [
        json!({"genres": ["Horror", "Comedy"]}),
        json!({"genres": "Drama"}),
        json!({}),
        json!({"genres": null}),
    ];
    assert_eq!(selected("genres != horror", &docs), vec![1, 2, 3]);
    assert_eq!(selected("NOT genres = horror", &docs), vec![1, 2, 3]);
    assert_eq!(selected("genres NOT IN [horror, drama]", &docs), vec![2, 3]);
    assert_eq!(selected("NOT genres IN [horror, drama]", &docs), vec![2, 3]);
    assert_eq!(selected("genres IN [horror, drama]", &docs), vec![0, 1]);
    assert_eq!(selected("genres IN []", &docs), Vec::<usize>::new());
    assert_eq!(selected("genres NOT IN []", &docs), vec![0, 1, 2, 3]);
}

#[test]
fn booleans_are_the_strings_true_and_false() {
    let docs = [
        json!({"ok": true}),
        json!({"ok": false}),
        json!({"ok": "TRUE"}),
        json!({"ok": 1}),
    ];
    assert_eq!(selected("ok = true", &docs), vec![0, 2]);
    assert_eq!(selected("ok = 'True'", &docs), vec![0, 2]);
    assert_eq!(selected("ok = false", &docs), vec![1]);
    assert_eq!(selected("ok = 1", &docs), vec![3]);
}

#[test]
fn nested_fields_and_dotted_keys() {
    let doc = json!({"a": [{"b": 1}, {"b": 2}], "c.d": "x", "e": {"f": {"g": 3}}, "rating": {"users": 90}});
    assert!(one("a.b = 2", doc.clone()));
    assert!(one("a.b = 1 AND a.b = 2", doc.clone()));
    assert!(!one("a.b = 3", doc.clone()));
    assert!(one("c.d = x", doc.clone()));
    assert!(one("e.f.g 3 TO 3", doc.clone()));
    assert!(one("rating.users > 85", doc.clone()));
    assert!(one("e.f EXISTS AND e EXISTS", doc.clone()));
    assert!(!one("e.f = 3", doc.clone()));
    assert!(one("a.b.c NOT EXISTS", doc));
}

#[test]
fn exists_null_and_empty_follow_the_specification() {
    // Meilisearch PR #3571: documents 1..=10 are indices 0..=9.
    let docs = [
        json!({"name": "A", "tags": null}),
        json!({"name": "A", "tags": [null]}),
        json!({"name": "A", "tags": []}),
        json!({"name": "A", "tags": ["hello", "world"]}),
        json!({"name": "A", "tags": [""]}),
        json!({"name": "A"}),
        json!({"name": "A", "tags": {}}),
        json!({"name": "A", "tags": {"t1": "v1"}}),
        json!({"name": "A", "tags": {"t1": ""}}),
        json!({"name": "A", "tags": ""}),
    ];
    let ids = |filter: &str| {
        selected(filter, &docs)
            .into_iter()
            .map(|i| i + 1)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("tags IS EMPTY"), vec![3, 7, 10]);
    assert_eq!(ids("tags IS NOT EMPTY"), vec![1, 2, 4, 5, 6, 8, 9]);
    assert_eq!(ids("NOT tags IS EMPTY"), vec![1, 2, 4, 5, 6, 8, 9]);
    assert_eq!(ids("tags IS NULL"), vec![1]);
    assert_eq!(ids("tags IS NOT NULL"), vec![2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(ids("tags EXISTS"), vec![1, 2, 3, 4, 5, 7, 8, 9, 10]);
    assert_eq!(ids("tags NOT EXISTS"), vec![6]);
    assert_eq!(ids("NOT tags EXISTS"), vec![6]);
    assert_eq!(
        ids("(tags EXISTS) AND (tags IS NOT NULL) AND (tags IS NOT EMPTY)"),
        vec![2, 4, 5, 8, 9]
    );

    let prices = [json!({"price": null}), json!({"price": 10}), json!({})];
    assert_eq!(selected("price IS NULL", &prices), vec![0]);
    assert_eq!(selected("price IS NOT NULL", &prices), vec![1, 2]);
    assert_eq!(selected("price EXISTS", &prices), vec![0, 1]);
    assert_eq!(
        selected("(price EXISTS) AND (price IS NOT NULL)", &prices),
        vec![1]
    );
    assert_eq!(selected("price = 10 OR price IS NULL", &prices), vec![0, 1]);
}

#[test]
fn equality_ignores_null_and_empty_arrays() {
    let docs = [json!({"a": null}), json!({"a": []}), json!({"a": ""})];
    assert_eq!(selected("a = null", &docs), Vec::<usize>::new());
    assert_eq!(selected("a = ''", &docs), Vec::<usize>::new());
    assert_eq!(selected("a = '  '", &[json!({"a": "  "})]), vec![0]);
}

#[test]
fn array_form_is_and_of_ors() {
    let docs = [
        json!({"genres": "horror", "director": "Jordan Peele"}),
        json!({"genres": "comedy", "director": "Jordan Peele"}),
        json!({"genres": "comedy", "director": "Tim Burton"}),
    ];
    let filter = parse_json(&json!([
        ["genres = horror", "genres = comedy"],
        "NOT director = 'Jordan Peele'"
    ]));
    let filter = filter.ok().flatten().expect("parses");
    let got: Vec<usize> = (0..docs.len())
        .filter(|&i| matches(&filter, &docs[i]))
        .collect();
    assert_eq!(
        got,
        selected(
            "(genres = comedy OR genres = horror) AND director != 'Jordan Peele'",
            &docs
        )
    );
    assert_eq!(got, vec![2]);
}

#[test]
fn empty_groups_are_neutral() {
    let doc = json!({"a": 1});
    assert!(matches(&Filter::And(vec![]), &doc));
    assert!(!matches(&Filter::Or(vec![]), &doc));
    assert!(f("a = 1").matches(&doc));
}

#[test]
fn haversine_distances() {
    // `geoutils`' own haversine example: 56.36 m.
    assert_eq!(
        geo_distance_m(27.740068, 85.337576, 27.740286, 85.337059),
        56.36
    );
    assert_eq!(geo_distance_m(1.0, 2.0, 1.0, 2.0), 0.0);
    let half_circumference = (std::f64::consts::PI * EARTH_RADIUS_M * 1000.0).round() / 1000.0;
    assert_eq!(geo_distance_m(0.0, 0.0, 0.0, 180.0), half_circumference);
    assert_eq!(geo_distance_m(90.0, 0.0, -90.0, 0.0), half_circumference);
    let paris_milan = geo_distance_m(48.8826517, 2.3352748, 45.4777599, 9.1967508);
    assert!((paris_milan - 640_000.0).abs() < 10_000.0, "{paris_milan}");
}

#[test]
fn geo_radius_uses_the_documents_geo_point() {
    // Meilisearch's geosearch guide: restaurants near the center of Milan.
    let docs = [
        json!({"id": 1, "_geo": {"lat": 45.4777599, "lng": 9.1967508}}),
        json!({"id": 2, "_geo": {"lat": 48.8826517, "lng": 2.3352748}}),
        json!({"id": 3, "_geo": {"lat": "45.4632046", "lng": "9.1719421"}}),
        json!({"id": 4}),
        json!({"id": 5, "_geo": null}),
    ];
    assert_eq!(
        selected("_geoRadius(45.472735, 9.184019, 2000)", &docs),
        vec![0, 2]
    );
    assert_eq!(
        selected("NOT _geoRadius(45.472735, 9.184019, 2000)", &docs),
        vec![1, 3, 4]
    );
    assert_eq!(
        selected("_geoRadius(45.472735, 9.184019, 2000) AND id = 3", &docs),
        vec![2]
    );
    let exact = geo_distance_m(45.472735, 9.184019, 45.4777599, 9.1967508);
    assert!(geo_radius_contains(
        (45.472735, 9.184019),
        exact,
        (45.4777599, 9.1967508)
    ));
    assert!(!geo_radius_contains(
        (45.472735, 9.184019),
        exact - 0.001,
        (45.4777599, 9.1967508)
    ));
    assert!(!geo_radius_contains((0.0, 0.0), -1.0, (0.0, 0.0)));
}

#[test]
fn geo_bounding_box_takes_top_right_then_bottom_left() {
    let docs = [
        json!({"_geo": {"lat": 45.4777599, "lng": 9.1967508}}),
        json!({"_geo": {"lat": 48.8826517, "lng": 2.3352748}}),
        json!({"_geo": {"lat": 45.4632046, "lng": 9.1719421}}),
        json!({"lat": 45.47, "lng": 9.2}),
    ];
    // The guide's box; its right edge (9.214024) is east of its left (9.179175).
    assert_eq!(
        selected(
            "_geoBoundingBox([45.494181, 9.214024], [45.449484, 9.179175])",
            &docs
        ),
        vec![0]
    );
    assert_eq!(
        selected(
            "_geoBoundingBox([45.494181, 9.214024], [45.449484, 9.17])",
            &docs
        ),
        vec![0, 2]
    );
    // Edges are included.
    assert!(geo_bounding_box_contains(
        (1.0, 1.0),
        (0.0, 0.0),
        (1.0, 0.0)
    ));
    // Right west of left: the box wraps across the antimeridian.
    assert!(geo_bounding_box_contains(
        (10.0, -170.0),
        (-10.0, 170.0),
        (0.0, 175.0)
    ));
    assert!(geo_bounding_box_contains(
        (10.0, -170.0),
        (-10.0, 170.0),
        (0.0, -175.0)
    ));
    assert!(!geo_bounding_box_contains(
        (10.0, -170.0),
        (-10.0, 170.0),
        (0.0, 0.0)
    ));
    assert!(!geo_bounding_box_contains(
        (10.0, 20.0),
        (-10.0, -20.0),
        (11.0, 0.0)
    ));
}
