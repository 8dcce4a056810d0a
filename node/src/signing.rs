//! What this node's forger key has signed, kept on disk before each signature leaves the
//! process. Two blocks signed for one slot forfeit every ticket of their forger, and so do two
//! conflicting finality votes, so no restart, crash, lost database or clock step may make it
//! sign a slot again, or vote against its own votes: each is claimed (and synced) before it is
//! signed. A block for a slot at or below the last one claimed is refused; a vote is refused
//! unless its round is above the last vote's, and its source is the last vote's source or a
//! later checkpoint (which keeps all three voting rules of `goodwill_ledger::finality`).
//!
//! The record lives beside the database (`signing.json` in the base path) and names the chain
//! and the key it is for. It protects one base path: the same key run from two base paths at
//! once can still equivocate, so never do that.

use std::io::Write;
use std::path::{Path, PathBuf};

use goodwill_ledger::finality::Checkpoint;
use goodwill_ledger::{Address, Hash};
use serde::{Deserialize, Serialize};

/// The file name of the record in a base path.
pub const FILE_NAME: &str = "signing.json";

/// Why the record refused, or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The slot is at or below one signed already.
    #[error("slot {slot} was not signed: this key signed slot {last} already (signing record)")]
    AlreadySigned {
        /// The slot asked for.
        slot: u64,
        /// The last slot signed.
        last: u64,
    },
    /// The round is at or below one voted in already.
    #[error("no vote in round {round}: this key voted in round {last} already (signing record)")]
    AlreadyVoted {
        /// The round asked for.
        round: u64,
        /// The last round voted in.
        last: u64,
    },
    /// The source goes back from the last vote's (an earlier round, or another block of its round).
    #[error("no vote from a checkpoint of round {round}: this key's last vote named one of round {last}")]
    SourceGoesBack {
        /// The source's round.
        round: u64,
        /// The last vote's source round.
        last: u64,
    },
    /// The record is for another chain or key.
    #[error(
        "the signing record {path} is for {theirs}; this node runs {ours}: use the base path that key \
         forged from"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The forger and genesis it names.
        theirs: String,
        /// This node's.
        ours: String,
    },
    /// The file does not parse: refused rather than reset, since a reset could sign a slot
    /// again.
    #[error(
        "the signing record {0} is corrupt ({1}); it was not reset: restore it, or remove it only if this key signed nothing since the last slot the chain shows it forged"
    )]
    Corrupt(PathBuf, String),
    /// Reading or writing the file failed.
    #[error("the signing record {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    /// The chain's genesis hash.
    genesis: Hash,
    /// The forger key's address.
    forger: Address,
    /// The highest slot a block was signed for, if any.
    last_block_slot: Option<u64>,
    /// The last round voted in, if any.
    #[serde(default)]
    last_vote_round: Option<u64>,
    /// The source checkpoint that vote named.
    #[serde(default)]
    last_vote_source: Option<(u64, u64, Hash)>,
}

/// The signing record of one forger key on one chain.
#[derive(Debug)]
pub struct SigningRecord {
    path: PathBuf,
    signed: Signed,
}

