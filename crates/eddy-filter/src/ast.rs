//! The filter tree that [`crate::parse`] produces, and its rendering back to filter syntax.
//!
//! The tree follows the syntax: `a NOT IN [..]` is [`Condition::NotIn`] while
//! `NOT a IN [..]` is [`Filter::Not`] around [`Condition::In`], and `NOT NOT f` keeps both
//! `NOT`s. Both spellings mean the same; keeping them apart makes `parse(f.to_string()) == f`.

use std::fmt::{self, Write as _};

use crate::syntax::{is_keyword, is_reserved_geo_word, is_word_char};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every sub-filter holds (empty: always true).
    And(Vec<Filter>),
    /// At least one sub-filter holds (empty: never true).
    Or(Vec<Filter>),
    /// The sub-filter does not hold.
    Not(Box<Filter>),
    /// A condition on one attribute.
    Condition {
        /// The attribute as written (unquoted, unescaped); dots reach into nested objects.
        attribute: String,
        /// What the attribute's values must satisfy.
        op: Condition,
    },
    /// `_geoRadius(lat, lng, radius_m)`: the document's `_geo` point lies within
    /// `radius_m` meters of (`lat`, `lng`).
    GeoRadius {
        /// Latitude of the center, in degrees, within `[-90, 90]`.
        lat: f64,
        /// Longitude of the center, in degrees, within `[-180, 180]`.
        lng: f64,
        /// Radius in meters.
        radius_m: f64,
    },
    /// `_geoBoundingBox([top, right], [bottom, left])`: the document's `_geo` point lies in
    /// the box. The first pair is the top-right (north-east) corner, the second the
    /// bottom-left (south-west) corner, as Meilisearch's geosearch guide defines them. A box
    /// whose right longitude is west of its left longitude wraps across the antimeridian.
    GeoBoundingBox {
        /// `(lat, lng)` of the top-right corner, in degrees.
        top_right: (f64, f64),
        /// `(lat, lng)` of the bottom-left corner, in degrees.
        bottom_left: (f64, f64),
    },
}

/// What the values of one attribute must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `attr = v`
    Equal(Value),
    /// `attr != v`: the negation of `=`, so it also holds when the attribute is missing.
    NotEqual(Value),
    /// `attr > v`
    GreaterThan(Value),
    /// `attr >= v`
    GreaterThanOrEqual(Value),
    /// `attr < v`
    LowerThan(Value),
    /// `attr <= v`
    LowerThanOrEqual(Value),
    /// `attr from TO to`, both ends included.
    Between {
        /// Lower end, included.
        from: Value,
        /// Upper end, included.
        to: Value,
    },
    /// `attr IN [v1, v2, ..]`
    In(Vec<Value>),
    /// `attr NOT IN [v1, v2, ..]`: the negation of `IN`.
    NotIn(Vec<Value>),
    /// `attr EXISTS`
    Exists,
    /// `attr NOT EXISTS`
    NotExists,
    /// `attr IS NULL`
    IsNull,
    /// `attr IS NOT NULL`
    IsNotNull,
    /// `attr IS EMPTY`
    IsEmpty,
    /// `attr IS NOT EMPTY`
    IsNotEmpty,
}

/// A value token as written in the filter (quotes removed, escapes resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The text of the token.
    pub raw: String,
    /// `raw` read as a number when it parses as a finite `f64` (Rust's `str::parse`, as
    /// Meilisearch's `parse_finite_float`); `-0` is stored as `0`.
    pub number: Option<f64>,
}

impl Value {
    /// A value token with text `raw`; computes [`Value::number`].
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let number = raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(crate::facet::canonical_number);
        Self { raw, number }
    }

    /// The raw text as it is compared with string facet values: [`crate::normalize_str`].
    pub fn normalized(&self) -> String {
        crate::normalize_str(&self.raw)
    }
}

