//! EventBridge Scheduler's recurring schedule expressions, read once and checked by the rules AWS
//! documents (<https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html>):
//! `rate(value unit)`, where a value of 1 takes `minute`, `hour` or `day` and a larger one the
//! plural (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html>), and
//! `cron(minutes hours day-of-month month day-of-week year)` with each field's range and
//! wildcards, `?` in exactly one of the two day fields
//! (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html>).
//! The config loader, `init`, the Airflow export, the spend estimate and the function's event age
//! all read schedules through [`Schedule::parse`].

/// How often the extractor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `count` units.
    Rate { count: u32, unit: Unit },
    /// At the times the six fields allow.
    Cron(Box<[Field; 6]>),
}

/// A rate's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minute,
    Hour,
    Day,
}

impl Unit {
    fn secs(self) -> u64 {
        match self {
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86400,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        }
    }
}

/// One cron field, as items separated by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    items: Vec<Item>,
}

/// One item of a cron field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// `?`: no specific value (one of the day fields).
    NoValue,
    /// `*`, `a`, `a-b`, `a/k`, `a-b/k`, `*/k` (`all` for `*`), with its text (names kept).
    Range { from: u32, to: u32, step: u32, all: bool, text: String },
    /// `L`, `LW`, `nW`, `nL`, `n#k`: kept as written; no count or conversion knows them.
    Special(String),
}

/// A field's rules.
struct Spec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// `?` allowed.
    no_value: bool,
    /// `/` allowed.
    step: bool,
}

const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SPECS: [Spec; 6] = [
    Spec { name: "minutes", min: 0, max: 59, names: &[], no_value: false, step: true },
    Spec { name: "hours", min: 0, max: 23, names: &[], no_value: false, step: true },
    Spec { name: "day-of-month", min: 1, max: 31, names: &[], no_value: true, step: true },
    Spec { name: "month", min: 1, max: 12, names: MONTHS, no_value: false, step: true },
    Spec { name: "day-of-week", min: 1, max: 7, names: DAYS, no_value: true, step: false },
    Spec { name: "year", min: 1970, max: 2199, names: &[], no_value: false, step: true },
];

/// What every schedule error ends with.
pub const RULE: &str =
    "use rate(1 hour), rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year)";

impl Schedule {
    /// Reads an expression; the error says what is wrong and the rule.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let inner = |head: &str| expression.trim().strip_prefix(head)?.strip_suffix(')').map(str::trim);
        if let Some(rate) = inner("rate(") {
            return parse_rate(rate);
        }
        if let Some(cron) = inner("cron(") {
            return parse_cron(cron);
        }
        if inner("at(").is_some() {
            return Err(format!("at(…) runs once, the extractor needs a recurring schedule; {RULE}"));
        }
        Err(format!("not a schedule expression; {RULE}"))
    }

    /// The interval of a `rate(…)`, in seconds (None for cron).
    pub fn interval_secs(&self) -> Option<u64> {
        match self {
            Schedule::Rate { count, unit } => Some(u64::from(*count).saturating_mul(unit.secs())),
            Schedule::Cron(_) => None,
        }
    }

    /// Runs in a 30-day month (None: a day field with `L`, `W` or `#`, which this does not count).
    pub fn runs_per_month(&self) -> Option<f64> {
        const DAYS_PER_MONTH: f64 = 30.0;
        let [minute, hour, day, _month, weekday, _year] = match self {
            Schedule::Rate { .. } => return Some(DAYS_PER_MONTH * 86400.0 / self.interval_secs()? as f64),
            Schedule::Cron(fields) => &**fields,
        };
        let per_day = minute.count()? * hour.count()?;
        let days = match (day.is_any(), weekday.is_any()) {
            (true, true) => DAYS_PER_MONTH,
            (true, false) => DAYS_PER_MONTH * weekday.count()? / 7.0,
            (false, _) => day.count()?.min(DAYS_PER_MONTH),
        };
        Some(per_day * days)
    }

    /// The same schedule as an Airflow `schedule=` Python expression: `timedelta(hours=2)`, or a
    /// five-field cron string (EventBridge counts weekdays from 1 = Sunday, cron from 0). The error
    /// says what has no equivalent.
    pub fn airflow(&self) -> Result<String, String> {
        let fields = match self {
            Schedule::Rate { count, unit } => return Ok(format!("timedelta({}s={count})", unit.name())),
            Schedule::Cron(fields) => fields,
        };
        if fields[5].items.iter().any(|i| !matches!(i, Item::Range { all: true, step: 1, .. })) {
            return Err("a year other than `*` has no cron equivalent".into());
        }
        let mut five = Vec::with_capacity(5);
        for (index, field) in fields[..5].iter().enumerate() {
            five.push(field.standard(&SPECS[index], index == 4)?);
        }
        Ok(format!("{:?}", five.join(" ")))
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Rate { count: 1, unit } => write!(f, "rate(1 {})", unit.name()),
            Schedule::Rate { count, unit } => write!(f, "rate({count} {}s)", unit.name()),
            Schedule::Cron(fields) => {
                let text: Vec<String> = fields.iter().map(Field::to_string).collect();
                write!(f, "cron({})", text.join(" "))
            }
        }
    }
}

