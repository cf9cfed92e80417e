//! [`Health`]: what this router has seen of each deployment: its breaker,
//! and its expected time to first token, which planning and the latency
//! and score strategies read.
//!
//! State is per router process and kept by deployment id; a deployment's
//! entry is made on its first attempt. Each is behind its own short lock,
//! never held across an await.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use switchyard_common::ErrorClass;
use switchyard_proto::v1::{Capacity as Declared, Deployment};

use crate::{
    breaker::{Admission, Breaker, BreakerConfig, BreakerState},
    capacity::{Capacity, Limits},
    latency::LatencyWindow,
};

/// The longest rest a provider's word is believed for.
const MOST_REST: Duration = Duration::from_secs(3_600);

/// Weight of the newest time to first token in the moving average.
const LATENCY_SMOOTHING: f64 = 0.2;

/// What the router has seen of one deployment.
#[derive(Debug)]
struct DeploymentHealth {
    breaker: Mutex<Breaker>,
    /// Exponentially weighted time to first token, in microseconds; 0
    /// before the first answer.
    ttft_micros: Mutex<f64>,
    /// Until when the provider said this deployment's limit is used up.
    rested_until: Mutex<Option<Instant>>,
    /// Recent times to first message, for percentiles.
    first_token: Mutex<LatencyWindow>,
    /// Recent whole answers, likewise.
    total: Mutex<LatencyWindow>,
    /// Its capacity and what is in use, rebuilt when its or its
    /// provider's declaration changes; `None` until first asked.
    capacity: Mutex<Option<(Declarations, Capacity)>>,
}

