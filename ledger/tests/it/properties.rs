//! Property tests: wire types round-trip, hostile bytes never panic, and the ledger's invariants
//! hold over random chains with random invalid transactions mixed in.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use goodwill_ledger::testkit::{self, ChainGenerator};
use goodwill_ledger::{
    Amount, ApplyError, Block, Hash, Header, Payload, ReceivedBlock, SealedHeader, Transaction,
    TransactionBody,
};
use goodwill_proto::v1 as wire;
use proptest::prelude::*;
use prost::Message;

fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn arb_body() -> impl Strategy<Value = TransactionBody> {
    (0usize..8, 0usize..8, any::<u64>(), any::<u64>(), any::<u64>(), "[a-z0-9-]{0,20}").prop_map(
        |(from, to, nonce, fee, amount, chain_id)| TransactionBody {
            chain_id,
            sender: testkit::account(from).address(),
            nonce,
            fee: Amount(fee),
            payload: Payload::Transfer { to: testkit::account(to).address(), amount: Amount(amount) },
        },
    )
}

fn arb_tx() -> impl Strategy<Value = Transaction> {
    arb_body().prop_map(|body| {
        let key = (0..8).map(testkit::account).find(|k| k.address() == body.sender).expect("one of ours");
        body.sign(&key, &testkit::genesis_hash())
    })
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        (arb_hash(), any::<u64>(), any::<u64>(), any::<u64>(), arb_hash(), arb_hash(), any::<u32>()),
        (any::<u32>(), arb_hash(), arb_hash(), arb_hash()),
    )
        .prop_map(
            |(
                (parent_hash, height, slot, timestamp_ms, transactions_root, state_root, transaction_count),
                (rank, reveal, next_commitment, receipts_root),
            )| {
                Header {
                    rank,
                    reveal,
                    next_commitment,
                    receipts_root,
                    parent_hash,
                    height,
                    slot,
                    timestamp_ms,
                    transactions_root,
                    state_root,
                    forger: testkit::forger().address(),
                    transaction_count,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn transactions_round_trip(tx in arb_tx()) {
        prop_assert_eq!(tx.encoded_len(), tx.encode().len());
        let decoded = Transaction::decode(Bytes::from(tx.encode()), 1 << 20).unwrap();
        prop_assert_eq!(decoded.id(), tx.id());
        prop_assert!(decoded.verify_signature(&testkit::genesis_hash()));
        prop_assert_eq!(decoded, tx);
    }

    #[test]
    fn blocks_round_trip(header in arb_header(), txs in prop::collection::vec(arb_tx(), 0..6)) {
        let chain = Hash([6; 32]);
        let block = Block { header: header.sign(&testkit::forger(), &chain), transactions: txs };
        let decoded = Block::decode(Bytes::from(block.encode()), 1 << 20).unwrap();
        prop_assert_eq!(decoded.hash(), block.hash());
        prop_assert!(decoded.header.verify_signature(&chain));
        prop_assert!(!decoded.header.verify_signature(&Hash([7; 32])), "a signature for one chain verified for another");
        prop_assert_eq!(decoded, block.clone());
        // Received, then completed from what the node holds: the same block, whichever of its
        // transactions were held (every second one here), and only the others decoded.
        let received = ReceivedBlock::decode(Bytes::from(block.encode()), 1 << 20).unwrap();
        prop_assert_eq!(received.header().hash(), block.hash());
        let held: Vec<Transaction> = block.transactions.iter().step_by(2).cloned().collect();
        let asked = std::cell::Cell::new(0);
        let completed = received.into_block(|id, signature| {
            asked.set(asked.get() + 1);
            held.iter().find(|tx| tx.id() == *id && tx.signature()[..] == *signature).cloned()
        }).unwrap();
        prop_assert_eq!(asked.get(), block.transactions.len());
        prop_assert_eq!(completed, block);
    }

    #[test]
    fn hostile_bytes_are_refused_by_the_received_form_too(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(received) = ReceivedBlock::decode(Bytes::from(bytes), 1 << 20) {
            let _ = received.into_block(|_, _| None);
        }
    }

    #[test]
    fn hostile_bytes_are_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(bytes);
        let _ = Transaction::decode(bytes.clone(), 1 << 20);
        let _ = Block::decode(bytes.clone(), 1 << 20);
        if let Ok(signed) = wire::SignedBlockHeader::decode(bytes) {
            let _ = SealedHeader::from_wire(signed);
        }
    }

    #[test]
    fn oversized_messages_are_refused_before_decoding(extra in 1usize..64) {
        let tx = testkit::transfer(&testkit::account(0), &testkit::account(1), 0, 1, 10);
        let bytes = tx.encode();
        let limit = bytes.len() - extra.min(bytes.len() - 1);
        let refused = Transaction::decode(Bytes::from(bytes), limit);
        prop_assert!(
            matches!(refused, Err(goodwill_ledger::DecodeError::TooLarge { .. })),
            "a message over the limit was decoded"
        );
    }

    #[test]
    fn non_canonical_encodings_are_refused(tx in arb_tx(), junk in 1u32..1000) {
        // Append an unknown field to the signed body: valid protobuf, not canonical.
        let mut signed = tx.to_wire();
        let mut body = signed.body.to_vec();
        prost::encoding::uint32::encode(99, &junk, &mut body);
        signed.body = body.into();
        let refused = Transaction::from_wire(signed);
        prop_assert!(matches!(refused, Err(goodwill_ledger::DecodeError::NonCanonical { .. })), "accepted a non-canonical body");
    }
}

/// A transaction that may or may not be valid on the head: a valid transfer, or one with a
/// stale or future nonce, an unaffordable amount, a fee below the minimum, or a bad signature.
#[derive(Debug, Clone)]
enum Candidate {
    Valid,
    StaleNonce,
    FutureNonce,
    Unaffordable,
    FeeTooLow,
    WrongKey,
}

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    prop_oneof![
        4 => Just(Candidate::Valid),
        1 => Just(Candidate::StaleNonce),
        1 => Just(Candidate::FutureNonce),
        1 => Just(Candidate::Unaffordable),
        1 => Just(Candidate::FeeTooLow),
        1 => Just(Candidate::WrongKey),
    ]
}

