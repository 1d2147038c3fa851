//! Dates and times as people in the Netherlands read them: Europe/Amsterdam.
//!
//! The EU has switched clocks by one rule since 1996 (Directive 2000/84/EC): summer time from
//! 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October. That
//! rule is all the pages need, so no time-zone database is embedded.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

use super::i18n::Lang;

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let mut day = next_month.unwrap_or(NaiveDate::MIN) - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    day
}

/// The offset of Amsterdam from UTC at `at`: one hour in winter, two in summer.
pub fn amsterdam_offset(at: DateTime<Utc>) -> Duration {
    let year = at.year();
    let switch = |month| Utc.from_utc_datetime(&last_sunday(year, month).and_hms_opt(1, 0, 0).unwrap_or_default());
    if at >= switch(3) && at < switch(10) {
        Duration::hours(2)
    } else {
        Duration::hours(1)
    }
}

/// `at` on the Amsterdam clock, as a naive local time.
pub fn local(at: DateTime<Utc>) -> chrono::NaiveDateTime {
    (at + amsterdam_offset(at)).naive_utc()
}

/// A time read off the Amsterdam clock (an `<input type="datetime-local">`), in UTC. In the
/// hour the clocks go back the earlier (summer) reading is taken; a time in the hour that
/// does not exist in spring is read as winter time.
pub fn from_local(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    let as_utc = Utc.from_utc_datetime(&local);
    let summer = as_utc - Duration::hours(2);
    if amsterdam_offset(summer) == Duration::hours(2) {
        summer
    } else {
        as_utc - Duration::hours(1)
    }
}

/// The value of an `<input type="datetime-local">` showing `at`.
pub fn input_value(at: DateTime<Utc>) -> String {
    local(at).format("%Y-%m-%dT%H:%M").to_string()
}

const MONTHS_NL: [&str; 12] = [
    "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
];
const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month_name(lang: Lang, month: u32) -> &'static str {
    let index = (month.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Nl => MONTHS_NL[index],
        Lang::En => MONTHS_EN[index],
    }
}

/// A day: `2 dec 2026` / `2 Dec 2026`.
pub fn date(lang: Lang, day: NaiveDate) -> String {
    format!("{} {} {}", day.day(), month_name(lang, day.month()), day.year())
}

/// A moment on the Amsterdam clock: `2 dec 2026 14:05`.
pub fn date_time(lang: Lang, at: DateTime<Utc>) -> String {
    let local = local(at);
    format!("{} {}", date(lang, local.date()), local.format("%H:%M"))
}

/// The `datetime` attribute of a `<time>` element (machine-readable, UTC).
pub fn machine(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%MZ").to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn amsterdam_switches_at_one_utc_on_the_last_sundays() {
        // 2026: summer time from 29 March, winter time from 25 October.
        assert_eq!(amsterdam_offset(utc("2026-03-29T00:59:59Z")), Duration::hours(1));
        assert_eq!(amsterdam_offset(utc("2026-03-29T01:00:00Z")), Duration::hours(2));
        assert_eq!(amsterdam_offset(utc("2026-10-25T00:59:59Z")), Duration::hours(2));
        assert_eq!(amsterdam_offset(utc("2026-10-25T01:00:00Z")), Duration::hours(1));
        assert_eq!(amsterdam_offset(utc("2026-12-31T23:30:00Z")), Duration::hours(1));
        assert_eq!(last_sunday(2027, 3), NaiveDate::from_ymd_opt(2027, 3, 28).unwrap());
    }

    #[test]
    fn a_time_typed_on_the_amsterdam_clock_is_read_back_in_utc() {
        let typed = |t: &str| from_local(chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").unwrap());
        assert_eq!(typed("2026-12-03T14:00"), utc("2026-12-03T13:00:00Z"));
        assert_eq!(typed("2026-07-01T09:30"), utc("2026-07-01T07:30:00Z"));
        // 25 Oct 2026, 02:30 happens twice: the summer-time one is meant.
        assert_eq!(typed("2026-10-25T02:30"), utc("2026-10-25T00:30:00Z"));
        // 29 Mar 2026, 02:30 never happens: read as winter time.
        assert_eq!(typed("2026-03-29T02:30"), utc("2026-03-29T01:30:00Z"));
        for at in ["2026-12-03T13:00:00Z", "2026-07-01T07:30:00Z"] {
            assert_eq!(input_value(utc(at)).len(), 16);
            assert_eq!(typed(&input_value(utc(at))), utc(at));
        }
    }

    #[test]
    fn times_are_shown_on_the_amsterdam_clock() {
        assert_eq!(date_time(Lang::Nl, utc("2026-12-02T13:05:00Z")), "2 dec 2026 14:05");
        assert_eq!(date_time(Lang::En, utc("2026-07-01T22:30:00Z")), "2 Jul 2026 00:30");
        assert_eq!(
            date(Lang::Nl, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            "1 mrt 2026"
        );
    }
}
