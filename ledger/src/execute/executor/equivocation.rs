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
        let forfeitable = |t: &crate::state::Ticket| t.last_epoch > epoch && t.forfeited_from.is_none();
        let mut record = self
            .forger(&offender)?
            .filter(|f| f.tickets.iter().any(forfeitable))
            .ok_or(invalid(TxError::NothingToForfeit(offender)))?;
        // The ticket money went to associations when it was paid; what is forfeited is every
        // ticket's right to sign after this epoch. No roster changes: this epoch's was drawn
        // from already (were the report to change it, the block that carries it, whose forger
        // chooses when, would steer the remaining draws), and the next epoch's is fixed and
        // committed; the offender's draws there are void, and the next rank fills its slots.
        // From the epoch after next, its tickets are off the roster.
        for ticket in record.tickets.iter_mut().filter(|t| forfeitable(t)) {
            ticket.forfeited_from = Some(epoch + 1);
        }
        writes.forgers.push((offender, record));
        Ok(())
    }
}
