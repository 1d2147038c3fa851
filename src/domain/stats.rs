//! Definitions of every published statistic (see docs/statistics.md), small-cell
//! suppression and the CSV form. The database counts; this module turns counts into the
//! report, so the definitions live in one place and are tested without a database.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

/// Counts as the database returns them for one period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseCounts {
    pub total: u64,
    pub victims: u64,
    pub concerned_persons: u64,
    pub professionals: u64,
    pub sexual_only: u64,
    pub criminal_only: u64,
    pub labour_only: u64,
    pub other_only: u64,
    pub combination: u64,
    /// Victims (reporter_role = victim) whose age at contact is known.
    pub age_known: u64,
    pub age_minors: u64,
    pub age_sum: u64,
    pub female: u64,
    pub male: u64,
    pub non_binary: u64,
    /// Gender `unknown` or not recorded.
    pub gender_unknown: u64,
    pub dutch: u64,
    pub other_eu: u64,
    pub non_eu: u64,
    pub nationality_unknown: u64,
    pub anonymous_notifications: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralCounts {
    pub total: u64,
    pub by_destination: BTreeMap<String, u64>,
    pub by_state: BTreeMap<String, u64>,
    pub by_outcome: BTreeMap<String, u64>,
}

/// Three-way conversations by where they stand. `offered` counts every conversation, `held`
/// those that took place (held or evaluated); the intentions are those recorded at the
/// evaluation (only an evaluated conversation has one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreeWayCounts {
    pub offered: u64,
    pub declined: u64,
    /// Still offered or scheduled: neither declined nor held yet.
    pub awaiting: u64,
    pub held: u64,
    pub evaluated: u64,
    pub will_report: u64,
    pub undecided: u64,
    pub will_not_report: u64,
}

