//! The node's side of the network: it starts `goodwill_protocol`'s service as a main node and
//! does for it what needs the chain. Requests are answered, sync batches and fetched ancestors
//! imported, and gossip validated on tasks of their own, each reporting back through the
//! [`NetworkHandle`]; the service's loop never waits for any of them.

use std::path::Path;
use std::sync::Arc;

use goodwill_ledger::{Block, Store, Transaction};
use goodwill_protocol::message::{AccountAnswer, LotteryAnswer, ReceiptProof, TxAnswer};
use goodwill_protocol::{
    AncestorOutcome, BatchEnd, ChainIdentity, ErrorCode, Gossip, GossipEffect, GossipLane, GossipMessage,
    NetworkConfig, NetworkEvent, NetworkEvents, Request, Response, Role, Verdict,
};
use libp2p::{Multiaddr, PeerId, identity};
use tokio::sync::{Semaphore, watch};

use crate::actor::{ChainHandle, ImportOutcome, Stopped, SubmitError, TxStatus};
use crate::metrics::{self, Metrics};

pub use goodwill_protocol::NetworkHandle;

/// Requests answered at once; more wait (and past the service's bound are answered busy).
const CONCURRENT_REQUESTS: usize = 16;

/// Loads the node's network identity from `path`, creating it on first start.
pub fn load_or_create_identity(path: &Path) -> eyre::Result<identity::Keypair> {
    use eyre::WrapErr;
    if path.exists() {
        let bytes = std::fs::read(path).wrap_err_with(|| format!("reading {}", path.display()))?;
        return identity::Keypair::from_protobuf_encoding(&bytes).wrap_err_with(|| {
            format!("{} is not a libp2p key; move it away to make a new one", path.display())
        });
    }
    let key = identity::Keypair::generate_ed25519();
    write_identity(&key, path)?;
    Ok(key)
}

/// Writes a network identity to a new file (readable by its owner only); an existing file is
/// an error, never overwritten.
pub fn write_identity(key: &identity::Keypair, path: &Path) -> eyre::Result<()> {
    use eyre::WrapErr;
    let bytes = key.to_protobuf_encoding().wrap_err("encoding the network key")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut file| file.write_all(&bytes))
        .wrap_err_with(|| format!("writing {}", path.display()))
}

/// Where a main node listens and whom it first dials.
pub struct Addresses {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses the operator says peers reach this node at (`--public-addr`).
    pub external: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootnodes: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// The chain spec's JSON, served to nodes joining from a bootnode and a genesis hash.
    pub chain_spec: Option<String>,
}

/// Starts the network service as a main node, and the tasks that serve it from the chain.
pub async fn spawn(
    key: identity::Keypair,
    addresses: Addresses,
    chain: ChainHandle,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> eyre::Result<(NetworkHandle, tokio::task::JoinHandle<()>)> {
    let status = chain.status().await.map_err(|_| eyre::eyre!("the chain stopped"))?;
    let config = NetworkConfig {
        role: Role::Main,
        chain: ChainIdentity { chain_id: status.chain_id, genesis: status.genesis_hash },
        listen: addresses.listen,
        external: addresses.external,
        bootnodes: addresses.bootnodes,
        mdns: addresses.mdns,
        address_limits: Default::default(),
        chain_spec: addresses.chain_spec,
    };
    let (network, mut events, event_loop) = goodwill_protocol::service::new(key, config, chain.head())?;
    let vote_sync = Arc::new(VoteSync::default());
    for lane in events.take_lanes() {
        tokio::spawn(validate_lane(lane, chain.clone(), network.clone(), metrics.clone(), vote_sync.clone()));
    }
    tokio::spawn(serve(events, chain, network.clone(), vote_sync));
    Ok((network, tokio::spawn(event_loop.run(shutdown))))
}

/// Does what the service's events ask, until the service or the chain stops.
async fn serve(
    mut events: NetworkEvents,
    chain: ChainHandle,
    network: NetworkHandle,
    vote_sync: Arc<VoteSync>,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_REQUESTS));
    while let Some(event) = events.next().await {
        match event {
            NetworkEvent::Request { peer, id, request } => {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (chain, network) = (chain.clone(), network.clone());
                tokio::spawn(async move {
                    if let Ok(response) = answer(&chain, &network, peer, request).await {
                        network.respond(id, response).await;
                    }
                    drop(permit);
                });
            }
            NetworkEvent::ImportBatch { peer, blocks } => {
                let (chain, network) = (chain.clone(), network.clone());
                tokio::spawn(async move {
                    let top = blocks.iter().map(|b| b.header().height).max().unwrap_or(0);
                    let end = import_batch(&chain, blocks).await;
                    // Asked, not read from the head watch: the actor publishes the head after it
                    // replies, so the watch may not show the batch yet; a status asked now is
                    // answered after it.
                    let head = chain.status().await.map_or(0, |status| status.head.header().height);
                    network.batch_imported(peer, end, head, top).await;
                });
            }
            NetworkEvent::Ancestor { peer, block, depth } => {
                let (chain, network) = (chain.clone(), network.clone());
                tokio::spawn(async move {
                    let header = block.header.clone();
                    let Ok(outcome) = chain.import(*block).await else { return };
                    let outcome = match outcome {
                        // Not kept, but its parent is what the search is after.
                        ImportOutcome::Orphan | ImportOutcome::Unproven => AncestorOutcome::Orphan,
                        ImportOutcome::Applied => AncestorOutcome::Applied,
                        ImportOutcome::Invalid => AncestorOutcome::Invalid,
                        ImportOutcome::OutOfRange => AncestorOutcome::TooDeep,
                        _ => AncestorOutcome::Ended,
                    };
                    network.ancestor_imported(peer, &header, depth, outcome).await;
                });
            }
            // Scripts and tests read this line; it is ready to paste as a --bootnode.
            NetworkEvent::Listening(address) => crate::announce(format_args!("P2P listening on {address}")),
            // A main node that joins may hold votes this node missed (it was away).
            NetworkEvent::PeerJoined { peer, status } if status.role == goodwill_protocol::Role::Main => {
                vote_sync.ask(&chain, &network, peer);
            }
            NetworkEvent::PeerJoined { .. }
            | NetworkEvent::PeerRefused { .. }
            | NetworkEvent::PeerLeft { .. } => {}
        }
    }
}

