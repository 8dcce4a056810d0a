//! A seeded simulation of the forger lottery: 24 forgers with random ticket sizes over 12,000
//! slots, going offline and coming back, with epoch seeds mixed from the blocks' reveals.

#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use goodwill_ledger::lottery::{Lottery, Roster, epoch_of, epoch_seed, mix_reveal};
use goodwill_ledger::{Address, Amount, Hash};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const FORGERS: usize = 24;
const SLOTS: u64 = 12_000;
const SLOTS_PER_EPOCH: u64 = 30;
const FALLBACK_RANKS: u32 = 2;
/// Bounds at five standard deviations: with 24 forgers checked twice, a false alarm has a
/// probability below 3e-5 per seed.
const SIGMAS: f64 = 5.0;

fn forger(i: usize) -> Address {
    Address(Hash::tagged(b"sim/forger", &i.to_be_bytes()).0)
}

/// What a forger reveals in a slot (in the ledger: the preimage of its previous commitment).
fn reveal(forger: &Address, slot: u64) -> Hash {
    Hash::tagged(b"sim/reveal", &[forger.as_bytes().as_slice(), &slot.to_be_bytes()].concat())
}

struct Outcome {
    /// Per forger: slots where it was the primary (rank 0) draw.
    primary_draws: Vec<u64>,
    /// Per forger: expected primary blocks = sum over its online slots of its weight share.
    expected_primary_blocks: Vec<f64>,
    variance_primary_blocks: Vec<f64>,
    /// Per forger: blocks it forged at rank 0.
    primary_blocks: Vec<u64>,
    /// Blocks per rank.
    blocks_by_rank: Vec<u64>,
    /// Slots in which some forger was online but no block was made.
    stalled_slots: u64,
}

fn simulate(seed: u64) -> (Vec<u64>, Outcome) {
    let mut rng = StdRng::seed_from_u64(seed);
    let weights: Vec<u64> = (0..FORGERS).map(|_| rng.random_range(1..=1_000)).collect();
    let roster = Roster::new((0..FORGERS).map(|i| (forger(i), Amount(weights[i]))));
    let total = roster.total_weight() as f64;
    let index_of = |address: &Address| (0..FORGERS).find(|&i| forger(i) == *address).unwrap();

    let mut online = [true; FORGERS];
    let mut mix = Hash::ZERO;
    let mut epoch = u64::MAX;
    let mut lottery_seed = Hash::ZERO;
    let mut outcome = Outcome {
        primary_draws: vec![0; FORGERS],
        expected_primary_blocks: vec![0.0; FORGERS],
        variance_primary_blocks: vec![0.0; FORGERS],
        primary_blocks: vec![0; FORGERS],
        blocks_by_rank: vec![0; FALLBACK_RANKS as usize + 1],
        stalled_slots: 0,
    };
    for slot in 1..=SLOTS {
        // Forgers drop out and come back: on average offline for 50 slots every 500.
        for state in online.iter_mut() {
            let flip = if *state { rng.random_bool(0.002) } else { rng.random_bool(0.02) };
            *state ^= flip;
        }
        if epoch_of(slot, SLOTS_PER_EPOCH) != epoch {
            epoch = epoch_of(slot, SLOTS_PER_EPOCH);
            lottery_seed = epoch_seed(epoch, &mix);
        }
        let lottery = Lottery { roster: &roster, seed: lottery_seed, fallback_ranks: FALLBACK_RANKS };
        let primary = index_of(&roster.draw(&lottery_seed, slot, 0).unwrap());
        outcome.primary_draws[primary] += 1;
        for i in 0..FORGERS {
            if online[i] {
                let p = weights[i] as f64 / total;
                outcome.expected_primary_blocks[i] += p;
                outcome.variance_primary_blocks[i] += p * (1.0 - p);
            }
        }
        // Every online forger asks the lottery for its rank; the best rank forges (at the open
        // rank several may sign, and fork choice keeps the lowest hash: here, lowest address).
        let producer = (0..FORGERS)
            .filter(|&i| online[i])
            .filter_map(|i| lottery.rank_of(slot, &forger(i)).map(|rank| (rank, forger(i))))
            .min();
        let Some((rank, producer)) = producer else {
            if online.iter().any(|&o| o) {
                outcome.stalled_slots += 1;
            }
            continue;
        };
        // Check the lottery's answer against the raw draws: every better rank's forger is
        // offline, and a drawn rank really drew this producer.
        for better in 0..rank {
            let winner = roster.draw(&lottery_seed, slot, better).unwrap();
            assert!(
                !online[index_of(&winner)],
                "slot {slot}: rank {better} was online but rank {rank} forged"
            );
        }
        if rank < FALLBACK_RANKS {
            assert_eq!(roster.draw(&lottery_seed, slot, rank), Some(producer));
        }
        assert!(lottery.may_sign(slot, &producer, rank));
        outcome.blocks_by_rank[rank as usize] += 1;
        if rank == 0 {
            outcome.primary_blocks[index_of(&producer)] += 1;
        }
        mix = mix_reveal(&mix, &reveal(&producer, slot));
    }
    (weights, outcome)
}