fn parse_rate(rate: &str) -> Result<Schedule, String> {
    let parts: Vec<&str> = rate.split_whitespace().collect();
    let [value, unit] = parts.as_slice() else {
        return Err(format!("rate(…) takes a value and a unit; {RULE}"));
    };
    let count: u32 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("the rate's value `{value}` is not a positive whole number; {RULE}"))?;
    let (singular, plural) = (unit.strip_suffix('s').unwrap_or(unit), unit.ends_with('s'));
    let unit = match singular {
        "minute" => Unit::Minute,
        "hour" => Unit::Hour,
        "day" => Unit::Day,
        _ => return Err(format!("unknown unit `{unit}`: use minute(s), hour(s) or day(s); {RULE}")),
    };
    match (count == 1, plural) {
        (true, true) => Err(format!("a value of 1 takes the singular: rate(1 {})", unit.name())),
        (false, false) => Err(format!("a value above 1 takes the plural: rate({count} {}s)", unit.name())),
        _ => Ok(Schedule::Rate { count, unit }),
    }
}

fn parse_cron(cron: &str) -> Result<Schedule, String> {
    let parts: Vec<&str> = cron.split_whitespace().collect();
    let Ok(parts) = <[&str; 6]>::try_from(parts.as_slice()) else {
        return Err(format!("cron(…) has six fields, this has {}; {RULE}", parts.len()));
    };
    let mut fields = Vec::with_capacity(6);
    for (spec, text) in SPECS.iter().zip(parts) {
        fields.push(parse_field(spec, text).map_err(|why| format!("{} `{text}`: {why}", spec.name))?);
    }
    let fields: [Field; 6] = fields.try_into().expect("six fields");
    let no_value = |f: &Field| f.items == [Item::NoValue];
    if no_value(&fields[2]) == no_value(&fields[4]) {
        return Err(
            "exactly one of day-of-month and day-of-week must be `?` (a value or * in one, ? in the other)".into()
        );
    }
    Ok(Schedule::Cron(Box::new(fields)))
}

fn parse_field(spec: &Spec, text: &str) -> Result<Field, String> {
    let items = text.split(',').map(|item| parse_item(spec, item)).collect::<Result<Vec<_>, _>>()?;
    let alone = |i: &Item| matches!(i, Item::NoValue) || matches!(i, Item::Special(s) if s.contains('#'));
    if items.len() > 1 && items.iter().any(alone) {
        return Err("`?` and `#` stand alone in their field".into());
    }
    Ok(Field { items })
}

fn parse_item(spec: &Spec, item: &str) -> Result<Item, String> {
    let upper = item.to_ascii_uppercase();
    if upper == "?" {
        return if spec.no_value { Ok(Item::NoValue) } else { Err("`?` is only for the two day fields".into()) };
    }
    if let Some(special) = special(spec, &upper)? {
        return Ok(special);
    }
    let (range, step) = match upper.split_once('/') {
        Some(_) if !spec.step => return Err("`/` is not allowed in this field".into()),
        Some((range, step)) => (range, Some(step)),
        None => (upper.as_str(), None),
    };
    let step = match step {
        None => 1,
        Some(step) => step
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=spec.max).contains(s))
            .ok_or_else(|| format!("the increment `{step}` must be 1 to {}", spec.max))?,
    };
    let (from, to, all) = match range.split_once('-') {
        _ if range == "*" => (spec.min, spec.max, true),
        Some((a, b)) => (value(spec, a)?, value(spec, b)?, false),
        None if step > 1 => (value(spec, range)?, spec.max, false),
        None => (value(spec, range)?, value(spec, range)?, false),
    };
    if from > to {
        return Err(format!("the range `{range}` runs backwards"));
    }
    Ok(Item::Range { from, to, step, all, text: item.to_string() })
}

