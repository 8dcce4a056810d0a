use std::collections::HashMap;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;

const GENESIS: Hash = Hash([7; 32]);
const SLOTS_PER_EPOCH: u64 = 4;

/// A block tree in memory.
#[derive(Default)]
struct Tree {
    parents: HashMap<Hash, BlockId>,
    next: u64,
}

impl Tree {
    fn genesis() -> BlockId {
        BlockId { height: 0, hash: GENESIS }
    }

    /// A new block on `parent`.
    fn grow(&mut self, parent: BlockId) -> BlockId {
        self.next += 1;
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.next.to_be_bytes());
        let block = BlockId { height: parent.height + 1, hash: Hash(bytes) };
        self.parents.insert(block.hash, parent);
        block
    }

    /// Whether `block` is `ancestor` or descends from it.
    fn descends(&self, block: &BlockId, ancestor: &BlockId) -> bool {
        self.ancestor(block, ancestor.height) == Some(ancestor.hash)
    }
}

impl Ancestry for Tree {
    fn ancestor(&self, block: &BlockId, height: u64) -> Option<Hash> {
        let mut at = *block;
        while at.height > height {
            at = *self.parents.get(&at.hash)?;
        }
        (at.height == height).then_some(at.hash)
    }
}

/// The same weights in every epoch.
struct Fixed(HashMap<Address, u128>);

impl Weights for Fixed {
    fn weight(&self, _: u64, voter: &Address) -> u128 {
        self.0.get(voter).copied().unwrap_or(0)
    }

    fn total(&self, _: u64) -> u128 {
        self.0.values().sum()
    }
}

fn voters(count: usize) -> (Vec<Keypair>, Fixed) {
    let keys: Vec<Keypair> = (0..count).map(|i| Keypair::insecure_dev(&format!("voter-{i}"))).collect();
    let weights = Fixed(keys.iter().map(|k| (k.address(), 10)).collect());
    (keys, weights)
}

fn vote(key: &Keypair, round: u64, source: Checkpoint, target: BlockId) -> SignedVote {
    Vote { round, source, target }.sign(key, &GENESIS)
}

/// Everyone in `keys` votes for `head` in `round`, naming the source `finality` gives it.
fn all_vote(
    finality: &mut Finality,
    keys: &[Keypair],
    round: u64,
    head: BlockId,
    tree: &Tree,
    weights: &Fixed,
) -> Progress {
    let source = finality.source_for(&head, tree);
    let votes: Vec<SignedVote> = keys.iter().map(|k| vote(k, round, source, head)).collect();
    let mut refused = Vec::new();
    let progress = finality.add_votes(votes, round, weights, tree, &mut refused);
    assert!(refused.is_empty(), "{refused:?}");
    progress
}

#[test]
fn an_honest_chain_is_final_one_round_after_its_block_is_justified() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut head = Tree::genesis();
    let mut heads = vec![head];
    for round in 1..=12 {
        head = tree.grow(head);
        heads.push(head);
        let progress = all_vote(&mut finality, &keys, round, head, &tree, &weights);
        assert_eq!(progress.justified, vec![Checkpoint { round, block: head }]);
        if round >= 2 {
            let last = Checkpoint { round: round - 1, block: heads[round as usize - 1] };
            assert_eq!(progress.finalized, Some(last), "round {round}");
            assert_eq!(finality.finalized(), last);
        }
    }
    // The signatures verify for this chain only.
    let signed = vote(&keys[0], 13, finality.source_for(&head, &tree), head);
    assert!(signed.verify(&GENESIS));
    assert!(!signed.verify(&Hash([8; 32])));
}

