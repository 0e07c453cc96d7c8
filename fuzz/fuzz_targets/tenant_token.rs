//! Tenant-token verification and the filter merge: any bearer value is verified or refused,
//! never a panic; a forged token (random bytes) never verifies.

#![no_main]

use eddy_server::auth::{combine_filters, filter_to_string};
use eddy_server::tenant::{SearchRules, looks_like_jwt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_jwt(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(rules) = SearchRules::parse(&value) {
            let _ = rules.rule_for("movies");
        }
        let merged = combine_filters(&serde_json::json!("tenant = 1"), Some(&value));
        // The forced filter always stays the first ANDed item.
        assert_eq!(merged[0], "tenant = 1");
        let _ = filter_to_string(&merged);
    }
});
