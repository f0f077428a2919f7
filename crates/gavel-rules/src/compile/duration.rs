//! Durations as packs write them (`500ms`, `10s`, `1h30m`, `30d`): feature
//! windows, cooldowns, label TTLs and test offsets.

/// Parses `500ms`, `10s`, `5m`, `2h`, `30d`, and sums like `1h30m` or `2d 5m`.
pub(crate) fn parse_window(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration `{text}` (expected e.g. 10s, 5m, 1h30m, 30d)");
    let mut rest = text;
    let mut ms: u64 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("invalid duration unit in `{text}` (expected ms, s, m, h or d)")),
        };
        rest = rest[unit_len..].trim_start();
        ms = n
            .checked_mul(scale)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    if ms == 0 || ms > 30 * 86_400_000 {
        return Err(format!("duration `{text}` must be between 1ms and 30d"));
    }
    Ok(ms)
}

/// Milliseconds as a pack writes them, largest units first (`1d`,
/// `1h30m`, `1m0s500ms` is written `1m500ms`): what [`parse_window`] reads back.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    let mut rest = ms;
    for (unit, scale) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= scale {
            text.push_str(&format!("{}{unit}", rest / scale));
            rest %= scale;
        }
    }
    text
}

/// An offset within a test: like a window, but zero is allowed.
pub(super) fn parse_offset(text: &str) -> std::result::Result<u64, String> {
    if text.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(0);
    }
    parse_window(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_durations_read_back() {
        for (ms, text) in [(86_400_000, "1d"), (5_400_000, "1h30m"), (60_500, "1m500ms"), (1, "1ms"), (0, "0s")] {
            assert_eq!(format_duration(ms), text);
            if ms > 0 {
                assert_eq!(parse_window(text), Ok(ms));
            }
        }
    }

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_window("500ms"), Ok(500));
        assert_eq!(parse_window("1h30m"), Ok(5_400_000));
        assert_eq!(parse_window("2d 5m"), Ok(2 * 86_400_000 + 300_000));
        assert_eq!(parse_offset("0s"), Ok(0));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("31d").is_err());
        assert!(parse_window("5y").is_err());
        assert!(parse_window("").is_err());
    }
}
