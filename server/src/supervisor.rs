//! Supervised background loops: the job runner, the audit writer, the pull counter and the
//! periodic purges run under a [`Supervisor`] instead of being spawned and forgotten.
//!
//! Each loop gets a [`Beat`] and reports every iteration on it (`ok`, or `failed` with the
//! error — a loop keeps handling its own transient errors, such as the database being down,
//! and retries). When a loop's task **returns an error or panics**, the supervisor records the
//! error and restarts it after a backoff (1 s doubling to 60 s; a run that lasted
//! `STABLE_AFTER` resets it). A loop that returns `Ok(())` has finished by design (e.g. the
//! audit purge with retention 0) and is not restarted.
//!
//! **A loop that keeps failing is loud**: after `UNHEALTHY_AFTER` crashes in a row (or that
//! many failed iterations in a row) it is logged at error level and `/api/v2.0/health` shows it
//! as an unhealthy component (Harbor's `{"name","status","error"}`, plus `restarts`,
//! `last_beat` and `last_error`) and makes the body's `status` unhealthy. The status code stays
//! readiness (database, storage, Redis): the replica still serves requests, so the load
//! balancer keeps it. It keeps being restarted.
//! Test: `supervisor::tests`, `api.rs` `health_shows_a_restarted_loop` and
//! `a_failing_loop_is_reported_but_keeps_the_replica_ready`.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

/// Crashes (or failed iterations) in a row after which a loop is reported unhealthy.
pub const UNHEALTHY_AFTER: u32 = 3;
/// A run that lasted this long before crashing starts the backoff and the crash count afresh.
const STABLE_AFTER: Duration = Duration::from_secs(300);

/// The background loops of one process, by name, in the order they were started.
pub struct Supervisor {
    loops: Mutex<Vec<Arc<Slot>>>,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor::with_backoff(Duration::from_secs(1), Duration::from_secs(60))
    }
}

struct Slot {
    name: &'static str,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: bool,
    finished: bool,
    restarts: u32,
    /// Crashes since the last stable run.
    crashes_in_row: u32,
    failed_iterations_in_row: u32,
    last_error: Option<String>,
    last_beat: Option<SystemTime>,
}

impl State {
    fn healthy(&self) -> bool {
        self.crashes_in_row < UNHEALTHY_AFTER && self.failed_iterations_in_row < UNHEALTHY_AFTER
    }
}

/// A loop's handle for reporting its iterations.
#[derive(Clone)]
pub struct Beat(Arc<Slot>);

impl Beat {
    /// One iteration done.
    pub fn ok(&self) {
        let mut s = self.0.lock();
        s.last_beat = Some(SystemTime::now());
        s.failed_iterations_in_row = 0;
    }

