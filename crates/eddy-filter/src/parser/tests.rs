//! Every construct of the grammar, and every error message with its position.

use crate::error::FilterErrorKind as Kind;
use crate::{Condition as C, Filter as F, MAX_FILTER_DEPTH, Value, parse};

fn p(s: &str) -> F {
    match parse(s) {
        Ok(Some(f)) => f,
        other => panic!("{s:?} should parse, got {other:?}"),
    }
}

fn cond(attribute: &str, op: C) -> F {
    F::Condition {
        attribute: attribute.into(),
        op,
    }
}

fn v(raw: &str) -> Value {
    Value::new(raw)
}

fn not(f: F) -> F {
    F::Not(Box::new(f))
}

/// The error for `s`: kind, full message, span.
fn e(s: &str) -> (Kind, String, Option<(usize, usize)>) {
    match parse(s) {
        Err(e) => (e.kind, e.message, e.span),
        Ok(f) => panic!("{s:?} should fail, parsed {f:?}"),
    }
}

const OPERATION: &str = "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `_geoRadius`, or `_geoBoundingBox`";
const RESERVED_GEO: &str = "is a reserved keyword and thus can't be used as a filter expression. Use the `_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, longitude], [latitude, longitude])` built-in rules to filter on `_geo` coordinates.";

#[test]
fn empty_and_blank_filters_are_none() {
    assert_eq!(parse(""), Ok(None));
    assert_eq!(parse(" \t\n "), Ok(None));
}

#[test]
fn comparisons() {
    assert_eq!(p("channel = Ponce"), cond("channel", C::Equal(v("Ponce"))));
    assert_eq!(
        p("channel != ponce"),
        cond("channel", C::NotEqual(v("ponce")))
    );
    assert_eq!(
        p("subscribers > 1000"),
        cond("subscribers", C::GreaterThan(v("1000")))
    );
    assert_eq!(
        p("subscribers >= 1000"),
        cond("subscribers", C::GreaterThanOrEqual(v("1000")))
    );
    assert_eq!(
        p("subscribers < -1.5"),
        cond("subscribers", C::LowerThan(v("-1.5")))
    );
    assert_eq!(
        p("subscribers <= 1e3"),
        cond("subscribers", C::LowerThanOrEqual(v("1e3")))
    );
    assert_eq!(p("a=b"), cond("a", C::Equal(v("b"))));
    assert_eq!(p("a<=b"), cond("a", C::LowerThanOrEqual(v("b"))));
    assert_eq!(p("  x   =   y  "), cond("x", C::Equal(v("y"))));
    assert_eq!(p("price = 12").to_string(), "price = 12");
    assert_eq!(
        p("release_date > 795484800"),
        cond(
            "release_date",
            C::GreaterThan(Value {
                raw: "795484800".into(),
                number: Some(795484800.0)
            })
        )
    );
}

#[test]
fn ranges_and_lists() {
    assert_eq!(
        p("subscribers 100 TO 1000"),
        cond(
            "subscribers",
            C::Between {
                from: v("100"),
                to: v("1000")
            }
        )
    );
    assert_eq!(
        p("s 'a' TO \"b c\""),
        cond(
            "s",
            C::Between {
                from: v("a"),
                to: v("b c")
            }
        )
    );
    assert_eq!(p("colour IN[]"), cond("colour", C::In(vec![])));
    assert_eq!(
        p("colour IN [green]"),
        cond("colour", C::In(vec![v("green")]))
    );
    assert_eq!(
        p("colour IN[green,]"),
        cond("colour", C::In(vec![v("green")]))
    );
    assert_eq!(
        p(" colour IN [  green , 'blue sky' , ]"),
        cond("colour", C::In(vec![v("green"), v("blue sky")]))
    );
    assert_eq!(
        p("colour NOT IN [green, blue]"),
        cond("colour", C::NotIn(vec![v("green"), v("blue")]))
    );
    assert_eq!(
        p("colour NOT  IN[1]"),
        cond("colour", C::NotIn(vec![v("1")]))
    );
}

