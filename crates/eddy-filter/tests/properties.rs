//! Property tests of the public API:
//!
//! - printing any filter tree and parsing it back gives the same tree;
//! - the parser never panics, reports spans inside the input, and whatever it accepts prints
//!   back to an equivalent string;
//! - `matches` agrees with a brute-force model written here from the specification, on random
//!   documents;
//! - algebraic laws: double negation, De Morgan, `AND`/`OR`, array form ≡ string form,
//!   `IN` ≡ `OR` of `=`, negated operators ≡ `NOT`, `TO` ≡ `>= AND <=` on single values;
//! - `document_facets` agrees with `field_facets`.

use eddy_filter::{
    Condition, Filter, Value, document_facets, field_facets, matches, parse, parse_json,
};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

// ---------- Generators ----------

/// Attribute names and values, including ones that must be quoted to be read back.
fn any_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}",
        2 => "[a-z]{1,3}\\.[a-z]{1,3}",
        2 => "-?[0-9]{1,4}(\\.[0-9]{1,2})?",
        1 => prop::sample::select(vec!["AND", "OR", "NOT", "TO", "IS", "NULL", "_geo", "_geoPointer", "_geoRadius", "_geoDistance", ""]).prop_map(str::to_owned),
        2 => "[ '\"\\\\a-z()\\[\\],=<>!]{0,6}",
        1 => any::<String>(),
    ]
}

fn any_condition(token: BoxedStrategy<String>) -> impl Strategy<Value = Condition> {
    let value = token.prop_map(Value::new);
    let values = prop::collection::vec(value.clone(), 0..4);
    prop_oneof![
        value.clone().prop_map(Condition::Equal),
        value.clone().prop_map(Condition::NotEqual),
        value.clone().prop_map(Condition::GreaterThan),
        value.clone().prop_map(Condition::GreaterThanOrEqual),
        value.clone().prop_map(Condition::LowerThan),
        value.clone().prop_map(Condition::LowerThanOrEqual),
        (value.clone(), value).prop_map(|(from, to)| Condition::Between { from, to }),
        values.clone().prop_map(Condition::In),
        values.prop_map(Condition::NotIn),
        Just(Condition::Exists),
        Just(Condition::NotExists),
        Just(Condition::IsNull),
        Just(Condition::IsNotNull),
        Just(Condition::IsEmpty),
        Just(Condition::IsNotEmpty),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        -1e7..1e7f64
    ]
}

fn any_geo() -> impl Strategy<Value = Filter> {
    let lat = -90.0..=90.0f64;
    let lng = -180.0..=180.0f64;
    prop_oneof![
        (lat.clone(), lng.clone(), finite()).prop_map(|(lat, lng, radius_m)| Filter::GeoRadius {
            lat,
            lng,
            radius_m
        }),
        (lat.clone(), lng.clone(), lat, lng).prop_map(|(a, right, b, left)| {
            Filter::GeoBoundingBox {
                top_right: (a.max(b), right),
                bottom_left: (a.min(b), left),
            }
        }),
    ]
}

