//! Every rule a transaction or block must follow, each broken once: the rejection names the rule
//! and the chain is unchanged.

#![allow(clippy::unwrap_used)]

use goodwill_ledger::testkit::{self, CHAIN_ID, ChainGenerator};
use goodwill_ledger::{
    Amount, ApplyError, Block, BlockError, ChainError, Hash, Header, Keypair, Payload, Store, Transaction,
    TransactionBody, TxError,
};

fn body(from: &Keypair, to: &Keypair, nonce: u64) -> TransactionBody {
    TransactionBody {
        chain_id: CHAIN_ID.into(),
        sender: from.address(),
        nonce,
        fee: Amount(10),
        payload: Payload::Transfer { to: to.address(), amount: Amount(100) },
    }
}

/// Pushes `tx` into a block on the head and returns the rejection, checking that the refused
/// transaction left no trace.
fn rejection(generator: &mut ChainGenerator, tx: Transaction) -> TxError {
    let head = generator.chain.head().hash();
    let sender_before = generator.chain.account(&tx.body().sender).unwrap();
    let slot = head_slot(generator) + 1;
    let mut builder = generator.chain.builder(&testkit::forger(), slot, slot_time(generator, slot)).unwrap();
    let error = match builder.push(tx.clone()) {
        Err(ApplyError::Invalid(error)) => error,
        other => panic!("expected a rejection, got {other:?}"),
    };
    assert!(builder.is_empty());
    drop(builder);
    assert_eq!(generator.chain.head().hash(), head);
    assert_eq!(generator.chain.account(&tx.body().sender).unwrap(), sender_before);
    error
}

fn head_slot(generator: &ChainGenerator) -> u64 {
    generator.chain.head().header().slot
}

fn slot_time(generator: &ChainGenerator, slot: u64) -> u64 {
    generator.chain.spec().slot_start_ms(slot).unwrap()
}

#[test]
fn a_transaction_signed_for_another_chain_is_rejected() {
    let mut generator = ChainGenerator::new(2, 1);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let mut other = body(&a, &b, 0);
    other.chain_id = "goodwill-other".into();
    let error = rejection(&mut generator, other.sign(&a, &testkit::genesis_hash()));
    assert_eq!(error, TxError::WrongChain { expected: CHAIN_ID.into(), got: "goodwill-other".into() });
}

/// The attack: a chain restarted with another genesis (a testnet reset, a fork of the spec)
/// keeps the chain id and the balances, so a transaction signed on one would replay on the
/// other. The signature covers the genesis hash: on any other genesis it does not verify.
#[test]
fn a_transaction_signed_for_another_genesis_with_the_same_chain_id_is_rejected() {
    let mut generator = ChainGenerator::new(2, 1);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let restarted =
        goodwill_ledger::genesis(&goodwill_ledger::ChainSpec { genesis_time_ms: 1, ..testkit::spec() })
            .unwrap()
            .block
            .hash();
    assert_ne!(restarted, generator.chain.genesis_hash());
    let replayed = body(&a, &b, 0).sign(&a, &restarted);
    assert_eq!(replayed.body().chain_id, CHAIN_ID, "same chain id, same sender, same nonce");
    assert_eq!(rejection(&mut generator, replayed), TxError::BadSignature);
    // The same body signed for this genesis is taken.
    generator.next_block_with(vec![body(&a, &b, 0).sign(&a, &testkit::genesis_hash())]);
}

#[test]
fn a_replayed_nonce_is_rejected() {
    let mut generator = ChainGenerator::new(2, 1);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let tx = body(&a, &b, 0).sign(&a, &testkit::genesis_hash());
    generator.next_block_with(vec![tx.clone()]);
    assert_eq!(rejection(&mut generator, tx), TxError::StaleNonce { expected: 1, got: 0 });
    let ahead = body(&a, &b, 5).sign(&a, &testkit::genesis_hash());
    assert_eq!(rejection(&mut generator, ahead), TxError::FutureNonce { expected: 1, got: 5 });
}

