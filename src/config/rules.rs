//! Validation rules: how one raw key (as written in `config.toml`) becomes the typed value the
//! program uses, and how `config.toml` describes what the key accepts.
//!
//! A rule never reads another key; every error names the key and what it accepts.

use std::marker::PhantomData;
use std::time::Duration;

use super::ConfigError;

/// Turns the raw value of one key into its typed value.
pub trait Rule<Raw> {
    type Out;
    /// Checks `raw`, the value of `key` (`section.name`), and converts it.
    fn apply(&self, key: &str, raw: Raw) -> Result<Self::Out, ConfigError>;
    /// What the key accepts, as `config.toml` shows it after the key's doc (empty: the doc says).
    fn accepts(&self) -> String;
}

/// A number within `min..=max`, kept as it is.
pub struct Range<T> {
    min: T,
    max: T,
    unit: &'static str,
}

pub fn range<T>(min: T, max: T) -> Range<T> {
    Range { min, max, unit: "" }
}

impl<T> Range<T> {
    /// Names the unit of the number in `config.toml` ("bytes", "s").
    pub fn unit(self, unit: &'static str) -> Range<T> {
        Range { unit, ..self }
    }
}

impl<T> Rule<T> for Range<T>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    type Out = T;
    fn apply(&self, key: &str, value: T) -> Result<T, ConfigError> {
        if value < self.min || value > self.max {
            return Err(ConfigError(format!(
                "`{key}` = {value}: must be between {} and {}",
                self.min, self.max
            )));
        }
        Ok(value)
    }
    fn accepts(&self) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        format!("{} to {}{unit}", self.min, self.max)
    }
}

/// A duration written as a whole number of some unit (ms, s).
pub struct DurationIn {
    range: Range<u64>,
    from: fn(u64) -> Duration,
}

/// A duration in milliseconds from 1 ms to 24 h.
pub fn millis() -> DurationIn {
    millis_between(1, 86_400_000)
}

pub fn millis_between(min: u64, max: u64) -> DurationIn {
    DurationIn {
        range: range(min, max).unit("ms"),
        from: Duration::from_millis,
    }
}

pub fn seconds_between(min: u64, max: u64) -> DurationIn {
    DurationIn {
        range: range(min, max).unit("s"),
        from: Duration::from_secs,
    }
}

impl Rule<u64> for DurationIn {
    type Out = Duration;
    fn apply(&self, key: &str, value: u64) -> Result<Duration, ConfigError> {
        self.range.apply(key, value).map(self.from)
    }
    fn accepts(&self) -> String {
        self.range.accepts()
    }
}

/// A size written in MiB, used in bytes.
pub struct Mebibytes(Range<usize>);

pub fn mebibytes_between(min: usize, max: usize) -> Mebibytes {
    Mebibytes(range(min, max).unit("MiB"))
}

impl Rule<usize> for Mebibytes {
    type Out = usize;
    fn apply(&self, key: &str, value: usize) -> Result<usize, ConfigError> {
        self.0.apply(key, value).map(|mib| mib * 1024 * 1024)
    }
    fn accepts(&self) -> String {
        self.0.accepts()
    }
}

/// Any value of the key's type (a flag): the type itself is the check.
pub struct Any;

pub fn any() -> Any {
    Any
}

impl<T> Rule<T> for Any {
    type Out = T;
    fn apply(&self, _key: &str, value: T) -> Result<T, ConfigError> {
        Ok(value)
    }
    fn accepts(&self) -> String {
        String::new()
    }
}

/// A rule written as a function, with the description `config.toml` shows.
pub struct Check<Raw, Out> {
    convert: fn(&str, Raw) -> Result<Out, ConfigError>,
    accepts: &'static str,
    _raw: PhantomData<fn(Raw)>,
}

pub fn check<Raw, Out>(
    convert: fn(&str, Raw) -> Result<Out, ConfigError>,
    accepts: &'static str,
) -> Check<Raw, Out> {
    Check {
        convert,
        accepts,
        _raw: PhantomData,
    }
}

impl<Raw, Out> Rule<Raw> for Check<Raw, Out> {
    type Out = Out;
    fn apply(&self, key: &str, value: Raw) -> Result<Out, ConfigError> {
        (self.convert)(key, value)
    }
    fn accepts(&self) -> String {
        self.accepts.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_key_and_the_bounds() {
        let err = range(1u32, 10).apply("a.b", 11).unwrap_err().to_string();
        assert!(
            err.contains("`a.b` = 11: must be between 1 and 10"),
            "{err}"
        );
        assert_eq!(range(0.0, 1.0).apply("a.r", 0.5).unwrap(), 0.5);
        assert!(range(0.0, 1.0).apply("a.r", 1.5).is_err());
        assert_eq!(
            range(1024usize, 2048).unit("bytes").accepts(),
            "1024 to 2048 bytes"
        );
    }

    #[test]
    fn units_convert() {
        assert_eq!(
            millis().apply("k", 250).unwrap(),
            Duration::from_millis(250)
        );
        assert!(millis().apply("k", 0).is_err());
        assert_eq!(millis().accepts(), "1 to 86400000 ms");
        assert_eq!(
            seconds_between(0, 60).apply("k", 60).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(mebibytes_between(1, 8).apply("k", 2).unwrap(), 2 << 20);
    }
}