/// Answers a verified peer's request from the chain.
async fn answer(
    chain: &ChainHandle,
    network: &NetworkHandle,
    peer: PeerId,
    request: Request,
) -> Result<Response, Stopped> {
    Ok(match request {
        Request::Status(_) | Request::ChainSpec => {
            Response::error(ErrorCode::BadRequest, "answered by the network layer, not here")
        }
        Request::BlocksByRange { start, count } => {
            Response::Blocks(chain.blocks_by_range(start, count).await?)
        }
        Request::BlocksByHash(hashes) => Response::Blocks(chain.blocks_by_hash(hashes).await?),
        Request::SubmitTransaction(tx) => match chain.submit((*tx).clone()).await? {
            Ok(id) => {
                network.publish_transaction(*tx).await;
                Response::Submitted(Ok(id))
            }
            Err(reason) => {
                tracing::debug!(%peer, %reason, "a peer's transaction was not admitted");
                Response::Submitted(Err(reason.to_string()))
            }
        },
        // Read in one step at the head it names, with the proof a light peer checks.
        Request::Account(address) => match chain.account_proof(address).await? {
            Ok(proven) => Response::Account(AccountAnswer {
                balance: proven.account.balance.0,
                nonce: proven.account.nonce,
                height: proven.head.header().height,
                head_hash: proven.head.hash(),
                state: proven.state,
                proof: proven.proof,
            }),
            Err(failure) => Response::error(ErrorCode::Unavailable, failure.to_string()),
        },
        Request::Votes { since_round } => Response::Votes(chain.votes_since(since_round).await?),
        Request::FinalityProofs { from_height } => match chain.finality_proofs(from_height).await? {
            Ok(proofs) => Response::FinalityProofs(proofs),
            Err(error) => Response::error(ErrorCode::Unavailable, error.to_string()),
        },
        Request::FinalitySteps { from_height } => match chain.finality_steps(from_height).await? {
            Ok(steps) => Response::FinalitySteps(steps),
            Err(error) => Response::error(ErrorCode::Unavailable, error.to_string()),
        },
        Request::StateChunk { block, start } => match chain.state_chunk(block, start).await? {
            Ok(Some(chunk)) => Response::StateChunk(chunk),
            Ok(None) => Response::error(ErrorCode::BadRequest, "no state leaf at or after that key"),
            Err(failure) => Response::error(ErrorCode::Unavailable, failure.to_string()),
        },
        Request::Lottery { parent, forger, slot } => match chain.lottery(parent, forger, slot).await? {
            Ok(proof) => Response::Lottery(LotteryAnswer { block_hash: parent, proof: Box::new(proof) }),
            Err(failure) => Response::error(ErrorCode::Unavailable, failure.to_string()),
        },
        Request::Transaction(id) => match chain.transaction(id).await? {
            Ok(None) => Response::Transaction(TxAnswer::Unknown),
            Ok(Some(TxStatus::Pending)) => Response::Transaction(TxAnswer::Pending),
            Ok(Some(TxStatus::Committed(location))) => {
                // With its receipt, proven against the block's receipts root, when it is stored.
                let receipt = match chain.receipt_proof(location.block_hash, location.index).await? {
                    Ok(Some((receipt, path))) => Some(Box::new(ReceiptProof { receipt, path })),
                    _ => None,
                };
                Response::Transaction(TxAnswer::Committed {
                    height: location.height,
                    block_hash: location.block_hash,
                    index: location.index,
                    receipt,
                })
            }
            Err(failure) => Response::error(ErrorCode::Unavailable, failure.to_string()),
        },
    })
}