impl SigningRecord {
    /// Opens the record at `path`, or starts an empty one there, for `forger` on the chain
    /// whose genesis is `genesis`.
    pub fn open(path: &Path, genesis: Hash, forger: Address) -> Result<SigningRecord, SigningError> {
        let fresh =
            Signed { genesis, forger, last_block_slot: None, last_vote_round: None, last_vote_source: None };
        let signed = match std::fs::read(path) {
            Ok(bytes) => {
                let signed: Signed = serde_json::from_slice(&bytes)
                    .map_err(|e| SigningError::Corrupt(path.to_path_buf(), e.to_string()))?;
                if (signed.genesis, signed.forger) != (genesis, forger) {
                    let named =
                        |forger: &Address, genesis: &Hash| format!("forger {forger} on genesis {genesis}");
                    return Err(SigningError::Mismatch {
                        path: path.to_path_buf(),
                        theirs: named(&signed.forger, &signed.genesis),
                        ours: named(&forger, &genesis),
                    });
                }
                signed
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(error) => return Err(SigningError::Io(path.to_path_buf(), error)),
        };
        let record = SigningRecord { path: path.to_path_buf(), signed };
        record.persist(&record.signed)?;
        Ok(record)
    }

    /// The highest slot signed, if any.
    pub fn last_block_slot(&self) -> Option<u64> {
        self.signed.last_block_slot
    }

    /// Claims `slot` for a block before it is signed: refused if a block was signed for it or a
    /// later slot; otherwise recorded and synced to disk, so that once this returns the slot is
    /// never claimed again.
    pub fn claim_block(&mut self, slot: u64) -> Result<(), SigningError> {
        if let Some(last) = self.signed.last_block_slot.filter(|last| *last >= slot) {
            return Err(SigningError::AlreadySigned { slot, last });
        }
        let next = Signed { last_block_slot: Some(slot), ..self.signed.clone() };
        self.persist(&next)?;
        self.signed = next;
        Ok(())
    }

    /// Claims a vote of `round` naming `source` before it is signed: refused unless `round` is
    /// above the last round voted in, and `source` is the last vote's source or one of a later
    /// round. With rounds rising and sources never going back nor changing within a round, no
    /// two of this key's votes break a rule together.
    pub fn claim_vote(&mut self, round: u64, source: &Checkpoint) -> Result<(), SigningError> {
        if let Some(last) = self.signed.last_vote_round.filter(|last| *last >= round) {
            return Err(SigningError::AlreadyVoted { round, last });
        }
        let named = (source.round, source.block.height, source.block.hash);
        if let Some(last) = self.signed.last_vote_source
            && (named.0 < last.0 || (named.0 == last.0 && named != last))
        {
            return Err(SigningError::SourceGoesBack { round: named.0, last: last.0 });
        }
        let next =
            Signed { last_vote_round: Some(round), last_vote_source: Some(named), ..self.signed.clone() };
        self.persist(&next)?;
        self.signed = next;
        Ok(())
    }

    /// Replaces the file with `signed` atomically: a new file written and synced beside it,
    /// renamed over it, and the folder synced, so a crash leaves the old record or the new one.
    fn persist(&self, signed: &Signed) -> Result<(), SigningError> {
        let io = |error: std::io::Error| SigningError::Io(self.path.clone(), error);
        let folder = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(folder).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(signed).map_err(|e| io(std::io::Error::other(e)))?;
        file.write_all(&bytes).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&self.path).map_err(|e| io(e.error))?;
        std::fs::File::open(folder).and_then(|dir| dir.sync_all()).map_err(io)?;
        Ok(())
    }
}

/// A forger key with its signing record: what the chain actor signs blocks with.
#[derive(Debug)]
pub struct Forger {
    /// The key.
    pub key: goodwill_ledger::Keypair,
    /// What it signed.
    pub record: SigningRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Hash, Address) {
        (Hash([1; 32]), Address([2; 32]))
    }

    #[test]
    fn a_slot_is_signed_once_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (genesis, forger) = ids();
        let mut record = SigningRecord::open(&path, genesis, forger).unwrap();
        assert_eq!(record.last_block_slot(), None);
        record.claim_block(5).unwrap();
        assert!(matches!(record.claim_block(5), Err(SigningError::AlreadySigned { slot: 5, last: 5 })));
        assert!(matches!(record.claim_block(4), Err(SigningError::AlreadySigned { slot: 4, last: 5 })));
        drop(record);
        // A restart (or a crash after the claim) remembers it.
        let mut record = SigningRecord::open(&path, genesis, forger).unwrap();
        assert_eq!(record.last_block_slot(), Some(5));
        assert!(record.claim_block(5).is_err());
        record.claim_block(6).unwrap();
    }

    #[test]
    fn votes_never_go_back_across_reopening() {
        use goodwill_ledger::finality::BlockId;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (genesis, forger) = ids();
        let checkpoint =
            |round, h: u8| Checkpoint { round, block: BlockId { height: round, hash: Hash([h; 32]) } };
        let mut record = SigningRecord::open(&path, genesis, forger).unwrap();
        record.claim_vote(5, &checkpoint(3, 1)).unwrap();
        drop(record);
        let mut record = SigningRecord::open(&path, genesis, forger).unwrap();
        assert!(matches!(record.claim_vote(5, &checkpoint(4, 1)), Err(SigningError::AlreadyVoted { .. })));
        assert!(matches!(record.claim_vote(6, &checkpoint(2, 1)), Err(SigningError::SourceGoesBack { .. })));
        assert!(matches!(record.claim_vote(6, &checkpoint(3, 2)), Err(SigningError::SourceGoesBack { .. })));
        record.claim_vote(6, &checkpoint(3, 1)).unwrap();
        record.claim_vote(8, &checkpoint(7, 9)).unwrap();
        // Blocks and votes are apart.
        record.claim_block(1).unwrap();
    }

    #[test]
    fn a_record_of_another_chain_or_key_or_a_corrupt_one_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (genesis, forger) = ids();
        SigningRecord::open(&path, genesis, forger).unwrap().claim_block(9).unwrap();
        let other = SigningRecord::open(&path, Hash([3; 32]), forger).unwrap_err();
        assert!(other.to_string().contains("genesis"), "{other}");
        assert!(matches!(
            SigningRecord::open(&path, genesis, Address([4; 32])),
            Err(SigningError::Mismatch { .. })
        ));
        std::fs::write(&path, b"{\"genesis\": ").unwrap();
        assert!(matches!(SigningRecord::open(&path, genesis, forger), Err(SigningError::Corrupt(..))));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"genesis\": ", "left as it was");
    }
}
