//! Retention rules as data, and the calendar arithmetic behind them, without a clock: every
//! deadline is computed from a date in the message, so the same message always gets the same
//! deadline.
//!
//! [`RULES`] holds the defaults (German registration and passport law); a tenant overrides
//! any of them with config keys `aufbewahrung.<rule>.jahre` and
//! `aufbewahrung.<rule>.rechtsgrundlage`. Adapters ask [`rule`] for a rule by id and apply it
//! to the date its clock starts from; they do not hard-code periods.

use crate::Config;
use crate::model::{ErrorCode, MappingError, Retention};

/// From which date a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The end of the calendar year of the event (move-out, death, decision).
    EndOfYear,
    /// The day the event happened (a document's expiry).
    Day,
    /// The clock has not started: the record is kept while the citizen is registered; the
    /// move-out or death record later sets the deadline for the file.
    Open,
}

/// A retention rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// Stable id, used in config keys.
    pub id: &'static str,
    /// Years after the anchor.
    pub years: i32,
    /// Counted from.
    pub anchor: Anchor,
    /// The legal basis, as shown to clerks.
    pub law: String,
}

/// The default rules: `(id, years, anchor, legal basis, what the period counts from)`.
pub const RULES: &[(&str, i32, Anchor, &str, &str)] = &[
    ("wegzug", 5, Anchor::EndOfYear, "BMG §13", "nach Ende des Jahres des Wegzugs"),
    ("tod", 5, Anchor::EndOfYear, "BMG §13", "nach Ende des Jahres des Todes"),
    ("meldung", 0, Anchor::Open, "BMG §13", "Frist beginnt mit Wegzug oder Tod"),
    ("reisepass", 5, Anchor::Day, "PassG §21 Abs. 4", "nach Ablauf der Gültigkeit des Passes"),
    ("personalausweis", 5, Anchor::Day, "BMG §14 Abs. 1", "nach Ablauf der Gültigkeit des Ausweises"),
    ("passversagung", 5, Anchor::EndOfYear, "PassG §8, §21", "nach Ende des Jahres der Entscheidung"),
];

/// The rule `id` with the tenant's overrides applied.
pub fn rule(config: &dyn Config, id: &str) -> Result<RetentionRule, MappingError> {
    let Some(&(id, default_years, anchor, law, from)) = RULES.iter().find(|(r, ..)| *r == id) else {
        return Err(MappingError {
            code: ErrorCode::Config,
            message: format!("no retention rule `{id}`"),
            xml_path: "/".into(),
        });
    };
    let years = match config.get(&format!("aufbewahrung.{id}.jahre")) {
        None => default_years,
        Some(v) => v.trim().parse().map_err(|_| MappingError {
            code: ErrorCode::Config,
            message: format!("aufbewahrung.{id}.jahre must be a whole number, not `{v}`"),
            xml_path: "/".into(),
        })?,
    };
    let basis = config.get(&format!("aufbewahrung.{id}.rechtsgrundlage")).unwrap_or_else(|| {
        // Keep the text true when only the period was overridden.
        if default_years == years { law.to_owned() } else { format!("{law}, abweichend festgelegt") }
    });
    let law = match anchor {
        Anchor::Open => format!("{basis}: {from}"),
        _ => format!("{basis}: {years} Jahre {from}"),
    };
    Ok(RetentionRule { id, years, anchor, law })
}

impl RetentionRule {
    /// The retention of a record whose clock starts at `date` (`YYYY[-MM[-DD]]`; unknown:
    /// no deadline yet).
    pub fn apply(&self, date: Option<&str>) -> Retention {
        let deadline = match self.anchor {
            Anchor::Open => None,
            Anchor::EndOfYear => date.and_then(Date::parse).map(|d| d.end_of_year_plus(self.years).to_iso()),
            Anchor::Day => date.and_then(Date::parse).map(|d| d.plus_years(self.years).to_iso()),
        };
        Retention { deadline, rule: self.law.clone() }
    }
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// Day, 1-31.
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD` (anything after the first ten characters, e.g. a time, is ignored).
    /// Partial dates (`YYYY-MM`, `YYYY`) are read as the last day they can mean, so that a
    /// deadline computed from them is never too early.
    pub fn parse(s: &str) -> Option<Self> {
        let year: i32 = s.get(..4)?.parse().ok()?;
        let month: u32 = match s.get(5..7) {
            Some(m) => m.parse().ok()?,
            None => 12,
        };
        if !(1..=12).contains(&month) {
            return None;
        }
        let day: u32 = match s.get(8..10) {
            Some(d) => d.parse().ok()?,
            None => days_in_month(year, month),
        };
        (1..=days_in_month(year, month)).contains(&day).then_some(Self { year, month, day })
    }

    /// `YYYY-MM-DD`.
    pub fn to_iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// The same day `years` later (29 February becomes 28 February in a common year).
    pub fn plus_years(self, years: i32) -> Self {
        let year = self.year + years;
        Self { year, month: self.month, day: self.day.min(days_in_month(year, self.month)) }
    }

    /// 31 December of the year `years` after this date's year: the BMG §13 style of deadline
    /// ("five years after the end of the calendar year in which ...").
    pub fn end_of_year_plus(self, years: i32) -> Self {
        Self { year: self.year + years, month: 12, day: 31 }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod rule_tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let none = BTreeMap::new();
        let r = rule(&none, "wegzug").expect("rule");
        assert_eq!(r.apply(Some("2026-03-02")).deadline.as_deref(), Some("2031-12-31"));
        assert!(r.law.starts_with("BMG §13"));
        let pass = rule(&none, "reisepass").expect("rule");
        assert_eq!(pass.apply(Some("2034-06-30")).deadline.as_deref(), Some("2039-06-30"));
        assert_eq!(rule(&none, "meldung").expect("rule").apply(Some("2026-01-01")).deadline, None);
        let config = BTreeMap::from([("aufbewahrung.wegzug.jahre".to_owned(), "10".to_owned())]);
        let r = rule(&config, "wegzug").expect("rule");
        assert_eq!(r.apply(Some("2026-03-02")).deadline.as_deref(), Some("2036-12-31"));
        assert_eq!(r.law, "BMG §13, abweichend festgelegt: 10 Jahre nach Ende des Jahres des Wegzugs");
        let bad = BTreeMap::from([("aufbewahrung.tod.jahre".to_owned(), "fünf".to_owned())]);
        assert!(rule(&bad, "tod").expect_err("bad").message.contains("`fünf`"));
        assert!(rule(&none, "nope").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        let d = Date::parse("2026-03-15").expect("date");
        assert_eq!(d.end_of_year_plus(5).to_iso(), "2031-12-31");
        assert_eq!(Date::parse("2024-02-29").expect("leap").plus_years(1).to_iso(), "2025-02-28");
        assert_eq!(Date::parse("2026-02").expect("partial").to_iso(), "2026-02-28");
        assert_eq!(Date::parse("2026").expect("year").to_iso(), "2026-12-31");
        assert_eq!(Date::parse("2026-13-01"), None);
        assert_eq!(Date::parse("2026-02-30"), None);
    }
}
