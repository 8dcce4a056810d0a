//! Buying a ticket: the price goes to an eligible association, the forging weight to the buyer
//! from [`ACTIVATION_DELAY_EPOCHS`] on.

use jmt::storage::TreeReader;

use super::{Executor, Writes, insert_sorted};
use crate::execute::{ApplyError, TxError};
use crate::lottery::ACTIVATION_DELAY_EPOCHS;
use crate::state::{Account, ForgerState, Ticket};
use crate::{Address, Amount, Hash};

/// What a `BuyTicket` payload asks.
pub(super) struct BuyTicket {
    pub(super) association: Address,
    pub(super) price: Amount,
    pub(super) epochs: u32,
    pub(super) commitment: Option<Hash>,
}

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// `buyer` (already debited, as `debited`) buys `ticket`.
    pub(super) fn buy_ticket(
        &mut self,
        buyer: Address,
        debited: Account,
        ticket: BuyTicket,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        let invalid = ApplyError::Invalid;
        let BuyTicket { association, price, epochs, commitment } = ticket;
        let mut record = self
            .association(&association)?
            .filter(|a| a.eligible)
            .ok_or(invalid(TxError::NotEligible(association)))?;
        let mut forger = match (self.forger(&buyer)?, commitment) {
            (Some(_), Some(_)) => return Err(invalid(TxError::CommitmentAlreadySet)),
            (Some(forger), None) => forger,
            (None, Some(commitment)) => {
                // A newcomer joins the registry; a forger's later tickets leave it alone.
                let mut registry = self.registry()?;
                insert_sorted(&mut registry.forgers, buyer);
                writes.registry = Some(registry);
                ForgerState { commitment, blocks_forged: 0, tickets: Vec::new() }
            }
            (None, None) => return Err(invalid(TxError::MissingCommitment)),
        };
        let first_epoch = self.epoch + ACTIVATION_DELAY_EPOCHS;
        // Tickets that no roster from this epoch on counts any more leave the record.
        forger
            .tickets
            .retain(|t| t.last_epoch >= self.epoch && t.forfeited_from.is_none_or(|f| f >= self.epoch));
        forger.tickets.push(Ticket {
            weight: price,
            first_epoch,
            last_epoch: first_epoch + u64::from(epochs) - 1,
            forfeited_from: None,
        });
        record.received = record.received.checked_add(price).ok_or(invalid(TxError::BalanceOverflow))?;
        let mut payee = if association == buyer { debited } else { self.account(&association)? };
        payee.balance = payee.balance.checked_add(price).ok_or(invalid(TxError::BalanceOverflow))?;
        writes.accounts.push((association, payee));
        writes.forgers.push((buyer, forger));
        writes.associations.push((association, record));
        Ok(())
    }
}
