//! The share-id convention of the mock: the id's prefix chooses the case the mock answers as
//! (the table below). Only the mock knows it; no adapter may.

use std::time::Duration;

/// A case of the mock table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `ok`: valid, 3 files, permanent.
    Ok,
    /// `okexp<N>`: valid, expiring in N days.
    OkExpiring(u32),
    /// `empty`: the file list is empty.
    Empty,
    /// `gone`: cancelled by its owner.
    Gone,
    /// `exp`: expired.
    Expired,
    /// `none` (and any unknown prefix): does not exist.
    NotFound,
    /// `ban`: blocked for violation or review.
    Banned,
    /// `lock`: needs pass code `abcd`.
    Locked,
    /// `limit`: rate limited for the first 2 requests of this id, then valid.
    Limited,
    /// `slow`: valid after 10 s.
    Slow,
    /// `err`: HTTP 500.
    Error,
    /// `junk`: an HTML page instead of JSON.
    Junk,
}

/// The pass code that opens `lock…` shares.
pub const LOCK_CODE: &str = "abcd";
/// How long `slow…` shares take.
pub const SLOW_DELAY: Duration = Duration::from_secs(10);
/// How many requests of a `limit…` id are refused before it answers.
pub const LIMITED_REQUESTS: u32 = 2;

impl Case {
    /// The case of share id `id` (already without a provider's fixed prefix).
    pub fn of(id: &str) -> Case {
        if let Some(days) = id.strip_prefix("okexp") {
            let digits: String = days.chars().take_while(char::is_ascii_digit).collect();
            return Case::OkExpiring(digits.parse().unwrap_or(7));
        }
        const PREFIXES: &[(&str, Case)] = &[
            ("ok", Case::Ok),
            ("empty", Case::Empty),
            ("exp", Case::Expired),
            ("gone", Case::Gone),
            ("none", Case::NotFound),
            ("ban", Case::Banned),
            ("lock", Case::Locked),
            ("limit", Case::Limited),
            ("slow", Case::Slow),
            ("err", Case::Error),
            ("junk", Case::Junk),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix))
            .map_or(Case::NotFound, |(_, case)| *case)
    }
}

/// A share whose answer changes after a number of checks of it: `flip<N>…` answers as `ok` for
/// its first N checks, then as `gone` (it died); `back<N>…` answers as `gone` for its first N
/// checks, then as `ok` (it came back). For the monitors' tests: a link that dies while watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changing {
    Dies(u32),
    Revives(u32),
}

impl Changing {
    /// The changing case of share id `id`, if it names one (`flip2abc`, `back10x`).
    pub fn of(id: &str) -> Option<Changing> {
        let (make, rest): (fn(u32) -> Changing, &str) = if let Some(rest) = id.strip_prefix("flip")
        {
            (Changing::Dies, rest)
        } else {
            (Changing::Revives, id.strip_prefix("back")?)
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().map(make)
    }

    /// What the `check`-th check (1 for the first) of this share answers as.
    pub fn case_at(self, check: u32) -> Case {
        match self {
            Changing::Dies(n) if check <= n => Case::Ok,
            Changing::Dies(_) => Case::Gone,
            Changing::Revives(n) if check <= n => Case::Gone,
            Changing::Revives(_) => Case::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_shares() {
        assert_eq!(Changing::of("flip2abc"), Some(Changing::Dies(2)));
        assert_eq!(Changing::of("back10x"), Some(Changing::Revives(10)));
        assert_eq!(Changing::of("flipabc"), None);
        assert_eq!(Changing::of("okflip2"), None);
        let dies = Changing::Dies(2);
        assert_eq!(
            [1, 2, 3, 4].map(|n| dies.case_at(n)),
            [Case::Ok, Case::Ok, Case::Gone, Case::Gone]
        );
        assert_eq!(Changing::Revives(1).case_at(1), Case::Gone);
        assert_eq!(Changing::Revives(1).case_at(2), Case::Ok);
    }

    #[test]
    fn prefixes() {
        assert_eq!(Case::of("ok123"), Case::Ok);
        assert_eq!(Case::of("okexp30abc"), Case::OkExpiring(30));
        assert_eq!(Case::of("empty1"), Case::Empty);
        assert_eq!(Case::of("exp1"), Case::Expired);
        assert_eq!(Case::of("gone1"), Case::Gone);
        assert_eq!(Case::of("lock9"), Case::Locked);
        assert_eq!(Case::of("random"), Case::NotFound);
    }
}
