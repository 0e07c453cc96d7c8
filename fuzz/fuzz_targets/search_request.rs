//! The search-request decoder: a `POST` body (any JSON) and a `GET` query string (any
//! bytes) become a validated query or a Meilisearch error, never a panic; the window of hits
//! asked for never exceeds `maxTotalHits`.

#![no_main]

use eddy_server::params::QueryParams;
use eddy_server::routes::search::{SearchQuery, window};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = eddy_server::body::parse_json_bytes(data)
        && let Ok(query) = SearchQuery::from_json(value)
    {
        let (offset, limit) = window(&query, 1000);
        assert!(offset + limit <= 1000);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(params) = QueryParams::parse(Some(text))
        && let Ok(query) = SearchQuery::from_query(&params)
    {
        let (offset, limit) = window(&query, 1000);
        assert!(offset + limit <= 1000);
    }
});
