//! The forging loop: at each slot, ask the lottery for this node's rank, wait for that rank's
//! window to open, and forge if no better block has arrived, this node is not behind, and it is
//! not alone: a forger without peers (its link down, say) would fill every slot at the open rank
//! on a fork the network never sees, so it waits for a peer, unless it is the only forger on the
//! roster (a one-forger chain, `--dev`).

use std::time::Duration;

use goodwill_ledger::Address;
use goodwill_ledger::lottery::rank_offset_ms;
use tokio::sync::watch;

use crate::actor::ChainHandle;
use crate::metrics::Metrics;
use crate::network::NetworkHandle;
use crate::now_ms;

/// Runs until `shutdown` turns true or the chain actor stops.
pub async fn run(
    chain: ChainHandle,
    network: NetworkHandle,
    forger: Address,
    metrics: std::sync::Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(status) = chain.status().await else { return };
    let (genesis, duration, ranks) = (status.genesis_time_ms, status.slot_duration_ms, status.fallback_ranks);
    let slot_at = |t: u64| goodwill_ledger::spec::slot_at(genesis, duration, t);
    let mut slot = slot_at(now_ms()) + 1;
    // Whether the last slot was skipped for want of a peer (logged when it starts and ends).
    let mut waiting_for_peers = false;
    loop {
        let rank = match chain.rank_of(forger, slot).await {
            Ok(Ok(rank)) => rank,
            Ok(Err(error)) => {
                tracing::error!(%error, slot, "could not read the lottery");
                None
            }
            Err(_) => return,
        };
        let start = genesis + slot * duration;
        // Without a rank, just wait for the next slot.
        let at = start + rank.map_or(duration, |rank| rank_offset_ms(duration, ranks, rank));
        let wait = Duration::from_millis(at.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if rank.is_some() && network.sync().behind {
            // A block on a head far behind the network's would only start a fork. Only peers
            // that served blocks count: a bare claim of a taller chain stops no one.
            tracing::debug!(slot, "not forging while behind");
        } else if rank.is_some() && network.peers() == 0 && !alone_on_the_roster(&chain, slot).await {
            metrics.slots_skipped_without_peers.inc();
            if !waiting_for_peers {
                tracing::warn!(slot, "not forging until a peer connects: other forgers hold tickets");
                waiting_for_peers = true;
            }
        } else if rank.is_some() {
            if std::mem::take(&mut waiting_for_peers) {
                tracing::info!(slot, "a peer connected: forging again");
            }
            let now = now_ms();
            if now < start + duration {
                match chain.forge(slot, now.max(at)).await {
                    Ok(Ok(Some(forged))) => network.publish_block(forged.block).await,
                    Ok(Ok(None)) => {}
                    Ok(Err(error)) => tracing::error!(%error, slot, "forging failed"),
                    Err(_) => return,
                }
            } else {
                tracing::warn!(slot, "missed the slot: this node was too slow");
            }
        }
        slot = (slot + 1).max(slot_at(now_ms()) + 1);
    }
}

/// Whether this node's forger is the only one on the roster of `slot`'s epoch (one read of the
/// cached roster): then no peer can be missing a block it forges.
async fn alone_on_the_roster(chain: &ChainHandle, slot: u64) -> bool {
    let forgers = chain
        .read(move |chain, _| {
            let epoch = goodwill_ledger::lottery::epoch_of(slot, chain.spec().params.slots_per_epoch);
            chain.roster(epoch).map(|roster| roster.len())
        })
        .await;
    matches!(forgers, Ok(Ok(n)) if n <= 1)
}

/// The voting loop: in each round (a slot), once every rank's window has opened and the slot's
/// block has had a moment to arrive (at `(2·fallback_ranks + 1) / (2·(fallback_ranks + 1))` of the
/// slot: five sixths with two drawn ranks), this node's forger votes for its head, if it may
/// vote in the round's epoch. Runs until `shutdown` turns true or the chain actor stops.
pub async fn vote(chain: ChainHandle, network: NetworkHandle, mut shutdown: watch::Receiver<bool>) {
    let Ok(status) = chain.status().await else { return };
    let (genesis, duration, ranks) = (status.genesis_time_ms, status.slot_duration_ms, status.fallback_ranks);
    let offset = duration * (2 * u64::from(ranks) + 1) / (2 * (u64::from(ranks) + 1));
    let slot_at = |t: u64| goodwill_ledger::spec::slot_at(genesis, duration, t);
    let mut round = slot_at(now_ms());
    loop {
        let at = genesis + round * duration + offset;
        if now_ms() > at + duration / 6 {
            // Too late for this round (the node was busy, or just started): the next one.
            round = slot_at(now_ms()).max(round + 1);
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))) => {}
            _ = shutdown.changed() => return,
        }
        match chain.vote(round).await {
            Ok(Ok(Some(vote))) => network.publish_votes(vec![vote]).await,
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!(%error, round, "voting failed"),
            Err(_) => return,
        }
        round += 1;
    }
}