impl ThreeWayCounts {
    /// Adds `n` conversations in `state` with the recorded `intention`.
    pub fn add(&mut self, state: &str, intention: Option<&str>, n: u64) {
        self.offered += n;
        match state {
            "declined" => self.declined += n,
            "offered" | "scheduled" => self.awaiting += n,
            "held" => self.held += n,
            "evaluated" => {
                self.held += n;
                self.evaluated += n;
                match intention {
                    Some("will_report") => self.will_report += n,
                    Some("undecided") => self.undecided += n,
                    Some("will_not_report") => self.will_not_report += n,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// A count that may be withheld (`null`) to protect small groups.
pub type Cell = Option<u64>;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Persons {
    pub total: Cell,
    pub victims: Cell,
    pub concerned_persons: Cell,
    pub professionals: Cell,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exploitation {
    pub sexual: Cell,
    pub criminal: Cell,
    pub labour: Cell,
    pub other: Cell,
    /// Cases naming two or more forms (counted only here).
    pub combination: Cell,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgeStats {
    pub known: Cell,
    pub minors: Cell,
    pub adults: Cell,
    pub minor_share_pct: Option<f64>,
    pub adult_share_pct: Option<f64>,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GenderStats {
    pub female: Cell,
    pub male: Cell,
    pub non_binary: Cell,
    pub unknown: Cell,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NationalityStats {
    pub dutch: Cell,
    pub other_eu: Cell,
    pub non_eu: Cell,
    pub unknown: Cell,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReferralStats {
    pub total: Cell,
    pub by_destination: BTreeMap<String, Cell>,
    pub by_state: BTreeMap<String, Cell>,
    pub by_outcome: BTreeMap<String, Cell>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreeWayStats {
    pub offered: Cell,
    pub held: Cell,
    pub will_report: Cell,
}

/// The statistics report of a period (definitions in docs/statistics.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub period: Period,
    pub persons: Persons,
    pub registering_organisation: BTreeMap<String, Cell>,
    pub exploitation: Exploitation,
    pub age: AgeStats,
    pub gender: GenderStats,
    pub nationality: NationalityStats,
    pub referrals: ReferralStats,
    pub three_way_conversations: ThreeWayStats,
    /// Anonymous notifications to the focal point among these cases.
    pub anonymous_notifications: Cell,
    /// Paths of the cells withheld because they fall below `stats.min_cell`.
    pub suppressed: Vec<String>,
}

/// A calendar quarter, e.g. 2026 Q1 (January to March).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub number: u32,
}

impl Quarter {
    pub fn of(date: NaiveDate) -> Self {
        use chrono::Datelike;
        Self {
            year: date.year(),
            number: (date.month() - 1) / 3 + 1,
        }
    }

    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.number - 1) * 3 + 1, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn next(&self) -> Self {
        if self.number == 4 {
            Self {
                year: self.year + 1,
                number: 1,
            }
        } else {
            Self {
                year: self.year,
                number: self.number + 1,
            }
        }
    }

    pub fn last_day(&self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MAX)
    }

    /// `2026-Q1`, as the API and the CSV name it.
    pub fn label(&self) -> String {
        format!("{}-Q{}", self.year, self.number)
    }
}

/// The calendar quarters that overlap `from` to `to` (inclusive), each with its days inside
/// the period: a period that starts mid-quarter counts only its own days of that quarter.
pub fn quarters_of(from: NaiveDate, to: NaiveDate) -> Vec<(Quarter, NaiveDate, NaiveDate)> {
    let mut quarters = Vec::new();
    let mut quarter = Quarter::of(from);
    while from <= to && quarter.first_day() <= to {
        quarters.push((quarter, quarter.first_day().max(from), quarter.last_day().min(to)));
        quarter = quarter.next();
    }
    quarters
}

/// What followed the conversations held in a quarter: the person's intention as recorded at
/// the evaluation, or not evaluated yet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreeWayFollowUp {
    /// The person intends to report (or has reported) to the police.
    pub will_report: Cell,
    /// The person has not decided: contact is kept.
    pub undecided: Cell,
    /// The person will not report: no follow-up with the police.
    pub will_not_report: Cell,
    /// Held, evaluation not recorded yet.
    pub not_evaluated: Cell,
}

/// The three-way conversations offered in one quarter and where they stand now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreeWayQuarter {
    /// `2026-Q1`.
    pub quarter: String,
    /// The quarter's days inside the asked period.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub offered: Cell,
    pub declined: Cell,
    /// Offered or scheduled, not held yet.
    pub awaiting: Cell,
    pub held: Cell,
    pub followed_by: ThreeWayFollowUp,
}

/// The course of three-way conversations per quarter (the CKM's recommendation 2):
/// definitions in docs/statistics.md.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreeWayCourse {
    pub period: Period,
    /// Oldest first.
    pub quarters: Vec<ThreeWayQuarter>,
    /// Paths of the cells withheld because they fall below `stats.min_cell`, as
    /// `2026-Q1.held`.
    pub suppressed: Vec<String>,
}

/// The published course from the counts of each quarter, small cells withheld.
pub fn three_way_course(
    from: NaiveDate,
    to: NaiveDate,
    quarters: &[(Quarter, NaiveDate, NaiveDate, ThreeWayCounts)],
    min_cell: u32,
) -> ThreeWayCourse {
    let mut s = Suppressor {
        min_cell: u64::from(min_cell),
        suppressed: Vec::new(),
    };
    let quarters = quarters
        .iter()
        .map(|(quarter, first, last, c)| {
            let q = quarter.label();
            ThreeWayQuarter {
                offered: s.cell(&format!("{q}.offered"), c.offered),
                declined: s.cell(&format!("{q}.declined"), c.declined),
                awaiting: s.cell(&format!("{q}.awaiting"), c.awaiting),
                held: s.cell(&format!("{q}.held"), c.held),
                followed_by: ThreeWayFollowUp {
                    will_report: s.cell(&format!("{q}.followed_by.will_report"), c.will_report),
                    undecided: s.cell(&format!("{q}.followed_by.undecided"), c.undecided),
                    will_not_report: s.cell(&format!("{q}.followed_by.will_not_report"), c.will_not_report),
                    not_evaluated: s.cell(&format!("{q}.followed_by.not_evaluated"), c.held - c.evaluated),
                },
                quarter: q,
                from: *first,
                to: *last,
            }
        })
        .collect();
    ThreeWayCourse {
        period: Period { from, to },
        quarters,
        suppressed: s.suppressed,
    }
}

/// Rounds to one decimal, as published.
pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// A count as it may be published: withheld (`None`) from 1 to `min_cell - 1`, where a
/// person could be recognised; zero and larger counts stand.
pub fn published(value: u64, min_cell: u64) -> Cell {
    if value > 0 && value < min_cell {
        None
    } else {
        Some(value)
    }
}

/// Withholds counts from 1 to `min_cell - 1` and remembers where.
struct Suppressor {
    min_cell: u64,
    suppressed: Vec<String>,
}

impl Suppressor {
    fn cell(&mut self, path: &str, value: u64) -> Cell {
        let cell = published(value, self.min_cell);
        if cell.is_none() {
            self.suppressed.push(path.to_string());
        }
        cell
    }

    fn map(&mut self, path: &str, values: &BTreeMap<String, u64>) -> BTreeMap<String, Cell> {
        values
            .iter()
            .map(|(key, value)| (key.clone(), self.cell(&format!("{path}.{key}"), *value)))
            .collect()
    }
}

pub fn build_report(
    from: NaiveDate,
    to: NaiveDate,
    cases: &CaseCounts,
    by_organisation: &BTreeMap<String, u64>,
    referrals: &ReferralCounts,
    three_way: &ThreeWayCounts,
    min_cell: u32,
) -> Report {
    let mut s = Suppressor {
        min_cell: u64::from(min_cell),
        suppressed: Vec::new(),
    };
    let adults = cases.age_known - cases.age_minors;
    let known = s.cell("age.known", cases.age_known);
    let minors = s.cell("age.minors", cases.age_minors);
    let adults_cell = s.cell("age.adults", adults);
    // Shares and the mean would reveal withheld counts, so they go with them.
    let age_visible = known.is_some() && minors.is_some() && adults_cell.is_some() && cases.age_known > 0;
    let share = |part: u64| round1(part as f64 * 100.0 / cases.age_known as f64);
    let age = AgeStats {
        known,
        minors,
        adults: adults_cell,
        minor_share_pct: age_visible.then(|| share(cases.age_minors)),
        adult_share_pct: age_visible.then(|| share(adults)),
        mean: age_visible.then(|| round1(cases.age_sum as f64 / cases.age_known as f64)),
    };
    if !age_visible && cases.age_known > 0 {
        s.suppressed.extend([
            "age.minor_share_pct".into(),
            "age.adult_share_pct".into(),
            "age.mean".into(),
        ]);
    }
    Report {
        period: Period { from, to },
        persons: Persons {
            total: s.cell("persons.total", cases.total),
            victims: s.cell("persons.victims", cases.victims),
            concerned_persons: s.cell("persons.concerned_persons", cases.concerned_persons),
            professionals: s.cell("persons.professionals", cases.professionals),
        },
        registering_organisation: s.map("registering_organisation", by_organisation),
        exploitation: Exploitation {
            sexual: s.cell("exploitation.sexual", cases.sexual_only),
            criminal: s.cell("exploitation.criminal", cases.criminal_only),
            labour: s.cell("exploitation.labour", cases.labour_only),
            other: s.cell("exploitation.other", cases.other_only),
            combination: s.cell("exploitation.combination", cases.combination),
        },
        age,
        gender: GenderStats {
            female: s.cell("gender.female", cases.female),
            male: s.cell("gender.male", cases.male),
            non_binary: s.cell("gender.non_binary", cases.non_binary),
            unknown: s.cell("gender.unknown", cases.gender_unknown),
        },
        nationality: NationalityStats {
            dutch: s.cell("nationality.dutch", cases.dutch),
            other_eu: s.cell("nationality.other_eu", cases.other_eu),
            non_eu: s.cell("nationality.non_eu", cases.non_eu),
            unknown: s.cell("nationality.unknown", cases.nationality_unknown),
        },
        referrals: ReferralStats {
            total: s.cell("referrals.total", referrals.total),
            by_destination: s.map("referrals.by_destination", &referrals.by_destination),
            by_state: s.map("referrals.by_state", &referrals.by_state),
            by_outcome: s.map("referrals.by_outcome", &referrals.by_outcome),
        },
        three_way_conversations: ThreeWayStats {
            offered: s.cell("three_way_conversations.offered", three_way.offered),
            held: s.cell("three_way_conversations.held", three_way.held),
            will_report: s.cell("three_way_conversations.will_report", three_way.will_report),
        },
        anonymous_notifications: s.cell("anonymous_notifications", cases.anonymous_notifications),
        suppressed: s.suppressed,
    }
}

fn csv_cell<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The published CSV: `section,key,value`, withheld cells empty (null).
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from("section,key,value\n");
    for (section, key, value) in rows(report) {
        out.push_str(&format!("{section},{key},{value}\n"));
    }
    out
}

/// The report as the published rows `(section, key, value)`, in the CSV's order: what the
/// CSV holds and the console's tables show, withheld cells empty.
pub fn rows(report: &Report) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = vec![
        ("period".into(), "from".into(), report.period.from.to_string()),
        ("period".into(), "to".into(), report.period.to.to_string()),
    ];
    let mut push = |section: &str, key: &str, value: String| rows.push((section.into(), key.into(), value));
    let p = &report.persons;
    for (key, value) in [
        ("total", p.total),
        ("victims", p.victims),
        ("concerned_persons", p.concerned_persons),
        ("professionals", p.professionals),
    ] {
        push("persons", key, csv_cell(value));
    }
    for (key, value) in &report.registering_organisation {
        push("registering_organisation", key, csv_cell(*value));
    }
    let e = &report.exploitation;
    for (key, value) in [
        ("sexual", e.sexual),
        ("criminal", e.criminal),
        ("labour", e.labour),
        ("other", e.other),
        ("combination", e.combination),
    ] {
        push("exploitation", key, csv_cell(value));
    }
    let a = &report.age;
    for (key, value) in [("known", a.known), ("minors", a.minors), ("adults", a.adults)] {
        push("age", key, csv_cell(value));
    }
    for (key, value) in [
        ("minor_share_pct", a.minor_share_pct),
        ("adult_share_pct", a.adult_share_pct),
        ("mean", a.mean),
    ] {
        push("age", key, csv_cell(value));
    }
    let g = &report.gender;
    for (key, value) in [
        ("female", g.female),
        ("male", g.male),
        ("non_binary", g.non_binary),
        ("unknown", g.unknown),
    ] {
        push("gender", key, csv_cell(value));
    }
    let n = &report.nationality;
    for (key, value) in [
        ("dutch", n.dutch),
        ("other_eu", n.other_eu),
        ("non_eu", n.non_eu),
        ("unknown", n.unknown),
    ] {
        push("nationality", key, csv_cell(value));
    }
    push("referrals", "total", csv_cell(report.referrals.total));
    for (section, map) in [
        ("referrals.by_destination", &report.referrals.by_destination),
        ("referrals.by_state", &report.referrals.by_state),
        ("referrals.by_outcome", &report.referrals.by_outcome),
    ] {
        for (key, value) in map {
            push(section, key, csv_cell(*value));
        }
    }
    let t = &report.three_way_conversations;
    for (key, value) in [("offered", t.offered), ("held", t.held), ("will_report", t.will_report)] {
        push("three_way_conversations", key, csv_cell(value));
    }
    push(
        "anonymous_notifications",
        "total",
        csv_cell(report.anonymous_notifications),
    );
    rows
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_cut_into_the_quarters_it_overlaps() {
        let q = quarters_of(date("2025-12-02"), date("2026-12-01"));
        let labels: Vec<String> = q.iter().map(|(q, _, _)| q.label()).collect();
        assert_eq!(labels, ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]);
        assert_eq!((q[0].1, q[0].2), (date("2025-12-02"), date("2025-12-31")));
        assert_eq!((q[1].1, q[1].2), (date("2026-01-01"), date("2026-03-31")));
        assert_eq!((q[4].1, q[4].2), (date("2026-10-01"), date("2026-12-01")));
        assert_eq!(quarters_of(date("2026-05-05"), date("2026-05-05")).len(), 1);
        assert!(quarters_of(date("2026-05-06"), date("2026-05-05")).is_empty());
    }

    #[test]
    fn three_way_course_counts_where_each_conversation_stands_and_withholds_small_cells() {
        let mut c = ThreeWayCounts::default();
        c.add("offered", None, 2);
        c.add("scheduled", None, 3);
        c.add("declined", None, 7);
        c.add("held", None, 5);
        c.add("evaluated", Some("will_report"), 6);
        c.add("evaluated", Some("will_not_report"), 1);
        c.add("evaluated", Some("undecided"), 5);
        assert_eq!(c.offered, 29);
        assert_eq!(c.held, 17);
        assert_eq!(c.evaluated, 12);
        let q = Quarter { year: 2026, number: 2 };
        let course = three_way_course(
            date("2026-04-01"),
            date("2026-06-30"),
            &[(q, q.first_day(), q.last_day(), c)],
            5,
        );
        let row = &course.quarters[0];
        assert_eq!(row.quarter, "2026-Q2");
        assert_eq!(
            (row.offered, row.declined, row.awaiting, row.held),
            (Some(29), Some(7), Some(5), Some(17))
        );
        assert_eq!(row.followed_by.will_report, Some(6));
        assert_eq!(row.followed_by.will_not_report, None, "1 is withheld");
        assert_eq!(row.followed_by.undecided, Some(5));
        assert_eq!(row.followed_by.not_evaluated, Some(5));
        assert_eq!(course.suppressed, ["2026-Q2.followed_by.will_not_report"]);
    }

    #[test]
    fn small_counts_are_withheld_zero_and_larger_ones_stand() {
        assert_eq!(published(0, 5), Some(0));
        for n in 1..5 {
            assert_eq!(published(n, 5), None, "{n}");
        }
        assert_eq!(published(5, 5), Some(5));
        assert_eq!(published(3, 0), Some(3), "min_cell 0 withholds nothing");
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn counts() -> CaseCounts {
        CaseCounts {
            total: 182,
            victims: 152,
            concerned_persons: 30,
            professionals: 0,
            sexual_only: 124 - 11,
            criminal_only: 47 - 11,
            labour_only: 0,
            other_only: 22,
            combination: 11,
            age_known: 101,
            age_minors: 42,
            age_sum: 101 * 21,
            female: 140,
            male: 40,
            non_binary: 1,
            gender_unknown: 1,
            dutch: 150,
            other_eu: 10,
            non_eu: 20,
            nationality_unknown: 2,
            anonymous_notifications: 3,
        }
    }

    #[test]
    fn shares_and_mean_are_rounded_to_one_decimal() {
        let report = build_report(
            date("2024-01-01"),
            date("2024-12-31"),
            &counts(),
            &BTreeMap::new(),
            &ReferralCounts::default(),
            &ThreeWayCounts::default(),
            0,
        );
        assert_eq!(
            report.age.minor_share_pct,
            Some(41.6),
            "42 of 101, as Chat met Fier reported for 2024"
        );
        assert_eq!(report.age.adult_share_pct, Some(58.4));
        assert_eq!(report.age.mean, Some(21.0));
        assert_eq!(report.age.adults, Some(59));
        assert!(report.suppressed.is_empty());
        let e = &report.exploitation;
        let sum: u64 = [e.sexual, e.criminal, e.labour, e.other, e.combination]
            .iter()
            .map(|c| c.unwrap())
            .sum();
        assert_eq!(
            Some(sum),
            report.persons.total,
            "the five exploitation cells add up to the total"
        );
    }

    #[test]
    fn no_known_age_gives_null_mean() {
        let mut c = counts();
        c.age_known = 0;
        c.age_minors = 0;
        c.age_sum = 0;
        let report = build_report(
            date("2024-01-01"),
            date("2024-12-31"),
            &c,
            &BTreeMap::new(),
            &ReferralCounts::default(),
            &ThreeWayCounts::default(),
            0,
        );
        assert_eq!((report.age.mean, report.age.minor_share_pct), (None, None));
    }

    #[test]
    fn small_cells_are_withheld_with_what_would_reveal_them() {
        let mut c = counts();
        c.age_minors = 3;
        c.age_known = 50;
        let orgs = BTreeMap::from([
            ("fier".to_string(), 170),
            ("csg".to_string(), 2),
            ("police".to_string(), 0),
        ]);
        let report = build_report(
            date("2024-01-01"),
            date("2024-12-31"),
            &c,
            &orgs,
            &ReferralCounts::default(),
            &ThreeWayCounts::default(),
            5,
        );
        assert_eq!(report.registering_organisation["csg"], None);
        assert_eq!(
            report.registering_organisation["police"],
            Some(0),
            "zero singles nobody out"
        );
        assert_eq!(report.age.minors, None);
        assert_eq!(report.age.minor_share_pct, None);
        assert_eq!(report.gender.non_binary, None);
        for path in [
            "registering_organisation.csg",
            "age.minors",
            "age.minor_share_pct",
            "age.mean",
            "gender.non_binary",
            "anonymous_notifications",
        ] {
            assert!(
                report.suppressed.contains(&path.to_string()),
                "{path} in {:?}",
                report.suppressed
            );
        }
        let csv = to_csv(&report);
        assert!(csv.contains("registering_organisation,csg,\n"));
        assert!(csv.contains("registering_organisation,fier,170\n"));
        assert!(csv.starts_with("section,key,value\nperiod,from,2024-01-01\n"));
    }
}