/// Imports `blocks` in order; stops at the first that is invalid or does not connect.
async fn import_batch(chain: &ChainHandle, blocks: Vec<Block>) -> BatchEnd {
    for block in blocks {
        match chain.import_synced(block).await {
            Ok(ImportOutcome::Applied | ImportOutcome::Known | ImportOutcome::Side) => {}
            Ok(ImportOutcome::Invalid) => return BatchEnd::Invalid,
            Ok(ImportOutcome::Orphan | ImportOutcome::OutOfRange | ImportOutcome::Unproven) => {
                return BatchEnd::Fork;
            }
            Ok(ImportOutcome::FromTheFuture) => return BatchEnd::FromTheFuture,
            Ok(ImportOutcome::Failed) | Err(_) => return BatchEnd::Failed,
        }
    }
    BatchEnd::Done
}

/// Validates one lane's gossip with the chain, in arrival order (a block's parent is usually
/// just before it). Ends when either side stops.
async fn validate_lane(
    mut lane: GossipLane,
    chain: ChainHandle,
    network: NetworkHandle,
    metrics: Arc<Metrics>,
    vote_sync: Arc<VoteSync>,
) {
    let topic = metrics::Topic::from(lane.kind());
    while let Some(Gossip { ticket, message, dropped_before, rejected_before }) = lane.next().await {
        metrics.gossip_many(topic, metrics::Verdict::Ignored, dropped_before);
        metrics.gossip_many(topic, metrics::Verdict::Rejected, rejected_before);
        let outcome = match message {
            GossipMessage::Votes(votes) => {
                judge_votes(&chain, votes).await.map(|(verdict, effect, unknown)| {
                    if unknown {
                        // Its votes name a checkpoint justified by votes this node missed.
                        vote_sync.ask(&chain, &network, ticket.source);
                    }
                    (verdict, effect)
                })
            }
            message => validate(&chain, message).await,
        };
        let Ok((verdict, effect)) = outcome else { return };
        let counted = match verdict {
            Verdict::Accept => metrics::Verdict::Accepted,
            Verdict::Ignore => metrics::Verdict::Ignored,
            Verdict::Reject => metrics::Verdict::Rejected,
        };
        metrics.gossip(topic, counted);
        network.validated(ticket, verdict, effect).await;
    }
}

/// Validates one gossiped message: a block is imported, transactions submitted to the pool.
async fn validate(chain: &ChainHandle, message: GossipMessage) -> Result<(Verdict, GossipEffect), Stopped> {
    use goodwill_protocol::peers::Offence;
    match message {
        GossipMessage::Block(block) => {
            let header = block.header();
            let (height, hash, forged_at, transactions) = (
                header.header().height,
                header.hash(),
                header.header().timestamp_ms,
                block.transaction_count(),
            );
            let parent = header.header().parent_hash;
            let outcome = chain.import_received(*block).await?;
            let effect = match outcome {
                ImportOutcome::Applied => {
                    // The forger stamps a block when it seals it: the delay is how long the
                    // block took to reach this node and be imported (clocks permitting).
                    let delay_ms = crate::now_ms().saturating_sub(forged_at);
                    tracing::info!(height, %hash, transactions, delay_ms, "imported a gossiped block");
                    GossipEffect::Applied
                }
                // Not kept (nothing here shows its forger may sign it), but, as for an orphan, the
                // relayer is asked for its parent: this node may be missing a branch.
                ImportOutcome::Orphan | ImportOutcome::Unproven => GossipEffect::Orphan { height, parent },
                ImportOutcome::OutOfRange => GossipEffect::Behind { height },
                ImportOutcome::Invalid => GossipEffect::Penalise(Offence::InvalidGossip),
                _ => GossipEffect::None,
            };
            Ok((outcome.verdict(), effect))
        }
        GossipMessage::Transactions(txs) => Ok((judge_transactions(chain, txs).await?, GossipEffect::None)),
        GossipMessage::Votes(votes) => {
            judge_votes(chain, votes).await.map(|(verdict, effect, _)| (verdict, effect))
        }
    }
}

