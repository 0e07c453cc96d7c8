//! Recursive-descent parser for one filter string.
//!
//! ```text
//! filter     = WS* expression WS* EOF
//! expression = and ("OR" and)*
//! and        = not ("AND" not)*
//! not        = "NOT" not | primary
//! primary    = "(" expression ")" | geoRadius | geoBoundingBox | condition
//! condition  = value ( ("=" | "!=" | ">" | ">=" | "<" | "<=") value
//!                    | "IN" list | "NOT" "IN" list | "EXISTS" | "NOT" "EXISTS"
//!                    | "IS" ["NOT"] ("NULL" | "EMPTY") | value "TO" WS+ value )
//! list       = "[" (value ("," value)* ","?)? "]"
//! value      = word | 'single quoted' | "double quoted"
//! geoRadius  = "_geoRadius(" float "," float "," float ")"
//! geoBoundingBox = "_geoBoundingBox(" "[" float "," float "]" "," "[" float "," float "]" ")"
//! ```
//!
//! Keywords are whole bare words, matched case-sensitively like Meilisearch (`x = 1 and y = 2`
//! is an error: `and` is a value). Recursion only happens for `(` and `NOT`, each of which
//! counts one level against [`MAX_FILTER_DEPTH`], so no input can exhaust the stack.
//! Every error message, and the text it points at, follows Meilisearch's `filter-parser`.

use crate::ast::{Condition, Filter, Value};
use crate::error::{FilterError, FilterErrorKind as Kind};
use crate::syntax::{EscapeError, is_keyword, is_syntax_char, is_word_char, unescape};

/// Most nested parentheses and `NOT`s (counted together) a filter string may have.
///
/// Meilisearch's parser stops somewhere between 50 parentheses and 200 `NOT`s; 100 levels is
/// more than any hand-written filter uses, and keeps the parser's stack use small.
pub const MAX_FILTER_DEPTH: usize = 100;

const EXPECTED_OPERATION: &str = "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `_geoRadius`, or `_geoBoundingBox`";
const GEO_RADIUS_ARGUMENTS: &str =
    "The `_geoRadius` filter expects three arguments: `_geoRadius(latitude, longitude, radius)`.";
const GEO_BOUNDING_BOX_ARGUMENTS: &str = "The `_geoBoundingBox` filter expects two pairs of arguments: `_geoBoundingBox([latitude, longitude], [latitude, longitude])`.";

/// A parsed filter string with the attributes it names, in source order, each with its
/// 0-based character span (inside the quotes when quoted); geo filters name `_geo` at their
/// first latitude.
pub(crate) struct Parsed {
    pub filter: Filter,
    pub attributes: Vec<(String, (usize, usize))>,
}

/// Parses `src`; `Ok(None)` when it is empty or only whitespace.
pub(crate) fn parse_located(src: &str) -> Result<Option<Parsed>, FilterError> {
    if src.trim().is_empty() {
        return Ok(None);
    }
    let mut parser = Parser::new(src);
    parser.skip_ws();
    let filter = parser.expression()?;
    parser.skip_ws();
    if parser.pos < parser.len() {
        let rest = parser.escaped(parser.pos, parser.len());
        return Err(parser.error(
            Kind::UnexpectedTrailingCharacters,
            format!("Found unexpected characters at the end of the filter: `{rest}`. You probably forgot an `OR` or an `AND` rule."),
            (parser.pos, parser.len()),
        ));
    }
    Ok(Some(Parsed {
        filter,
        attributes: parser.attributes,
    }))
}

/// A value token: its resolved text and the span of the text inside any quotes.
struct Token {
    text: String,
    span: (usize, usize),
}

