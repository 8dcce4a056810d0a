//! The threads that check the signatures of submitted and gossiped transactions, and the
//! scheduling priority of the node's threads.
//!
//! On a loaded node, admission (a signature check per transaction) is most of the work, while
//! the chain thread's block imports and forging decide whether the node keeps up with the chain:
//! a block that is imported late makes the next forger build on an older head, and the fork costs
//! far more than the admission it waited for. So when they compete for a core, the chain thread
//! comes first (it keeps the process's priority), networking and the HTTP API second (the async
//! runtime's threads: nice +5 on Linux), and signature checks last (nice +10, about a tenth of
//! the chain thread's share): admission uses the time that import and forging leave.

use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};

use crate::actor::Stopped;

/// How much lower than the chain thread the verifier threads run (`nice` steps).
const VERIFIER_NICENESS: i32 = 10;

/// How much lower than the chain thread the async runtime's threads run.
pub const RUNTIME_NICENESS: i32 = 5;

/// Jobs queued or running at most; more callers wait for a place (each job holds up to a batch
/// of transactions, and the API takes submissions from anyone).
const MAX_JOBS: usize = 128;

/// A pool of low-priority threads, one per core.
#[derive(Clone)]
pub struct Verifier {
    pool: Arc<rayon::ThreadPool>,
    jobs: Arc<Semaphore>,
}

impl Verifier {
    /// Starts one thread per core.
    pub fn new() -> Result<Verifier, rayon::ThreadPoolBuildError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("verify-{i}"))
            // Stateless checks parse contracts: the stack the contract engine is sized for.
            .stack_size(goodwill_ledger::contract::STACK_BYTES)
            .start_handler(|_| lower_priority(VERIFIER_NICENESS))
            .build()?;
        Ok(Verifier { pool: Arc::new(pool), jobs: Arc::new(Semaphore::new(MAX_JOBS)) })
    }

    /// Runs `work` on a verifier thread and waits for its result (and first for a place, when
    /// [`MAX_JOBS`] are queued).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let place = self.jobs.clone().acquire_owned().await.map_err(|_| Stopped)?;
        let (reply, answer) = oneshot::channel();
        self.pool.spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The place is free before the caller hears back.
            drop(place);
            match result {
                Ok(result) => {
                    let _ = reply.send(result);
                }
                // Dropping the reply tells the caller.
                Err(_) => tracing::error!("a signature check panicked"),
            }
        });
        answer.await.map_err(|_| Stopped)
    }
}

/// Lowers the calling thread's priority by `steps` (nice values). On Linux the nice value
/// belongs to the thread (the "process" of `setpriority` is a thread id there); elsewhere it
/// would change the whole process, so it is left alone. Threads inherit the value of the thread
/// that starts them: call this on new threads only, never on the main thread.
pub fn lower_priority(steps: i32) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = Some(rustix::thread::gettid());
        let lowered =
            getpriority_process(thread).and_then(|now| setpriority_process(thread, (now + steps).min(19)));
        if let Err(error) = lowered {
            tracing::debug!(%error, "could not lower a thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_lowered_thread_and_a_panic_is_an_error() {
        let verifier = Verifier::new().unwrap();
        let name = verifier.run(|| std::thread::current().name().map(String::from)).await.unwrap();
        assert!(name.unwrap().starts_with("verify-"));
        #[cfg(target_os = "linux")]
        {
            let ours = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
            let theirs = verifier
                .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap())
                .await
                .unwrap();
            assert_eq!(theirs, (ours + VERIFIER_NICENESS).min(19));
        }
        #[allow(clippy::panic)]
        let failed = verifier.run(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        // The pool still works after a panicked job, and the job gave its place back.
        assert_eq!(verifier.run(|| 7).await.unwrap(), 7);
        assert_eq!(verifier.jobs.available_permits(), MAX_JOBS);
    }

    #[tokio::test]
    async fn a_running_job_holds_a_place_until_it_ends() {
        let verifier = Verifier::new().unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let job = tokio::spawn({
            let verifier = verifier.clone();
            async move {
                verifier
                    .run(move || {
                        let _ = started.send(());
                        gate.recv().is_ok()
                    })
                    .await
            }
        });
        running.await.unwrap();
        assert_eq!(verifier.jobs.available_permits(), MAX_JOBS - 1);
        release.send(()).unwrap();
        assert!(job.await.unwrap().unwrap());
        assert_eq!(verifier.jobs.available_permits(), MAX_JOBS);
    }
}