#[test]
fn a_third_offline_still_finalizes_and_more_than_a_third_waits() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut head = Tree::genesis();
    for round in 1..=3 {
        head = tree.grow(head);
        all_vote(&mut finality, &keys[..3], round, head, &tree, &weights);
    }
    assert_eq!(finality.finalized().round, 2, "three of four (75%) finalize");
    // Two of four: the chain grows, nothing more is justified or final.
    for round in 4..=8 {
        head = tree.grow(head);
        let progress = all_vote(&mut finality, &keys[..2], round, head, &tree, &weights);
        assert_eq!(progress, Progress::default(), "round {round}");
    }
    assert_eq!(finality.finalized().round, 2);
    // Everyone is back: the old justified checkpoint is the source, and finality catches up
    // with the whole chain in two rounds.
    for round in 9..=10 {
        head = tree.grow(head);
        all_vote(&mut finality, &keys, round, head, &tree, &weights);
    }
    assert_eq!(finality.finalized().round, 9);
    assert_eq!(finality.finalized().block.height, 9);
}

#[test]
fn a_vote_split_between_branches_justifies_neither() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let base = tree.grow(Tree::genesis());
    all_vote(&mut finality, &keys, 1, base, &tree, &weights);
    let (left, right) = (tree.grow(base), tree.grow(base));
    let source = finality.source_for(&left, &tree);
    let votes = [vote(&keys[0], 2, source, left), vote(&keys[1], 2, source, left)]
        .into_iter()
        .chain([vote(&keys[2], 2, source, right), vote(&keys[3], 2, source, right)]);
    assert_eq!(finality.add_votes(votes, 2, &weights, &tree, &mut Vec::new()), Progress::default());
    // The voters agree again: round 3 justifies the winning branch from round 1's checkpoint
    // (round 2 justified nothing, so round 1's is not final), and round 4 makes round 3's final.
    let next = tree.grow(left);
    all_vote(&mut finality, &keys, 3, next, &tree, &weights);
    let last = tree.grow(next);
    let progress = all_vote(&mut finality, &keys, 4, last, &tree, &weights);
    assert_eq!(progress.finalized, Some(Checkpoint { round: 3, block: next }));
}

/// The attack: vote twice in a round (for two branches), or name an old source to undo a
/// justification. Each conflicting pair is evidence, and the second vote is not counted.
#[test]
fn a_double_or_surrounding_vote_is_evidence_and_is_not_counted() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut head = Tree::genesis();
    let mut checkpoints = vec![finality.finalized()];
    for round in 1..=2 {
        head = tree.grow(head);
        // Voter 3 sits these out.
        all_vote(&mut finality, &keys[..3], round, head, &tree, &weights);
        checkpoints.push(finality.justified_in(round).unwrap());
    }
    let fork = tree.grow(Tree::genesis());
    let honest = vote(&keys[0], 3, checkpoints[2], tree.grow(head));
    let twin = vote(&keys[0], 3, checkpoints[0], fork);
    let mut refused = Vec::new();
    let progress = finality.add_votes([honest, twin], 3, &weights, &tree, &mut refused);
    // The twin conflicts with the honest vote of its round, and surrounds voter 0's round-2
    // vote too: either pair is evidence.
    assert_eq!(progress.equivocations.len(), 1);
    let evidence = progress.equivocations[0];
    assert_eq!((evidence.first.voter, evidence.second), (keys[0].address(), twin));
    assert!(evidence.first.vote.conflicts_with(&evidence.second.vote));
    assert_eq!(refused, vec![(twin, VoteRefused::Equivocation(keys[0].address()))]);

    // Voter 1 voted in round 2 from round 1's checkpoint; a round-4 vote from round 0's
    // surrounds it.
    let surrounding = vote(&keys[1], 4, checkpoints[0], fork);
    assert!(surrounding.vote.conflicts_with(&Vote { round: 2, source: checkpoints[1], target: head }));
    let progress = finality.add_votes([surrounding], 4, &weights, &tree, &mut Vec::new());
    assert_eq!(progress.equivocations.len(), 1);
    assert_eq!(progress.equivocations[0].second, surrounding);
    // Reported once per voter while its votes are open; refused every time.
    let again = vote(&keys[1], 5, checkpoints[0], fork);
    let mut refused = Vec::new();
    assert!(finality.add_votes([again], 5, &weights, &tree, &mut refused).equivocations.is_empty());
    assert_eq!(refused.len(), 1);
}