/// Trees as the parser builds them: groups of at least two.
fn tree(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn any_filter() -> impl Strategy<Value = Filter> {
    let condition = (any_token(), any_condition(any_token().boxed()))
        .prop_map(|(attribute, op)| Filter::Condition { attribute, op });
    tree(prop_oneof![4 => condition, 1 => any_geo()].boxed())
}

/// Attributes and values from small sets, so that random filters often match random documents.
/// Strings are ASCII, where Meilisearch's normalization is trimming and lowercasing.
const ATTRIBUTES: [&str; 9] = [
    "a", "b", "a.b", "c", "a.c", "b.c", "d", "_geo.lat", "_geo.lng",
];
const FILTER_VALUES: [&str; 13] = [
    "a", "B", "ab", "10", "9", "2.5", "-1", "0", "true", "", " a ", "1e1", "z",
];

fn small_filter() -> impl Strategy<Value = Filter> {
    let token = prop::sample::select(FILTER_VALUES.to_vec())
        .prop_map(str::to_owned)
        .boxed();
    let condition = (
        prop::sample::select(ATTRIBUTES.to_vec()),
        any_condition(token),
    )
        .prop_map(|(attribute, op)| Filter::Condition {
            attribute: attribute.to_owned(),
            op,
        });
    let geo = (40.0..50.0f64, 0.0..10.0f64, 0.0..800_000.0f64)
        .prop_map(|(lat, lng, radius_m)| Filter::GeoRadius { lat, lng, radius_m });
    let bbox = (40.0..50.0f64, 0.0..10.0f64, 40.0..50.0f64, 0.0..10.0f64).prop_map(
        |(a, right, b, left)| Filter::GeoBoundingBox {
            top_right: (a.max(b), right),
            bottom_left: (a.min(b), left),
        },
    );
    tree(prop_oneof![8 => condition, 1 => geo, 1 => bbox].boxed())
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        prop::sample::select(vec![-1.0, 0.0, 1.0, 2.5, 9.0, 10.0, 11.0, -0.0])
            .prop_map(|n| json!(n)),
        prop::sample::select(vec![-1i64, 0, 9, 10]).prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "", " ", "a", "A", " a", "ab", "B", "b", "10", "9", "true", "z", "1e1"
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    scalar().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            prop::collection::vec(
                (prop::sample::select(vec!["b", "c", "", "b.c"]), inner),
                0..3
            )
            .prop_map(|entries| Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            )),
        ]
    })
}

fn any_doc() -> impl Strategy<Value = Json> {
    let keys = prop::sample::select(vec!["a", "b", "a.b", "c", "b.c", ""]);
    let geo = prop::option::of((40.0..50.0f64, 0.0..10.0f64, any::<bool>()));
    (prop::collection::vec((keys, any_json()), 0..4), geo).prop_map(|(entries, geo)| {
        let mut doc: Map<String, Json> = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if let Some((lat, lng, as_strings)) = geo {
            let geo = if as_strings {
                json!({"lat": lat.to_string(), "lng": lng.to_string()})
            } else {
                json!({"lat": lat, "lng": lng})
            };
            doc.insert("_geo".into(), geo);
        }
        Json::Object(doc)
    })
}

/// Filter-like strings: fragments of the grammar glued together.
fn filterish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        "=",
        "!=",
        ">",
        ">=",
        "<",
        "IN",
        "[",
        "]",
        ",",
        "TO",
        "EXISTS",
        "IS",
        "NULL",
        "EMPTY",
        "'",
        "\"",
        "\\",
        "a",
        "b.c",
        "1",
        "-2.5",
        "🐻",
        "_geoRadius(1,2,3)",
        "_geoRadius(",
        "_geoBoundingBox([1,2],[0,1])",
        "_geoBoundingBox(",
        "_geoPoint(1,2)",
        "_geo",
        "\n",
        "é",
    ]);
    (prop::collection::vec(piece, 0..16), any::<bool>())
        .prop_map(|(pieces, spaced)| pieces.join(if spaced { " " } else { "" }))
}

// ---------- A brute-force model of the semantics, from the specification ----------

/// One value met at a path: as the value of an object key (`in_array == false`) or as an
/// array element.
struct Occurrence<'a> {
    path: String,
    in_array: bool,
    value: &'a Json,
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