    /// One iteration failed (the loop will retry by itself).
    pub fn failed(&self, e: &dyn Display) {
        let mut s = self.0.lock();
        s.last_beat = Some(SystemTime::now());
        s.failed_iterations_in_row = s.failed_iterations_in_row.saturating_add(1);
        s.last_error = Some(e.to_string());
        if s.failed_iterations_in_row == UNHEALTHY_AFTER {
            tracing::error!(component = self.0.name, error = %e, "background loop keeps failing");
        }
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Supervisor {
    pub fn with_backoff(min_backoff: Duration, max_backoff: Duration) -> Self {
        Supervisor { loops: Mutex::default(), min_backoff, max_backoff }
    }

    /// Starts `make(beat)` as a task and keeps it running: restarted with backoff whenever it
    /// returns an error or panics. Must be called inside a Tokio runtime.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: Fn(Beat) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let slot = Arc::new(Slot { name, state: Mutex::default() });
        self.loops.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
        let (min, max) = (self.min_backoff, self.max_backoff);
        tokio::spawn(async move {
            let mut backoff = min;
            loop {
                slot.lock().running = true;
                let started = Instant::now();
                let error = match tokio::spawn(make(Beat(slot.clone()))).await {
                    Ok(Ok(())) => {
                        let mut s = slot.lock();
                        (s.running, s.finished) = (false, true);
                        tracing::info!(component = name, "background loop finished");
                        return;
                    }
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
                    // Cancelled: the runtime is shutting down.
                    Err(_) => return,
                };
                if started.elapsed() >= STABLE_AFTER {
                    backoff = min;
                    slot.lock().crashes_in_row = 0;
                }
                let crashes = {
                    let mut s = slot.lock();
                    s.running = false;
                    s.restarts = s.restarts.saturating_add(1);
                    s.crashes_in_row = s.crashes_in_row.saturating_add(1);
                    s.last_error = Some(error.clone());
                    s.crashes_in_row
                };
                if crashes >= UNHEALTHY_AFTER {
                    tracing::error!(
                        component = name,
                        error,
                        crashes,
                        ?backoff,
                        "background loop keeps failing; restarting"
                    );
                } else {
                    tracing::warn!(component = name, error, ?backoff, "background loop stopped; restarting");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
            }
        });
    }

    /// The loops as health components: `status` is `unhealthy` (with `error`) once a loop has
    /// crashed or failed `UNHEALTHY_AFTER` times in a row.
    pub fn components(&self) -> Vec<Value> {
        let loops = self.loops.lock().unwrap_or_else(|e| e.into_inner()).clone();
        loops
            .iter()
            .map(|slot| {
                let s = slot.lock();
                let mut c = json!({
                    "name": slot.name,
                    "status": if s.healthy() { "healthy" } else { "unhealthy" },
                    "state": if s.finished { "finished" } else if s.running { "running" } else { "restarting" },
                    "restarts": s.restarts,
                    "last_beat": s.last_beat.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                    "last_error": s.last_error,
                });
                if !s.healthy() {
                    c["error"] = json!(s.last_error.clone().unwrap_or_default());
                }
                c
            })
            .collect()
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_else(|| "(no message)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> Supervisor {
        Supervisor::with_backoff(Duration::from_millis(5), Duration::from_millis(20))
    }

    async fn wait_for(sup: &Supervisor, what: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let c = sup.components().remove(0);
            if what(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition never met: {:?}", sup.components());
    }

    /// A loop that panics once is restarted, keeps running, stays healthy and shows the panic.
    #[tokio::test]
    async fn a_panicking_loop_is_restarted() {
        let sup = fast();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("flaky", move |beat| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("boom");
                }
                loop {
                    beat.ok();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let c =
            wait_for(&sup, |c| c["restarts"] == 1 && c["state"] == "running" && !c["last_beat"].is_null())
                .await;
        assert_eq!(c["name"], "flaky");
        assert_eq!(c["status"], "healthy");
        assert_eq!(c["last_error"], "panicked: boom");
        assert!(c.get("error").is_none());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// A loop that keeps returning errors is reported unhealthy with its error, and still
    /// restarted.
    #[tokio::test]
    async fn a_loop_that_keeps_failing_is_unhealthy() {
        let sup = fast();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("broken", move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            async { Err(anyhow::anyhow!("cannot start")) }
        });
        let c = wait_for(&sup, |c| c["restarts"].as_u64() >= Some(UNHEALTHY_AFTER as u64 + 1)).await;
        assert_eq!(c["status"], "unhealthy");
        assert_eq!(c["error"], "cannot start");
        assert!(runs.load(Ordering::SeqCst) > UNHEALTHY_AFTER);
    }

    /// Failed iterations in a row make a running loop unhealthy; one good iteration heals it.
    #[tokio::test]
    async fn failing_iterations_are_unhealthy_until_one_succeeds() {
        let sup = fast();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Beat>();
        sup.spawn("iter", move |beat| {
            let _ = tx.send(beat);
            std::future::pending::<anyhow::Result<()>>()
        });
        let beat = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        for _ in 0..UNHEALTHY_AFTER {
            beat.failed(&"database unavailable");
        }
        let c = sup.components().remove(0);
        assert_eq!(c["status"], "unhealthy");
        assert_eq!(c["error"], "database unavailable");
        beat.ok();
        assert_eq!(sup.components()[0]["status"], "healthy");
    }

    /// A loop that returns `Ok` has finished and is not restarted.
    #[tokio::test]
    async fn a_finished_loop_is_not_restarted() {
        let sup = fast();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("once", move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        });
        let c = wait_for(&sup, |c| c["state"] == "finished").await;
        assert_eq!(c["status"], "healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