impl Filter {
    /// The attributes the filter reads, in order of first appearance, each once; geo filters
    /// read `_geo`.
    pub fn attributes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.collect_attributes(&mut out);
        out
    }

    fn collect_attributes<'a>(&'a self, out: &mut Vec<&'a str>) {
        let mut push = |name: &'a str| {
            if !out.contains(&name) {
                out.push(name);
            }
        };
        match self {
            Filter::And(items) | Filter::Or(items) => {
                for item in items {
                    item.collect_attributes(out);
                }
            }
            Filter::Not(inner) => inner.collect_attributes(out),
            Filter::Condition { attribute, .. } => push(attribute),
            Filter::GeoRadius { .. } | Filter::GeoBoundingBox { .. } => push("_geo"),
        }
    }

    /// Height of the tree: 1 for a condition or geo filter, plus one per `AND`, `OR` or `NOT`
    /// level above it. Parentheses that do not change the tree do not count.
    pub fn depth(&self) -> usize {
        match self {
            Filter::And(items) | Filter::Or(items) => {
                1 + items.iter().map(Filter::depth).max().unwrap_or(0)
            }
            Filter::Not(inner) => 1 + inner.depth(),
            Filter::Condition { .. } | Filter::GeoRadius { .. } | Filter::GeoBoundingBox { .. } => {
                1
            }
        }
    }

    /// The filter in Meilisearch's syntax; same as `to_string()`. Parsing it gives back an
    /// equal tree for every tree [`crate::parse`] can return. `And`/`Or` with a single item
    /// print that item; empty ones print `()`, which does not parse.
    pub fn to_filter_string(&self) -> String {
        self.to_string()
    }

    /// Whether `doc` satisfies the filter: see [`crate::matches()`].
    pub fn matches(&self, doc: &serde_json::Value) -> bool {
        crate::matches(self, doc)
    }
}

/// Where a sub-filter is printed, to decide on parentheses.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Top,
    InOr,
    InAnd,
    InNot,
}

fn write_filter(f: &mut fmt::Formatter<'_>, filter: &Filter, place: Place) -> fmt::Result {
    match filter {
        Filter::And(items) | Filter::Or(items) if items.len() == 1 => {
            write_filter(f, &items[0], place)
        }
        Filter::And(items) | Filter::Or(items) if items.is_empty() => f.write_str("()"),
        Filter::Or(items) => {
            // OR binds loosest: parenthesize it everywhere but at the top, which also keeps a
            // nested OR a separate node when read back.
            let parens = place != Place::Top;
            write_group(f, items, " OR ", Place::InOr, parens)
        }
        Filter::And(items) => {
            let parens = matches!(place, Place::InAnd | Place::InNot);
            write_group(f, items, " AND ", Place::InAnd, parens)
        }
        Filter::Not(inner) => {
            f.write_str("NOT ")?;
            write_filter(f, inner, Place::InNot)
        }
        Filter::Condition { attribute, op } => {
            write_token(f, attribute)?;
            write_condition(f, op)
        }
        Filter::GeoRadius { lat, lng, radius_m } => {
            write!(f, "_geoRadius({lat}, {lng}, {radius_m})")
        }
        Filter::GeoBoundingBox {
            top_right,
            bottom_left,
        } => write!(
            f,
            "_geoBoundingBox([{}, {}], [{}, {}])",
            top_right.0, top_right.1, bottom_left.0, bottom_left.1
        ),
    }
}

fn write_group(
    f: &mut fmt::Formatter<'_>,
    items: &[Filter],
    separator: &str,
    place: Place,
    parens: bool,
) -> fmt::Result {
    if parens {
        f.write_char('(')?;
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write_filter(f, item, place)?;
    }
    if parens {
        f.write_char(')')?;
    }
    Ok(())
}

fn write_condition(f: &mut fmt::Formatter<'_>, op: &Condition) -> fmt::Result {
    let (symbol, value) = match op {
        Condition::Equal(v) => ("=", v),
        Condition::NotEqual(v) => ("!=", v),
        Condition::GreaterThan(v) => (">", v),
        Condition::GreaterThanOrEqual(v) => (">=", v),
        Condition::LowerThan(v) => ("<", v),
        Condition::LowerThanOrEqual(v) => ("<=", v),
        Condition::Between { from, to } => {
            f.write_char(' ')?;
            write_token(f, &from.raw)?;
            f.write_str(" TO ")?;
            return write_token(f, &to.raw);
        }
        Condition::In(values) => return write_list(f, " IN [", values),
        Condition::NotIn(values) => return write_list(f, " NOT IN [", values),
        Condition::Exists => return f.write_str(" EXISTS"),
        Condition::NotExists => return f.write_str(" NOT EXISTS"),
        Condition::IsNull => return f.write_str(" IS NULL"),
        Condition::IsNotNull => return f.write_str(" IS NOT NULL"),
        Condition::IsEmpty => return f.write_str(" IS EMPTY"),
        Condition::IsNotEmpty => return f.write_str(" IS NOT EMPTY"),
    };
    write!(f, " {symbol} ")?;
    write_token(f, &value.raw)
}

fn write_list(f: &mut fmt::Formatter<'_>, opening: &str, values: &[Value]) -> fmt::Result {
    f.write_str(opening)?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_token(f, &value.raw)?;
    }
    f.write_char(']')
}