/// A deployment's capacity as declared on it and on its provider.
type Declarations = (Option<Declared>, Option<Declared>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BreakerLabels {
    deployment: String,
    provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RestLabels {
    deployment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransitionLabels {
    deployment: String,
    provider: String,
    to: &'static str,
}

/// The health of every deployment this router has tried.
#[derive(Debug)]
pub struct Health {
    config: BreakerConfig,
    deployments: RwLock<HashMap<String, Arc<DeploymentHealth>>>,
    states: Family<BreakerLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    rests: Family<RestLabels, Counter>,
    no_room: Family<RestLabels, Counter>,
    /// Each provider account's limits, shared by its deployments, rebuilt
    /// when the declaration changes.
    accounts: Mutex<HashMap<String, (Declared, Limits)>>,
}

/// An attempt's admission by its deployment's breaker, to report its
/// outcome against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(Admission);

impl Health {
    /// Creates the health table, registering its series in `registry`.
    pub fn register(config: BreakerConfig, registry: &mut Registry) -> Self {
        let health = Self::new(config);
        registry.register(
            "breaker_state",
            "Each deployment's circuit breaker: 0 closed, 1 half-open, 2 open",
            health.states.clone(),
        );
        registry.register(
            "breaker_transitions",
            "Circuit breaker state changes, by the state entered",
            health.transitions.clone(),
        );
        registry.register(
            "capacity_skips",
            "Times a deployment at its declared capacity (requests or tokens per minute, concurrency) was passed over for the next one",
            health.no_room.clone(),
        );
        registry.register(
            "deployment_rests",
            "Times a deployment was left out of plans because its provider said a rate limit is used up",
            health.rests.clone(),
        );
        health
    }

    /// A health table with no series registered (tests).
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            deployments: RwLock::new(HashMap::new()),
            states: Family::default(),
            transitions: Family::default(),
            rests: Family::default(),
            no_room: Family::default(),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, id: &str) -> Option<Arc<DeploymentHealth>> {
        self.deployments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// The entry of `deployment`, made on its first attempt (when its
    /// breaker's series appears, closed).
    fn entry_or_new(&self, deployment: &Deployment) -> Arc<DeploymentHealth> {
        if let Some(entry) = self.entry(&deployment.id) {
            return entry;
        }
        let mut deployments = self
            .deployments
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(deployments.entry(deployment.id.clone()).or_insert_with(|| {
            if self.config.enabled {
                self.states
                    .get_or_create(&BreakerLabels {
                        deployment: deployment.id.clone(),
                        provider: deployment.provider.clone(),
                    })
                    .set(BreakerState::Closed.gauge());
            }
            Arc::new(DeploymentHealth {
                breaker: Mutex::new(Breaker::new(self.config, Instant::now())),
                ttft_micros: Mutex::new(0.0),
                rested_until: Mutex::new(None),
                first_token: Mutex::new(LatencyWindow::default()),
                total: Mutex::new(LatencyWindow::default()),
                capacity: Mutex::new(None),
            })
        }))
    }

    /// Whether planning may keep `deployment` (see [`Self::unavailable`]).
    pub fn is_available(&self, deployment: &Deployment) -> bool {
        self.unavailable(deployment).is_none()
    }

    /// Why planning must leave `deployment` out now: `provider_limit` while
    /// its provider said its rate limit is used up, `breaker_open` while
    /// its breaker is open (a half-open one with a free probe slot is
    /// kept); `None` when it may be planned.
    pub fn unavailable(&self, deployment: &Deployment) -> Option<&'static str> {
        let entry = self.entry(&deployment.id)?;
        let now = Instant::now();
        if lock(&entry.rested_until).is_some_and(|until| now < until) {
            return Some("provider_limit");
        }
        (self.config.enabled && !lock(&entry.breaker).is_available(now)).then_some("breaker_open")
    }

    /// `deployment`'s capacity, when it or its provider declares one: its
    /// own limits and its provider account's (shared by the provider's
    /// deployments), queueing as it declares, else as the provider does.
    /// The state is kept across snapshots while the declarations stay the
    /// same.
    pub fn capacity(&self, deployment: &Deployment) -> Option<Capacity> {
        let declared = (deployment.capacity, deployment.provider_capacity);
        if declared == (None, None) {
            return None;
        }
        let entry = self.entry_or_new(deployment);
        let mut kept = lock(&entry.capacity);
        if let Some((known, capacity)) = kept.as_ref()
            && *known == declared
        {
            return Some(capacity.clone());
        }
        let mut limits: Vec<Limits> = declared
            .0
            .as_ref()
            .and_then(Limits::of)
            .into_iter()
            .collect();
        if let Some(account) = &declared.1 {
            limits.extend(self.account(&deployment.provider, account));
        }
        let queue = declared.0.or(declared.1).unwrap_or_default();
        let capacity = Capacity::over(limits, &queue)?;
        *kept = Some((declared, capacity.clone()));
        // The series appears with the capacity, at 0.
        let _ = self.no_room.get_or_create(&RestLabels {
            deployment: deployment.id.clone(),
        });
        Some(capacity)
    }

    /// The limits of `provider`'s account as `declared`, shared by all its
    /// deployments; `None` when they limit nothing.
    fn account(&self, provider: &str, declared: &Declared) -> Option<Limits> {
        let mut accounts = lock(&self.accounts);
        if let Some((known, limits)) = accounts.get(provider)
            && known == declared
        {
            return Some(limits.clone());
        }
        let limits = Limits::of(declared)?;
        accounts.insert(provider.to_owned(), (*declared, limits.clone()));
        Some(limits)
    }

    /// Counts that `deployment` was passed over for want of capacity.
    pub fn passed_over(&self, deployment: &Deployment) {
        self.no_room
            .get_or_create(&RestLabels {
                deployment: deployment.id.clone(),
            })
            .inc();
    }

    /// Leaves `deployment` out of plans for `wait` (believed for an hour
    /// at most): its provider said a rate limit is used up until then (its
    /// headers, or a 429's `Retry-After`). Attempts already planned still
    /// go. When the attempt used one of the provider's several keys
    /// (`credential` not empty), the limit is that key's, and resting it is
    /// the adapters' business: the deployment stays.
    pub fn rest(&self, deployment: &Deployment, wait: Duration, credential: &str) {
        if !credential.is_empty() || wait.is_zero() {
            return;
        }
        let wait = wait.min(MOST_REST);
        let until = Instant::now() + wait;
        let entry = self.entry_or_new(deployment);
        let mut rested = lock(&entry.rested_until);
        if rested.is_none_or(|earlier| earlier < until) {
            if rested.is_none_or(|earlier| earlier <= Instant::now()) {
                self.rests
                    .get_or_create(&RestLabels {
                        deployment: deployment.id.clone(),
                    })
                    .inc();
            }
            tracing::info!(
                deployment = %deployment.id,
                wait_ms = wait.as_millis(),
                "the provider's rate limit is used up; the deployment rests until it resets"
            );
            *rested = Some(until);
        }
    }

    /// Asks `deployment`'s breaker to admit an attempt now; `None` when it
    /// refuses.
    pub fn admit(&self, deployment: &Deployment) -> Option<Ticket> {
        if !self.config.enabled {
            return Some(Ticket(Admission::Pass));
        }
        let entry = self.entry_or_new(deployment);
        let (admission, changed) = lock(&entry.breaker).admit(Instant::now());
        if let Some(state) = changed {
            self.changed(deployment, state);
        }
        (admission != Admission::Refuse).then_some(Ticket(admission))
    }

    /// Records how an admitted attempt at `deployment` ended: its time to
    /// first message when it answered, else its error class.
    pub fn record(
        &self,
        deployment: &Deployment,
        ticket: Ticket,
        outcome: Result<Duration, ErrorClass>,
    ) {
        let entry = self.entry_or_new(deployment);
        if let Ok(first_message) = outcome {
            lock(&entry.first_token).record(Instant::now(), first_message);
            let micros = first_message.as_secs_f64() * 1e6;
            let mut average = lock(&entry.ttft_micros);
            *average = if *average == 0.0 {
                micros
            } else {
                *average + LATENCY_SMOOTHING * (micros - *average)
            };
        }
        if !self.config.enabled {
            return;
        }
        let changed = lock(&entry.breaker).record(ticket.0, outcome.err(), Instant::now());
        if let Some(state) = changed {
            self.changed(deployment, state);
        }
    }

    /// Records how long a whole answer from `deployment` took.
    pub fn record_total(&self, deployment: &Deployment, took: Duration) {
        let entry = self.entry_or_new(deployment);
        lock(&entry.total).record(Instant::now(), took);
    }

    /// The recent p95 time to first message of `deployment`; `None` until
    /// it has answered enough lately.
    pub fn first_token_p95(&self, deployment: &Deployment) -> Option<Duration> {
        lock(&self.entry(&deployment.id)?.first_token).percentile(Instant::now(), 0.95)
    }

    /// The recent p95 of whole answers from `deployment`; `None` until it
    /// has answered enough lately.
    pub fn total_p95(&self, deployment: &Deployment) -> Option<Duration> {
        lock(&self.entry(&deployment.id)?.total).percentile(Instant::now(), 0.95)
    }

    /// The expected time to first token of `deployment`; `None` before
    /// it has answered here.
    pub fn expected_ttft(&self, deployment: &Deployment) -> Option<Duration> {
        let micros = *lock(&self.entry(&deployment.id)?.ttft_micros);
        (micros > 0.0).then(|| Duration::from_secs_f64(micros / 1e6))
    }

    /// Logs and exports a breaker's change of state.
    fn changed(&self, deployment: &Deployment, state: BreakerState) {
        match state {
            BreakerState::Open => tracing::warn!(
                deployment = %deployment.id,
                provider = %deployment.provider,
                "circuit breaker opened: the deployment gets no requests until it is probed"
            ),
            _ => tracing::info!(
                deployment = %deployment.id,
                provider = %deployment.provider,
                to = state.as_str(),
                "circuit breaker changed state"
            ),
        }
        let labels = BreakerLabels {
            deployment: deployment.id.clone(),
            provider: deployment.provider.clone(),
        };
        self.states.get_or_create(&labels).set(state.gauge());
        self.transitions
            .get_or_create(&TransitionLabels {
                deployment: labels.deployment,
                provider: labels.provider,
                to: state.as_str(),
            })
            .inc();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each holds counters only; a panic cannot leave them half-written in a
    // way that matters more than losing the request that panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
