//! [`Breaker`]: one deployment's circuit breaker.
//!
//! Closed, it counts outcomes in a sliding window of buckets. When the
//! window holds at least `min_requests` outcomes and the share of failures
//! reaches `failure_rate`, it opens: no request is sent for `cooldown`.
//! Then it is half-open: up to `probes` requests at a time are let through
//! as probes. A probe that succeeds closes it (with a fresh window); one
//! that fails opens it for another cooldown. A probe that never reports
//! (its request cancelled) frees its slot after a cooldown.
//!
//! Only failures that say the deployment is unwell count: rate limits,
//! overload, outages, timeouts and refused credentials; never the client's
//! errors, cancellations or the gateway's own services being down.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::ErrorClass;

/// Buckets the window is divided into.
const BUCKETS: usize = 10;

/// `router.breaker`: when a deployment's breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Whether breakers are used at all.
    pub enabled: bool,
    /// Share of failed requests in the window that opens the breaker.
    pub failure_rate: f64,
    /// Fewest outcomes in the window before the rate counts.
    pub min_requests: u32,
    /// How far back outcomes count (e.g. `30s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub window: Duration,
    /// How long an open breaker sheds traffic before probing (e.g. `30s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub cooldown: Duration,
    /// Probes let through at once while half-open.
    pub probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(30),
            cooldown: Duration::from_secs(30),
            probes: 1,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow; outcomes are counted.
    Closed,
    /// No request is sent until the cooldown ends.
    Open,
    /// Probes are let through.
    HalfOpen,
}

impl BreakerState {
    /// The metric value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    /// The name in logs, metrics and decision records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// What a breaker says to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it; the breaker is closed.
    Pass,
    /// Send it as a probe of a half-open breaker.
    Probe,
    /// Do not send it.
    Refuse,
}

/// Whether `class` says the deployment is unwell.
pub fn counts_against(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::RateLimited
            | ErrorClass::Overloaded
            | ErrorClass::UpstreamUnavailable
            | ErrorClass::Timeout
            | ErrorClass::ProviderAuth
    )
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which slice of time it holds (`since start / bucket width`).
    slice: u64,
    successes: u32,
    failures: u32,
}

/// One deployment's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    /// When the current open period ends.
    open_until: Instant,
    /// Probes in flight, with when the oldest started.
    probes: u32,
    probe_started: Instant,
    /// The origin of bucket slices.
    start: Instant,
    buckets: [Bucket; BUCKETS],
}