/// The attack: keep a third of the weight away so that nothing becomes final, and let the
/// votes of every round pile up. A node keeps only the rounds that can still count.
#[test]
fn a_long_wait_for_finality_keeps_a_bounded_number_of_rounds() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut head = tree.grow(Tree::genesis());
    all_vote(&mut finality, &keys, 1, head, &tree, &weights);
    let justified = finality.justified_in(1).unwrap();
    for round in 2..=3 * MAX_ROUNDS {
        head = tree.grow(head);
        all_vote(&mut finality, &keys[..2], round, head, &tree, &weights);
    }
    assert!(finality.rounds.len() as u64 <= MAX_ROUNDS, "{} rounds kept", finality.rounds.len());
    // A node that was away learns why it is justified: the votes of its round, closed long
    // ago, are still served (first, as the oldest), then the rounds still open.
    let served = finality.votes_since(0, usize::MAX);
    assert!(served[..4].iter().all(|v| v.vote.round == 1 && v.vote.target == justified.block));
    assert!(served[4..].windows(2).all(|w| w[0].vote.round <= w[1].vote.round));
    assert_eq!(served.len(), 4 + 2 * finality.rounds.len());
    // The latest justified checkpoint is still the source, and everyone back finalizes again.
    assert_eq!(finality.source_for(&head, &tree), justified);
    let round = 3 * MAX_ROUNDS + 1;
    head = tree.grow(head);
    all_vote(&mut finality, &keys, round, head, &tree, &weights);
    let next = tree.grow(head);
    let progress = all_vote(&mut finality, &keys, round + 1, next, &tree, &weights);
    assert_eq!(progress.finalized, Some(Checkpoint { round, block: head }));
}

#[test]
fn votes_from_strangers_the_future_the_past_or_backwards_are_refused() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut finality = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let head = tree.grow(Tree::genesis());
    let source = finality.finalized();
    let stranger = Keypair::insecure_dev("stranger");
    let cases = [
        (vote(&stranger, 1, source, head), VoteRefused::NotAVoter(stranger.address())),
        (vote(&keys[0], 3, source, head), VoteRefused::FromTheFuture { round: 3, current: 1 }),
        (vote(&keys[0], 0, source, head), VoteRefused::Stale { round: 0, floor: 0 }),
        (vote(&keys[0], 1, Checkpoint { round: 1, block: head }, head), VoteRefused::Malformed),
    ];
    for (signed, reason) in cases {
        let mut refused = Vec::new();
        assert_eq!(finality.add_votes([signed], 1, &weights, &tree, &mut refused), Progress::default());
        assert_eq!(refused, vec![(signed, reason)]);
    }
    let fine = vote(&keys[0], 1, source, head);
    let mut refused = Vec::new();
    finality.add_votes([fine, fine], 1, &weights, &tree, &mut refused);
    assert_eq!(refused, vec![(fine, VoteRefused::Known)]);
}

