//! Capacity per deployment and per provider account: requests per minute,
//! tokens per minute and requests in flight, as the config declares on the
//! deployment and on its provider ("a token bucket for each provider"); a
//! request must fit both, and the account's limits are shared by all the
//! provider's deployments. An attempt reserves a request, its estimated tokens and a
//! slot before it is sent; the slot is given back when the request ends
//! (its [`Permit`] is dropped). A deployment without room is skipped for
//! the next candidate, or, when it has a queue, waited for up to the
//! queue's timeout with at most the queue's number of requests waiting.
//!
//! The buckets refill continuously (a minute's allowance over a minute),
//! so a deployment at 60 requests per minute takes one more each second
//! rather than 60 at the top of each minute. State is per router replica:
//! each enforces the whole allowance on its own.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use switchyard_proto::v1::Capacity as Declared;

/// How often a request waiting for a free slot looks again.
const SLOT_POLL: Duration = Duration::from_millis(10);

/// A bucket that refills continuously up to its size.
#[derive(Debug)]
struct Bucket {
    size: f64,
    level: f64,
    per_second: f64,
    updated: Instant,
}

impl Bucket {
    fn per_minute(allowance: u32, now: Instant) -> Option<Self> {
        (allowance > 0).then(|| Self {
            size: f64::from(allowance),
            level: f64::from(allowance),
            per_second: f64::from(allowance) / 60.0,
            updated: now,
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second).min(self.size);
        self.updated = now;
    }

    /// How long until `amount` fits (zero: it fits now). An amount over
    /// the whole size fits once the bucket is full, so one large request
    /// is slowed, never refused for ever.
    fn wait_for(&mut self, amount: f64, now: Instant) -> Duration {
        self.refill(now);
        let amount = amount.min(self.size);
        if self.level >= amount {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((amount - self.level) / self.per_second)
        }
    }

    fn take(&mut self, amount: f64) {
        self.level -= amount.min(self.size);
    }
}

/// One set of limits (a deployment's, or its provider account's) and what
/// is in use.
#[derive(Debug)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    max_in_flight: u32,
    in_flight: u32,
}

impl State {
    /// How long until a request of `tokens` fits (zero: now); takes
    /// nothing.
    fn wait_for(&mut self, tokens: u32, now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        if self.max_in_flight > 0 && self.in_flight >= self.max_in_flight {
            wait = SLOT_POLL;
        }
        if let Some(requests) = self.requests.as_mut() {
            wait = wait.max(requests.wait_for(1.0, now));
        }
        if let Some(bucket) = self.tokens.as_mut() {
            wait = wait.max(bucket.wait_for(f64::from(tokens), now));
        }
        wait
    }

    fn take(&mut self, tokens: u32) {
        if let Some(requests) = self.requests.as_mut() {
            requests.take(1.0);
        }
        if let Some(bucket) = self.tokens.as_mut() {
            bucket.take(f64::from(tokens));
        }
        self.in_flight += 1;
    }

    fn give_back(&mut self, tokens: u32) {
        if let Some(requests) = self.requests.as_mut() {
            requests.level = (requests.level + 1.0).min(requests.size);
        }
        if let Some(bucket) = self.tokens.as_mut() {
            bucket.level = (bucket.level + f64::from(tokens)).min(bucket.size);
        }
    }
}

/// One declared set of limits and what is in use, shared by every
/// [`Capacity`] it bounds (a provider account's, by all its deployments).
#[derive(Debug, Clone)]
pub struct Limits(Arc<Mutex<State>>);

impl Limits {
    /// The limits `declared`; `None` when they limit nothing.
    pub fn of(declared: &Declared) -> Option<Self> {
        let now = Instant::now();
        let state = State {
            requests: Bucket::per_minute(declared.requests_per_minute, now),
            tokens: Bucket::per_minute(declared.tokens_per_minute, now),
            max_in_flight: declared.max_concurrency,
            in_flight: 0,
        };
        (state.requests.is_some() || state.tokens.is_some() || state.max_in_flight > 0)
            .then(|| Self(Arc::new(Mutex::new(state))))
    }
}