/// Writes an attribute or a value: bare when it reads back as the same word, else
/// double-quoted with `\` and `"` escaped.
fn write_token(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let bare = !text.is_empty()
        && text.chars().all(is_word_char)
        && !is_keyword(text)
        && !is_reserved_geo_word(text);
    if bare {
        return f.write_str(text);
    }
    f.write_char('"')?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filter(f, self, Place::Top)
    }
}

impl fmt::Display for Value {
    /// The value as a filter token (quoted when needed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_token(f, &self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(attribute: &str, op: Condition) -> Filter {
        Filter::Condition {
            attribute: attribute.into(),
            op,
        }
    }

    #[test]
    fn value_reads_finite_numbers_only() {
        assert_eq!(Value::new("12").number, Some(12.0));
        assert_eq!(Value::new("-1.5e3").number, Some(-1500.0));
        assert_eq!(Value::new(".5").number, Some(0.5));
        assert_eq!(
            Value::new("-0").number.map(f64::is_sign_negative),
            Some(false)
        );
        assert_eq!(Value::new("inf").number, None);
        assert_eq!(Value::new("NaN").number, None);
        assert_eq!(Value::new("1e400").number, None);
        assert_eq!(Value::new("12abc").number, None);
        assert_eq!(Value::new(" 12").number, None);
    }

    #[test]
    fn display_quotes_only_what_would_not_read_back() {
        let f = cond("a.b", Condition::Equal(Value::new("x-1")));
        assert_eq!(f.to_string(), "a.b = x-1");
        let f = cond("dog race", Condition::Equal(Value::new("AND")));
        assert_eq!(f.to_string(), r#""dog race" = "AND""#);
        let f = cond("_geo", Condition::Equal(Value::new(r#"a"b\c"#)));
        assert_eq!(f.to_string(), r#""_geo" = "a\"b\\c""#);
        let f = cond(
            "",
            Condition::In(vec![Value::new("_geoPointer"), Value::new("1")]),
        );
        assert_eq!(f.to_string(), r#""" IN ["_geoPointer", 1]"#);
    }

    #[test]
    fn display_parenthesizes_by_precedence() {
        let a = cond("a", Condition::Exists);
        let b = cond("b", Condition::IsNull);
        let c = cond("c", Condition::IsNotEmpty);
        let or = Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(or.to_string(), "a EXISTS AND b IS NULL OR c IS NOT EMPTY");
        let and = Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(
            and.to_string(),
            "(a EXISTS OR b IS NULL) AND c IS NOT EMPTY"
        );
        let nested = Filter::And(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(
            nested.to_string(),
            "(a EXISTS AND b IS NULL) AND c IS NOT EMPTY"
        );
        let not = Filter::Not(Box::new(Filter::Not(Box::new(Filter::And(vec![a, b])))));
        assert_eq!(not.to_string(), "NOT NOT (a EXISTS AND b IS NULL)");
        assert_eq!(Filter::And(vec![c]).to_string(), "c IS NOT EMPTY");
        assert_eq!(Filter::Or(vec![]).to_string(), "()");
    }

    #[test]
    fn display_geo_and_ranges() {
        let f = Filter::GeoRadius {
            lat: 45.5,
            lng: -9.0,
            radius_m: 1000.0,
        };
        assert_eq!(f.to_string(), "_geoRadius(45.5, -9, 1000)");
        let f = Filter::GeoBoundingBox {
            top_right: (1.0, 2.5),
            bottom_left: (-1.0, 0.0),
        };
        assert_eq!(f.to_string(), "_geoBoundingBox([1, 2.5], [-1, 0])");
        let f = cond(
            "p",
            Condition::Between {
                from: Value::new("1"),
                to: Value::new("TO"),
            },
        );
        assert_eq!(f.to_string(), r#"p 1 TO "TO""#);
    }

    #[test]
    fn attributes_are_unique_in_order_and_depth_counts_levels() {
        let f = Filter::Or(vec![
            cond("b", Condition::Exists),
            Filter::Not(Box::new(Filter::And(vec![
                cond("a", Condition::Exists),
                cond("b", Condition::Exists),
                Filter::GeoRadius {
                    lat: 0.0,
                    lng: 0.0,
                    radius_m: 1.0,
                },
            ]))),
        ]);
        assert_eq!(f.attributes(), vec!["b", "a", "_geo"]);
        assert_eq!(f.depth(), 4);
        assert_eq!(cond("a", Condition::Exists).depth(), 1);
    }
}