#[test]
fn a_change_to_any_signed_field_breaks_the_signature() {
    let mut generator = ChainGenerator::new(3, 1);
    let (a, b, c) = (testkit::account(0), testkit::account(1), testkit::account(2));
    let signed = body(&a, &b, 0).sign(&a, &testkit::genesis_hash());
    let mutations: Vec<fn(&mut TransactionBody, &Keypair)> = vec![
        |body, _| body.nonce += 1,
        |body, _| body.fee = Amount(body.fee.0 + 1),
        |body, other| body.payload = Payload::Transfer { to: other.address(), amount: Amount(100) },
        |body, _| body.payload = Payload::Transfer { to: testkit::account(1).address(), amount: Amount(101) },
    ];
    for mutate in mutations {
        let mut altered = signed.body().clone();
        mutate(&mut altered, &c);
        // Re-sign with a throwaway key, then graft the original signature back on.
        let forged = graft_signature(altered.sign(&a, &testkit::genesis_hash()), signed.signature());
        assert_eq!(rejection(&mut generator, forged), TxError::BadSignature);
    }
    // Another sender's key over the original body.
    let mut stolen = signed.body().clone();
    stolen.sender = c.address();
    let forged = graft_signature(stolen.sign(&c, &testkit::genesis_hash()), signed.signature());
    assert_eq!(rejection(&mut generator, forged), TxError::BadSignature);
    // The untouched transaction is fine.
    generator.next_block_with(vec![signed]);
}

/// The same body with someone else's signature, through the wire form as a peer would send it.
fn graft_signature(tx: Transaction, signature: &[u8; 64]) -> Transaction {
    let mut wire = tx.to_wire();
    wire.signature = signature.to_vec().into();
    Transaction::from_wire(wire).unwrap()
}

#[test]
fn fee_balance_amount_and_size_rules_hold() {
    let mut generator = ChainGenerator::new(2, 1);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let mut cheap = body(&a, &b, 0);
    cheap.fee = Amount(9);
    assert_eq!(
        rejection(&mut generator, cheap.sign(&a, &testkit::genesis_hash())),
        TxError::FeeTooLow { min: Amount(10), got: Amount(9) }
    );

    let balance = generator.chain.account(&a.address()).unwrap().balance;
    let mut rich = body(&a, &b, 0);
    rich.payload = Payload::Transfer { to: b.address(), amount: balance };
    assert_eq!(
        rejection(&mut generator, rich.sign(&a, &testkit::genesis_hash())),
        TxError::InsufficientBalance { needed: Amount(balance.0 + 10), available: balance }
    );

    let mut nothing = body(&a, &b, 0);
    nothing.payload = Payload::Transfer { to: b.address(), amount: Amount::ZERO };
    assert_eq!(rejection(&mut generator, nothing.sign(&a, &testkit::genesis_hash())), TxError::ZeroAmount);

    let mut huge = body(&a, &b, 0);
    huge.chain_id = "x".repeat(20_000);
    assert!(matches!(
        rejection(&mut generator, huge.sign(&a, &testkit::genesis_hash())),
        TxError::TooLarge { .. }
    ));
}

#[test]
fn a_transfer_to_oneself_costs_only_the_fee() {
    let mut generator = ChainGenerator::new(1, 1);
    let a = testkit::account(0);
    let before = generator.chain.account(&a.address()).unwrap();
    generator.next_block_with(vec![body(&a, &a, 0).sign(&a, &testkit::genesis_hash())]);
    let after = generator.chain.account(&a.address()).unwrap();
    assert_eq!(after.balance, Amount(before.balance.0 - 10));
    assert_eq!(after.nonce, 1);
}

/// Applies `break_it` to a valid next block and returns the import error, checking that the
/// chain did not move.
fn block_rejection(break_it: impl FnOnce(&mut Header, &mut Vec<Transaction>) -> Keypair) -> BlockError {
    let mut source = ChainGenerator::new(4, 7);
    source.next_block(3);
    let parent_store_head = source.chain.head().clone();
    let mut target = ChainGenerator::new(4, 7);
    target.next_block(3);
    assert_eq!(target.chain.head(), &parent_store_head);
    let good = source.next_block(5);
    let mut header = good.header().clone();
    let mut transactions = good.transactions.clone();
    let signer = break_it(&mut header, &mut transactions);
    let block = Block { header: header.sign(&signer, &target.chain.genesis_hash()), transactions };
    let root_before = target.chain.store().head().unwrap();
    let error = match target.chain.import(block) {
        Err(ChainError::Invalid(error)) => error,
        other => panic!("expected an invalid block, got {other:?}"),
    };
    assert_eq!(target.chain.store().head().unwrap(), root_before, "an invalid block moved the head");
    assert_eq!(target.chain.head(), &parent_store_head);
    error
}