impl Breaker {
    /// A closed breaker, counting from `now`.
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        Self {
            config,
            state: BreakerState::Closed,
            open_until: now,
            probes: 0,
            probe_started: now,
            start: now,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    /// Where it is at `now` (an open breaker past its cooldown is half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            BreakerState::Open if now >= self.open_until => BreakerState::HalfOpen,
            state => state,
        }
    }

    /// Whether a request at `now` could be sent (without taking a probe
    /// slot): what planning asks.
    pub fn is_available(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.probe_slot_free(now),
        }
    }

    /// Admits a request at `now`, taking a probe slot when half-open.
    /// Returns the admission and, when it changed, the new state.
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<BreakerState>) {
        let changed = self.settle(now);
        let admission = match self.state {
            BreakerState::Closed => Admission::Pass,
            BreakerState::Open => Admission::Refuse,
            BreakerState::HalfOpen if self.probe_slot_free(now) => {
                if self.probes == 0
                    || now.duration_since(self.probe_started) >= self.config.cooldown
                {
                    self.probes = 0;
                    self.probe_started = now;
                }
                self.probes += 1;
                Admission::Probe
            }
            BreakerState::HalfOpen => Admission::Refuse,
        };
        (admission, changed)
    }

    /// Records the outcome of a request admitted as `admission` at `now`:
    /// `None` for success, else its error class. Returns the new state when
    /// it changed.
    pub fn record(
        &mut self,
        admission: Admission,
        failure: Option<ErrorClass>,
        now: Instant,
    ) -> Option<BreakerState> {
        let failed = failure.is_some_and(counts_against);
        let neutral = failure.is_some() && !failed;
        if admission == Admission::Probe {
            self.probes = self.probes.saturating_sub(1);
        }
        if neutral {
            return None;
        }
        let before = self.state;
        match (self.state, admission) {
            (BreakerState::HalfOpen, Admission::Probe) => {
                if failed {
                    self.open(now);
                } else {
                    self.close(now);
                }
            }
            (BreakerState::Closed, _) => {
                let bucket = self.bucket(now);
                if failed {
                    bucket.failures += 1;
                } else {
                    bucket.successes += 1;
                }
                let (successes, failures) = self.totals(now);
                let total = successes + failures;
                if failed
                    && total >= self.config.min_requests.max(1)
                    && f64::from(failures) >= self.config.failure_rate * f64::from(total)
                {
                    self.open(now);
                }
            }
            // A late outcome of a request admitted before the breaker
            // opened changes nothing.
            _ => {}
        }
        (self.state != before).then_some(self.state)
    }

    /// Moves an open breaker past its cooldown to half-open.
    fn settle(&mut self, now: Instant) -> Option<BreakerState> {
        if self.state == BreakerState::Open && now >= self.open_until {
            self.state = BreakerState::HalfOpen;
            self.probes = 0;
            return Some(self.state);
        }
        None
    }

    fn probe_slot_free(&self, now: Instant) -> bool {
        self.probes < self.config.probes.max(1)
            || now.duration_since(self.probe_started) >= self.config.cooldown
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = now + self.config.cooldown;
        self.probes = 0;
    }

    fn close(&mut self, now: Instant) {
        self.state = BreakerState::Closed;
        self.buckets = [Bucket::default(); BUCKETS];
        self.start = now;
    }

    fn width(&self) -> Duration {
        (self.config.window / u32::try_from(BUCKETS).unwrap_or(1)).max(Duration::from_millis(1))
    }

    fn slice(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(since / self.width().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The bucket of `now`, emptied when it last held an older slice.
    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let slice = self.slice(now);
        let index = usize::try_from(slice % BUCKETS as u64).unwrap_or(0);
        let bucket = &mut self.buckets[index];
        if bucket.slice != slice {
            *bucket = Bucket {
                slice,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// Successes and failures within the window ending at `now`.
    fn totals(&self, now: Instant) -> (u32, u32) {
        let current = self.slice(now);
        self.buckets
            .iter()
            .filter(|bucket| current.saturating_sub(bucket.slice) < BUCKETS as u64)
            .fold((0, 0), |(successes, failures), bucket| {
                (successes + bucket.successes, failures + bucket.failures)
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            min_requests: 4,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
            probes: 1,
            enabled: true,
        }
    }

    #[test]
    fn opens_on_the_failure_rate_sheds_then_probes_and_closes() {
        let start = Instant::now();
        let mut breaker = Breaker::new(config(), start);
        let failure = Some(ErrorClass::UpstreamUnavailable);
        for _ in 0..2 {
            assert_eq!(breaker.admit(start).0, Admission::Pass);
            assert_eq!(breaker.record(Admission::Pass, None, start), None);
        }
        assert_eq!(breaker.record(Admission::Pass, failure, start), None);
        // 2 of 4 failed: at the rate, with enough requests.
        assert_eq!(
            breaker.record(Admission::Pass, failure, start),
            Some(BreakerState::Open)
        );
        let during = start + Duration::from_secs(4);
        assert_eq!(breaker.admit(during).0, Admission::Refuse);
        assert!(!breaker.is_available(during));
        let after = start + Duration::from_secs(5);
        assert!(breaker.is_available(after));
        assert_eq!(
            breaker.admit(after),
            (Admission::Probe, Some(BreakerState::HalfOpen))
        );
        // One probe at a time.
        assert_eq!(breaker.admit(after).0, Admission::Refuse);
        assert_eq!(
            breaker.record(Admission::Probe, None, after),
            Some(BreakerState::Closed)
        );
        assert_eq!(breaker.admit(after).0, Admission::Pass);
    }

    #[test]
    fn a_failed_probe_opens_again_and_client_errors_do_not_count() {
        let start = Instant::now();
        let mut breaker = Breaker::new(config(), start);
        for _ in 0..10 {
            breaker.record(Admission::Pass, Some(ErrorClass::InvalidRequest), start);
        }
        assert_eq!(breaker.state(start), BreakerState::Closed);
        for _ in 0..4 {
            breaker.record(Admission::Pass, Some(ErrorClass::Timeout), start);
        }
        assert_eq!(breaker.state(start), BreakerState::Open);
        let after = start + Duration::from_secs(5);
        assert_eq!(breaker.admit(after).0, Admission::Probe);
        assert_eq!(
            breaker.record(Admission::Probe, Some(ErrorClass::RateLimited), after),
            Some(BreakerState::Open)
        );
        assert_eq!(breaker.admit(after).0, Admission::Refuse);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let start = Instant::now();
        let mut breaker = Breaker::new(config(), start);
        for _ in 0..3 {
            breaker.record(Admission::Pass, Some(ErrorClass::Timeout), start);
        }
        let later = start + Duration::from_secs(11);
        breaker.record(Admission::Pass, Some(ErrorClass::Timeout), later);
        assert_eq!(breaker.state(later), BreakerState::Closed, "1 of 1 counts");
    }

    /// One step of a random history: an admission asked at an offset, and
    /// the outcome of what it admitted.
    fn step() -> impl Strategy<Value = (u64, Option<u8>)> {
        (0_u64..3_000, proptest::option::of(0_u8..15))
    }

    proptest! {
        /// Whatever happens, nothing is admitted while the breaker is open
        /// within its cooldown, and never more probes than allowed at once.
        #[test]
        fn nothing_is_sent_to_an_open_breaker_but_probes(
            steps in proptest::collection::vec(step(), 1..200),
            probes in 1_u32..3,
        ) {
            let config = BreakerConfig { probes, ..config() };
            let start = Instant::now();
            let mut now = start;
            let mut breaker = Breaker::new(config, start);
            let mut in_flight_probes = Vec::new();
            for (advance_ms, outcome) in steps {
                now += Duration::from_millis(advance_ms);
                let open_before = breaker.state(now) == BreakerState::Open;
                let (admission, _) = breaker.admit(now);
                if open_before {
                    prop_assert_eq!(admission, Admission::Refuse);
                }
                if admission == Admission::Probe {
                    in_flight_probes.push(now);
                    let live = in_flight_probes
                        .iter()
                        .filter(|started| now.duration_since(**started) < config.cooldown)
                        .count();
                    prop_assert!(live <= probes as usize, "{} probes at once", live);
                }
                if admission != Admission::Refuse {
                    let failure = outcome.map(|index| ErrorClass::ALL[usize::from(index)]);
                    breaker.record(admission, failure, now);
                    if admission == Admission::Probe {
                        in_flight_probes.pop();
                    }
                }
            }
        }
    }
}