/// One run of the randomised network: honest voters (`honest` of `voters`, equal weights, all
/// online) vote each round for the honest chain's checkpoint (its block before the round's),
/// which extends the latest justified checkpoint as a node that sees every honest vote knows it; the others vote anything, twice or surrounding; two more nodes
/// see random parts of all votes in random orders. Returns every node's final checkpoints, in
/// order.
fn run(
    seed: u64,
    voters_count: usize,
    honest: usize,
    rounds: u64,
) -> (Tree, Vec<Vec<Checkpoint>>, Vec<VoteEquivocation>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (keys, weights) = voters(voters_count);
    let mut tree = Tree::default();
    let mut leaves = vec![Tree::genesis()];
    let mut nodes: Vec<Finality> = (0..3).map(|_| Finality::new(GENESIS, SLOTS_PER_EPOCH)).collect();
    let mut finals: Vec<Vec<Checkpoint>> = vec![vec![nodes[0].finalized()]; 3];
    let mut evidence = Vec::new();
    for round in 1..=rounds {
        // The honest view's latest justified checkpoint; honest forgers build on its chain, and
        // now and then someone forks anywhere.
        let latest = *nodes[0].justified.values().next_back().unwrap();
        let on_latest: Vec<BlockId> =
            leaves.iter().copied().filter(|l| tree.descends(l, &latest.block)).collect();
        let parent = on_latest[rng.random_range(0..on_latest.len())];
        let block = tree.grow(parent);
        leaves.retain(|l| *l != parent);
        leaves.push(block);
        if rng.random_bool(0.2) {
            let anywhere = leaves[rng.random_range(0..leaves.len())];
            let fork = tree.grow(anywhere);
            leaves.push(fork);
        }
        let mut votes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if i < honest {
                // The round's checkpoint on the honest chain: the block before this round's.
                votes.push(vote(key, round, nodes[0].source_for(&parent, &tree), parent));
                continue;
            }
            // Byzantine: any leaf, any source it has seen justified or made up, sometimes twice.
            for _ in 0..rng.random_range(1..=2) {
                let target = leaves[rng.random_range(0..leaves.len())];
                let known: Vec<Checkpoint> =
                    nodes.iter().flat_map(|n| n.justified.values().copied()).collect();
                let source = if rng.random_bool(0.8) {
                    known[rng.random_range(0..known.len())]
                } else {
                    let block = leaves[rng.random_range(0..leaves.len())];
                    Checkpoint { round: rng.random_range(0..round), block }
                };
                votes.push(vote(key, round, source, target));
            }
        }
        for (n, node) in nodes.iter_mut().enumerate() {
            let mut seen: Vec<SignedVote> = if n == 0 {
                votes.clone()
            } else {
                votes.iter().copied().filter(|_| rng.random_bool(0.8)).collect()
            };
            // Out of order within the round.
            for i in (1..seen.len()).rev() {
                seen.swap(i, rng.random_range(0..=i));
            }
            let progress = node.add_votes(seen, round, &weights, &tree, &mut Vec::new());
            assert_eq!(progress.conflicting, None, "seed {seed}: a conflicting checkpoint met the rule");
            if let Some(checkpoint) = progress.finalized {
                finals[n].push(checkpoint);
            }
            evidence.extend(progress.equivocations);
        }
    }
    (tree, finals, evidence)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The attack: a little under a third of the weight votes for anything, twice, and with
    /// made-up or old sources, while three honest nodes see different parts of the votes in
    /// different orders. No two final blocks anywhere conflict, and the node that sees every
    /// honest vote keeps finalizing.
    #[test]
    fn less_than_a_third_cannot_finalize_conflicting_blocks(seed in any::<u64>()) {
        let rounds = 60;
        let (tree, finals, _) = run(seed, 7, 5, rounds);
        let all: Vec<&Checkpoint> = finals.iter().flatten().collect();
        for a in &all {
            for b in &all {
                let (low, high) = if a.block.height <= b.block.height { (a, b) } else { (b, a) };
                prop_assert!(tree.descends(&high.block, &low.block), "seed {}: {:?} and {:?} conflict", seed, a, b);
            }
        }
        prop_assert!(finals[0].last().unwrap().round + 4 >= rounds, "seed {}: finality fell behind: {:?}", seed, finals[0].last());
    }
}

