//! Timestamps and durations as CEL has them: parsing (`timestamp("…")`,
//! `duration("…")`), formatting (`string(…)`), the range checks, and the
//! calendar getters with their time zones.
//!
//! A timestamp is nanoseconds since the Unix epoch in an `i128`, limited to
//! CEL's range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. A
//! duration is nanoseconds in an `i64`, cel-go's range (about ±292 years).
//! RFC 3339 parsing and the calendar are `chrono`'s; zone rules are
//! `chrono-tz`'s IANA database. The duration syntax is Go's
//! `time.ParseDuration`, which cel-go uses and no crate implements; its
//! parser here works on bytes with checked arithmetic and cannot panic (the
//! fuzz test holds it to that).

use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Timelike, Utc};

/// Nanoseconds in a second.
pub(crate) const NANOS: i128 = 1_000_000_000;
/// 0001-01-01T00:00:00Z, in nanoseconds since the epoch.
pub(crate) const TIMESTAMP_MIN: i128 = -62_135_596_800 * NANOS;
/// 9999-12-31T23:59:59.999999999Z, in nanoseconds since the epoch.
pub(crate) const TIMESTAMP_MAX: i128 = 253_402_300_799 * NANOS + (NANOS - 1);

/// `Some(t)` when `t` is inside CEL's timestamp range.
pub(crate) fn checked_timestamp(t: i128) -> Option<i128> {
    (TIMESTAMP_MIN..=TIMESTAMP_MAX).contains(&t).then_some(t)
}

/// Parses an RFC 3339 timestamp as cel-go does (Go's `time.RFC3339`): an
/// upper-case `T` and `Z`, up to nine fractional digits kept (more are
/// truncated), no leap second, the result inside CEL's range.
pub(crate) fn parse_timestamp(text: &str) -> Option<i128> {
    // chrono also takes `t`, `z` and a space; Go does not.
    if text.as_bytes().get(10) != Some(&b'T') || text.ends_with('z') {
        return None;
    }
    let parsed = DateTime::parse_from_rfc3339(text).ok()?;
    let nanos = parsed.timestamp_subsec_nanos();
    // chrono reads second 60 as a leap second (nanos past 1e9); Go rejects it.
    if nanos >= 1_000_000_000 {
        return None;
    }
    checked_timestamp(i128::from(parsed.timestamp()) * NANOS + i128::from(nanos))
}

/// The timestamp as chrono's UTC date-time (`None` outside chrono's range,
/// which is wider than CEL's).
fn utc(t: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(t.div_euclid(NANOS)).ok()?;
    // rem_euclid(1e9) is in 0..1e9, which fits in u32.
    let nanos = t.rem_euclid(NANOS) as u32;
    DateTime::from_timestamp(secs, nanos)
}