#[test]
fn invalid_blocks_are_rejected_and_change_nothing() {
    let forger = testkit::forger;
    assert!(matches!(
        block_rejection(|h, _| {
            h.height += 1;
            forger()
        }),
        BlockError::WrongHeight { .. }
    ));
    assert!(matches!(
        block_rejection(|h, _| {
            h.slot = 0;
            forger()
        }),
        BlockError::SlotNotAfterParent { .. }
    ));
    assert!(matches!(
        block_rejection(|h, _| {
            h.timestamp_ms += 10_000;
            forger()
        }),
        BlockError::TimestampOutsideSlot { .. }
    ));
    assert!(matches!(
        block_rejection(|h, _| {
            h.state_root = Hash([2; 32]);
            forger()
        }),
        BlockError::StateRoot { .. }
    ));
    // A forger cannot commit to receipts other than what its transactions did (a failed call
    // shown as a success to light peers, say).
    assert!(matches!(
        block_rejection(|h, _| {
            h.receipts_root = Hash([2; 32]);
            forger()
        }),
        BlockError::ReceiptsRoot { .. }
    ));
    assert!(matches!(
        block_rejection(|_, txs| {
            txs.pop();
            forger()
        }),
        BlockError::CountMismatch { .. }
    ));
    assert!(matches!(
        block_rejection(|_, txs| {
            txs.swap(0, 1);
            forger()
        }),
        BlockError::TransactionsRoot { .. }
    ));
    let outsider = Keypair::insecure_dev("outsider");
    let outsider_address = outsider.address();
    assert!(matches!(
        block_rejection(move |h, _| {
            h.forger = outsider_address;
            outsider
        }),
        BlockError::NotEntitled { forger, .. } if forger == outsider_address
    ));
    // The only forger, claiming a rank it does not hold.
    assert!(matches!(
        block_rejection(|h, _| {
            h.rank = 3;
            forger()
        }),
        BlockError::NotEntitled { rank: 3, .. }
    ));
    // A valid fallback rank stamped before its window opens.
    assert!(matches!(
        block_rejection(|h, _| {
            h.rank = 2;
            forger()
        }),
        BlockError::TooEarlyForRank { rank: 2, .. }
    ));
    // A reveal that does not open the forger's commitment.
    assert_eq!(
        block_rejection(|h, _| {
            h.reveal = Hash([7; 32]);
            forger()
        }),
        BlockError::BadReveal
    );
    // Signed by someone other than the forger it names.
    assert_eq!(block_rejection(|_, _| Keypair::insecure_dev("impostor")), BlockError::BadSignature);
}

#[test]
fn a_block_with_an_invalid_transaction_is_rejected_whole() {
    let mut generator = ChainGenerator::new(2, 3);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let block = generator.next_block_with(vec![body(&a, &b, 0).sign(&a, &testkit::genesis_hash())]);
    // A second chain, where the same block carries a replayed transaction appended.
    let mut other = ChainGenerator::new(2, 3);
    let mut transactions = block.transactions.clone();
    transactions.push(body(&a, &b, 0).sign(&a, &testkit::genesis_hash()));
    let leaves: Vec<Hash> = transactions.iter().map(Transaction::leaf).collect();
    let mut header = block.header().clone();
    header.transaction_count = 2;
    header.transactions_root = goodwill_ledger::transactions_root(&leaves);
    let bad = Block { header: header.sign(&testkit::forger(), &other.chain.genesis_hash()), transactions };
    let error = other.chain.import(bad).unwrap_err();
    assert!(
        matches!(
            error,
            ChainError::Invalid(BlockError::Transaction { index: 1, reason: TxError::StaleNonce { .. }, .. })
        ),
        "{error}"
    );
    assert_eq!(other.chain.head().header().height, 0);
    assert_eq!(other.chain.account(&a.address()).unwrap().nonce, 0);
}

#[test]
fn a_block_signed_for_another_chain_is_rejected() {
    let mut source = ChainGenerator::new(2, 11);
    let mut target = ChainGenerator::new(2, 11);
    let good = source.next_block(1);
    let other_chain = Hash([9; 32]);
    let forged_elsewhere = Block {
        header: good.header().clone().sign(&testkit::forger(), &other_chain),
        transactions: good.transactions.clone(),
    };
    assert!(matches!(
        target.chain.import(forged_elsewhere),
        Err(ChainError::Invalid(BlockError::BadSignature))
    ));
    target.chain.import(good).unwrap();
}