fn occurrences(doc: &Json) -> Vec<Occurrence<'_>> {
    fn visit<'a>(path: String, value: &'a Json, in_array: bool, out: &mut Vec<Occurrence<'a>>) {
        let empty = matches!(value, Json::Array(a) if a.is_empty())
            || matches!(value, Json::Object(o) if o.is_empty());
        let container = matches!(value, Json::Array(_) | Json::Object(_));
        // Keys record every value; array elements record scalars and empty containers.
        if !in_array || !container || empty {
            out.push(Occurrence {
                path: path.clone(),
                in_array,
                value,
            });
        }
        match value {
            Json::Object(map) => {
                for (k, v) in map {
                    visit(join(&path, k), v, false, out);
                }
            }
            Json::Array(items) => {
                for v in items {
                    visit(path.clone(), v, true, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Json::Object(map) = doc {
        for (k, v) in map {
            if k != "_geo" && k != "_vectors" {
                visit(k.clone(), v, false, &mut out);
            }
        }
    }
    out
}

fn model_normalize(s: &str) -> String {
    assert!(s.is_ascii(), "the model only knows ASCII normalization");
    s.trim().to_ascii_lowercase()
}

fn model_number(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn model_condition(op: &Condition, found: &[&Occurrence<'_>]) -> bool {
    let strings: Vec<String> = found
        .iter()
        .filter_map(|o| match o.value {
            Json::String(s) if !s.is_empty() => Some(model_normalize(s)),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        })
        .collect();
    let numbers: Vec<f64> = found.iter().filter_map(|o| o.value.as_f64()).collect();
    let eq = |v: &Value| {
        strings.contains(&model_normalize(&v.raw))
            || model_number(&v.raw).is_some_and(|n| numbers.contains(&n))
    };
    // A range given by optional (bound, inclusive) ends.
    let range = |low: Option<(&Value, bool)>, high: Option<(&Value, bool)>| {
        let numeric_low = low.map(|(v, inc)| model_number(&v.raw).map(|n| (n, inc)));
        let numeric_high = high.map(|(v, inc)| model_number(&v.raw).map(|n| (n, inc)));
        let numbers_apply =
            numeric_low.is_none_or(|b| b.is_some()) && numeric_high.is_none_or(|b| b.is_some());
        let by_number = numbers_apply
            && numbers.iter().any(|&x| {
                numeric_low
                    .flatten()
                    .is_none_or(|(l, inc)| if inc { x >= l } else { x > l })
                    && numeric_high
                        .flatten()
                        .is_none_or(|(h, inc)| if inc { x <= h } else { x < h })
            });
        let by_string = strings.iter().any(|s| {
            low.is_none_or(|(v, inc)| {
                let l = model_normalize(&v.raw);
                if inc { *s >= l } else { *s > l }
            }) && high.is_none_or(|(v, inc)| {
                let h = model_normalize(&v.raw);
                if inc { *s <= h } else { *s < h }
            })
        });
        by_number || by_string
    };
    let exists = !found.is_empty();
    let is_null = found.iter().any(|o| !o.in_array && o.value.is_null());
    let is_empty = found.iter().any(|o| {
        !o.in_array && (o.value == &json!("") || o.value == &json!([]) || o.value == &json!({}))
    });
    match op {
        Condition::Equal(v) => eq(v),
        Condition::NotEqual(v) => !eq(v),
        Condition::GreaterThan(v) => range(Some((v, false)), None),
        Condition::GreaterThanOrEqual(v) => range(Some((v, true)), None),
        Condition::LowerThan(v) => range(None, Some((v, false))),
        Condition::LowerThanOrEqual(v) => range(None, Some((v, true))),
        Condition::Between { from, to } => range(Some((from, true)), Some((to, true))),
        Condition::In(vs) => vs.iter().any(eq),
        Condition::NotIn(vs) => !vs.iter().any(eq),
        Condition::Exists => exists,
        Condition::NotExists => !exists,
        Condition::IsNull => is_null,
        Condition::IsNotNull => !is_null,
        Condition::IsEmpty => is_empty,
        Condition::IsNotEmpty => !is_empty,
    }
}

fn model_geo(doc: &Json) -> Option<(f64, f64)> {
    let read = |v: &Json| {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    Some((read(&doc["_geo"]["lat"])?, read(&doc["_geo"]["lng"])?))
}

/// Haversine with the same constants, written separately (`sin²` form), to 1 mm.
fn model_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.min(1.0).sqrt().asin()
}

/// Whether `doc` matches; `None` when a geo point is within a centimeter of a radius, where
/// two correct haversine formulas may disagree in the last bits.
fn model(filter: &Filter, doc: &Json, all: &[Occurrence<'_>]) -> Option<bool> {
    Some(match filter {
        Filter::And(items) => {
            let mut all_hold = true;
            for f in items {
                all_hold &= model(f, doc, all)?;
            }
            all_hold
        }
        Filter::Or(items) => {
            let mut any_holds = false;
            for f in items {
                any_holds |= model(f, doc, all)?;
            }
            any_holds
        }
        Filter::Not(inner) => !model(inner, doc, all)?,
        Filter::Condition { attribute, op } => {
            // `_geo` only exposes its parsed coordinates.
            let coordinates = model_geo(doc).map(|(lat, lng)| [json!(lat), json!(lng)]);
            let geo: Vec<Occurrence<'_>> = coordinates
                .iter()
                .flat_map(|[lat, lng]| {
                    [("_geo.lat", lat), ("_geo.lng", lng)].map(|(path, value)| Occurrence {
                        path: path.into(),
                        in_array: false,
                        value,
                    })
                })
                .collect();
            let found: Vec<&Occurrence<'_>> = all
                .iter()
                .chain(&geo)
                .filter(|o| &o.path == attribute)
                .collect();
            model_condition(op, &found)
        }
        Filter::GeoRadius { lat, lng, radius_m } => match model_geo(doc) {
            None => false,
            Some(p) => {
                let d = model_distance((*lat, *lng), p);
                if (d - radius_m).abs() < 0.01 {
                    return None;
                }
                d <= *radius_m
            }
        },
        Filter::GeoBoundingBox {
            top_right,
            bottom_left,
        } => model_geo(doc).is_some_and(|(lat, lng)| {
            let lng_ok = if top_right.1 < bottom_left.1 {
                lng >= bottom_left.1 || lng <= top_right.1
            } else {
                bottom_left.1 <= lng && lng <= top_right.1
            };
            bottom_left.0 <= lat && lat <= top_right.0 && lng_ok
        }),
    })
}

fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

// ---------- Properties ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn printing_then_parsing_gives_the_same_tree(filter in any_filter()) {
        let text = filter.to_string();
        prop_assert_eq!(parse(&text), Ok(Some(filter.clone())), "printed as {:?}", text);
        prop_assert_eq!(filter.to_filter_string(), text);
    }

    #[test]
    fn parser_never_panics_and_round_trips_what_it_accepts(s in prop_oneof![filterish(), any::<String>()]) {
        match parse(&s) {
            Ok(Some(filter)) => {
                let again = parse(&filter.to_string());
                prop_assert_eq!(again, Ok(Some(filter)));
            }
            Ok(None) => prop_assert!(s.trim().is_empty()),
            Err(e) => {
                let (start, end) = e.span.expect("parse errors are located");
                prop_assert!(start <= end && end <= s.chars().count(), "span {:?} in {:?}", e.span, s);
                prop_assert!(e.message.ends_with(&s), "{}", e.message);
                prop_assert!(!e.message.starts_with('\n'));
            }
        }
    }

    #[test]
    fn evaluator_agrees_with_the_brute_force_model(filter in small_filter(), doc in any_doc()) {
        let all = occurrences(&doc);
        let expected = model(&filter, &doc, &all);
        prop_assume!(expected.is_some());
        prop_assert_eq!(Some(matches(&filter, &doc)), expected, "{} on {}", filter, doc);
    }

    #[test]
    fn boolean_laws_hold(f in small_filter(), g in small_filter(), h in small_filter(), doc in any_doc()) {
        let (mf, mg, mh) = (matches(&f, &doc), matches(&g, &doc), matches(&h, &doc));
        prop_assert_eq!(matches(&not(not(f.clone())), &doc), mf);
        prop_assert_eq!(matches(&Filter::And(vec![f.clone(), g.clone()]), &doc), mf && mg);
        prop_assert_eq!(matches(&Filter::Or(vec![f.clone(), g.clone()]), &doc), mf || mg);
        prop_assert_eq!(
            matches(&not(Filter::And(vec![f.clone(), g.clone()])), &doc),
            matches(&Filter::Or(vec![not(f.clone()), not(g.clone())]), &doc)
        );
        prop_assert_eq!(
            matches(&not(Filter::Or(vec![f.clone(), g.clone()])), &doc),
            matches(&Filter::And(vec![not(f.clone()), not(g.clone())]), &doc)
        );
        // The same through the string and array syntaxes.
        let (fs, gs, hs) = (f.to_string(), g.to_string(), h.to_string());
        let negated = parse(&format!("NOT ({fs})")).ok().flatten().expect("parses");
        prop_assert_eq!(matches(&negated, &doc), !mf);
        let text = parse(&format!("({fs}) AND (({gs}) OR ({hs}))")).ok().flatten().expect("parses");
        let array = parse_json(&json!([fs, [gs, hs]])).ok().flatten().expect("parses");
        prop_assert_eq!(matches(&text, &doc), mf && (mg || mh));
        prop_assert_eq!(matches(&array, &doc), mf && (mg || mh));
    }

    #[test]
    fn derived_operators_are_their_definitions(
        attribute in prop::sample::select(ATTRIBUTES.to_vec()),
        values in prop::collection::vec(prop::sample::select(FILTER_VALUES.to_vec()), 1..4),
        doc in any_doc(),
    ) {
        let cond = |op: Condition| Filter::Condition { attribute: attribute.to_owned(), op };
        let holds = |f: &Filter| matches(f, &doc);
        let vs: Vec<Value> = values.iter().map(|v| Value::new(*v)).collect();
        let (a, b) = (vs[0].clone(), vs[vs.len() - 1].clone());
        let any_equal = Filter::Or(vs.iter().cloned().map(|v| cond(Condition::Equal(v))).collect());
        prop_assert_eq!(holds(&cond(Condition::In(vs.clone()))), holds(&any_equal));
        prop_assert_eq!(holds(&cond(Condition::NotIn(vs.clone()))), !holds(&any_equal));
        prop_assert_eq!(holds(&cond(Condition::NotEqual(a.clone()))), !holds(&cond(Condition::Equal(a.clone()))));
        prop_assert_eq!(holds(&cond(Condition::NotExists)), !holds(&cond(Condition::Exists)));
        prop_assert_eq!(holds(&cond(Condition::IsNotNull)), !holds(&cond(Condition::IsNull)));
        prop_assert_eq!(holds(&cond(Condition::IsNotEmpty)), !holds(&cond(Condition::IsEmpty)));
        prop_assert_eq!(
            holds(&cond(Condition::GreaterThanOrEqual(a.clone()))),
            holds(&Filter::Or(vec![cond(Condition::GreaterThan(a.clone())), cond(Condition::Equal(a.clone()))]))
        );
        prop_assert_eq!(
            holds(&cond(Condition::Between { from: a.clone(), to: a.clone() })),
            holds(&cond(Condition::Equal(a.clone())))
        );
        // On a single scalar, `TO` is `>= AND <=`.
        let facets = field_facets(&doc, attribute);
        if facets.values.len() <= 1 {
            let between = cond(Condition::Between { from: a.clone(), to: b.clone() });
            let both = Filter::And(vec![cond(Condition::GreaterThanOrEqual(a)), cond(Condition::LowerThanOrEqual(b))]);
            prop_assert_eq!(holds(&between), holds(&both));
        }
    }

    #[test]
    fn document_facets_agree_with_field_facets(doc in any_doc()) {
        let all = document_facets(&doc);
        for (path, facets) in &all {
            prop_assert_eq!(&field_facets(&doc, path), facets);
        }
        for path in ATTRIBUTES.iter().chain(["", "b.c.b", "_geo", "_geo.x"].iter()) {
            let expected = all.get(*path).cloned().unwrap_or_default();
            prop_assert_eq!(field_facets(&doc, path), expected);
        }
    }
}