/// With more than a third dishonest, conflicting blocks may be finalized by nodes that see
/// different votes; then the votes they counted hold conflicting pairs from voters holding a
/// third of the weight, which every node that sees both reports.
#[test]
fn conflicting_finality_needs_a_third_of_the_weight_to_sign_conflicting_votes() {
    let (keys, weights) = voters(3);
    let mut tree = Tree::default();
    let (left, right) = (tree.grow(Tree::genesis()), tree.grow(Tree::genesis()));
    let genesis = Finality::new(GENESIS, SLOTS_PER_EPOCH).finalized();
    // Voter 0 is honest on the left, voter 1 on the right; voter 2 votes both ways.
    let on = |key: &Keypair, round: u64, source: Checkpoint, block: BlockId| vote(key, round, source, block);
    let mut a = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut b = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let (left2, right2) = (tree.grow(left), tree.grow(right));
    let a1 = [on(&keys[0], 1, genesis, left), on(&keys[2], 1, genesis, left)];
    let b1 = [on(&keys[1], 1, genesis, right), on(&keys[2], 1, genesis, right)];
    a.add_votes(a1, 1, &weights, &tree, &mut Vec::new());
    b.add_votes(b1, 1, &weights, &tree, &mut Vec::new());
    let (ja, jb) = (a.justified_in(1).unwrap(), b.justified_in(1).unwrap());
    let a2 = [on(&keys[0], 2, ja, left2), on(&keys[2], 2, ja, left2)];
    let b2 = [on(&keys[1], 2, jb, right2), on(&keys[2], 2, jb, right2)];
    assert_eq!(a.add_votes(a2, 2, &weights, &tree, &mut Vec::new()).finalized.map(|c| c.block), Some(left));
    assert_eq!(b.add_votes(b2, 2, &weights, &tree, &mut Vec::new()).finalized.map(|c| c.block), Some(right));
    // A node that sees all of it catches voter 2, a third of the weight, twice.
    let mut c = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut all = Vec::new();
    all.extend(a1);
    all.extend(b1);
    let progress = c.add_votes(all, 1, &weights, &tree, &mut Vec::new());
    assert_eq!(progress.equivocations.len(), 1);
    assert_eq!(progress.equivocations[0].first.voter, keys[2].address());
}

#[test]
fn a_node_away_longer_than_the_open_rounds_replays_the_proofs_and_reaches_the_same_final_block() {
    let (keys, weights) = voters(4);
    let mut tree = Tree::default();
    let mut online = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let mut head = Tree::genesis();
    let rounds = 3 * MAX_ROUNDS;
    for round in 1..=rounds {
        head = tree.grow(head);
        all_vote(&mut online, &keys, round, head, &tree, &weights);
    }
    let target = online.finalized();
    assert_eq!(target.round, rounds - 1);
    // Its proofs stay within their bound, however long the chain of final rounds.
    assert!(online.votes_since(0, usize::MAX).len() <= MAX_LINK_VOTES + keys.len() * 2);

    // A node that saw none of it asks for the votes since its last final round, again and
    // again, as the node does, and follows link by link. The oldest proofs kept come first.
    let mut away = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let oldest_kept = online.votes_since(0, 1)[0].vote.round;
    // Votes older than the kept proofs (none here) reached it before it went away.
    let early: Vec<SignedVote> = (1..oldest_kept)
        .flat_map(|round| {
            let target = BlockId { height: round, hash: tree.ancestor(&head, round).unwrap() };
            let source = if round == 1 {
                Checkpoint { round: 0, block: Tree::genesis() }
            } else {
                Checkpoint {
                    round: round - 1,
                    block: BlockId { height: round - 1, hash: tree.ancestor(&head, round - 1).unwrap() },
                }
            };
            keys.iter().map(move |k| vote(k, round, source, target)).collect::<Vec<_>>()
        })
        .collect();
    let mut refused = Vec::new();
    away.catch_up(early, rounds, &weights, &tree, &mut refused);
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(3)]);
    let mut requests = 0;
    while away.finalized() != target {
        requests += 1;
        assert!(requests < 100, "stuck at {:?}", away.finalized());
        let answer = online.votes_since(away.finalized().round, 1_024);
        assert!(!answer.is_empty());
        let before = away.finalized();
        away.catch_up(answer, rounds, &weights, &tree, &mut refused);
        assert!(away.finalized().round > before.round, "no progress from {before:?}");
    }
    assert_eq!(away.finalized(), target);

    // A stranger replaying the same old votes, or votes with a third missing, moves nothing.
    let mut fresh = Finality::new(GENESIS, SLOTS_PER_EPOCH);
    let partial: Vec<SignedVote> = online
        .votes_since(0, usize::MAX)
        .into_iter()
        .filter(|v| v.voter != keys[0].address() && v.voter != keys[1].address())
        .collect();
    fresh.catch_up(partial, rounds, &weights, &tree, &mut Vec::new());
    assert_eq!(fresh.finalized().round, 0);
}