#[test]
fn a_block_with_an_unknown_parent_waits_aside_and_changes_nothing() {
    let mut source = ChainGenerator::new(2, 4);
    let mut target = ChainGenerator::new(2, 4);
    let good = source.next_block(1);
    let mut header = good.header().clone();
    header.parent_hash = Hash([1; 32]);
    let orphan = Block {
        header: header.sign(&testkit::forger(), &target.chain.genesis_hash()),
        transactions: good.transactions.clone(),
    };
    let head = target.chain.head().clone();
    assert_eq!(target.chain.import(orphan).unwrap(), goodwill_ledger::Imported::Side);
    assert_eq!(target.chain.head(), &head);
    assert_eq!(target.chain.store().head().unwrap(), Some(head.hash()));
}

#[test]
fn hostile_heights_and_slots_are_refused_without_panicking() {
    let mut source = ChainGenerator::new(2, 5);
    let mut target = ChainGenerator::new(2, 5);
    let good = source.next_block(1);
    let genesis = target.chain.genesis_hash();
    let resign = |edit: fn(&mut goodwill_ledger::Header)| {
        let mut header = good.header().clone();
        edit(&mut header);
        Block { header: header.sign(&testkit::forger(), &genesis), transactions: good.transactions.clone() }
    };
    // A slot at the end of time, on the right parent.
    let error = target.chain.import(resign(|h| h.slot = u64::MAX)).unwrap_err();
    assert!(matches!(error, ChainError::Invalid(BlockError::TimestampOutsideSlot { .. })), "{error}");
    // Heights far above the head are not kept aside.
    for height in [u64::MAX, 1_000] {
        let mut header = good.header().clone();
        header.height = height;
        header.parent_hash = Hash([3; 32]);
        let block = Block {
            header: header.sign(&testkit::forger(), &genesis),
            transactions: good.transactions.clone(),
        };
        assert!(matches!(target.chain.import(block), Err(ChainError::TooFarAhead { .. })));
    }
    target.chain.import(good).unwrap();
}

#[test]
fn a_known_signature_is_not_checked_again_and_a_different_one_is() {
    let generator = ChainGenerator::new(2, 1);
    let (a, b) = (testkit::account(0), testkit::account(1));
    let good = body(&a, &b, 0).sign(&a, &testkit::genesis_hash());
    // The same body under the signature of another body: the same id, a signature that fails.
    let bad = graft_signature(good.clone(), body(&a, &b, 1).sign(&a, &testkit::genesis_hash()).signature());
    assert_eq!(bad.id(), good.id());
    // A forger that skips checks can seal a block around it.
    let slot = head_slot(&generator) + 1;
    let mut builder = generator.chain.builder(&testkit::forger(), slot, slot_time(&generator, slot)).unwrap();
    builder.push_admitted(bad.clone()).unwrap();
    let block = builder.seal(&testkit::forger()).unwrap().block;
    let (store, spec, genesis, head) = (
        generator.chain.store(),
        generator.chain.spec(),
        generator.chain.genesis_hash(),
        generator.chain.head().clone(),
    );
    let apply = |verified: &dyn Fn(&Transaction) -> bool| {
        goodwill_ledger::execute::apply_block_with(store, spec, &genesis, &head, block.clone(), verified)
    };
    let refused = |result: Result<goodwill_ledger::AppliedBlock, ApplyError<BlockError>>| {
        matches!(
            result,
            Err(ApplyError::Invalid(BlockError::Transaction { reason: TxError::BadSignature, .. }))
        )
    };
    // Checked in full, the block is refused.
    assert!(refused(apply(&|_| false)));
    // A node that verified the good transaction and compares signatures refuses it too...
    assert!(refused(apply(&|tx| tx.signature() == good.signature())));
    // ...and the check really is skipped for what the caller vouches for.
    assert!(apply(&|_| true).is_ok());
}

