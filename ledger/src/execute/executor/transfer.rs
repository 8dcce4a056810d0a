//! Transfers.

use jmt::storage::TreeReader;

use super::{Executor, Writes};
use crate::execute::{ApplyError, TxError};
use crate::state::Account;
use crate::{Address, Amount};

impl<R: TreeReader + ?Sized> Executor<'_, R> {
    /// `from` (already debited, as `debited`) pays `amount` to `to`.
    pub(super) fn transfer(
        &mut self,
        from: Address,
        debited: Account,
        to: Address,
        amount: Amount,
        writes: &mut Writes,
    ) -> Result<(), ApplyError<TxError>> {
        // Read after the debit, so a transfer to oneself works.
        let mut recipient = if to == from { debited } else { self.account(&to)? };
        recipient.balance =
            recipient.balance.checked_add(amount).ok_or(ApplyError::Invalid(TxError::BalanceOverflow))?;
        writes.accounts.push((to, recipient));
        Ok(())
    }
}