/// `L`, `LW`, `nW` (day-of-month); `L`, `nL`, `n#k` (day-of-week).
fn special(spec: &Spec, item: &str) -> Result<Option<Item>, String> {
    let keep = || Ok(Some(Item::Special(item.to_string())));
    match spec.name {
        "day-of-month" if item == "L" || item == "LW" => keep(),
        "day-of-month" if item.ends_with('W') => value(spec, &item[..item.len() - 1]).and_then(|_| keep()),
        "day-of-week" if item == "L" => keep(),
        "day-of-week" if item.ends_with('L') => value(spec, &item[..item.len() - 1]).and_then(|_| keep()),
        "day-of-week" if item.contains('#') => {
            let (day, nth) = item.split_once('#').expect("checked");
            value(spec, day)?;
            match nth.parse::<u32>() {
                Ok(1..=5) => keep(),
                _ => Err(format!("`#{nth}`: a month has a 1st to 5th of each weekday")),
            }
        }
        _ if item.contains('#') || is_day_special(item) => Err("L, W and # are only for the day fields".into()),
        _ => Ok(None),
    }
}

/// `L`, `W`, `nL`, `nW`: a day wildcard (names such as JUL end in L too, but not after digits).
fn is_day_special(item: &str) -> bool {
    let head = item.strip_suffix(['L', 'W']);
    head.is_some_and(|h| h.is_empty() || h == "L" || h.chars().all(|c| c.is_ascii_digit()))
}

