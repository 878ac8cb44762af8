//! Reused threads for the env calls the rollout times.
//!
//! A timed env call runs on a thread other than the one that waits for it,
//! so a call that hangs can be given up on. Each call goes to an idle
//! worker when there is one, and a new worker starts only when every worker
//! is busy: a call that hangs keeps its worker, and the next call gets
//! another. A worker idle for [`KEEP_IDLE`] ends.
//!
//! Why not a thread per call, as before: a GRPO run makes thousands of
//! timed calls a minute (every `reset`, `step` and `Drop`; the built-in
//! demo started ~60,000 threads in a short run), and glibc 2.36's
//! `pthread_detach` (which dropping a `JoinHandle` calls) reads the
//! thread's descriptor after marking it detached, when a thread that
//! exits at that moment may already have freed it and its stack. With
//! that many threads started and detached as they end, it happens: the
//! demo crashed once in about a dozen runs, two new threads on one stack,
//! and a stress test of the same pattern (`spawn`, the handle dropped at
//! once, the thread done within microseconds) segfaulted inside
//! `pthread_detach` after about 7 million threads, and so does the
//! 40-line C program `scripts/stress/pthread_detach_race.c` (after
//! seconds to minutes). A worker is detached as it starts and ends only
//! after seconds idle, so the two never meet.
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
}

struct Workers {
    queue: Mutex<Queue>,
    wake: Condvar,
}

static WORKERS: Workers = Workers {
    queue: Mutex::new(Queue {
        jobs: VecDeque::new(),
        waiting: 0,
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
                if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                    // Dropped where a panic in its own `Drop` is caught too.
                    toolgym_env::take_panic_message(panic);
                }
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

    /// Far longer than any wake-up takes, and shorter than [`KEEP_IDLE`]: a
    /// job an idle worker was not woken for would wait that long.
    const PROMPT: Duration = Duration::from_secs(5);

    fn on_a_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        run_detached(f, move |f| tx.send(f()).unwrap()).unwrap();
        rx.recv_timeout(PROMPT)
            .expect("a job waited for a worker (not woken, or none started)")
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

    /// Runs jobs on idle workers, up to `tries`, until one lands on a
    /// thread `wanted` accepts (other tests of this binary use the workers
    /// too, and any idle one may be woken); whether one did.
    fn lands_on(tries: usize, mut wanted: impl FnMut(std::thread::ThreadId) -> bool) -> bool {
        for _ in 0..tries {
            until_a_worker_is_idle();
            let (id, name) = on_a_worker(|| {
                let t = std::thread::current();
                (t.id(), t.name().map(str::to_owned))
            });
            assert_eq!(name.as_deref(), Some(WORKER_NAME));
            if wanted(id) {
                return true;
            }
        }
        false
    }

    /// An idle worker is woken for the next job, at once (`on_a_worker`
    /// waits [`PROMPT`]), and no thread is started per job.
    #[test]
    fn an_idle_worker_runs_the_next_job() {
        let mut seen = vec![on_a_worker(|| std::thread::current().id())];
        let reused = lands_on(50, |id| {
            let again = seen.contains(&id);
            seen.push(id);
            again
        });
        assert!(
            reused,
            "50 jobs, each on a new thread: workers are not reused"
        );
    }

    /// Jobs that block hold their workers; jobs given meanwhile get
    /// workers of their own, all running at once (each is held until all
    /// have started). More jobs are given than workers wait: those beyond
    /// need new ones.
    #[test]
    fn jobs_that_block_do_not_hold_up_the_others() {
        until_a_worker_is_idle();
        let n = idle_workers() + 6;
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        for i in 0..n {
            let (release, held) = mpsc::channel::<()>();
            releases.push(release);
            let started_tx = started_tx.clone();
            run_detached(i, move |i| {
                started_tx.send(i).unwrap();
                // Until released (or the test ends: the sender dropped).
                let _ = held.recv();
            })
            .unwrap();
        }
        let mut got: Vec<usize> = (0..n)
            .map(|_| {
                started
                    .recv_timeout(PROMPT)
                    .expect("a job waited behind blocked ones")
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        // A job given while all of them block runs too.
        assert_eq!(on_a_worker(|| 7), 7);
        drop(releases);
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

    /// A job that lets a panic through does not end its worker (a thread
    /// that ends drops its thread-locals: the one set here would say so).
    #[test]
    fn a_worker_outlives_a_job_that_panics() {
        struct SaysWhenDropped(mpsc::Sender<()>);
        impl Drop for SaysWhenDropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        thread_local! {
            static GUARD: std::cell::RefCell<Option<SaysWhenDropped>> =
                const { std::cell::RefCell::new(None) };
        }
        let (ended_tx, ended) = mpsc::channel();
        let (ran_tx, ran) = mpsc::channel();
        run_detached((), move |()| {
            GUARD.with(|g| *g.borrow_mut() = Some(SaysWhenDropped(ended_tx)));
            ran_tx.send(()).unwrap();
            panic!("a job that does not catch its own panic");
        })
        .unwrap();
        ran.recv_timeout(PROMPT).unwrap();
        // Ended, it would say so at once; it lives on, idle, for KEEP_IDLE.
        assert_eq!(
            ended.recv_timeout(Duration::from_secs(1)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "the worker of a job that panicked ended"
        );
    }
}
