//! Hashes: blake3 everywhere, always behind a domain tag so that bytes hashed for one purpose can
//! never be mistaken for bytes hashed for another.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Domain tag of a transaction's signing message and id.
pub const TX_DOMAIN: &[u8] = b"goodwill/tx/v1";
/// Domain tag of a block header's signing message and hash.
pub const BLOCK_DOMAIN: &[u8] = b"goodwill/block/v1";
/// Domain tag of a leaf of the transactions tree: a transaction's id and its signature.
pub const TX_LEAF_DOMAIN: &[u8] = b"goodwill/tx-leaf/v1";
/// Domain tag of a leaf of a block's receipts tree.
pub const RECEIPT_LEAF_DOMAIN: &[u8] = b"goodwill/receipt-leaf/v1";
/// Domain tag of an account's key in the state tree.
pub const ACCOUNT_KEY_DOMAIN: &[u8] = b"goodwill/account/v1";
/// Prefix byte of an inner node of a list tree ([`ListHasher`]; leaves are tagged hashes).
const LIST_NODE_PREFIX: u8 = 0x01;

/// A 32-byte blake3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash: the parent of genesis and the root of an empty transaction list.
    pub const ZERO: Hash = Hash([0; 32]);

    /// `blake3(domain || 0x00 || data)`.
    pub fn tagged(domain: &[u8], data: &[u8]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain);
        hasher.update(&[0]);
        hasher.update(data);
        Hash(*hasher.finalize().as_bytes())
    }

    /// The hash as bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// A hash's text form was not 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hash is 64 hexadecimal digits; got {0:?}")]
pub struct ParseHashError(String);

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)
            .map_err(|_| ParseHashError(s.chars().take(80).collect()))?;
        Ok(Hash(out))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// blake3 for the state tree (jmt adds its own leaf and inner-node domain separation).
pub(crate) struct StateHasher(blake3::Hasher);

impl jmt::SimpleHasher for StateHasher {
    fn new() -> Self {
        StateHasher(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        // Named in full: with blake3's digest traits on (starlark turns them on), jmt's
        // `SimpleHasher` covers `blake3::Hasher` too, and its by-value `finalize` would win.
        *blake3::Hasher::finalize(&self.0).as_bytes()
    }
}

/// blake3 for the binary Merkle trees over lists (a block's transactions, an epoch's roster).
/// Leaves are tagged hashes; inner nodes hash a prefix byte and their children, and a lone left
/// child is carried up unchanged, so no inner node can pass for a leaf and no list can be padded
/// to another's root.
#[derive(Clone)]
pub(crate) struct ListHasher;

impl rs_merkle::Hasher for ListHasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        *blake3::hash(data).as_bytes()
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => {
                let mut hasher = blake3::Hasher::new();
                hasher.update(&[LIST_NODE_PREFIX]);
                hasher.update(left);
                hasher.update(right);
                *hasher.finalize().as_bytes()
            }
            None => *left,
        }
    }
}

/// A transaction's leaf in its block's transactions tree: its id and its signature, so that a
/// block's hash commits to the signatures it carries as well as to the bodies (a copy of a block
/// with one signature swapped is another block, not a second body for the same hash).
pub fn transaction_leaf(id: &Hash, signature: &[u8; 64]) -> Hash {
    let mut data = [0u8; 96];
    data[..32].copy_from_slice(id.as_bytes());
    data[32..].copy_from_slice(signature);
    Hash::tagged(TX_LEAF_DOMAIN, &data)
}

/// Merkle root of a block's transaction leaves ([`transaction_leaf`]), in block order;
/// [`Hash::ZERO`] when there are none. The receipts root is the same tree over receipt leaves.
pub fn transactions_root(leaves: &[Hash]) -> Hash {
    let leaves: Vec<[u8; 32]> = leaves.iter().map(|leaf| leaf.0).collect();
    rs_merkle::MerkleTree::<ListHasher>::from_leaves(&leaves).root().map_or(Hash::ZERO, Hash)
}

/// The sibling hashes that prove leaf `index` of the list tree over `leaves` (as
/// [`transactions_root`] builds it); `None` if there is no such leaf.
pub fn list_path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let leaves: Vec<[u8; 32]> = leaves.iter().map(|leaf| leaf.0).collect();
    let tree = rs_merkle::MerkleTree::<ListHasher>::from_leaves(&leaves);
    Some(tree.proof(&[index]).proof_hashes().iter().map(|h| Hash(*h)).collect())
}

/// Whether `path` proves `leaf` at `index` of a list tree of `count` leaves whose root is
/// `root`. At most 64 hashes are looked at (a deeper tree cannot be addressed).
pub fn verify_list_path(root: &Hash, leaf: &Hash, index: usize, count: usize, path: &[Hash]) -> bool {
    if index >= count || path.len() > 64 {
        return false;
    }
    let proof = rs_merkle::MerkleProof::<ListHasher>::new(path.iter().map(|h| h.0).collect());
    proof.verify(root.0, &[index], &[leaf.0], count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_rejects_garbage() {
        let hash = Hash::tagged(b"t", b"x");
        assert_eq!(hash.to_string().parse::<Hash>(), Ok(hash));
        assert!("abc".parse::<Hash>().is_err());
        assert!("zz".repeat(32).parse::<Hash>().is_err());
    }

    #[test]
    fn a_list_path_proves_its_leaf_and_nothing_else() {
        for count in 1..12usize {
            let leaves: Vec<Hash> = (0..count).map(|i| Hash::tagged(b"t", &[i as u8])).collect();
            let root = transactions_root(&leaves);
            for (index, leaf) in leaves.iter().enumerate() {
                let path = list_path(&leaves, index).unwrap();
                assert!(verify_list_path(&root, leaf, index, count, &path), "{count} leaves, leaf {index}");
                let other = Hash::tagged(b"other", &[index as u8]);
                assert!(!verify_list_path(&root, &other, index, count, &path));
                assert!(!verify_list_path(&root, leaf, count, count, &path));
            }
            assert!(list_path(&leaves, count).is_none());
        }
    }

    #[test]
    fn domains_separate_digests() {
        assert_ne!(Hash::tagged(b"a", b"bc"), Hash::tagged(b"ab", b"c"));
    }

    #[test]
    fn transactions_root_depends_on_every_leaf_and_order() {
        let ids: Vec<Hash> = (0u8..5).map(|i| Hash::tagged(b"t", &[i])).collect();
        let root = transactions_root(&ids);
        let mut swapped = ids.clone();
        swapped.swap(1, 2);
        assert_ne!(root, transactions_root(&swapped));
        assert_ne!(root, transactions_root(&ids[..4]));
        assert_eq!(transactions_root(&[]), Hash::ZERO);
        assert_eq!(transactions_root(&ids[..1]), ids[0]);
    }
}