/// Formats a timestamp as RFC 3339 in UTC with as many fractional digits
/// as it needs (Go's `time.RFC3339Nano`, what cel-go's `string()` gives).
pub(crate) fn format_timestamp(t: i128) -> String {
    let Some(dt) = utc(t) else {
        return format!("<timestamp {t}ns out of range>");
    };
    let mut out = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = dt.timestamp_subsec_nanos();
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Formats a duration as cel-go's `string()` does: seconds, shortest
/// decimal, then `s` (`"1.5s"`, `"3600s"`).
pub(crate) fn format_duration(d: i64) -> String {
    // Go's Duration.Seconds(): whole seconds plus the fraction, as float64.
    let (secs, frac) = (d / 1_000_000_000, d % 1_000_000_000);
    let seconds = secs as f64 + frac as f64 / 1e9;
    format!("{seconds}s")
}

/// Parses a duration in Go's `time.ParseDuration` syntax, as cel-go's
/// `duration()` does: an optional sign, then one or more decimal numbers
/// each with a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), e.g.
/// `"1h2m3.5s"`, `"-1.5s"`, `"100ms"`; or `"0"`. `None` when the text is
/// not one or the value overflows an `i64` of nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let mut s = text.as_bytes();
    let mut negative = false;
    if let Some((&sign @ (b'-' | b'+'), rest)) = s.split_first() {
        negative = sign == b'-';
        s = rest;
    }
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return None;
        }
        // The whole part: [0-9]*, overflow is an error.
        let whole_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..whole_len] {
            whole = whole.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            if whole > LIMIT {
                return None;
            }
        }
        s = &s[whole_len..];
        // The fraction: (\.[0-9]*)?, digits past u64 precision are dropped.
        let (mut fraction, mut scale, mut fraction_len) = (0u64, 1f64, 0usize);
        if let Some((b'.', rest)) = s.split_first() {
            s = rest;
            fraction_len = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..fraction_len] {
                if overflow {
                    continue;
                }
                match fraction.checked_mul(10).and_then(|f| f.checked_add(u64::from(c - b'0'))) {
                    Some(f) if f <= LIMIT => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &s[fraction_len..];
        }
        if whole_len == 0 && fraction_len == 0 {
            return None;
        }
        // The unit: everything up to the next digit or point.
        let unit_len = s.iter().take_while(|c| !(**c == b'.' || c.is_ascii_digit())).count();
        let unit: u64 = match &s[..unit_len] {
            b"ns" => 1,
            // `µs` (micro sign) and `μs` (Greek mu), in UTF-8.
            b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        s = &s[unit_len..];
        if whole > LIMIT / unit {
            return None;
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // As Go: float64 is nanosecond-accurate for fractions of an hour.
            value = value.checked_add((fraction as f64 * (unit as f64 / scale)) as u64)?;
            if value > LIMIT {
                return None;
            }
        }
        total = total.checked_add(value)?;
        if total > LIMIT {
            return None;
        }
    }
    if negative {
        // total <= 2^63, so -total fits.
        Some((total as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(total).ok()
    }
}

/// A time zone argument of the timestamp getters: an IANA name
/// (`"America/New_York"`) or a fixed offset (`"+05:30"`, `"-02:30"`,
/// `"02:00"`), parsed as cel-go does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Zone {
    /// Coordinated Universal Time.
    Utc,
    /// A fixed offset east of UTC.
    Fixed(FixedOffset),
    /// A zone from the IANA database.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses a zone argument: with a `:` it is `[+-]hours:minutes` (hours
    /// and minutes read as integers, the sign applying to both), otherwise
    /// an IANA zone name. `None` for anything else, or an offset of a day
    /// or more.
    pub(crate) fn parse(text: &str) -> Option<Zone> {
        let Some((hours, minutes)) = text.split_once(':') else {
            return match text {
                "" | "UTC" => Some(Zone::Utc),
                name => name.parse::<chrono_tz::Tz>().ok().map(Zone::Named),
            };
        };
        let (hours, minutes) = (go_atoi(hours)?, go_atoi(minutes)?);
        let total = if text.starts_with('-') {
            hours.checked_mul(60)?.checked_sub(minutes)?
        } else {
            hours.checked_mul(60)?.checked_add(minutes)?
        };
        let seconds = i32::try_from(total.checked_mul(60)?).ok()?;
        FixedOffset::east_opt(seconds).map(Zone::Fixed)
    }
}

/// Go's `strconv.Atoi` on a short decimal: optional sign, ASCII digits.
fn go_atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What a timestamp getter returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimePart {
    /// `getFullYear`.
    FullYear,
    /// `getMonth`: 0 for January.
    Month,
    /// `getDate`: the day of the month from 1.
    Date,
    /// `getDayOfMonth`: the day of the month from 0.
    DayOfMonth,
    /// `getDayOfWeek`: 0 for Sunday.
    DayOfWeek,
    /// `getDayOfYear`: from 0.
    DayOfYear,
    /// `getHours`.
    Hours,
    /// `getMinutes`.
    Minutes,
    /// `getSeconds`.
    Seconds,
    /// `getMilliseconds`.
    Milliseconds,
}

impl TimePart {
    /// The getter called `name`, if there is one.
    pub(crate) fn from_name(name: &str) -> Option<TimePart> {
        Some(match name {
            "getFullYear" => TimePart::FullYear,
            "getMonth" => TimePart::Month,
            "getDate" => TimePart::Date,
            "getDayOfMonth" => TimePart::DayOfMonth,
            "getDayOfWeek" => TimePart::DayOfWeek,
            "getDayOfYear" => TimePart::DayOfYear,
            "getHours" => TimePart::Hours,
            "getMinutes" => TimePart::Minutes,
            "getSeconds" => TimePart::Seconds,
            "getMilliseconds" => TimePart::Milliseconds,
            _ => return None,
        })
    }

    /// Whether durations have this getter too.
    pub(crate) fn on_durations(self) -> bool {
        matches!(self, TimePart::Hours | TimePart::Minutes | TimePart::Seconds | TimePart::Milliseconds)
    }

    /// The part of timestamp `t` in `zone`; `None` outside chrono's range.
    pub(crate) fn of_timestamp(self, t: i128, zone: Zone) -> Option<i64> {
        let dt = utc(t)?;
        Some(match zone {
            Zone::Utc => self.of(&dt),
            Zone::Fixed(offset) => self.of(&dt.with_timezone(&offset)),
            Zone::Named(tz) => {
                let offset = tz.offset_from_utc_datetime(&dt.naive_utc()).fix();
                self.of(&dt.with_timezone(&offset))
            }
        })
    }

    fn of<Z: TimeZone>(self, dt: &DateTime<Z>) -> i64 {
        i64::from(match self {
            TimePart::FullYear => return i64::from(dt.year()),
            TimePart::Month => dt.month0(),
            TimePart::Date => dt.day(),
            TimePart::DayOfMonth => dt.day0(),
            TimePart::DayOfWeek => dt.weekday().num_days_from_sunday(),
            TimePart::DayOfYear => dt.ordinal0(),
            TimePart::Hours => dt.hour(),
            TimePart::Minutes => dt.minute(),
            TimePart::Seconds => dt.second(),
            TimePart::Milliseconds => dt.nanosecond() / 1_000_000,
        })
    }

    /// The part of duration `d`: its whole hours, minutes, seconds or
    /// milliseconds, truncated toward zero (cel-go's).
    pub(crate) fn of_duration(self, d: i64) -> i64 {
        match self {
            TimePart::Hours => d / 3_600_000_000_000,
            TimePart::Minutes => d / 60_000_000_000,
            TimePart::Seconds => d / 1_000_000_000,
            _ => d / 1_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> i128 {
        parse_timestamp(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn timestamps_round_trip_across_cel_range() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-11-20T19:04:05.25Z",
            "1900-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(format_timestamp(ts(text)), text);
        }
        assert_eq!(ts("2026-11-20T19:04:05.25+01:00"), ts("2026-11-20T18:04:05.25Z"));
        assert_eq!(ts("2026-11-20T19:04:05.1234567891Z"), ts("2026-11-20T19:04:05.123456789Z"));
    }

    #[test]
    fn timestamps_outside_the_grammar_or_range_do_not_parse() {
        for text in [
            "2026-11-20T19:04:05+0é00",
            "2026-11-20T19:04:05+é",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-20t19:04:05Z",
            "2026-11-20 19:04:05Z",
            "2026-11-20T19:04:05z",
            "2016-12-31T23:59:60Z",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "10000-01-01T00:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn durations_parse_as_go_does() {
        let cases: &[(&str, i64)] = &[
            ("1h2m3.5s", 3_723_500_000_000),
            ("-1.5s", -1_500_000_000),
            ("+1s", 1_000_000_000),
            ("100ms", 100_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            ("3ns", 3),
            ("0", 0),
            ("-0", 0),
            ("0s", 0),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("1.000000001s", 1_000_000_001),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("1.5h", 5_400_000_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(parse_duration(text), Some(*nanos), "{text}");
        }
        for text in
            ["", "-", "s", "1", "1x", ".s", "1h 2m", "9223372036854775808ns", "320000000000s", "5 minutes", "1é"]
        {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn durations_format_in_seconds() {
        assert_eq!(format_duration(1_000_000_000_000_000), "1000000s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(-1), "-0.000000001s");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn zones_parse_as_cel_go_does() {
        let east = |s: i32| Some(Zone::Fixed(FixedOffset::east_opt(s).unwrap()));
        assert_eq!(Zone::parse("+05:30"), east(19_800));
        assert_eq!(Zone::parse("-02:30"), east(-9_000));
        assert_eq!(Zone::parse("-00:30"), east(-1_800));
        assert_eq!(Zone::parse("02:00"), east(7_200));
        assert_eq!(Zone::parse("UTC"), Some(Zone::Utc));
        assert_eq!(Zone::parse("America/New_York"), Some(Zone::Named(chrono_tz::Tz::America__New_York)));
        for bad in ["Mars/Olympus", "+5:é", "24:00", "1:2:3", "Local"] {
            assert_eq!(Zone::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn getters_follow_cel_go() {
        let t = ts("2009-02-13T23:31:30.123456789Z");
        let get = |part: TimePart, zone| part.of_timestamp(t, zone).unwrap();
        assert_eq!(get(TimePart::FullYear, Zone::Utc), 2009);
        assert_eq!(get(TimePart::Month, Zone::Utc), 1);
        assert_eq!(get(TimePart::Date, Zone::Utc), 13);
        assert_eq!(get(TimePart::DayOfMonth, Zone::Utc), 12);
        assert_eq!(get(TimePart::DayOfWeek, Zone::Utc), 5);
        assert_eq!(get(TimePart::DayOfYear, Zone::Utc), 43);
        assert_eq!(get(TimePart::Milliseconds, Zone::Utc), 123);
        let sydney = Zone::parse("Australia/Sydney").unwrap();
        assert_eq!(get(TimePart::Date, sydney), 14);
        assert_eq!(get(TimePart::Hours, Zone::parse("America/New_York").unwrap()), 18);
        assert_eq!(get(TimePart::Minutes, Zone::parse("Asia/Kathmandu").unwrap()), 16);
        assert_eq!(TimePart::Hours.of_duration(10_000_000_000_000), 2);
        assert_eq!(TimePart::Minutes.of_duration(-3_730_000_000_000), -62);
    }
}