/// A deployment's capacity: its own limits and its provider account's,
/// all of which a request must fit, and its queue.
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Always locked in this order (the deployment's, then the account's).
    limits: Arc<[Limits]>,
    waiting: Arc<AtomicU32>,
    queue_timeout: Duration,
    max_queued: u32,
}

/// A reserved request at a deployment: its slots are given back on drop.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<[Limits]>,
    tokens: u32,
}

impl Permit {
    /// Gives back the request and tokens too, for an attempt that was
    /// never sent (its breaker refused it).
    pub fn unused(self) {
        for limits in self.limits.iter() {
            lock(&limits.0).give_back(self.tokens);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        for limits in self.limits.iter() {
            let mut state = lock(&limits.0);
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Counters only: a panic cannot leave them worse than a lost slot.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Capacity {
    /// A capacity bounded by all of `limits` (none: `None`), queueing as
    /// `queue` declares.
    pub fn over(limits: Vec<Limits>, queue: &Declared) -> Option<Self> {
        (!limits.is_empty()).then(|| Self {
            limits: limits.into(),
            waiting: Arc::new(AtomicU32::new(0)),
            queue_timeout: Duration::from_millis(queue.queue_timeout_ms),
            max_queued: queue.max_queued,
        })
    }

    /// How long until a request of `tokens` fits every limit (zero: now),
    /// and, when it fits now, takes it.
    fn wait_or_take(&self, tokens: u32, now: Instant, take: bool) -> Duration {
        let mut states: Vec<_> = self.limits.iter().map(|limits| lock(&limits.0)).collect();
        let wait = states
            .iter_mut()
            .map(|state| state.wait_for(tokens, now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() && take {
            for state in &mut states {
                state.take(tokens);
            }
        }
        wait
    }

    /// Whether a request of `tokens` would find room now (planning asks;
    /// nothing is reserved). A deployment with a queue is always kept: its
    /// requests wait their turn.
    pub fn has_room(&self, tokens: u32) -> bool {
        !self.queue_timeout.is_zero() || self.wait_or_take(tokens, Instant::now(), false).is_zero()
    }

    /// Reserves a request of `tokens` now, or says how long until one may
    /// fit.
    fn try_reserve(&self, tokens: u32, now: Instant) -> Result<Permit, Duration> {
        let wait = self.wait_or_take(tokens, now, true);
        if !wait.is_zero() {
            return Err(wait);
        }
        Ok(Permit {
            limits: Arc::clone(&self.limits),
            tokens,
        })
    }

    /// Reserves a request of `tokens` if there is room now (a hedge, which
    /// does not wait).
    pub fn reserve_now(&self, tokens: u32) -> Option<Permit> {
        self.try_reserve(tokens, Instant::now()).ok()
    }

    /// Reserves a request of `tokens`, waiting in the deployment's queue
    /// (when it has one, there is a place in it, and the wait ends within
    /// the queue's timeout and `left` of the request's deadline); `None`
    /// when the request must go elsewhere.
    pub async fn reserve(&self, tokens: u32, left: Option<Duration>) -> Option<Permit> {
        let started = Instant::now();
        let first = match self.try_reserve(tokens, started) {
            Ok(permit) => return Some(permit),
            Err(wait) => wait,
        };
        let patience = left.map_or(self.queue_timeout, |left| left.min(self.queue_timeout));
        if patience.is_zero() || first > patience || !self.enqueue() {
            return None;
        }
        let _waiting = Waiting(self);
        loop {
            let now = Instant::now();
            let wait = match self.try_reserve(tokens, now) {
                Ok(permit) => return Some(permit),
                Err(wait) => wait,
            };
            let waited = now.saturating_duration_since(started);
            if waited + wait > patience {
                return None;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a place in the queue, if one is free.
    fn enqueue(&self) -> bool {
        let most = self.max_queued.max(1);
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < most).then_some(waiting + 1)
            })
            .is_ok()
    }
}

/// A place in a deployment's queue, given back on drop.
struct Waiting<'a>(&'a Capacity);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capacity `declared` on a deployment alone.
    fn capacity_of(declared: &Declared) -> Option<Capacity> {
        Capacity::over(Limits::of(declared).into_iter().collect(), declared)
    }

    #[test]
    fn a_provider_accounts_limits_bind_all_its_deployments() {
        let account = Limits::of(&declared(0, 0, 1, 0, 0)).expect("one at a time");
        let own = Limits::of(&declared(100, 0, 0, 0, 0)).expect("100 a minute");
        let first = Capacity::over(vec![account.clone()], &Declared::default()).expect("bound");
        let second = Capacity::over(vec![own, account], &Declared::default()).expect("bound");
        let held = first.reserve_now(1).expect("room");
        assert!(!second.has_room(1), "the account's one slot is taken");
        assert!(second.reserve_now(1).is_none());
        drop(held);
        let permit = second.reserve_now(1).expect("freed");
        assert!(!first.has_room(1));
        permit.unused();
        assert!(first.has_room(1), "an unused permit frees its slot too");
    }

    fn declared(rpm: u32, tpm: u32, concurrency: u32, queue_ms: u64, queued: u32) -> Declared {
        Declared {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            max_concurrency: concurrency,
            queue_timeout_ms: queue_ms,
            max_queued: queued,
        }
    }

    #[test]
    fn nothing_declared_limits_nothing() {
        assert!(capacity_of(&Declared::default()).is_none());
    }

    #[test]
    fn requests_and_tokens_per_minute_refill_continuously() {
        let capacity = capacity_of(&declared(2, 1_000, 0, 0, 0)).expect("limited");
        let start = Instant::now();
        let first = capacity.try_reserve(400, start).expect("room");
        let second = capacity.try_reserve(400, start).expect("room");
        drop((first, second));
        // Two requests a minute: the third waits ~30 s for one to refill.
        let wait = capacity
            .try_reserve(100, start)
            .expect_err("no request left");
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let later = start + Duration::from_secs(30);
        // 200 tokens left plus 500 refilled: 700 fit, 800 do not.
        assert!(capacity.try_reserve(800, later).is_err());
        assert!(capacity.try_reserve(700, later).is_ok());
    }

    #[test]
    fn a_slot_is_held_until_the_permit_is_dropped() {
        let capacity = capacity_of(&declared(0, 0, 1, 0, 0)).expect("limited");
        // Asking takes nothing.
        let per_minute = capacity_of(&declared(1, 0, 0, 0, 0)).expect("limited");
        assert!(per_minute.has_room(1) && per_minute.has_room(1));
        let taken = per_minute.reserve_now(1).expect("room");
        assert!(!per_minute.has_room(1));
        taken.unused();
        assert!(
            per_minute.has_room(1),
            "an unused reservation is given back"
        );
        let held = capacity.try_reserve(1, Instant::now()).expect("room");
        assert!(!capacity.has_room(1));
        assert!(capacity.try_reserve(1, Instant::now()).is_err());
        drop(held);
        assert!(capacity.has_room(1));
    }

    #[tokio::test]
    async fn a_queue_waits_its_timeout_for_a_slot_and_no_longer() {
        let capacity = capacity_of(&declared(0, 0, 1, 200, 1)).expect("limited");
        let held = capacity.reserve(1, None).await.expect("room");
        // No one frees the slot: the wait ends at the queue's timeout.
        let started = Instant::now();
        assert!(capacity.reserve(1, None).await.is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(180) && waited < Duration::from_secs(1),
            "{waited:?}"
        );
        // The slot freed while one waits: it gets it.
        let waiter = capacity.reserve(1, None);
        let meanwhile = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            // The queue holds one: a second waiter goes elsewhere at once.
            assert!(capacity.reserve(1, None).await.is_none());
            drop(held);
        };
        let (served, ()) = tokio::join!(waiter, meanwhile);
        assert!(served.is_some(), "served from the queue");
    }
}
