//! Reports of a forger that signed two blocks for one slot, or two finality votes that break a
//! voting rule together: it forfeits every ticket's weight from the next epoch on.

use jmt::storage::TreeReader;

use super::{Executor, Writes};
use crate::execute::{ApplyError, TxError};
use crate::finality::SignedVote;
use crate::{Address, SealedHeader};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// Applies a report that `first` and `second` (same forger and slot, checked statelessly)
    /// were both signed.
    pub(super) fn report_equivocation(
        &mut self,
        first: &SealedHeader,
        second: &SealedHeader,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        // Signatures are bound to this chain's genesis: headers a key signed on another chain
        // prove nothing here.
        if !first.verify_signature(&self.genesis) || !second.verify_signature(&self.genesis) {
            return Err(ApplyError::Invalid(TxError::NotEquivocation(
                "a header is not signed by its forger for this chain",
            )));
        }
        self.forfeit(first.header().forger, writes)
    }

    /// Applies a report that `first` and `second` (same voter, conflicting, checked
    /// statelessly) were both signed. Votes are bound to this chain's genesis too.
    pub(super) fn report_vote_equivocation(
        &mut self,
        first: &SignedVote,
        second: &SignedVote,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        if !first.verify(&self.genesis) || !second.verify(&self.genesis) {
            return Err(ApplyError::Invalid(TxError::NotEquivocation(
                "a vote is not signed by its voter for this chain",
            )));
        }
        self.forfeit(first.voter, writes)
    }

    /// Forfeits `offender`'s tickets that have not ended or been forfeited; refused if there
    /// are none, so that one offence is punished once and reports of it cannot fill blocks.
    fn forfeit(&mut self, offender: Address, writes: &mut Writes) -> Result<(), ApplyError<TxError>> {
        let epoch = self.epoch;
        let forfeitable = |t: &crate::state::Ticket| t.last_epoch > epoch && t.forfeited_from.is_none();
        let mut record = self
            .forger(&offender)?
            .filter(|f| f.tickets.iter().any(forfeitable))
            .ok_or(ApplyError::Invalid(TxError::NothingToForfeit(offender)))?;
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
