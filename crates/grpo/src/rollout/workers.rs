//! Reused threads for the env calls the rollout times.
//!
//! A timed env call runs on a thread other than the one that waits for it,
//! so a call that hangs can be given up on. A thread started per call costs
//! tens of microseconds, and a GRPO run makes thousands of such calls a
//! minute (every `reset`, `step` and `Drop`). Here each call goes to an idle
//! worker when there is one, and a new worker starts only when every worker
//! is busy: a call that hangs keeps its worker, and the next call gets
//! another. A worker idle for [`KEEP_IDLE`] ends.
//!
//! The rollout's jobs catch their own panics; a worker catches what one
//! lets through (after the panic hook has printed it) and goes on.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a worker with nothing to do waits for a job before it ends.
const KEEP_IDLE: Duration = Duration::from_secs(10);

/// The name of every worker thread.
const WORKER_NAME: &str = "toolgym-env";

type Job = Box<dyn FnOnce() + Send>;

/// The jobs waiting for a worker, and how many workers are waiting for one.
struct Queue {
    jobs: VecDeque<Job>,
    waiting: usize,
    /// The process the workers counted in `waiting` run in: a child
    /// forked after they started has none of them.
    process: u32,
}

struct Workers {
    queue: Mutex<Queue>,
    wake: Condvar,
}

static WORKERS: Workers = Workers {
    queue: Mutex::new(Queue {
        jobs: VecDeque::new(),
        waiting: 0,
        process: 0,
    }),
    wake: Condvar::new(),
};

impl Workers {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a panic cannot leave it poisoned
        // halfway through a change; a poisoned lock is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a worker runs: jobs until none comes for [`KEEP_IDLE`].
    fn work(&'static self) {
        let mut queue = self.lock();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                drop(queue);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                queue = self.lock();
                continue;
            }
            queue.waiting += 1;
            let (q, waited) = self
                .wake
                .wait_timeout(queue, KEEP_IDLE)
                .unwrap_or_else(|e| e.into_inner());
            queue = q;
            queue.waiting -= 1;
            if waited.timed_out() && queue.jobs.is_empty() {
                return;
            }
        }
    }
}

/// Runs `run(value)` on a worker thread and returns at once. When every
/// worker is busy and no thread can be started, `value` is leaked, not
/// dropped: what it holds (an env whose `Drop` may hang) must not run
/// here untimed. (It travels in a slot both sides hold, and is taken back
/// out of it then; a worker that frees up later finds the slot empty.)
pub(crate) fn run_detached<V: Send + 'static>(
    value: V,
    run: impl FnOnce(V) + Send + 'static,
) -> std::io::Result<()> {
    let slot = Arc::new(Mutex::new(Some(value)));
    let theirs = slot.clone();
    let job: Job = Box::new(move || {
        let value = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(value) = value {
            run(value);
        }
    });
    let start_one = {
        let mut queue = WORKERS.lock();
        let here = std::process::id();
        if queue.process != here {
            // Forked (or the first call): the workers and jobs counted are
            // the parent's. Its jobs are leaked, as their values must not
            // be dropped here untimed.
            std::mem::forget(std::mem::take(&mut queue.jobs));
            queue.waiting = 0;
            queue.process = here;
        }
        queue.jobs.push_back(job);
        // Each waiting worker takes one job; a job beyond them needs a
        // worker of its own.
        if queue.waiting >= queue.jobs.len() {
            WORKERS.wake.notify_one();
            false
        } else {
            true
        }
    };
    if !start_one {
        return Ok(());
    }
    let started = std::thread::Builder::new()
        .name(WORKER_NAME.into())
        .spawn(|| WORKERS.work());
    match started {
        Ok(_) => Ok(()),
        Err(e) => {
            // A worker that freed up meanwhile may have taken the job (the
            // slot is then empty and it runs): only a value still in the
            // slot failed to start.
            match slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(value) => {
                    std::mem::forget(value);
                    Err(e)
                }
                None => Ok(()),
            }
        }
    }
}

/// How many workers wait for a job now (for tests).
#[cfg(test)]
pub(crate) fn idle_workers() -> usize {
    WORKERS.lock().waiting
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    fn on_a_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        run_detached(f, move |f| tx.send(f()).unwrap()).unwrap();
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    /// Waits until some worker is idle (a job's sender is told before its
    /// worker is back in the queue).
    fn until_a_worker_is_idle() {
        let started = Instant::now();
        while idle_workers() == 0 {
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn an_idle_worker_runs_the_next_job() {
        // Other tests of this binary use the workers too: ask until one job
        // lands on a thread seen before.
        let first = on_a_worker(|| std::thread::current().id());
        let mut seen = vec![first];
        for _ in 0..50 {
            until_a_worker_is_idle();
            let (id, name) = on_a_worker(|| {
                let t = std::thread::current();
                (t.id(), t.name().map(str::to_owned))
            });
            assert_eq!(name.as_deref(), Some(WORKER_NAME));
            if seen.contains(&id) {
                return;
            }
            seen.push(id);
        }
        panic!("50 jobs, each on a new thread: workers are not reused");
    }

    #[test]
    fn a_busy_worker_does_not_hold_up_the_next_job() {
        let (release, blocked) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        run_detached(blocked, move |blocked| {
            let _ = blocked.recv();
            done_tx.send(()).unwrap();
        })
        .unwrap();
        // The first job holds its worker; these run beside it.
        for i in 0..4 {
            assert_eq!(on_a_worker(move || i * 2), i * 2);
        }
        release.send(()).unwrap();
        done.recv_timeout(Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn many_jobs_at_once_all_run() {
        let (tx, rx) = mpsc::channel();
        let n = 200;
        for i in 0..n {
            let tx = tx.clone();
            run_detached(i, move |i| {
                std::thread::sleep(Duration::from_micros(200));
                tx.send(i).unwrap();
            })
            .unwrap();
        }
        let mut got: Vec<usize> = (0..n)
            .map(|_| rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_job_does_not_stop_the_others() {
        run_detached((), |()| panic!("a job that does not catch its own panic")).unwrap();
        for i in 0..20 {
            assert_eq!(on_a_worker(move || i + 1), i + 1);
        }
    }
}