/// A number or a name in the field's range.
fn value(spec: &Spec, text: &str) -> Result<u32, String> {
    if let Some(index) = spec.names.iter().position(|n| *n == text) {
        return Ok(spec.min + index as u32);
    }
    let range = if spec.names.is_empty() {
        format!("{}-{}", spec.min, spec.max)
    } else {
        format!("{}-{} or {}-{}", spec.min, spec.max, spec.names[0], spec.names[spec.names.len() - 1])
    };
    match text.parse::<u32>() {
        Ok(n) if (spec.min..=spec.max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is out of range {range}")),
        Err(_) => Err(format!("`{text}` is not a value of {range}")),
    }
}

impl Field {
    fn is_any(&self) -> bool {
        matches!(self.items.as_slice(), [Item::NoValue] | [Item::Range { all: true, step: 1, .. }])
    }

    /// How many values the field takes (None with L, W or #).
    fn count(&self) -> Option<f64> {
        self.items.iter().try_fold(0.0, |total, item| match item {
            Item::NoValue => Some(total),
            Item::Range { from, to, step, .. } => Some(total + f64::from((to - from) / step + 1)),
            Item::Special(_) => None,
        })
    }

    /// The field in standard cron (`?` is `*`; `a/k` is `a-max/k`; weekdays shifted to 0-6).
    fn standard(&self, spec: &Spec, weekday: bool) -> Result<String, String> {
        let shift = |n: u32| if weekday { n - 1 } else { n };
        let items: Result<Vec<String>, String> = self
            .items
            .iter()
            .map(|item| match item {
                Item::NoValue => Ok("*".to_string()),
                Item::Special(s) => Err(format!("{} `{s}` has no cron equivalent", spec.name)),
                Item::Range { all: true, step: 1, .. } => Ok("*".to_string()),
                Item::Range { all: true, step, .. } => Ok(format!("*/{step}")),
                Item::Range { text, .. } if !weekday && !text.contains('/') => Ok(text.clone()),
                Item::Range { from, to, step: 1, .. } if from == to => Ok(shift(*from).to_string()),
                Item::Range { from, to, step: 1, .. } => Ok(format!("{}-{}", shift(*from), shift(*to))),
                Item::Range { from, to, step, .. } => Ok(format!("{}-{}/{step}", shift(*from), shift(*to))),
            })
            .collect();
        Ok(items?.join(","))
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<&str> = self
            .items
            .iter()
            .map(|i| match i {
                Item::NoValue => "?",
                Item::Range { text, .. } | Item::Special(text) => text,
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(expression: &str) -> String {
        Schedule::parse(expression).unwrap_err()
    }

    #[test]
    fn rates_take_a_positive_value_and_the_unit_in_the_right_number() {
        assert_eq!(Schedule::parse("rate(1 hour)").unwrap().interval_secs(), Some(3600));
        assert_eq!(Schedule::parse("rate(15 minutes)").unwrap().interval_secs(), Some(900));
        assert_eq!(Schedule::parse(" rate( 2 days ) ").unwrap().to_string(), "rate(2 days)");
        assert!(err("rate(1 hours)").contains("a value of 1 takes the singular: rate(1 hour)"));
        assert!(err("rate(5 hour)").contains("a value above 1 takes the plural: rate(5 hours)"));
        assert!(err("rate(0 minutes)").contains("`0` is not a positive whole number"));
        assert!(err("rate(2 weeks)").contains("unknown unit `weeks`"));
        assert!(err("rate(1)").contains("a value and a unit"));
        assert!(err("every hour").contains("not a schedule expression"));
        assert!(err("at(2026-01-01T00:00:00)").contains("recurring"));
    }

    #[test]
    fn cron_fields_are_checked_against_their_ranges_and_wildcards() {
        for ok in [
            "cron(0 6 ? * MON-FRI *)",
            "cron(0/15 * * * ? *)",
            "cron(0,30 8-17 ? * 2-6 2026-2030)",
            "cron(0 12 L * ? *)",
            "cron(0 12 15W * ? *)",
            "cron(0 12 ? * 6#3 *)",
            "cron(0 12 ? * 6L *)",
            "cron(0 0 1 JAN,jul ? *)",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}: {:?}", Schedule::parse(ok));
        }
        let cases = [
            ("cron(61 * * * ? *)", "minutes `61`: 61 is out of range 0-59"),
            ("cron(0 24 * * ? *)", "hours `24`: 24 is out of range 0-23"),
            ("cron(0 6 32 * ? *)", "day-of-month `32`: 32 is out of range 1-31"),
            ("cron(0 6 ? 13 MON *)", "month `13`: 13 is out of range 1-12 or JAN-DEC"),
            ("cron(0 6 ? * 8 *)", "day-of-week `8`: 8 is out of range 1-7 or SUN-SAT"),
            ("cron(0 6 * * ? 1969)", "year `1969`: 1969 is out of range 1970-2199"),
            ("cron(0 6 * * * *)", "exactly one of day-of-month and day-of-week must be `?`"),
            ("cron(0 6 ? * ? *)", "exactly one of day-of-month and day-of-week must be `?`"),
            ("cron(* * * * *)", "six fields, this has 5"),
            ("cron(0 6 ? * 6#7 *)", "`#7`"),
            ("cron(0 6 ? * 2/2 *)", "`/` is not allowed"),
            ("cron(0 17-8 * * ? *)", "`17-8` runs backwards"),
            ("cron(0/0 * * * ? *)", "increment `0`"),
            ("cron(0 6 ?,1 * MON *)", "stand alone"),
            ("cron(0 6L * * ? *)", "only for the day fields"),
        ];
        for (expression, expected) in cases {
            let found = err(expression);
            assert!(found.contains(expected), "{expression}: {found}");
        }
    }

    #[test]
    fn runs_per_month_counts_what_the_fields_allow() {
        let runs = |e: &str| Schedule::parse(e).unwrap().runs_per_month();
        assert_eq!(runs("rate(1 hour)"), Some(720.0));
        assert_eq!(runs("rate(2 days)"), Some(15.0));
        assert_eq!(runs("cron(0 6 * * ? *)"), Some(30.0));
        assert_eq!(runs("cron(0,30 8-17 ? * MON-FRI *)"), Some(20.0 * 30.0 * 5.0 / 7.0));
        assert_eq!(runs("cron(*/10 * * * ? *)"), Some(6.0 * 24.0 * 30.0));
        assert_eq!(runs("cron(0 6 L * ? *)"), None);
    }

    #[test]
    fn airflow_gets_the_same_times() {
        let airflow = |e: &str| Schedule::parse(e).unwrap().airflow();
        assert_eq!(airflow("rate(2 hours)").unwrap(), "timedelta(hours=2)");
        assert_eq!(airflow("rate(1 day)").unwrap(), "timedelta(days=1)");
        assert_eq!(airflow("cron(0 6 * * ? *)").unwrap(), "\"0 6 * * *\"");
        assert_eq!(airflow("cron(0 6 ? * 2-6 *)").unwrap(), "\"0 6 * * 1-5\"", "Monday-Friday");
        assert_eq!(airflow("cron(15 8 ? * MON,1 *)").unwrap(), "\"15 8 * * 1,0\"");
        assert_eq!(airflow("cron(5/20 * * * ? *)").unwrap(), "\"5-59/20 * * * *\"");
        assert!(airflow("cron(0 6 ? * 6#3 *)").unwrap_err().contains("day-of-week `6#3` has no cron equivalent"));
        assert!(airflow("cron(0 6 * * ? 2027)").unwrap_err().contains("a year other than `*`"));
    }
}
