//! Passwords: Harbor's strength policy and argon2id hashing on the blocking pool behind a bounded
//! queue (module doc of `accounts`), plus the dummy hash unknown names are verified against.

use super::*;

/// Harbor's password policy: 8–128 characters with at least one upper-case letter, one
/// lower-case letter and one digit.
pub fn check_password_strength(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if !(8..=128).contains(&n)
        || !pw.chars().any(|c| c.is_ascii_uppercase())
        || !pw.chars().any(|c| c.is_ascii_lowercase())
        || !pw.chars().any(|c| c.is_ascii_digit())
    {
        return Err("the password must be 8 to 128 characters long and contain at least one \
                    upper-case letter, one lower-case letter and one digit"
            .into());
    }
    Ok(())
}

/// Argon2 runs at most this many at a time (one per CPU): each takes ~19 MiB and a core, so a
/// burst of logins queues instead of multiplying memory.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static S: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    S.get_or_init(|| tokio::sync::Semaphore::new(argon2_permits_total()))
}

/// Logins that may wait for an argon2 permit, per CPU, beyond those running. A login arriving
/// when the queue is full is refused at once (429 with `Retry-After`) instead of making every
/// login wait behind a flood of wrong passwords: a queued login waits for at most
/// `ARGON2_QUEUE_PER_CPU` verifications (~19 MiB and tens of ms each in a release build).
pub const ARGON2_QUEUE_PER_CPU: usize = 4;

static ARGON2_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A place among the logins running or waiting for argon2 (`argon2_capacity`).
pub struct Argon2Slot(());

impl Argon2Slot {
    pub fn enter() -> Result<Argon2Slot, LoginError> {
        use std::sync::atomic::Ordering;
        let cap = argon2_capacity();
        let mut n = ARGON2_WAITING.load(Ordering::Relaxed);
        loop {
            if n >= cap {
                return Err(LoginError::Busy);
            }
            match ARGON2_WAITING.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(Argon2Slot(())),
                Err(actual) => n = actual,
            }
        }
    }

    /// `verify_password` within this slot.
    pub async fn verify(&self, pw: &str, hash: &str) -> bool {
        verify_password(pw, hash).await
    }
}

impl Drop for Argon2Slot {
    fn drop(&mut self) {
        ARGON2_WAITING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Logins running or waiting for argon2 at most, per process: one running and
/// `ARGON2_QUEUE_PER_CPU` waiting per CPU.
pub fn argon2_capacity() -> usize {
    argon2_permits_total() * (1 + ARGON2_QUEUE_PER_CPU)
}

fn argon2_permits_total() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Hashes on the blocking pool: argon2 is deliberately slow.
pub async fn hash_password(pw: &str) -> String {
    let pw = pw.to_owned();
    let _permit = argon2_permits().acquire().await.expect("semaphore never closes");
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(pw.as_bytes(), &salt).expect("argon2 hash").to_string()
    })
    .await
    .expect("hash task")
}

/// Argon2 verifications run by this process (a metric; tests use it to prove caching).
pub static VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Constant-time verification (argon2's comparison) on the blocking pool.
pub async fn verify_password(pw: &str, hash: &str) -> bool {
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (pw, hash) = (pw.to_owned(), hash.to_owned());
    let _permit = argon2_permits().acquire().await.expect("semaphore never closes");
    tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
        Ok(parsed) => Argon2::default().verify_password(pw.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist so that the
/// response time does not reveal which names exist.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub(super) async fn dummy_hash() -> String {
    if let Some(h) = DUMMY_HASH.get() {
        return h.clone();
    }
    let h = hash_password("Dummy-password-1").await;
    DUMMY_HASH.get_or_init(|| h).clone()
}
