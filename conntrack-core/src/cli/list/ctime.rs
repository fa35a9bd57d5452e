//! The `ctime(3)` text the CLI prints inside `[start=...]` and `[stop=...]`:
//! `"%.3s %.3s%3d %.2d:%.2d:%.2d %d"` (weekday, month, space-padded day,
//! time, year), in the capturing host's local time zone.
//!
//! The time zone is not in the text, so this module reads and writes it as
//! UTC. Dates are converted with the days-from-civil algorithm of the
//! proleptic Gregorian calendar (no time zone database, no allocation).

use core::fmt;
use nom::Parser;
use nom::character::complete::{alpha1, char, digit1, space1};
use nom::combinator::all_consuming;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

/// Seconds since the epoch, printed the way `ctime(3)` prints them in UTC.
pub(crate) struct Ctime(pub u64);

impl fmt::Display for Ctime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = WEEKDAYS[((days + 4) % 7) as usize];
        write!(
            f,
            "{weekday} {} {day:>2} {:02}:{:02}:{:02} {year}",
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Reads `ctime(3)` text as UTC seconds since the epoch. `None` when the
/// text is not of that form, names a date that does not exist, disagrees
/// with its own weekday, or lies before 1970.
pub(crate) fn parse_ctime(text: &str) -> Option<u64> {
    let mut parser = all_consuming((
        alpha1::<&str, nom::error::Error<&str>>,
        space1,
        alpha1,
        space1,
        digit1,
        space1,
        digit1,
        char(':'),
        digit1,
        char(':'),
        digit1,
        space1,
        digit1,
    ));
    let (_, (wday, _, mon, _, day, _, h, _, m, _, s, _, year)) = parser.parse(text).ok()?;
    let month = MONTHS.iter().position(|&n| n == mon)? as u32 + 1;
    let day: u32 = small(day)?;
    let (h, m, s): (u64, u64, u64) = (small(h)?, small(m)?, small(s)?);
    if year.len() > 9 || h > 23 || m > 59 || s > 59 {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day)
        || WEEKDAYS[(days + 4).rem_euclid(7) as usize] != wday
    {
        return None;
    }
    let days = u64::try_from(days).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// A number of at most two digits.
fn small<T: From<u8>>(digits: &str) -> Option<T> {
    if digits.len() > 2 {
        return None;
    }
    digits.parse::<u8>().ok().map(T::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Ctime(0).to_string(), "Thu Jan  1 00:00:00 1970");
        // Captured on this machine (TZ=UTC), see fixtures/cli-list.
        assert_eq!(Ctime(1_795_251_135).to_string(), "Sat Nov 21 08:52:15 2026");
        assert_eq!(parse_ctime("Sat Nov 21 08:52:15 2026"), Some(1_795_251_135));
        assert_eq!(parse_ctime("Thu Feb 29 12:00:00 2024"), Some(1_709_208_000));
        assert_eq!(Ctime(1_709_208_000).to_string(), "Thu Feb 29 12:00:00 2024");
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(parse_ctime("Fri Feb 29 12:00:00 2023"), None);
        assert_eq!(
            parse_ctime("Sun Nov 21 08:52:15 2026"),
            None,
            "wrong weekday"
        );
        assert_eq!(parse_ctime("Sat Nov 21 24:00:00 2026"), None);
        assert_eq!(parse_ctime("Wed Dec 31 23:59:59 1969"), None);
        // Found by fuzz/ (cli_list): before 1970 the day count is negative,
        // and a plain `%` made the weekday index negative.
        assert_eq!(parse_ctime("Fri Dec 26 00:00:00 1969"), None);
        assert_eq!(parse_ctime("Mon Jan  1 00:00:00 1600"), None);
        assert_eq!(parse_ctime("Sat Nov 21 08:52:15 2026 x"), None);
        assert_eq!(parse_ctime("Sat Nov 21 08:52:15"), None);
        assert_eq!(
            parse_ctime("Sat Nov 21 08:52:15 99999999999999999999"),
            None
        );
    }

    #[test]
    fn round_trips_over_centuries() {
        for secs in (0..400 * 366 * 86_400_u64).step_by(86_400 * 13 + 3_607) {
            assert_eq!(parse_ctime(&Ctime(secs).to_string()), Some(secs));
        }
    }
}
