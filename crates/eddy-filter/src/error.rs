//! The one error type of the crate, worded like Meilisearch's `invalid_search_filter` messages.
//!
//! A located message has two lines, exactly as Meilisearch prints them: the diagnostic, then
//! `start:end filter` where `start` and `end` are 1-based character columns in the line of the
//! filter string that holds the offending text (Meilisearch's `filter-parser` `Error` display).

use std::fmt::Write as _;

/// What kind of mistake a [`FilterError`] reports, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// A value was required (after an operator, after `TO`) and none was found.
    ExpectedValue,
    /// A value was required but an unquoted reserved keyword (`AND`, `OR`, `NOT`, …) was found.
    ReservedKeyword,
    /// An attribute was not followed by any known operation.
    ExpectedOperation,
    /// A complete filter was parsed but text remains after it.
    UnexpectedTrailingCharacters,
    /// A quote or a parenthesis was opened and never closed.
    MissingClosingDelimiter,
    /// `IN` was not followed by `[`.
    InOpeningBracket,
    /// The list after `IN [` was not closed.
    InClosingBracket,
    /// Something other than a comma-separated value was found inside `IN [..]`.
    InExpectedValue,
    /// `_geoRadius` with a malformed argument list.
    GeoRadiusArguments,
    /// `_geoBoundingBox` with a malformed argument list.
    GeoBoundingBoxArguments,
    /// `_geo`, `_geoPoint` or `_geoDistance` used in a filter.
    ReservedGeo,
    /// `_geoRadius` or `_geoBoundingBox` used where a value was expected.
    MisusedGeo,
    /// More than [`crate::MAX_FILTER_DEPTH`] nested parentheses and `NOT`s.
    DepthLimit,
    /// A quoted value with an unknown or incomplete backslash escape.
    MalformedValue,
    /// A quoted value with a `\x`/`\u` escape whose digits are not hexadecimal.
    InvalidEscapedNumber,
    /// A geo argument that overflows to an infinite float.
    NonFiniteFloat,
    /// A geo latitude outside `[-90, 90]`.
    BadLatitude,
    /// A geo longitude outside `[-180, 180]`.
    BadLongitude,
    /// A `_geoBoundingBox` whose top latitude is below its bottom latitude.
    BoundingBoxTopBelowBottom,
    /// The JSON filter is neither a string, an array of strings and arrays of strings, nor null.
    InvalidType,
    /// The filter names an attribute that is not filterable (built by the engine through
    /// [`FilterError::attribute_not_filterable`]).
    AttributeNotFilterable,
}

/// A filter that cannot be used, with a message in Meilisearch's words.
///
/// `Display` prints [`FilterError::message`] alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What went wrong, for callers that branch on it.
    pub kind: FilterErrorKind,
    /// The whole message, as Meilisearch would send it in `invalid_search_filter`.
    pub message: String,
    /// Offending text as 0-based character offsets `[start, end)` into the filter string
    /// the error is about; `None` for errors about the JSON shape of the filter.
    pub span: Option<(usize, usize)>,
}

impl FilterError {
    /// An error about the text `span` (0-based character offsets) of `filter`: the message is
    /// `description`, a newline, then `start:end filter` with 1-based columns, as Meilisearch
    /// prints parse errors.
    pub fn located(
        kind: FilterErrorKind,
        description: &str,
        filter: &str,
        span: (usize, usize),
    ) -> Self {
        let (start, end) = span;
        let mut column = 1;
        for c in filter.chars().take(start) {
            column = if c == '\n' { 1 } else { column + 1 };
        }
        let end_column = column + end.saturating_sub(start);
        let mut message = String::with_capacity(description.len() + filter.len() + 16);
        message.push_str(description);
        // Writing into a String cannot fail.
        let _ = write!(message, "\n{column}:{end_column} {filter}");
        Self {
            kind,
            message,
            span: Some(span),
        }
    }

    /// An error without a position in a filter string.
    pub fn unlocated(kind: FilterErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            span: None,
        }
    }

    /// Meilisearch's error for filtering on an attribute that is not filterable, located at
    /// `attribute` (as returned by [`crate::attribute_spans`]). `filterable_patterns` are the
    /// index's filterable attribute patterns; they are listed sorted.
    pub fn attribute_not_filterable(
        attribute: &crate::AttributeSpan,
        filterable_patterns: &[&str],
    ) -> Self {
        let mut description = format!("Attribute `{}` is not filterable.", attribute.attribute);
        if filterable_patterns.is_empty() {
            description.push_str(" This index does not have configured filterable attributes.");
        } else {
            let mut patterns = filterable_patterns.to_vec();
            patterns.sort_unstable();
            description.push_str(" Available filterable attribute patterns are: ");
            for (i, pattern) in patterns.iter().enumerate() {
                if i > 0 {
                    description.push_str(", ");
                }
                let _ = write!(description, "`{pattern}`");
            }
            description.push('.');
        }
        Self::located(
            FilterErrorKind::AttributeNotFilterable,
            &description,
            &attribute.filter,
            attribute.span,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_one_based_characters_of_the_current_line() {
        let e = FilterError::located(FilterErrorKind::ExpectedValue, "d", "é = 🐻", (4, 5));
        assert_eq!(e.message, "d\n5:6 é = 🐻");
        assert_eq!(e.span, Some((4, 5)));
        let e = FilterError::located(FilterErrorKind::ExpectedValue, "d", "a = 1\nb c", (8, 9));
        assert_eq!(e.message, "d\n3:4 a = 1\nb c");
        assert_eq!(e.to_string(), e.message);
    }

    #[test]
    fn not_filterable_lists_sorted_patterns_or_says_there_are_none() {
        let attribute = crate::AttributeSpan {
            attribute: "genre".into(),
            filter: "genre = horror".into(),
            span: (0, 5),
        };
        let e = FilterError::attribute_not_filterable(&attribute, &[]);
        assert_eq!(
            e.message,
            "Attribute `genre` is not filterable. This index does not have configured filterable attributes.\n1:6 genre = horror"
        );
        let e = FilterError::attribute_not_filterable(&attribute, &["title", "id"]);
        assert_eq!(
            e.message,
            "Attribute `genre` is not filterable. Available filterable attribute patterns are: `id`, `title`.\n1:6 genre = horror"
        );
        assert_eq!(e.kind, FilterErrorKind::AttributeNotFilterable);
    }
}
