//! Active health probes ("heartbeats"): a deployment with `probe.every`
//! set gets a cheap request that often (one short user message, at most
//! one output token) even without traffic. Its outcome and time to first
//! token feed the deployment's health like any attempt's (an open breaker
//! lets it through as its half-open probe), and it is counted as usage
//! like any other request: route `probe`, key `switchyard-probe`, tag
//! `probe=<deployment>`. Off unless a deployment asks for it; each router
//! replica probes on its own.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use switchyard_common::{ErrorClass, ServiceError, snapshot::SnapshotHandle, trace::HopSpan};
use switchyard_proto::v1::{
    ChatRequest, ContentPart, Deployment, Message, RequestContext, Role, content_part::Part,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    RouteTable,
    attempt::{Adapters, open_record},
    health::Health,
    settle::{Settlement, Settler, unix_millis},
};

/// How often the prober looks for deployments due a probe.
const TICK: Duration = Duration::from_millis(100);
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The key probes are counted under.
pub const PROBE_KEY: &str = "switchyard-probe";

/// What probing needs.
pub struct Prober {
    /// The router's snapshot.
    pub routes: SnapshotHandle<RouteTable>,
    /// Where probes go.
    pub adapters: Adapters,
    /// Records them.
    pub settler: Settler,
    /// What they feed.
    pub health: Arc<Health>,
}

impl Prober {
    /// Probes every deployment that asks for it, on `tasks`, until
    /// `shutdown`.
    pub fn spawn(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        // Probes settle like requests: on the settler's tracker, which the
        // usage batcher waits for before its last flush.
        let probes = self.settler.tasks().clone();
        // Tracked: lives as long as the router, stops on shutdown.
        tasks.spawn(async move {
            let mut last: HashMap<String, Instant> = HashMap::new();
            let mut ticker = tokio::time::interval(TICK);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let Some(table) = self.routes.load() else {
                    continue;
                };
                let now = Instant::now();
                for deployment in table.probed() {
                    let every = Duration::from_millis(deployment.probe_every_ms);
                    if last
                        .get(&deployment.id)
                        .is_some_and(|at| now.duration_since(*at) < every)
                    {
                        continue;
                    }
                    last.insert(deployment.id.clone(), now);
                    let probe = probe(
                        Arc::clone(deployment),
                        self.adapters.clone(),
                        self.settler.clone(),
                        Arc::clone(&self.health),
                        table.version,
                    );
                    // Tracked: shutdown waits for a probe in flight (10 s at most).
                    probes.spawn(probe);
                }
            }
        });
    }
}

/// The probe request: one short message, one token of output.
fn probe_request(deployment: &Deployment) -> ChatRequest {
    ChatRequest {
        model: deployment.upstream_model.clone(),
        messages: vec![Message {
            role: Role::User as i32,
            content: vec![ContentPart {
                part: Some(Part::Text("ping".to_owned())),
            }],
            content_is_text: true,
            ..Message::default()
        }],
        max_tokens: Some(1),
        ..ChatRequest::default()
    }
}

/// Sends one probe to `deployment`, reports it to `health` and settles it.
async fn probe(
    deployment: Arc<Deployment>,
    adapters: Adapters,
    settler: Settler,
    health: Arc<Health>,
    snapshot_version: u64,
) {
    // An open breaker within its cooldown refuses: nothing is sent.
    let Some(ticket) = health.admit(&deployment) else {
        return;
    };
    let started = Instant::now();
    let deadline = std::time::SystemTime::now() + PROBE_TIMEOUT;
    let context = RequestContext {
        request_id: uuid::Uuid::now_v7().to_string(),
        key_id: PROBE_KEY.to_owned(),
        deadline_unix_ms: deadline
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            }),
        ..RequestContext::default()
    };
    let (mut record, sent) = open_record(&context, &HopSpan::none(), &deployment, 0, "probe");
    let outcome = async {
        let open = adapters
            .open_chat(sent, &deployment, probe_request(&deployment), None)
            .await?;
        let first_message = started.elapsed();
        let mut rest = futures::stream::iter([Ok(open.first)]).chain(open.rest);
        while let Some(message) = rest.next().await {
            let message = message.map_err(|status| ServiceError::from_status(&status))?;
            if let Some(usage) = message.chunk.and_then(|chunk| chunk.usage) {
                record.usage = usage;
            }
            record.upstream = message.upstream.or(record.upstream);
        }
        Ok::<Duration, ServiceError>(first_message)
    }
    .await;
    let error_class = match outcome {
        Ok(first_message) => {
            health.record(&deployment, ticket, Ok(first_message));
            record.first_chunk_at = Some(started + first_message);
            record.ended = Some(Instant::now());
            None
        }
        Err(error) => {
            health.record(&deployment, ticket, Err(error.class));
            record.fail(error.class);
            Some(error.class)
        }
    };
    if error_class.is_some_and(|class| class != ErrorClass::Cancelled) {
        tracing::info!(deployment = %deployment.id, class = ?error_class, "health probe failed");
    }
    let settlement = Settlement {
        context,
        route: "probe".to_owned(),
        snapshot_version,
        tags: [("probe".to_owned(), deployment.id.clone())].into(),
        operation: "chat",
        stream: false,
        cache_hit: false,
        first_chunk_at: record.first_chunk_at,
        attempts: vec![record],
        error_class,
        started,
        ended: Instant::now(),
        created_at_unix_ms: unix_millis(),
        decision: None,
        span: HopSpan::none(),
        cut_short: None,
    };
    settler.settle(settlement, None);
}
