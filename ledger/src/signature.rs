//! The signature rule, one for transactions and block headers.
//!
//! A signature is valid when it is a valid ed25519 signature under [ZIP-215] (the rule Zcash
//! adopted: `s` canonical, `A` and `R` any encodings of curve points, and the cofactored equation
//! `[8][s]B = [8]R + [8][k]A`) **and** the key is not of small order. ZIP-215 exists so that
//! verifying signatures one by one and in a batch accept exactly the same set: with
//! `verify_strict` (cofactorless) a batch may accept a signature that verifies alone only with
//! some probability, and two nodes checking the same block differently could disagree on it.
//! Every signature `verify_strict` accepts is accepted here.
//!
//! Small-order keys are refused because anyone can sign for them: coins sent to such an address
//! could be spent by anybody.
//!
//! [ZIP-215]: https://zips.z.cash/zip-0215

use ed25519_zebra::batch::{Item, Verifier};
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

/// Below this many signatures a batch costs more than checking each.
const MIN_BATCH: usize = 4;

/// Whether `signature` is `key`'s signature of `message` under the rule above.
pub fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    !is_weak(key)
        && VerificationKey::try_from(*key)
            .is_ok_and(|key| key.verify(&Signature::from_bytes(signature), message).is_ok())
}

/// One signature to check in a batch: the key, the message (built by the caller, domain
/// included), and the signature.
pub struct SignedMessage<'a> {
    /// The signer's public key.
    pub key: &'a [u8; 32],
    /// Exactly what was signed.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; 64],
}

/// [`verify`] for each of `items`, in order, in one batch: about twice as fast as checking them
/// one by one when all are valid. When the batch fails each is checked alone to find the bad
/// ones, so a batch with a bad signature costs about 1.5 times a check of each.
pub fn verify_all<'a>(items: impl IntoIterator<Item = SignedMessage<'a>>) -> Vec<bool> {
    let mut verdicts = Vec::new();
    let mut queued: Vec<(usize, Item)> = Vec::new();
    for item in items {
        let index = verdicts.len();
        if is_weak(item.key) {
            verdicts.push(false);
            continue;
        }
        verdicts.push(true);
        let key = VerificationKeyBytes::from(*item.key);
        queued.push((index, Item::from((key, Signature::from_bytes(item.signature), item.message))));
    }
    let batch_passed = queued.len() >= MIN_BATCH && {
        let mut verifier = Verifier::new();
        for (_, item) in &queued {
            verifier.queue(item.clone());
        }
        verifier.verify(rand::rng()).is_ok()
    };
    if !batch_passed {
        for (index, item) in queued {
            verdicts[index] = item.verify_single().is_ok();
        }
    }
    verdicts
}

/// Whether `key` is the encoding of a point of small order (including the non-canonical ones).
fn is_weak(key: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key).is_ok_and(|key| key.is_weak())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(count: u8) -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
        (0..count)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i + 1; 32]);
                let message = vec![i; 40];
                (key.verifying_key().to_bytes(), message.clone(), key.sign(&message).to_bytes())
            })
            .collect()
    }

    fn check_all(items: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<bool> {
        verify_all(items.iter().map(|(key, message, signature)| SignedMessage { key, message, signature }))
    }

    #[test]
    fn a_batch_agrees_with_single_checks() {
        let mut items = signed(16);
        assert_eq!(check_all(&items), vec![true; 16]);
        // One tampered message and one tampered signature: the batch fails, and exactly those
        // two are reported, in place.
        items[3].1[0] ^= 1;
        items[11].2[5] ^= 1;
        let verdicts = check_all(&items);
        let singles: Vec<bool> = items.iter().map(|(k, m, s)| verify(k, m, s)).collect();
        assert_eq!(verdicts, singles);
        assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 2);
        assert!(!verdicts[3] && !verdicts[11]);
    }

    #[test]
    fn small_batches_and_empty_input() {
        assert!(check_all(&[]).is_empty());
        let mut items = signed(2);
        assert_eq!(check_all(&items), vec![true, true]);
        items[1].2[40] ^= 1;
        assert_eq!(check_all(&items), vec![true, false]);
    }

    #[test]
    fn what_verify_strict_accepts_is_accepted() {
        for (key, message, signature) in signed(8) {
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
            assert!(dalek.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature)).is_ok());
            assert!(verify(&key, &message, &signature));
        }
    }

    #[test]
    fn a_small_order_key_is_refused_though_its_signature_satisfies_the_equation() {
        // The identity point (y = 1) has order 1: with s = 0 and R = identity the cofactored
        // equation holds for every message, so anybody could "sign" for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut signature = [0u8; 64];
        signature[0] = 1;
        let zebra = VerificationKey::try_from(identity).unwrap();
        assert!(zebra.verify(&Signature::from_bytes(&signature), b"anything").is_ok());
        assert!(!verify(&identity, b"anything", &signature));
        let items = vec![(identity, b"anything".to_vec(), signature); 5];
        assert_eq!(check_all(&items), vec![false; 5]);
    }

    #[test]
    fn a_malformed_key_or_signature_is_refused() {
        let (key, message, signature) = signed(1).remove(0);
        // s >= the group order.
        let mut big_s = signature;
        big_s[32..].copy_from_slice(&[0xff; 32]);
        assert!(!verify(&key, &message, &big_s));
        // y = 2 is not on the curve (no x satisfies the equation).
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(!verify(&off_curve, &message, &signature));
        let items = vec![(key, message.clone(), big_s), (off_curve, message, signature)];
        let mut many = signed(6);
        many.extend(items);
        let verdicts = check_all(&many);
        assert_eq!(verdicts, [vec![true; 6], vec![false; 2]].concat());
    }
}