const ACCOUNTS: usize = 5;

fn total_supply(generator: &ChainGenerator) -> u64 {
    let mut addresses: Vec<_> = (0..ACCOUNTS).map(|i| testkit::account(i).address()).collect();
    addresses.push(testkit::forger().address());
    addresses.iter().map(|a| generator.chain.account(a).unwrap().balance.0).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Supply changes only by the block reward; nonces strictly increase, one per committed
    /// transaction; a refused transaction changes nothing.
    #[test]
    fn ledger_invariants_hold(blocks in prop::collection::vec(
        prop::collection::vec((0..ACCOUNTS, 0..ACCOUNTS, 1u64..5_000, arb_candidate()), 0..8), 1..6)
    ) {
        let mut generator = ChainGenerator::new(ACCOUNTS, 0);
        let reward = generator.chain.spec().params.block_reward.0;
        let genesis_supply = total_supply(&generator);
        for plan in blocks {
            let nonces_before: Vec<u64> = (0..ACCOUNTS)
                .map(|i| generator.chain.account(&testkit::account(i).address()).unwrap().nonce)
                .collect();
            let mut next_nonce = nonces_before.clone();
            let slot = generator.chain.head().header().slot + 1;
            let time = testkit::slot_time(generator.chain.spec(), slot, 0);
            let mut builder = generator.chain.builder(&testkit::forger(), slot, time).unwrap();
            let mut included = [0u64; ACCOUNTS];
            for (from, to, amount, candidate) in plan {
                let key = testkit::account(from);
                let (mut nonce, mut amount, mut fee, mut signer) = (next_nonce[from], amount, 10, testkit::account(from));
                match candidate {
                    Candidate::Valid => {}
                    Candidate::StaleNonce if nonce > 0 => nonce -= 1,
                    Candidate::StaleNonce => nonce += 1,
                    Candidate::FutureNonce => nonce += 2,
                    Candidate::Unaffordable => amount = u64::MAX / 2,
                    Candidate::FeeTooLow => fee = 9,
                    Candidate::WrongKey => signer = testkit::account(from + 1),
                }
                let tx = TransactionBody {
                    chain_id: testkit::CHAIN_ID.into(),
                    sender: key.address(),
                    nonce,
                    fee: Amount(fee),
                    payload: Payload::Transfer { to: testkit::account(to).address(), amount: Amount(amount) },
                };
                let signed = if matches!(candidate, Candidate::WrongKey) {
                    signed_by_another_key(tx.sign(&key, &testkit::genesis_hash()), &signer)
                } else {
                    tx.sign(&signer, &testkit::genesis_hash())
                };
                let expected_valid = matches!(candidate, Candidate::Valid);
                match builder.push(signed) {
                    Ok(()) => {
                        prop_assert!(expected_valid, "accepted an invalid {candidate:?}");
                        next_nonce[from] += 1;
                        included[from] += 1;
                    }
                    Err(ApplyError::Invalid(_)) => prop_assert!(!expected_valid, "refused a valid transfer"),
                    Err(other) => panic!("{other}"),
                }
            }
            let applied = builder.seal(&testkit::forger()).unwrap();
            generator.chain.commit(applied).unwrap();
            for i in 0..ACCOUNTS {
                let nonce = generator.chain.account(&testkit::account(i).address()).unwrap().nonce;
                prop_assert_eq!(nonce, nonces_before[i] + included[i]);
            }
        }
        let height = generator.chain.head().header().height;
        prop_assert_eq!(total_supply(&generator), genesis_supply + reward * height);
        prop_assert_eq!(
            goodwill_ledger::chain::stored_state_root(generator.chain.store(), height).unwrap(),
            generator.chain.head().header().state_root
        );
    }
}

/// `tx`'s exact body bytes, signed by `signer` instead of the sender.
fn signed_by_another_key(tx: Transaction, signer: &goodwill_ledger::Keypair) -> Transaction {
    let mut wire = tx.to_wire();
    let message = [goodwill_ledger::TX_DOMAIN, &[0], testkit::genesis_hash().as_bytes(), &wire.body].concat();
    wire.signature = signer.sign(&message).to_vec().into();
    Transaction::from_wire(wire).unwrap()
}
