//! Reports of a forger that signed two blocks for one slot: it forfeits every ticket's weight
//! from the next epoch on.

use jmt::storage::TreeReader;

use super::{Executor, Writes};
use crate::SealedHeader;
use crate::execute::{ApplyError, TxError};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// Applies a report that `first` and `second` (same forger and slot, checked statelessly)
    /// were both signed.
    pub(super) fn report_equivocation(
        &mut self,
        first: &SealedHeader,
        second: &SealedHeader,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        let invalid = ApplyError::Invalid;
        // Signatures are bound to this chain's genesis: headers a key signed on another chain
        // prove nothing here.
        if !first.verify_signature(&self.genesis) || !second.verify_signature(&self.genesis) {
            return Err(invalid(TxError::NotEquivocation(
                "a header is not signed by its forger for this chain",
            )));
        }
        let offender = first.header().forger;
        let epoch = self.epoch;
        let mut record = self
            .forger(&offender)?
            .filter(|f| f.tickets.iter().any(|t| t.last_epoch > epoch))
            .ok_or(invalid(TxError::NothingToForfeit(offender)))?;
        // The ticket money went to associations when it was paid; what is forfeited is every
        // ticket's forging weight after this epoch. This epoch's roster stays as it was drawn
        // from: were the report to change it at once, the block that carries it (its forger
        // chooses when) would steer the remaining draws of the epoch, and blocks of one epoch
        // could no longer be checked against the roster their fork started with.
        record.tickets.retain(|t| t.first_epoch <= epoch);
        for ticket in &mut record.tickets {
            ticket.last_epoch = ticket.last_epoch.min(epoch);
        }
        writes.forgers.push((offender, record));
        Ok(())
    }
}