#[test]
fn block_shares_follow_ticket_weight_and_the_chain_never_stalls() {
    let (weights, outcome) = simulate(20261123);
    let total: u64 = weights.iter().sum();
    for i in 0..FORGERS {
        // Primary draws over all slots: Binomial(SLOTS, weight share).
        let p = weights[i] as f64 / total as f64;
        let mean = SLOTS as f64 * p;
        let sigma = (SLOTS as f64 * p * (1.0 - p)).sqrt();
        let drawn = outcome.primary_draws[i] as f64;
        assert!(
            (drawn - mean).abs() <= SIGMAS * sigma,
            "forger {i}: drawn {drawn} times, expected {mean:.1} ± {sigma:.1}"
        );
        // Blocks forged at rank 0 while online.
        let mean = outcome.expected_primary_blocks[i];
        let sigma = outcome.variance_primary_blocks[i].sqrt();
        let forged = outcome.primary_blocks[i] as f64;
        assert!(
            (forged - mean).abs() <= SIGMAS * sigma,
            "forger {i}: forged {forged}, expected {mean:.1} ± {sigma:.1}"
        );
    }
    assert_eq!(outcome.stalled_slots, 0);
    let blocks: u64 = outcome.blocks_by_rank.iter().sum();
    // Offline forgers made the fallback ranks fill in: the simulation exercised them.
    assert!(outcome.blocks_by_rank[1] > 0 && outcome.blocks_by_rank[2] > 0, "{:?}", outcome.blocks_by_rank);
    assert!(blocks > SLOTS * 95 / 100, "{blocks} blocks in {SLOTS} slots");
}

#[test]
fn splitting_weight_across_keys_gives_no_advantage() {
    let mut rng = StdRng::seed_from_u64(7);
    let others: Vec<(Address, Amount)> =
        (1..FORGERS).map(|i| (forger(i), Amount(rng.random_range(1..=1_000)))).collect();
    let whole = 3_000u64;
    let split_keys: Vec<Address> = (100..103).map(forger).collect();
    let split = Roster::new(others.iter().copied().chain(split_keys.iter().map(|k| (*k, Amount(whole / 3)))));
    let single = Roster::new(others.iter().copied().chain([(forger(0), Amount(whole))]));
    assert_eq!(split.total_weight(), single.total_weight());
    let p = whole as f64 / single.total_weight() as f64;
    let (mut split_wins, mut single_wins) = (0u64, 0u64);
    for slot in 0..SLOTS {
        let seed = Hash::tagged(b"sim/seed", &(slot / SLOTS_PER_EPOCH).to_be_bytes());
        split_wins += u64::from(split_keys.contains(&split.draw(&seed, slot, 0).unwrap()));
        single_wins += u64::from(single.draw(&seed, slot, 0).unwrap() == forger(0));
    }
    let mean = SLOTS as f64 * p;
    let sigma = (SLOTS as f64 * p * (1.0 - p)).sqrt();
    for wins in [split_wins, single_wins] {
        assert!((wins as f64 - mean).abs() <= SIGMAS * sigma, "{wins} wins, expected {mean:.1} ± {sigma:.1}");
    }
}

#[test]
fn the_simulation_is_deterministic_per_seed() {
    let (_, a) = simulate(5);
    let (_, b) = simulate(5);
    assert_eq!(a.primary_draws, b.primary_draws);
    assert_eq!(a.blocks_by_rank, b.blocks_by_rank);
}
