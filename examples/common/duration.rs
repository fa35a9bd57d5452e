//! The one duration syntax of every example flag that takes a duration
//! (`--interval`, `--window`, `--history`, `--owners-every`,
//! `--min-refresh`, `--dump-every`, `--timeout`): a non-negative number
//! with an optional unit, `ms`, `s`, `m`, `h` or `d`; without a unit,
//! seconds. `1s`, `500ms`, `2m`, `1.5`, `0`.

use std::time::Duration;

/// The syntax, for error messages and `--help`.
pub const SYNTAX: &str = "seconds (1.5) or a number with a unit: 500ms, 2s, 1m, 1h, 1d";

/// Parses a duration; see the module documentation.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim_start());
    let bad = || format!("{s:?} is not a duration: give {SYNTAX}");
    // Digits and at most one dot, with a digit somewhere: no sign, no
    // exponent, no "inf" or "NaN".
    if !num.bytes().any(|b| b.is_ascii_digit()) || num.matches('.').count() > 1 {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86_400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is too long"))
}

/// A duration written back in the same syntax, as short as it is exact
/// to the millisecond: `100ms`, `1s`, `1.5s`, `2m`, `1h`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let whole = |unit_ms: u128, unit: &str| {
        (ms >= unit_ms && ms.is_multiple_of(unit_ms)).then(|| format!("{}{unit}", ms / unit_ms))
    };
    whole(86_400_000, "d")
        .or_else(|| whole(3_600_000, "h"))
        .or_else(|| whole(60_000, "m"))
        .or_else(|| whole(1000, "s"))
        .unwrap_or_else(|| {
            if ms >= 1000 {
                format!("{}s", d.as_secs_f64())
            } else {
                format!("{ms}ms")
            }
        })
}

/// A clap value parser: a duration between `min` and `max`.
pub fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = parse_duration(s)?;
        if d < min || d > max {
            return Err(format!(
                "{s:?} is out of range: use {} to {}",
                fmt_duration(min),
                fmt_duration(max)
            ));
        }
        Ok(d)
    }
}

/// A clap value parser: 0 (off) or a duration between `min` and `max`.
pub fn duration_or_off(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let within = duration_in(min, max);
    move |s| {
        let d = parse_duration(s)?;
        if d.is_zero() {
            return Ok(d);
        }
        within(s).map_err(|_| {
            format!(
                "{s:?} is out of range: use 0 (off) or {} to {}",
                fmt_duration(min),
                fmt_duration(max)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn units_and_plain_seconds() {
        for (s, want) in [
            ("1s", ms(1000)),
            ("500ms", ms(500)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1d", ms(86_400_000)),
            ("1", ms(1000)),
            ("0.5", ms(500)),
            ("1.5s", ms(1500)),
            (".25", ms(250)),
            ("3.", ms(3000)),
            ("0", Duration::ZERO),
            ("0ms", Duration::ZERO),
            (" 2 s ", ms(2000)),
            ("0.1", ms(100)),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for s in [
            "", "s", "soon", "-1", "-1s", "+1", "1e3", "inf", "NaN", "1..2", "1.2.3", "1 x",
            "1sec", "1S", "1ms5", "0x10", "1 2",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(
                e.contains("not a duration") && e.contains("500ms"),
                "{s:?}: {e}"
            );
        }
        assert!(parse_duration("1e30").is_err());
        assert!(
            parse_duration(&format!("{}d", u64::MAX))
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn ranges_name_their_bounds_in_the_same_syntax() {
        let p = duration_in(ms(100), ms(3_600_000));
        assert_eq!(p("100ms"), Ok(ms(100)));
        assert_eq!(p("1h"), Ok(ms(3_600_000)));
        let e = p("0").unwrap_err();
        assert!(e.contains("out of range: use 100ms to 1h"), "{e}");
        assert!(p("61m").is_err());
        let off = duration_or_off(ms(500), ms(86_400_000));
        assert_eq!(off("0"), Ok(Duration::ZERO));
        assert_eq!(off("5s"), Ok(ms(5000)));
        let e = off("0.1").unwrap_err();
        assert!(e.contains("use 0 (off) or 500ms to 1d"), "{e}");
    }

    #[test]
    fn formats_back_in_the_syntax() {
        for (d, s) in [
            (ms(100), "100ms"),
            (ms(1000), "1s"),
            (ms(1500), "1.5s"),
            (ms(120_000), "2m"),
            (ms(90_000), "90s"),
            (ms(3_600_000), "1h"),
            (ms(86_400_000), "1d"),
            (Duration::ZERO, "0ms"),
        ] {
            assert_eq!(fmt_duration(d), s);
            assert_eq!(parse_duration(s), Ok(d));
        }
    }
}
