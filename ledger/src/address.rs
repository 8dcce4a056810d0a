//! Account addresses and their checksummed text form.

use std::fmt;
use std::str::FromStr;

use bech32::{Bech32m, Hrp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Human-readable part of every address: `gw1...`.
const HRP: Hrp = Hrp::parse_unchecked("gw");

/// An account: the 32-byte ed25519 public key that signs for it.
///
/// Its text form is bech32m (BIP-350) with the prefix `gw`: the checksum detects any error in up
/// to four characters, and any swap of two adjacent ones, so a mistyped address is refused
/// instead of paid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The all-zero address, which no key signs for. Genesis names it as its forger.
    pub const ZERO: Address = Address([0; 32]);

    /// The address as bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads an address from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Address> {
        bytes.try_into().ok().map(Address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<Bech32m, _>(f, HRP, &self.0).map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Why a text address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseAddressError {
    /// Not bech32m, or the checksum does not match: usually a typo.
    #[error("{0:?} is not a valid address (check for a typo: the checksum does not match)")]
    Checksum(String),
    /// A valid bech32m string for something else.
    #[error("{0:?} is not a Goodwill address: addresses start with \"gw1\"")]
    Prefix(String),
    /// The payload is not 32 bytes.
    #[error("{0:?} holds {1} bytes; an address holds 32")]
    Length(String, usize),
}

impl FromStr for Address {
    type Err = ParseAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown = || s.chars().take(100).collect::<String>();
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|_| ParseAddressError::Checksum(shown()))?;
        if checked.hrp() != HRP {
            return Err(ParseAddressError::Prefix(shown()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        Address::from_slice(&bytes).ok_or_else(|| ParseAddressError::Length(shown(), bytes.len()))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let address = Address([42; 32]);
        let text = address.to_string();
        assert!(text.starts_with("gw1"), "{text}");
        assert_eq!(text.parse::<Address>(), Ok(address));
    }

    #[test]
    fn every_single_character_typo_is_detected() {
        let text = Address([7; 32]).to_string();
        let alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        for (i, original) in text.char_indices().skip(3) {
            for replacement in alphabet.chars().filter(|c| *c != original) {
                let mut typo = text.clone();
                typo.replace_range(i..i + 1, &replacement.to_string());
                assert!(typo.parse::<Address>().is_err(), "typo accepted: {typo}");
            }
        }
    }

    #[test]
    fn adjacent_swaps_are_detected() {
        let text = Address([9; 32]).to_string();
        let chars: Vec<char> = text.chars().collect();
        for i in 3..chars.len() - 1 {
            if chars[i] == chars[i + 1] {
                continue;
            }
            let mut swapped = chars.clone();
            swapped.swap(i, i + 1);
            let swapped: String = swapped.into_iter().collect();
            assert!(swapped.parse::<Address>().is_err(), "swap accepted: {swapped}");
        }
    }

    #[test]
    fn other_prefixes_and_lengths_are_refused() {
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("bc"), &[1; 32]).unwrap();
        assert!(matches!(other.parse::<Address>(), Err(ParseAddressError::Prefix(_))));
        let short = bech32::encode::<Bech32m>(HRP, &[1; 20]).unwrap();
        assert!(matches!(short.parse::<Address>(), Err(ParseAddressError::Length(_, 20))));
    }
}