#[test]
fn a_bad_signature_among_many_is_found_and_named_in_block_order() {
    let mut generator = ChainGenerator::new(12, 1);
    let keys: Vec<Keypair> = (0..12).map(testkit::account).collect();
    let signed: Vec<Transaction> = (0..12)
        .map(|i| body(&keys[i], &keys[(i + 1) % 12], 0).sign(&keys[i], &testkit::genesis_hash()))
        .collect();
    // Another body's signature on transactions 4 and 9: the rest are good.
    let mut txs = signed.clone();
    for index in [9, 4] {
        txs[index] = graft_signature(txs[index].clone(), signed[0].signature());
    }
    let seal = |generator: &ChainGenerator, txs: &[Transaction]| {
        let slot = head_slot(generator) + 1;
        let mut builder =
            generator.chain.builder(&testkit::forger(), slot, slot_time(generator, slot)).unwrap();
        for tx in txs {
            builder.push_admitted(tx.clone()).unwrap();
        }
        builder.seal(&testkit::forger()).unwrap().block
    };
    // The verdicts of one batch match one-by-one checks.
    let genesis = testkit::genesis_hash();
    let verdicts = Transaction::verify_signatures(&genesis, &txs);
    assert_eq!(verdicts, txs.iter().map(|tx| tx.verify_signature(&genesis)).collect::<Vec<_>>());
    let failed: Vec<usize> = (0..txs.len()).filter(|&i| !verdicts[i]).collect();
    assert_eq!(failed, vec![4, 9]);
    let (store, spec, genesis, head) = (
        generator.chain.store(),
        generator.chain.spec(),
        generator.chain.genesis_hash(),
        generator.chain.head().clone(),
    );
    let block = seal(&generator, &txs);
    let refusal = goodwill_ledger::execute::apply_block_with(store, spec, &genesis, &head, block, &|_| false);
    assert!(matches!(
        refusal,
        Err(ApplyError::Invalid(BlockError::Transaction { index: 4, reason: TxError::BadSignature, .. }))
    ));
    // Vouching for transaction 4 (as a pool that admitted it would) moves the refusal to 9.
    let vouched = txs[4].clone();
    let block = seal(&generator, &txs);
    let refusal = goodwill_ledger::execute::apply_block_with(store, spec, &genesis, &head, block, &|tx| {
        tx.signature() == vouched.signature() && tx.id() == vouched.id()
    });
    assert!(matches!(
        refusal,
        Err(ApplyError::Invalid(BlockError::Transaction { index: 9, reason: TxError::BadSignature, .. }))
    ));
    // A rule broken earlier in the block is named first, as it would be checking one by one.
    let mut early = txs.clone();
    let mut wrong_chain = body(&keys[1], &keys[2], 0);
    wrong_chain.chain_id = "goodwill-other".into();
    early[1] = wrong_chain.sign(&keys[1], &testkit::genesis_hash());
    let block = seal(&generator, &early);
    let refusal = goodwill_ledger::execute::apply_block_with(store, spec, &genesis, &head, block, &|_| false);
    assert!(matches!(
        refusal,
        Err(ApplyError::Invalid(BlockError::Transaction {
            index: 1,
            reason: TxError::WrongChain { .. },
            ..
        }))
    ));
    // The good ones make a block.
    generator.next_block_with(signed);
}

#[test]
fn every_rule_checked_without_state_is_classed_stateless_and_no_other() {
    let spec = testkit::spec();
    let (a, b) = (testkit::account(0), testkit::account(1));
    let broken: Vec<TransactionBody> = vec![
        TransactionBody { chain_id: "goodwill-other".into(), ..body(&a, &b, 0) },
        TransactionBody { fee: Amount(9), ..body(&a, &b, 0) },
        TransactionBody {
            payload: Payload::Transfer { to: b.address(), amount: Amount::ZERO },
            ..body(&a, &b, 0)
        },
        TransactionBody { chain_id: "x".repeat(20_000), ..body(&a, &b, 0) },
        TransactionBody {
            payload: Payload::DeployContract { code: "x = 1".into(), args: "[]".into(), gas_limit: 0 },
            ..body(&a, &b, 0)
        },
        TransactionBody {
            payload: Payload::DeployContract { code: "x = (".into(), args: "[]".into(), gas_limit: 5 },
            ..body(&a, &b, 0)
        },
    ];
    for tx in broken {
        let error = goodwill_ledger::execute::check_stateless(
            &tx.sign(&a, &testkit::genesis_hash()),
            &spec,
            &testkit::genesis_hash(),
        )
        .unwrap_err();
        assert!(error.is_stateless(), "{error:?} is found without state but not classed so");
    }
    let forged = graft_signature(body(&a, &b, 0).sign(&a, &testkit::genesis_hash()), &[7; 64]);
    let error =
        goodwill_ledger::execute::check_stateless(&forged, &spec, &testkit::genesis_hash()).unwrap_err();
    assert_eq!(error, TxError::BadSignature);
    assert!(error.is_stateless());

    // What depends on the head is nobody's fault: honest nodes disagree on it for a moment.
    let mut generator = ChainGenerator::new(2, 1);
    let stale = rejection(&mut generator, body(&a, &b, 5).sign(&a, &testkit::genesis_hash()));
    assert!(matches!(stale, TxError::FutureNonce { .. }) && !stale.is_stateless());
}