#[test]
fn unary_operations() {
    assert_eq!(p("a EXISTS"), cond("a", C::Exists));
    assert_eq!(p("a NOT   EXISTS"), cond("a", C::NotExists));
    assert_eq!(p("a IS NULL"), cond("a", C::IsNull));
    assert_eq!(p("a  IS   NOT   NULL"), cond("a", C::IsNotNull));
    assert_eq!(p("a IS EMPTY"), cond("a", C::IsEmpty));
    assert_eq!(p("a IS NOT EMPTY"), cond("a", C::IsNotEmpty));
    assert_eq!(p("'a'EXISTS"), cond("a", C::Exists));
}

#[test]
fn boolean_structure_and_precedence() {
    let (a, b, c) = (
        cond("a", C::Exists),
        cond("b", C::Exists),
        cond("c", C::Exists),
    );
    assert_eq!(
        p("a EXISTS AND b EXISTS"),
        F::And(vec![a.clone(), b.clone()])
    );
    assert_eq!(p("a EXISTS OR b EXISTS"), F::Or(vec![a.clone(), b.clone()]));
    assert_eq!(
        p("a EXISTS AND b EXISTS OR c EXISTS"),
        F::Or(vec![F::And(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(
        p("a EXISTS OR b EXISTS AND c EXISTS"),
        F::Or(vec![a.clone(), F::And(vec![b.clone(), c.clone()])])
    );
    assert_eq!(
        p("(a EXISTS OR b EXISTS) AND c EXISTS"),
        F::And(vec![F::Or(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(
        p("a EXISTS AND b EXISTS AND c EXISTS"),
        F::And(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(
        p("NOT a EXISTS AND b EXISTS"),
        F::And(vec![not(a.clone()), b.clone()])
    );
    assert_eq!(
        p("NOT (a EXISTS AND b EXISTS)"),
        not(F::And(vec![a.clone(), b.clone()]))
    );
    assert_eq!(p("NOT NOT a EXISTS"), not(not(a.clone())));
    assert_eq!(p("NOT(a EXISTS)"), not(a.clone()));
    assert_eq!(p("((a EXISTS))"), a.clone());
    assert_eq!(
        p("a EXISTS OR(b EXISTS)"),
        F::Or(vec![a.clone(), b.clone()])
    );
    assert_eq!(p("NOT a NOT EXISTS"), not(cond("a", C::NotExists)));
    assert_eq!(
        p("NOT a NOT IN [1]"),
        not(cond("a", C::NotIn(vec![v("1")])))
    );
}

#[test]
fn keywords_are_uppercase_only() {
    assert_eq!(p("x = and"), cond("x", C::Equal(v("and"))));
    assert_eq!(p("or = Not"), cond("or", C::Equal(v("Not"))));
    assert_eq!(e("x = 1 and y = 2").0, Kind::UnexpectedTrailingCharacters);
    assert_eq!(e("x in [1]").0, Kind::ExpectedOperation);
    assert_eq!(e("x exists").0, Kind::ExpectedOperation);
}

#[test]
fn quoted_tokens_and_escapes() {
    assert_eq!(
        p("'dog race' = Borzoi"),
        cond("dog race", C::Equal(v("Borzoi")))
    );
    assert_eq!(
        p("\"dog race\" = 'Bernese Mountain'"),
        cond("dog race", C::Equal(v("Bernese Mountain")))
    );
    assert_eq!(
        p(r#"title = "I'm \"super\"""#),
        cond("title", C::Equal(v(r#"I'm "super""#)))
    );
    assert_eq!(p(r"title = 'I\'m'"), cond("title", C::Equal(v("I'm"))));
    assert_eq!(p(r"title = 'foo\\'"), cond("title", C::Equal(v(r"foo\"))));
    assert_eq!(
        p(r#"title = 'foo\x20\n\t\"\'"'"#),
        cond("title", C::Equal(v("foo \n\t\"'\"")))
    );
    assert_eq!(p("title = ''"), cond("title", C::Equal(v(""))));
    assert_eq!(p("'' EXISTS"), cond("", C::Exists));
    assert_eq!(p("title = 'a)(=b'"), cond("title", C::Equal(v("a)(=b"))));
    assert_eq!(
        p(r#"NOT "OR" EXISTS AND "EXISTS" NOT EXISTS"#),
        F::And(vec![
            not(cond("OR", C::Exists)),
            cond("EXISTS", C::NotExists)
        ])
    );
    assert_eq!(p("t = '\u{1F43B}'"), cond("t", C::Equal(v("\u{1F43B}"))));
}

#[test]
fn nested_attribute_names() {
    assert_eq!(
        p("rating.users > 85"),
        cond("rating.users", C::GreaterThan(v("85")))
    );
    assert_eq!(p(".private = x"), cond(".private", C::Equal(v("x"))));
    assert_eq!(p("_geo.lat > 3"), cond("_geo.lat", C::GreaterThan(v("3"))));
    assert_eq!(p("'_geo' EXISTS"), cond("_geo", C::Exists));
    assert_eq!(
        p("I-love-kebab = but_snakes"),
        cond("I-love-kebab", C::Equal(v("but_snakes")))
    );
}

#[test]
fn geo_filters() {
    assert_eq!(
        p("_geoRadius(12, 13, 14)"),
        F::GeoRadius {
            lat: 12.0,
            lng: 13.0,
            radius_m: 14.0
        }
    );
    assert_eq!(
        p("_geoRadius( -45.5 ,+9.25e1,1.5E3 )"),
        F::GeoRadius {
            lat: -45.5,
            lng: 92.5,
            radius_m: 1500.0
        }
    );
    assert_eq!(
        p("NOT _geoRadius(1,2,3)"),
        not(F::GeoRadius {
            lat: 1.0,
            lng: 2.0,
            radius_m: 3.0
        })
    );
    assert_eq!(
        p("_geoBoundingBox([12, 13], [-14, .5])"),
        F::GeoBoundingBox {
            top_right: (12.0, 13.0),
            bottom_left: (-14.0, 0.5)
        }
    );
    assert_eq!(
        p("_geoBoundingBox( [1,2] , [ 1 , 3 ] ) AND a EXISTS"),
        F::And(vec![
            F::GeoBoundingBox {
                top_right: (1.0, 2.0),
                bottom_left: (1.0, 3.0)
            },
            cond("a", C::Exists)
        ])
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let ok = format!(
        "{}x = 1{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );
    assert_eq!(p(&ok), cond("x", C::Equal(v("1"))));
    let nots = format!("{}x = 1", "NOT ".repeat(MAX_FILTER_DEPTH));
    assert_eq!(p(&nots).depth(), MAX_FILTER_DEPTH + 1);
    let mixed = format!(
        "{}x = 1{}",
        "NOT (".repeat(MAX_FILTER_DEPTH / 2),
        ")".repeat(MAX_FILTER_DEPTH / 2)
    );
    assert_eq!(p(&mixed).depth(), MAX_FILTER_DEPTH / 2 + 1);

    let depth = "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer nested conditions.";
    let too_deep = format!(
        "{}x = 1{}",
        "(".repeat(MAX_FILTER_DEPTH + 1),
        ")".repeat(MAX_FILTER_DEPTH + 1)
    );
    let (kind, message, span) = e(&too_deep);
    assert_eq!(kind, Kind::DepthLimit);
    assert!(message.starts_with(&format!("{depth}\n101:")), "{message}");
    assert_eq!(span, Some((MAX_FILTER_DEPTH, too_deep.chars().count())));
    assert_eq!(
        e(&format!("{}x = 1", "NOT ".repeat(MAX_FILTER_DEPTH + 1))).0,
        Kind::DepthLimit
    );
    for huge in [
        "(".repeat(100_000),
        "NOT ".repeat(100_000),
        "NOT (".repeat(50_000),
        "((((NOT ".repeat(20_000),
    ] {
        assert_eq!(e(&huge).0, Kind::DepthLimit);
    }
}

#[test]
fn long_flat_chains_parse_without_recursion() {
    let clauses: Vec<String> = (0..50_000).map(|i| format!("a = {i}")).collect();
    match p(&clauses.join(" OR ")) {
        F::Or(items) => assert_eq!(items.len(), 50_000),
        other => panic!("expected an OR, got depth {}", other.depth()),
    }
    assert_eq!(p(&clauses.join(" AND ")).depth(), 2);
}

#[test]
fn error_expected_value() {
    let cases = [
        (
            "channel =    ",
            "Was expecting a value but instead got nothing.\n14:14 channel =    ",
            (13, 13),
        ),
        (
            "channel = 🐻",
            "Was expecting a value but instead got `🐻`.\n11:12 channel = 🐻",
            (10, 11),
        ),
        (
            "channel = 🐻 AND followers < 100",
            "Was expecting a value but instead got `🐻`.\n11:12 channel = 🐻 AND followers < 100",
            (10, 11),
        ),
        (
            "x = )",
            "Was expecting a value but instead got nothing.\n5:5 x = )",
            (4, 4),
        ),
        (
            "x 1 TO ,2",
            "Was expecting a value but instead got `,2`.\n8:10 x 1 TO ,2",
            (7, 9),
        ),
    ];
    for (filter, message, span) in cases {
        assert_eq!(
            e(filter),
            (Kind::ExpectedValue, message.to_string(), Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_reserved_keyword() {
    let cases = [
        ("OR", "`OR`", "1:3", (0, 2)),
        ("x = EXISTS", "`EXISTS`", "5:11", (4, 10)),
        ("AND = 8", "`AND`", "1:4", (0, 3)),
        ("NOT OR EXISTS AND EXISTS NOT EXISTS", "`OR`", "5:7", (4, 6)),
        ("x 1 TO NULL", "`NULL`", "8:12", (7, 11)),
    ];
    for (filter, word, columns, span) in cases {
        let message = format!(
            "Was expecting a value but instead got {word}, which is a reserved keyword. To use {word} as a field name or a value, surround it by quotes.\n{columns} {filter}"
        );
        assert_eq!(
            e(filter),
            (Kind::ReservedKeyword, message, Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_expected_operation() {
    let cases = [
        ("'OR'", r"at `\'OR\'`.", "1:5", (0, 4)),
        ("channel Ponce", "at `channel Ponce`.", "1:14", (0, 13)),
        (
            "channel = Ponce OR",
            "but instead got nothing.",
            "19:19",
            (18, 18),
        ),
        (
            "colour NOT EXIST",
            "at `colour NOT EXIST`.",
            "1:17",
            (0, 16),
        ),
        (
            "subscribers 100 TO1000",
            "at `subscribers 100 TO1000`.",
            "1:23",
            (0, 22),
        ),
        ("value NULL", "at `value NULL`.", "1:11", (0, 10)),
        ("value NOT NULL", "at `value NOT NULL`.", "1:15", (0, 14)),
        ("value EMPTY", "at `value EMPTY`.", "1:12", (0, 11)),
        ("value IS", "at `value IS`.", "1:9", (0, 8)),
        ("value IS NOT", "at `value IS NOT`.", "1:13", (0, 12)),
        ("value IS EXISTS", "at `value IS EXISTS`.", "1:16", (0, 15)),
        (
            "value IS NOT EXISTS",
            "at `value IS NOT EXISTS`.",
            "1:20",
            (0, 19),
        ),
        ("title & Glass", "at `title & Glass`.", "1:14", (0, 13)),
        ("  a EXISTS AND 🐻 = 1", "at `🐻 = 1`.", "16:21", (15, 20)),
        ("  x ! 1", "at `  x ! 1`.", "1:8", (0, 7)),
        ("x IS NULLABLE", "at `x IS NULLABLE`.", "1:14", (0, 13)),
        ("a EXISTS AND ()", "at `)`.", "15:16", (14, 15)),
        ("x 1 TO", "at `x 1 TO`.", "1:7", (0, 6)),
    ];
    for (filter, tail, columns, span) in cases {
        let message = format!("{OPERATION} {tail}\n{columns} {filter}");
        assert_eq!(
            e(filter),
            (Kind::ExpectedOperation, message, Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_trailing_characters() {
    let cases = [
        ("channel = Ponce = 12", "= 12", "17:21", (16, 20)),
        ("channel = mv OR followers >= 1000)", ")", "34:35", (33, 34)),
        (
            "channel = ponce ORdog != 'bernese mountain'",
            r"ORdog != \'bernese mountain\'",
            "17:44",
            (16, 43),
        ),
        ("x = 'a'b", "b", "8:9", (7, 8)),
    ];
    for (filter, rest, columns, span) in cases {
        let message = format!(
            "Found unexpected characters at the end of the filter: `{rest}`. You probably forgot an `OR` or an `AND` rule.\n{columns} {filter}"
        );
        assert_eq!(
            e(filter),
            (Kind::UnexpectedTrailingCharacters, message, Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_missing_closing_delimiter() {
    let cases = [
        ("channel = 'ponce", r"\'ponce", '\'', "11:17", (10, 16)),
        ("channel = \"ponce", "\\\"ponce", '"', "11:17", (10, 16)),
        (
            "channel = mv OR (followers >= 1000",
            "(followers >= 1000",
            ')',
            "17:35",
            (16, 34),
        ),
        (
            "colour IN ['blue, green",
            r"\'blue, green",
            '\'',
            "12:24",
            (11, 23),
        ),
        ("'abc\\", r"\'abc\\", '\'', "1:6", (0, 5)),
        ("(a EXISTS b", "(a EXISTS b", ')', "1:12", (0, 11)),
    ];
    for (filter, text, delimiter, columns, span) in cases {
        let message = format!(
            "Expression `{text}` is missing the following closing delimiter: `{delimiter}`.\n{columns} {filter}"
        );
        assert_eq!(
            e(filter),
            (Kind::MissingClosingDelimiter, message, Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_in_lists() {
    let cases = [
        (
            "colour IN blue, green]",
            Kind::InOpeningBracket,
            "Expected `[` after `IN` keyword.",
            "11:23",
            (10, 22),
        ),
        (
            "colour NOT IN",
            Kind::InOpeningBracket,
            "Expected `[` after `IN` keyword.",
            "14:14",
            (13, 13),
        ),
        (
            "colour IN [blue, green, 'blue' > 2]",
            Kind::InExpectedValue,
            "Expected only comma-separated field names inside `IN[..]` but instead found `> 2]`.",
            "32:36",
            (31, 35),
        ),
        (
            "colour IN [blue, green, AND]",
            Kind::InExpectedValue,
            "Expected only comma-separated field names inside `IN[..]` but instead found `AND]`.",
            "25:29",
            (24, 28),
        ),
        (
            "colour IN [,]",
            Kind::InExpectedValue,
            "Expected only comma-separated field names inside `IN[..]` but instead found `,]`.",
            "12:14",
            (11, 13),
        ),
        (
            "colour IN [a,,b]",
            Kind::InExpectedValue,
            "Expected only comma-separated field names inside `IN[..]` but instead found `,b]`.",
            "14:17",
            (13, 16),
        ),
        (
            "colour IN [blue, green",
            Kind::InClosingBracket,
            "Expected matching `]` after the list of field names given to `IN[`",
            "23:23",
            (22, 22),
        ),
        (
            "colour IN [blue,  ",
            Kind::InClosingBracket,
            "Expected matching `]` after the list of field names given to `IN[`",
            "19:19",
            (18, 18),
        ),
    ];
    for (filter, kind, description, columns, span) in cases {
        let message = format!("{description}\n{columns} {filter}");
        assert_eq!(e(filter), (kind, message, Some(span)), "{filter}");
    }
}

#[test]
fn error_geo_arguments() {
    let radius = "The `_geoRadius` filter expects three arguments: `_geoRadius(latitude, longitude, radius)`.";
    let bbox = "The `_geoBoundingBox` filter expects two pairs of arguments: `_geoBoundingBox([latitude, longitude], [latitude, longitude])`.";
    let cases = [
        (
            "_geoRadius",
            Kind::GeoRadiusArguments,
            radius,
            "1:11",
            (0, 10),
        ),
        (
            "_geoRadius = 12",
            Kind::GeoRadiusArguments,
            radius,
            "1:16",
            (0, 15),
        ),
        (
            "_geoRadius(1, 2)",
            Kind::GeoRadiusArguments,
            radius,
            "1:17",
            (0, 16),
        ),
        (
            "_geoRadius(1, 2, 3, 4)",
            Kind::GeoRadiusArguments,
            radius,
            "1:23",
            (0, 22),
        ),
        (
            "_geoRadius (1, 2, 3)",
            Kind::GeoRadiusArguments,
            radius,
            "1:21",
            (0, 20),
        ),
        (
            "a EXISTS OR _geoRadius(a, 2, 3)",
            Kind::GeoRadiusArguments,
            radius,
            "13:32",
            (12, 31),
        ),
        (
            "_geoBoundingBox",
            Kind::GeoBoundingBoxArguments,
            bbox,
            "1:16",
            (0, 15),
        ),
        (
            "_geoBoundingBox = 12",
            Kind::GeoBoundingBoxArguments,
            bbox,
            "1:21",
            (0, 20),
        ),
        (
            "_geoBoundingBox(1.0, 1.0)",
            Kind::GeoBoundingBoxArguments,
            bbox,
            "1:26",
            (0, 25),
        ),
        (
            "_geoBoundingBox([1, 2, 3], [4, 5])",
            Kind::GeoBoundingBoxArguments,
            bbox,
            "1:35",
            (0, 34),
        ),
        (
            "_geoBoundingBox([1, 2])",
            Kind::GeoBoundingBoxArguments,
            bbox,
            "1:24",
            (0, 23),
        ),
    ];
    for (filter, kind, description, columns, span) in cases {
        let message = format!("{description}\n{columns} {filter}");
        assert_eq!(e(filter), (kind, message, Some(span)), "{filter}");
    }
}

#[test]
fn error_geo_values() {
    let cases = [
        (
            "_geoRadius(100, 13, 14)",
            Kind::BadLatitude,
            "Bad latitude `100`. Latitude must be contained between -90 and 90 degrees. ",
            "12:15",
            (11, 14),
        ),
        (
            "_geoRadius(10, -180.5, 14)",
            Kind::BadLongitude,
            "Bad longitude `-180.5`. Longitude must be contained between -180 and 180 degrees. ",
            "16:22",
            (15, 21),
        ),
        (
            "_geoRadius(1e999, 13, 14)",
            Kind::NonFiniteFloat,
            "Non finite floats are not supported",
            "12:17",
            (11, 16),
        ),
        (
            "_geoBoundingBox([1, 2], [91, 4])",
            Kind::BadLatitude,
            "Bad latitude `91`. Latitude must be contained between -90 and 90 degrees. ",
            "26:28",
            (25, 27),
        ),
        (
            "_geoBoundingBox([1, 2], [3, 4])",
            Kind::BoundingBoxTopBelowBottom,
            "The top latitude `1` is below the bottom latitude `3`.",
            "29:30",
            (28, 29),
        ),
    ];
    for (filter, kind, description, columns, span) in cases {
        let message = format!("{description}\n{columns} {filter}");
        assert_eq!(e(filter), (kind, message, Some(span)), "{filter}");
    }
}

#[test]
fn error_reserved_and_misused_geo() {
    let cases = [
        ("_geoPoint(12, 13, 14)", "_geoPoint", "1:22", (0, 21)),
        (
            "position <= _geoPoint(12, 13, 14)",
            "_geoPoint",
            "13:34",
            (12, 33),
        ),
        ("_geoDistance(12, 13, 14)", "_geoDistance", "1:25", (0, 24)),
        (
            "position <= _geoDistance(12, 13, 14)",
            "_geoDistance",
            "13:37",
            (12, 36),
        ),
        ("_geo(12, 13, 14)", "_geo", "1:17", (0, 16)),
        ("position <= _geo(12, 13, 14)", "_geo", "13:29", (12, 28)),
        ("_geo EXISTS", "_geo", "1:12", (0, 11)),
        ("x IN [_geoPointer]", "_geoPoint", "7:19", (6, 18)),
    ];
    for (filter, name, columns, span) in cases {
        let message = format!("`{name}` {RESERVED_GEO}\n{columns} {filter}");
        assert_eq!(
            e(filter),
            (Kind::ReservedGeo, message, Some(span)),
            "{filter}"
        );
    }
    let misused = [
        (
            "position <= _geoRadius(12, 13, 14)",
            "_geoRadius",
            "13:35",
            (12, 34),
        ),
        (
            "position = _geoBoundingBox([1, 2], [3, 4])",
            "_geoBoundingBox",
            "12:43",
            (11, 42),
        ),
        ("x _geoRadius TO 1", "_geoRadius", "3:18", (2, 17)),
    ];
    for (filter, name, columns, span) in misused {
        let message = format!(
            "The `{name}` filter is an operation and can't be used as a value.\n{columns} {filter}"
        );
        assert_eq!(
            e(filter),
            (Kind::MisusedGeo, message, Some(span)),
            "{filter}"
        );
    }
}

#[test]
fn error_bad_escapes() {
    assert_eq!(
        e(r"t = 'a\qb'"),
        (
            Kind::MalformedValue,
            "Malformed value: `a\\\\qb`.\n6:10 t = 'a\\qb'".to_string(),
            Some((5, 9))
        )
    );
    assert_eq!(
        e(r"t = 'a\xzz'"),
        (
            Kind::InvalidEscapedNumber,
            "Found an invalid escaped sequence number: `a\\\\xzz`.\n6:11 t = 'a\\xzz'".to_string(),
            Some((5, 10))
        )
    );
}

#[test]
fn positions_count_characters_and_lines() {
    let (_, message, span) = e("é = 'ü\n' AND x ?");
    assert_eq!(span, Some((13, 16)));
    assert!(
        message.starts_with(&format!("{OPERATION} at `x ?`.\n7:10 ")),
        "{message}"
    );
}

#[test]
fn fuzz_regressions_do_not_panic() {
    for s in [
        "\\",
        "'\\",
        "\"\\\"",
        "x = '\\u{",
        "x IN [",
        "x IN",
        "_geoRadius(",
        "_geoBoundingBox([",
        "_geoBoundingBox([1,2],",
        "NOT",
        "(",
        ")",
        "x 1 TO 'a",
        "x = \u{0}",
        "\u{301}",
        "x = 1e",
        "_geoRadius(1e,2,3)",
        "_geoRadius(.,2,3)",
        "_geoRadius(-,2,3)",
    ] {
        let _ = parse(s);
    }
}
