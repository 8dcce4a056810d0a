//! Associations: registering one, and the forgers' votes that make it eligible (at least
//! [`ELIGIBILITY_PERCENT`] of the epoch's ticket weight).

use jmt::storage::TreeReader;

use super::{Executor, Writes, insert_sorted};
use crate::execute::{ApplyError, TxError};
use crate::lottery::ELIGIBILITY_PERCENT;
use crate::state::AssociationState;
use crate::store::StoreError;
use crate::{Address, Amount, Hash};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// Removes from the registry and from the state every registration whose vote window
    /// closed before this block's epoch without approval: a registration costs a fee and then a
    /// place in the state only while forgers may still vote for it. Run once per epoch, at its
    /// first block; reads each registered association once, and rewrites the registry only if
    /// one expired.
    pub(super) fn expire_registrations(&mut self) -> Result<(), StoreError> {
        let window = self.spec.params.vote_window_epochs;
        let epoch = self.epoch;
        let mut registry = self.registry()?;
        let mut kept = Vec::with_capacity(registry.associations.len());
        for address in std::mem::take(&mut registry.associations) {
            match self.association(&address)? {
                Some(record)
                    if !record.eligible && epoch > record.registered_epoch.saturating_add(window) =>
                {
                    self.expired_associations.insert(address);
                }
                _ => kept.push(address),
            }
        }
        if !self.expired_associations.is_empty() {
            registry.associations = kept;
            self.registry = Some(registry);
            self.registry_changed = true;
        }
        Ok(())
    }

    /// `sender` registers itself as an association.
    pub(super) fn register_association(
        &mut self,
        sender: Address,
        name: &str,
        proof_url: &str,
        document_hash: Hash,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        if let Some(existing) = self.association(&sender)? {
            let expired = !existing.eligible
                && self.epoch > existing.registered_epoch.saturating_add(self.spec.params.vote_window_epochs);
            if !expired {
                return Err(ApplyError::Invalid(TxError::AlreadyRegistered(sender)));
            }
        }
        let mut registry = self.registry()?;
        insert_sorted(&mut registry.associations, sender);
        writes.associations.push((
            sender,
            AssociationState {
                name: name.to_string(),
                proof_url: proof_url.to_string(),
                document_hash,
                registered_epoch: self.epoch,
                voters: Vec::new(),
                eligible: false,
                received: Amount::ZERO,
            },
        ));
        writes.registry = Some(registry);
        Ok(())
    }

    /// `voter`, a forger with an active ticket, votes for `association`.
    pub(super) fn vote_association(
        &mut self,
        voter: Address,
        association: &Address,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        let invalid = ApplyError::Invalid;
        let epoch = self.epoch;
        let window = self.spec.params.vote_window_epochs;
        let roster = self.roster()?;
        if roster.weight(&voter) == 0 {
            return Err(invalid(TxError::NoActiveTicket(voter)));
        }
        let total = roster.total_weight();
        let mut record =
            self.association(association)?.ok_or(invalid(TxError::UnknownAssociation(*association)))?;
        if record.eligible {
            return Err(invalid(TxError::AlreadyEligible(*association)));
        }
        if epoch > record.registered_epoch.saturating_add(window) {
            return Err(invalid(TxError::RegistrationExpired(*association)));
        }
        if !insert_sorted(&mut record.voters, voter) {
            return Err(invalid(TxError::AlreadyVoted { voter, association: *association }));
        }
        // Weighted by tickets, not counted per key: keys are free, weight is not.
        let roster = self.roster()?;
        let support: u128 = record.voters.iter().map(|v| roster.weight(v)).sum();
        record.eligible = support * 100 >= total * ELIGIBILITY_PERCENT;
        writes.associations.push((*association, record));
        Ok(())
    }
}
