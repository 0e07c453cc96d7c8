//! Server settings, and Meilisearch's byte-size syntax for `--http-payload-size-limit`.

/// Settings of the HTTP layer (the engine has its own, [`eddy_engine::EngineConfig`]).
#[derive(Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, counted after decompression.
    pub payload_limit_bytes: usize,
    /// When set, every route but `/health` requires a key (see [`crate::auth`]).
    pub master_key: Option<String>,
    /// How long a client may take to send a request's headers, or to send the next piece of
    /// its body, before the connection (or request) is dropped.
    pub read_timeout: std::time::Duration,
}

impl std::fmt::Debug for ServerConfig {
    // Written by hand so that the master key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("payload_limit_bytes", &self.payload_limit_bytes)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            payload_limit_bytes: 100_000_000,
            master_key: None,
            read_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Parses a byte size as Meilisearch accepts it: plain bytes (`1048576`), or a number with a
/// unit (`100MB`, `1Gb`, `1.5 GiB`, `512kb`). Units are case-insensitive; `K`, `M`, `G`, `T`
/// are powers of 1000 and `Ki`, `Mi`, `Gi`, `Ti` powers of 1024; a trailing `b` means bytes.
///
/// # Errors
/// A message naming the value when it does not parse or overflows.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid byte size `{text}`: expected a number of bytes, optionally with a unit such as `100MB`, `1GiB` or `512kb`"
        )
    };
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => return Err(bad()),
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(multiplier).ok_or_else(bad);
    }
    let f: f64 = number.parse().map_err(|_| bad())?;
    let bytes = f * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Renders a byte count the way error messages show limits (`100 MB`, `1.5 GB`, `512 B`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TB", 1_000_000_000_000),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ];
    for (name, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            let text = format!("{value:.2}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            return format!("{text} {name}");
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_like_meilisearch() {
        assert_eq!(parse_byte_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_byte_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_byte_size("100 MB"), Ok(100_000_000));
        assert_eq!(parse_byte_size("1Gb"), Ok(1_000_000_000));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("512kb"), Ok(512_000));
        assert_eq!(parse_byte_size("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_byte_size("10B"), Ok(10));
        for bad in [
            "",
            "MB",
            "ten",
            "10 parsecs",
            "-5",
            "99999999999999999999TB",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_render_for_humans() {
        assert_eq!(human_bytes(100_000_000), "100 MB");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