/// Why no value was read where one may stand; the span is the offending word.
enum Miss {
    Reserved(usize, usize),
    NotAValue(usize, usize),
}

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
    /// Nesting of `(` and `NOT` around the current position.
    depth: usize,
    /// Offset of the first non-whitespace character: errors about the first primary start at
    /// 0, as Meilisearch's do.
    lead: usize,
    attributes: Vec<(String, (usize, usize))>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let chars: Vec<char> = src.chars().collect();
        let lead = chars
            .iter()
            .position(|c| !c.is_whitespace())
            .unwrap_or(chars.len());
        Self {
            src,
            chars,
            pos: 0,
            depth: 0,
            lead,
            attributes: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn skip_ws_from(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        i
    }

    fn skip_ws(&mut self) {
        self.pos = self.skip_ws_from(self.pos);
    }

    fn word_end(&self, start: usize) -> usize {
        let mut i = start;
        while self.at(i).is_some_and(is_word_char) {
            i += 1;
        }
        i
    }

    /// The end of the bare word at `start` when that word is exactly `word`.
    fn word_is(&self, start: usize, word: &str) -> Option<usize> {
        let end = self.word_end(start);
        (end > start && self.chars[start..end].iter().copied().eq(word.chars())).then_some(end)
    }

    fn starts_with(&self, start: usize, prefix: &str) -> bool {
        prefix
            .chars()
            .enumerate()
            .all(|(k, c)| self.at(start + k) == Some(c))
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    /// The text in `[start, end)` escaped for an error message, as Meilisearch does.
    fn escaped(&self, start: usize, end: usize) -> String {
        self.text(start, end).escape_debug().to_string()
    }

    fn error(&self, kind: Kind, description: String, span: (usize, usize)) -> FilterError {
        FilterError::located(kind, &description, self.src, span)
    }

    /// Enters one `(` or `NOT` level at `at`.
    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(self.error(
                Kind::DepthLimit,
                "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer nested conditions.".into(),
                (at, self.len()),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn expression(&mut self) -> Result<Filter, FilterError> {
        let mut items = vec![self.conjunction()?];
        loop {
            self.skip_ws();
            let Some(end) = self.word_is(self.pos, "OR") else {
                break;
            };
            self.pos = end;
            self.skip_ws();
            items.push(self.conjunction()?);
        }
        Ok(single_or(items, Filter::Or))
    }

    fn conjunction(&mut self) -> Result<Filter, FilterError> {
        let mut items = vec![self.negation()?];
        loop {
            self.skip_ws();
            let Some(end) = self.word_is(self.pos, "AND") else {
                break;
            };
            self.pos = end;
            self.skip_ws();
            items.push(self.negation()?);
        }
        Ok(single_or(items, Filter::And))
    }

    /// `NOT`s are counted in a loop rather than by recursion; they still count as depth.
    fn negation(&mut self) -> Result<Filter, FilterError> {
        self.skip_ws();
        let outer_depth = self.depth;
        let mut nots = 0;
        while let Some(end) = self.word_is(self.pos, "NOT") {
            self.enter(self.pos)?;
            nots += 1;
            self.pos = end;
            self.skip_ws();
        }
        let mut filter = self.primary()?;
        for _ in 0..nots {
            filter = Filter::Not(Box::new(filter));
        }
        self.depth = outer_depth;
        Ok(filter)
    }

    fn primary(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        let context = if start == self.lead { 0 } else { start };
        if self.at(start) == Some('(') {
            self.enter(start)?;
            self.pos += 1;
            self.skip_ws();
            let inner = self.expression()?;
            self.skip_ws();
            if self.at(self.pos) != Some(')') {
                let text = self.escaped(context, self.len());
                return Err(self.error(
                    Kind::MissingClosingDelimiter,
                    format!("Expression `{text}` is missing the following closing delimiter: `)`."),
                    (context, self.len()),
                ));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        if let Some(end) = self.word_is(start, "_geoRadius") {
            return self.geo_radius(context, end);
        }
        if let Some(end) = self.word_is(start, "_geoBoundingBox") {
            return self.geo_bounding_box(context, end);
        }
        self.condition(context)
    }

    fn condition(&mut self, context: usize) -> Result<Filter, FilterError> {
        let attribute = match self.value()? {
            Ok(token) => token,
            Err(Miss::Reserved(start, end)) => return Err(self.reserved_keyword(start, end)),
            Err(Miss::NotAValue(..)) => return Err(self.expected_operation(context)),
        };
        let op = self.operation(context)?;
        self.attributes
            .push((attribute.text.clone(), attribute.span));
        Ok(Filter::Condition {
            attribute: attribute.text,
            op,
        })
    }

    /// Everything after the attribute of a condition.
    fn operation(&mut self, context: usize) -> Result<Condition, FilterError> {
        let p = self.pos;
        let comparison = match (self.at(p), self.at(p + 1)) {
            (Some('<'), Some('=')) => {
                Some((2, Condition::LowerThanOrEqual as fn(Value) -> Condition))
            }
            (Some('>'), Some('=')) => {
                Some((2, Condition::GreaterThanOrEqual as fn(Value) -> Condition))
            }
            (Some('!'), Some('=')) => Some((2, Condition::NotEqual as fn(Value) -> Condition)),
            (Some('<'), _) => Some((1, Condition::LowerThan as fn(Value) -> Condition)),
            (Some('>'), _) => Some((1, Condition::GreaterThan as fn(Value) -> Condition)),
            (Some('='), _) => Some((1, Condition::Equal as fn(Value) -> Condition)),
            _ => None,
        };
        if let Some((width, make)) = comparison {
            self.pos += width;
            return Ok(make(self.operand()?));
        }
        if let Some(end) = self.word_is(p, "IN") {
            self.pos = end;
            return Ok(Condition::In(self.list()?));
        }
        if let Some(end) = self.word_is(p, "NOT") {
            let next = self.skip_ws_from(end);
            if let Some(end) = self.word_is(next, "IN") {
                self.pos = end;
                return Ok(Condition::NotIn(self.list()?));
            }
            if let Some(end) = self.word_is(next, "EXISTS") {
                self.pos = end;
                return Ok(Condition::NotExists);
            }
            return Err(self.expected_operation(context));
        }
        if let Some(end) = self.word_is(p, "EXISTS") {
            self.pos = end;
            return Ok(Condition::Exists);
        }
        if let Some(end) = self.word_is(p, "IS") {
            return self
                .is_operation(end)
                .ok_or_else(|| self.expected_operation(context));
        }
        // `from TO to`: a failed `from` is not an error of its own (Meilisearch tries this form
        // last), except for unclosed quotes and the like, which `value` reports itself.
        if let Ok(from) = self.value()? {
            let to_start = self.pos;
            if let Some(end) = self.word_is(to_start, "TO")
                && self.at(end).is_some_and(char::is_whitespace)
            {
                self.pos = end;
                let to = self.operand()?;
                return Ok(Condition::Between {
                    from: Value::new(from.text),
                    to,
                });
            }
        }
        Err(self.expected_operation(context))
    }

    /// `IS [NOT] NULL|EMPTY` after the `IS` that ends at `after_is`.
    fn is_operation(&mut self, after_is: usize) -> Option<Condition> {
        let mut next = self.skip_ws_from(after_is);
        if next == after_is {
            return None;
        }
        let mut negated = false;
        if let Some(end) = self.word_is(next, "NOT") {
            negated = true;
            next = self.skip_ws_from(end);
            if next == end {
                return None;
            }
        }
        let (end, op) = if let Some(end) = self.word_is(next, "NULL") {
            (
                end,
                if negated {
                    Condition::IsNotNull
                } else {
                    Condition::IsNull
                },
            )
        } else if let Some(end) = self.word_is(next, "EMPTY") {
            (
                end,
                if negated {
                    Condition::IsNotEmpty
                } else {
                    Condition::IsEmpty
                },
            )
        } else {
            return None;
        };
        self.pos = end;
        Some(op)
    }

    /// `[v1, v2, ..]` after `IN`.
    fn list(&mut self) -> Result<Vec<Value>, FilterError> {
        self.skip_ws();
        if self.at(self.pos) != Some('[') {
            return Err(self.error(
                Kind::InOpeningBracket,
                "Expected `[` after `IN` keyword.".into(),
                (self.pos, self.len()),
            ));
        }
        self.pos += 1;
        let after_bracket = self.pos;
        let mut values = Vec::new();
        match self.value()? {
            Ok(first) => {
                values.push(Value::new(first.text));
                loop {
                    let before_comma = self.pos;
                    self.skip_ws();
                    if self.at(self.pos) != Some(',') {
                        self.pos = before_comma;
                        break;
                    }
                    self.pos += 1;
                    match self.value()? {
                        Ok(token) => values.push(Value::new(token.text)),
                        Err(_) => {
                            self.pos = before_comma;
                            break;
                        }
                    }
                }
                self.skip_ws();
                if self.at(self.pos) == Some(',') {
                    self.pos += 1;
                    self.skip_ws();
                }
            }
            Err(_) => self.pos = after_bracket,
        }
        let context = self.pos;
        self.skip_ws();
        match self.at(self.pos) {
            Some(']') => {
                self.pos += 1;
                Ok(values)
            }
            None => Err(self.error(
                Kind::InClosingBracket,
                "Expected matching `]` after the list of field names given to `IN[`".into(),
                (self.pos, self.pos),
            )),
            Some(_) => {
                let text = self.escaped(context, self.len());
                Err(self.error(
                    Kind::InExpectedValue,
                    format!("Expected only comma-separated field names inside `IN[..]` but instead found `{text}`."),
                    (context, self.len()),
                ))
            }
        }
    }

    /// A value that must be there: after an operator or after `TO`.
    fn operand(&mut self) -> Result<Value, FilterError> {
        match self.value()? {
            Ok(token) => Ok(Value::new(token.text)),
            Err(Miss::Reserved(start, end)) => Err(self.reserved_keyword(start, end)),
            Err(Miss::NotAValue(start, end)) => {
                let description = if start == end {
                    "Was expecting a value but instead got nothing.".to_string()
                } else {
                    format!(
                        "Was expecting a value but instead got `{}`.",
                        self.escaped(start, end)
                    )
                };
                Err(self.error(Kind::ExpectedValue, description, (start, end)))
            }
        }
    }

    /// Reads a value token and the whitespace after it. `Ok(Err(_))` when there is no value
    /// here (the position is then after the leading whitespace); `Err` for mistakes that are
    /// errors wherever they appear: unclosed quotes, bad escapes, misused geo names.
    fn value(&mut self) -> Result<Result<Token, Miss>, FilterError> {
        self.skip_ws();
        let start = self.pos;
        for reserved in ["_geoPoint", "_geoDistance"] {
            if self.starts_with(start, reserved) {
                return Err(self.reserved_geo(reserved, start));
            }
        }
        if self.word_is(start, "_geo").is_some() {
            return Err(self.reserved_geo("_geo", start));
        }
        for misused in ["_geoRadius", "_geoBoundingBox"] {
            if self.word_is(start, misused).is_some() {
                return Err(self.error(
                    Kind::MisusedGeo,
                    format!("The `{misused}` filter is an operation and can't be used as a value."),
                    (start, self.len()),
                ));
            }
        }
        if let Some(quote @ ('\'' | '"')) = self.at(start) {
            let token = self.quoted(quote)?;
            self.skip_ws();
            return Ok(Ok(token));
        }
        let end = self.word_end(start);
        if end == start || is_keyword(&self.text(start, end)) {
            let mut word_end = start;
            while self.at(word_end).is_some_and(|c| !is_syntax_char(c)) {
                word_end += 1;
            }
            return Ok(Err(if end == start {
                Miss::NotAValue(start, word_end)
            } else {
                Miss::Reserved(start, word_end)
            }));
        }
        self.pos = end;
        self.skip_ws();
        Ok(Ok(Token {
            text: self.text(start, end),
            span: (start, end),
        }))
    }

    /// A token quoted with `quote`, which is at the current position.
    fn quoted(&mut self, quote: char) -> Result<Token, FilterError> {
        let open = self.pos;
        let mut i = open + 1;
        loop {
            match self.at(i) {
                Some('\\') if i + 1 < self.len() => i += 2,
                Some(c) if c == quote => break,
                Some(_) => i += 1,
                None => {
                    let text = self.escaped(open, self.len());
                    return Err(self.error(
                        Kind::MissingClosingDelimiter,
                        format!("Expression `{text}` is missing the following closing delimiter: `{quote}`."),
                        (open, self.len()),
                    ));
                }
            }
        }
        let span = (open + 1, i);
        let text = unescape(&self.chars[span.0..span.1]).map_err(|e| {
            let content = self.escaped(span.0, span.1);
            match e {
                EscapeError::Malformed => self.error(
                    Kind::MalformedValue,
                    format!("Malformed value: `{content}`."),
                    span,
                ),
                EscapeError::BadNumber => self.error(
                    Kind::InvalidEscapedNumber,
                    format!("Found an invalid escaped sequence number: `{content}`."),
                    span,
                ),
            }
        })?;
        self.pos = i + 1;
        Ok(Token { text, span })
    }

    fn geo_radius(&mut self, context: usize, after_word: usize) -> Result<Filter, FilterError> {
        let arguments = || {
            self.error(
                Kind::GeoRadiusArguments,
                GEO_RADIUS_ARGUMENTS.into(),
                (context, self.len()),
            )
        };
        let (args, end) = self
            .float_list('(', ')', after_word)
            .ok_or_else(arguments)?;
        let [lat, lng, radius] = args[..] else {
            return Err(arguments());
        };
        let lat_value = self.finite(lat, arguments)?;
        let lng_value = self.finite(lng, arguments)?;
        self.check_point((lat_value, lat), (lng_value, lng))?;
        let radius_m = self.finite(radius, arguments)?;
        self.pos = end;
        self.attributes.push(("_geo".into(), lat));
        Ok(Filter::GeoRadius {
            lat: lat_value,
            lng: lng_value,
            radius_m,
        })
    }

    fn geo_bounding_box(
        &mut self,
        context: usize,
        after_word: usize,
    ) -> Result<Filter, FilterError> {
        let arguments = || {
            self.error(
                Kind::GeoBoundingBoxArguments,
                GEO_BOUNDING_BOX_ARGUMENTS.into(),
                (context, self.len()),
            )
        };
        let (pairs, end) = self.float_pairs(after_word).ok_or_else(arguments)?;
        let [[top, right], [bottom, left]] = pairs[..] else {
            return Err(arguments());
        };
        let values = [
            self.finite(top, arguments)?,
            self.finite(right, arguments)?,
            self.finite(bottom, arguments)?,
            self.finite(left, arguments)?,
        ];
        self.check_point((values[0], top), (values[1], right))?;
        self.check_point((values[2], bottom), (values[3], left))?;
        if values[0] < values[2] {
            // Meilisearch points this error at the bottom-left longitude.
            return Err(self.error(
                Kind::BoundingBoxTopBelowBottom,
                format!(
                    "The top latitude `{}` is below the bottom latitude `{}`.",
                    values[0], values[2]
                ),
                left,
            ));
        }
        self.pos = end;
        self.attributes.push(("_geo".into(), top));
        Ok(Filter::GeoBoundingBox {
            top_right: (values[0], values[1]),
            bottom_left: (values[2], values[3]),
        })
    }

    /// `open float ("," float)* close` starting exactly at `i`, whitespace allowed around each
    /// float; the spans of the floats and the position after `close`.
    fn float_list(
        &self,
        open: char,
        close: char,
        i: usize,
    ) -> Option<(Vec<(usize, usize)>, usize)> {
        if self.at(i) != Some(open) {
            return None;
        }
        let mut i = i + 1;
        let mut spans = Vec::new();
        loop {
            i = self.skip_ws_from(i);
            let end = self.float_end(i)?;
            spans.push((i, end));
            i = self.skip_ws_from(end);
            match self.at(i) {
                Some(',') => i += 1,
                Some(c) if c == close => return Some((spans, i + 1)),
                _ => return None,
            }
        }
    }

    /// `( [a, b] , [c, d] )` starting exactly at `i`, keeping only lists of two floats.
    #[allow(clippy::type_complexity)]
    fn float_pairs(&self, i: usize) -> Option<(Vec<[(usize, usize); 2]>, usize)> {
        if self.at(i) != Some('(') {
            return None;
        }
        let mut i = i + 1;
        let mut pairs = Vec::new();
        loop {
            i = self.skip_ws_from(i);
            let (spans, end) = self.float_list('[', ']', i)?;
            let [a, b] = spans[..] else { return None };
            pairs.push([a, b]);
            i = self.skip_ws_from(end);
            match self.at(i) {
                Some(',') => i += 1,
                Some(')') => return Some((pairs, i + 1)),
                _ => return None,
            }
        }
    }

    /// End of a float literal at `i`: `[+-]? (digits ('.' digits?)? | '.' digits) ([eE] [+-]? digits)?`.
    fn float_end(&self, mut i: usize) -> Option<usize> {
        let digits = |p: &Self, mut j: usize| {
            let from = j;
            while p.at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
            (j, j - from)
        };
        if matches!(self.at(i), Some('+' | '-')) {
            i += 1;
        }
        let (after_int, int_digits) = digits(self, i);
        i = after_int;
        let mut frac_digits = 0;
        if self.at(i) == Some('.') {
            (i, frac_digits) = digits(self, i + 1);
        }
        if int_digits == 0 && frac_digits == 0 {
            return None;
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some('+' | '-')) {
                j += 1;
            }
            let (after_exp, exp_digits) = digits(self, j);
            if exp_digits > 0 {
                i = after_exp;
            }
        }
        Some(i)
    }

    /// The float at `span`, which [`Self::float_end`] recognized.
    fn finite(
        &self,
        span: (usize, usize),
        arguments: impl Fn() -> FilterError,
    ) -> Result<f64, FilterError> {
        let value: f64 = self.text(span.0, span.1).parse().map_err(|_| arguments())?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.error(
                Kind::NonFiniteFloat,
                "Non finite floats are not supported".into(),
                span,
            ))
        }
    }

    fn check_point(
        &self,
        (lat, lat_span): (f64, (usize, usize)),
        (lng, lng_span): (f64, (usize, usize)),
    ) -> Result<(), FilterError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(self.error(
                Kind::BadLatitude,
                format!(
                    "Bad latitude `{lat}`. Latitude must be contained between -90 and 90 degrees. "
                ),
                lat_span,
            ));
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(self.error(
                Kind::BadLongitude,
                format!("Bad longitude `{lng}`. Longitude must be contained between -180 and 180 degrees. "),
                lng_span,
            ));
        }
        Ok(())
    }

    fn expected_operation(&self, context: usize) -> FilterError {
        let text = self.text(context, self.len());
        let tail = if text.trim().is_empty() {
            "but instead got nothing.".to_string()
        } else {
            format!("at `{}`.", text.escape_debug())
        };
        self.error(
            Kind::ExpectedOperation,
            format!("{EXPECTED_OPERATION} {tail}"),
            (context, self.len()),
        )
    }

    fn reserved_keyword(&self, start: usize, end: usize) -> FilterError {
        let word = self.escaped(start, end);
        self.error(
            Kind::ReservedKeyword,
            format!("Was expecting a value but instead got `{word}`, which is a reserved keyword. To use `{word}` as a field name or a value, surround it by quotes."),
            (start, end),
        )
    }

    fn reserved_geo(&self, name: &str, start: usize) -> FilterError {
        self.error(
            Kind::ReservedGeo,
            format!("`{name}` is a reserved keyword and thus can't be used as a filter expression. Use the `_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, longitude], [latitude, longitude])` built-in rules to filter on `_geo` coordinates."),
            (start, self.len()),
        )
    }
}

/// The only item of `items`, or `group(items)`.
fn single_or(mut items: Vec<Filter>, group: fn(Vec<Filter>) -> Filter) -> Filter {
    if items.len() == 1
        && let Some(item) = items.pop()
    {
        return item;
    }
    group(items)
}

#[cfg(test)]
mod tests;
