//! Calendar arithmetic for retention deadlines, without a clock: every deadline is computed
//! from a date in the message, so the same message always gets the same deadline.

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
