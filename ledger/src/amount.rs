//! Amounts of coins as integer base units: no floating point anywhere in the ledger.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Base units in one coin.
pub const COIN: u64 = 1_000_000_000;

/// An amount of coins in base units. Arithmetic is checked: an overflow is an error, never a wrap.
///
/// In JSON an amount is a decimal string (`"1500"`), because JavaScript loses integer precision
/// above 2^53; an integer is accepted on input too.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(pub u64);

impl Amount {
    /// No coins.
    pub const ZERO: Amount = Amount(0);

    /// `whole` coins.
    pub const fn coins(whole: u64) -> Amount {
        Amount(whole * COIN)
    }

    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// Difference, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Product with a count, or `None` on overflow.
    pub fn checked_mul(self, times: u64) -> Option<Amount> {
        self.0.checked_mul(times).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}u", self.0)
    }
}

impl FromStr for Amount {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Amount)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(units) => Ok(Amount(units)),
            Either::Text(text) => text.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an amount: write a whole number of base units"
                ))
            }),
        }
    }
}
