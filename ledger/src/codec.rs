//! The one place where wire messages become domain types and back.
//!
//! Decoding checks shape only: lengths, presence, canonical encoding, size limits. Whether a
//! transaction or block is *valid* is decided by [`crate::execute`], with the chain's state.

use bytes::Bytes;
use goodwill_proto::v1 as wire;
use prost::Message;

/// A wire message could not become a domain value. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are larger than the limit for this kind of message; they were not decoded.
    #[error("{what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a protobuf message of the expected type.
    #[error("{what} is not valid protobuf: {reason}")]
    Protobuf {
        /// What was being decoded.
        what: &'static str,
        /// prost's explanation.
        reason: String,
    },
    /// The encoding is valid protobuf but not the canonical one (unknown fields, fields out of
    /// order, default values written out). Signed bytes must be canonical so that one message has
    /// one encoding and one hash.
    #[error(
        "{what} is not canonically encoded (unknown fields, fields out of order, or defaults written out)"
    )]
    NonCanonical {
        /// What was being decoded.
        what: &'static str,
    },
    /// A required field is absent.
    #[error("{what} has no {field}")]
    Missing {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A bytes field has the wrong length.
    #[error("{what}.{field} must be {expected} bytes, not {got}")]
    Length {
        /// The message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
}

/// Decodes `bytes` as `M`, requiring the canonical encoding.
pub(crate) fn decode_canonical<M: Message + Default>(
    what: &'static str,
    bytes: &Bytes,
) -> Result<M, DecodeError> {
    let message =
        M::decode(bytes.clone()).map_err(|e| DecodeError::Protobuf { what, reason: e.to_string() })?;
    if message.encoded_len() != bytes.len() || message.encode_to_vec() != bytes.as_ref() {
        return Err(DecodeError::NonCanonical { what });
    }
    Ok(message)
}

/// Decodes `bytes` as `M` after checking the size limit.
pub(crate) fn decode_limited<M: Message + Default>(
    what: &'static str,
    bytes: Bytes,
    limit: usize,
) -> Result<M, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { what, size: bytes.len(), limit });
    }
    M::decode(bytes).map_err(|e| DecodeError::Protobuf { what, reason: e.to_string() })
}

/// A fixed-length bytes field.
pub(crate) fn fixed<const N: usize>(
    what: &'static str,
    field: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], DecodeError> {
    bytes.try_into().map_err(|_| DecodeError::Length { what, field, expected: N, got: bytes.len() })
}

/// Account state as the state tree stores it.
pub(crate) fn encode_account(address: &crate::Address, account: &crate::Account) -> Vec<u8> {
    wire::AccountState {
        address: Bytes::copy_from_slice(address.as_bytes()),
        balance: account.balance.0,
        nonce: account.nonce,
    }
    .encode_to_vec()
}

/// Reads account state written by [`encode_account`].
pub(crate) fn decode_account(bytes: &[u8]) -> Result<(crate::Address, crate::Account), DecodeError> {
    let state = wire::AccountState::decode(bytes)
        .map_err(|e| DecodeError::Protobuf { what: "AccountState", reason: e.to_string() })?;
    let address = crate::Address(fixed("AccountState", "address", &state.address)?);
    Ok((address, crate::Account { balance: crate::Amount(state.balance), nonce: state.nonce }))
}