/// Asks main nodes for the finality votes this node missed, at most once per [`VOTE_SYNC_EVERY`]:
/// when one joins, and when a gossiped vote names a checkpoint this node does not know was
/// justified.
#[derive(Default)]
pub(crate) struct VoteSync {
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often a node asks for missed votes, at most.
const VOTE_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl VoteSync {
    fn ask(&self, chain: &ChainHandle, network: &NetworkHandle, peer: PeerId) {
        {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = std::time::Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < VOTE_SYNC_EVERY) {
                return;
            }
            *last = Some(now);
        }
        let (chain, network) = (chain.clone(), network.clone());
        tokio::spawn(async move {
            let Ok(status) = chain.status().await else { return };
            let request = Request::Votes { since_round: status.finalized.round };
            let Ok(Response::Votes(votes)) = network.query(peer, request).await else { return };
            if votes.is_empty() {
                return;
            }
            if let Ok((Verdict::Reject, _, _)) = judge_votes(&chain, votes).await {
                network.ban(peer, "answered with a badly signed vote".into());
            }
        });
    }
}

/// A gossiped batch of votes: its signatures checked in one batch (off the async threads); a
/// bad one rejects the batch and penalises its relayer (a signature is the same everywhere).
/// Relayed if it brought a vote counted here or proof of a conflicting pair, ignored otherwise
/// (known, stale, for a round not begun, or from a key that holds no weight on this node's
/// chain, which may lag).
async fn judge_votes(
    chain: &ChainHandle,
    votes: Vec<goodwill_ledger::finality::SignedVote>,
) -> Result<(Verdict, GossipEffect, bool), Stopped> {
    use goodwill_protocol::peers::Offence;
    let genesis = chain.genesis();
    let checked = tokio::task::spawn_blocking(move || {
        let messages: Vec<Vec<u8>> = votes.iter().map(|v| v.vote.signing_bytes(&genesis)).collect();
        let items =
            votes.iter().zip(&messages).map(|(v, message)| goodwill_ledger::signature::SignedMessage {
                key: v.voter.as_bytes(),
                message,
                signature: &v.signature,
            });
        let valid = goodwill_ledger::signature::verify_all(items).into_iter().all(|ok| ok);
        (valid, votes)
    })
    .await;
    let Ok((true, votes)) = checked else {
        return Ok((Verdict::Reject, GossipEffect::Penalise(Offence::InvalidGossip), false));
    };
    let added = chain.add_votes(votes).await?;
    let verdict = if added.taken > 0 || added.equivocations > 0 { Verdict::Accept } else { Verdict::Ignore };
    Ok((verdict, GossipEffect::None, added.unknown_source))
}

/// A gossiped batch is relayed if it brought something new, rejected if one of its
/// transactions broke a rule every node judges alike, and ignored otherwise (nonces and
/// balances depend on the head, which differs between honest nodes for a moment; the pool's
/// policy is this node's own: no one's fault).
async fn judge_transactions<S: Store + 'static>(
    chain: &ChainHandle<S>,
    txs: Vec<Transaction>,
) -> Result<Verdict, Stopped> {
    let mut verdict = Verdict::Ignore;
    for result in chain.submit_many(txs).await? {
        match result {
            Ok(_) => verdict = Verdict::Accept,
            Err(SubmitError::Rejected(reason)) if reason.is_stateless() => return Ok(Verdict::Reject),
            Err(_) => {}
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use goodwill_ledger::{Chain, MemoryStore, testkit};

    use super::*;

    #[tokio::test]
    async fn a_transaction_batch_is_rejected_only_for_what_every_node_judges_alike() {
        let spec = testkit::spec();
        let pool = crate::mempool::PoolConfig::new(spec.pool.tx_expiry_slots, spec.params.min_fee);
        let chain = Chain::open(MemoryStore::default(), spec).unwrap();
        let (handle, thread) = crate::actor::spawn(chain, None, pool, Metrics::new());
        let (a, b) = (testkit::account(0), testkit::account(1));

        // Nothing admitted, for a reason that depends on this node's head: ignored.
        let far_ahead = testkit::transfer(&a, &b, 1_000, 100, 10);
        assert_eq!(judge_transactions(&handle, vec![far_ahead.clone()]).await.unwrap(), Verdict::Ignore);
        // One admitted: the batch is relayed.
        let good = testkit::transfer(&a, &b, 0, 100, 10);
        assert_eq!(judge_transactions(&handle, vec![far_ahead, good]).await.unwrap(), Verdict::Accept);
        // A signature that does not hold, next to a good transaction: rejected.
        let mut forged = testkit::transfer(&a, &b, 1, 100, 10).to_wire();
        forged.signature = testkit::transfer(&a, &b, 2, 100, 10).to_wire().signature;
        let forged = Transaction::from_wire(forged).unwrap();
        let next = testkit::transfer(&a, &b, 1, 100, 11);
        assert_eq!(judge_transactions(&handle, vec![next, forged]).await.unwrap(), Verdict::Reject);

        drop(handle);
        thread.join().unwrap();
    }
}
