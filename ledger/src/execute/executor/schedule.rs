//! Recurring payments: adding and cancelling schedules (the queue is paid in `begin_block`).

use jmt::storage::TreeReader;

use super::{Executor, Writes};
use crate::execute::{ApplyError, MAX_SCHEDULES, MAX_SCHEDULES_PER_ACCOUNT, TxError};
use crate::state::ScheduledPayment;
use crate::{Address, Amount, Hash, Transaction};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// `tx` schedules `times` payments of `amount` to `to`, one every `every_slots` slots.
    pub(super) fn schedule_payment(
        &mut self,
        tx: &Transaction,
        (to, amount, every_slots, times): (Address, Amount, u64, u32),
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        let mut queue = self.schedules()?;
        if queue.len() >= MAX_SCHEDULES {
            return Err(ApplyError::Invalid(TxError::TooManySchedules { max: MAX_SCHEDULES }));
        }
        let owner = tx.body().sender;
        if queue.iter().filter(|s| s.owner == owner).count() >= MAX_SCHEDULES_PER_ACCOUNT {
            return Err(ApplyError::Invalid(TxError::TooManySchedulesOfOwner {
                max: MAX_SCHEDULES_PER_ACCOUNT,
            }));
        }
        queue.push(ScheduledPayment {
            id: tx.id(),
            owner,
            to,
            amount,
            every_slots,
            remaining: times,
            next_slot: self.slot.saturating_add(every_slots),
            paid: 0,
            skipped: 0,
        });
        queue.sort_by_key(|s| (s.next_slot, s.id));
        writes.schedules = Some(queue);
        Ok(())
    }

    /// `owner` cancels its schedule `schedule`.
    pub(super) fn cancel_schedule(
        &mut self,
        owner: Address,
        schedule: &Hash,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        let mut queue = self.schedules()?;
        let before = queue.len();
        queue.retain(|s| !(s.id == *schedule && s.owner == owner));
        if queue.len() == before {
            return Err(ApplyError::Invalid(TxError::UnknownSchedule(*schedule)));
        }
        writes.schedules = Some(queue);
        Ok(())
    }
}
