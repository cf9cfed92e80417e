//! One request's journey, as the stream the caller reads: cache lookup,
//! attempts over the route's targets, chunks forwarded as they arrive; then,
//! when the stream ends or the caller drops it, the usage event and the
//! cache store.
//!
//! The stream is driven by whoever reads it (the edge's response body), so a
//! request costs no task of its own and no channel hop per chunk.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use switchyard_common::{ErrorClass, GrpcChannel, ServiceError, direct::ResponseStream};
use switchyard_proto::v1::{
    AdapterChatResponse, CachedResponse, ChatChunk, ChatRequest, LookupRequest, RequestContext,
    RouteDecision, RouterChatResponse, StoreRequest, Usage, UsageEvent,
    cache_service_client::CacheServiceClient,
};
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::{
    attempt::{Adapters, OpenAttempt, try_targets},
    cache_key::{cache_key, cache_namespace},
    pricing::cost_of,
    route_table::Route,
    usage::UsageEmitter,
};

/// Everything one request needs.
pub struct Exchange {
    pub context: RequestContext,
    pub chat: ChatRequest,
    pub route: Arc<Route>,
    pub adapters: Adapters,
    pub cache: CacheServiceClient<GrpcChannel>,
    pub cache_lookup_timeout: Duration,
    pub usage: UsageEmitter,
    /// Tracks the cache store that follows a completed response.
    pub tasks: TaskTracker,
}

/// Where the cache entry of a cacheable request lives.
struct CacheSlot {
    namespace: String,
    key: String,
    ttl: Duration,
}

/// What happened, for the usage event.
#[derive(Default)]
struct Outcome {
    provider: String,
    upstream_model: String,
    usage: Usage,
    cache_hit: bool,
    stream: bool,
    error_class: Option<ErrorClass>,
    first_chunk_at: Option<Instant>,
    /// The response reached its end (not cut off by an error or the caller).
    completed: bool,
}

/// Where the stream is.
enum Phase {
    /// Nothing sent yet: look up the cache, then open an attempt.
    Start,
    /// Replaying a cached response.
    Replaying(std::vec::IntoIter<ChatChunk>),
    /// Forwarding an attempt; `first` is its first message, not yet sent.
    Forwarding {
        first: Option<AdapterChatResponse>,
        rest: ResponseStream<AdapterChatResponse>,
    },
    /// Ended.
    Done,
}

/// The state carried from one stream item to the next. Dropping it (at the
/// end, or when the caller goes away) settles usage and the cache.
struct Journey {
    exchange: Exchange,
    outcome: Outcome,
    slot: Option<CacheSlot>,
    /// Chunks kept for the cache, when the request is cacheable.
    kept: Option<Vec<ChatChunk>>,
    route: Option<RouteDecision>,
    started: Instant,
    created_at_unix_ms: u64,
}

impl Exchange {
    /// Returns the response stream; nothing happens until it is polled.
    pub fn into_stream(self) -> ResponseStream<RouterChatResponse> {
        let journey = Journey {
            outcome: Outcome {
                stream: self.chat.stream,
                ..Outcome::default()
            },
            slot: self.cache_slot(),
            kept: None,
            route: None,
            started: Instant::now(),
            created_at_unix_ms: unix_millis(),
            exchange: self,
        };
        futures::stream::unfold((journey, Phase::Start), |(mut journey, phase)| async move {
            let (item, phase) = journey.advance(phase).await?;
            Some((item, (journey, phase)))
        })
        .boxed()
    }

    fn cache_slot(&self) -> Option<CacheSlot> {
        let ttl = self.route.cache_ttl?;
        let bypass = self.context.cache_mode == switchyard_proto::v1::CacheMode::Bypass as i32;
        if bypass || self.chat.n.unwrap_or(1) > 1 {
            return None;
        }
        Some(CacheSlot {
            namespace: cache_namespace(&self.context),
            key: cache_key(&self.chat),
            ttl,
        })
    }

    async fn lookup(&mut self, slot: &CacheSlot) -> Option<CachedResponse> {
        let lookup = self.cache.lookup(LookupRequest {
            namespace: slot.namespace.clone(),
            key: slot.key.clone(),
        });
        match tokio::time::timeout(self.cache_lookup_timeout, lookup).await {
            Ok(Ok(response)) => response.into_inner().response,
            Ok(Err(status)) => {
                tracing::warn!(code = ?status.code(), "cache lookup failed; going upstream");
                None
            }
            Err(_elapsed) => {
                tracing::warn!("cache lookup timed out; going upstream");
                None
            }
        }
    }
}

impl Journey {
    /// Produces the next item and the phase after it; `None` ends the stream.
    async fn advance(
        &mut self,
        mut phase: Phase,
    ) -> Option<(Result<RouterChatResponse, Status>, Phase)> {
        loop {
            match phase {
                Phase::Start => phase = Box::pin(self.start()).await,
                Phase::Replaying(mut chunks) => {
                    let Some(chunk) = chunks.next() else {
                        self.outcome.completed = true;
                        return None;
                    };
                    return Some((Ok(self.message(chunk)), Phase::Replaying(chunks)));
                }
                Phase::Forwarding {
                    mut first,
                    mut rest,
                } => {
                    let message = match first.take() {
                        Some(message) => Some(Ok(message)),
                        None => rest.next().await,
                    };
                    match message {
                        Some(Ok(message)) => {
                            let Some(chunk) = message.chunk else {
                                phase = Phase::Forwarding { first, rest };
                                continue;
                            };
                            if let Some(kept) = self.kept.as_mut() {
                                kept.push(chunk.clone());
                            }
                            let item = Ok(self.message(chunk));
                            return Some((item, Phase::Forwarding { first, rest }));
                        }
                        None => {
                            self.outcome.completed = true;
                            return None;
                        }
                        Some(Err(status)) => {
                            let error = ServiceError::from_status(&status);
                            self.outcome.error_class = Some(error.class);
                            return Some((Err(error.to_status()), Phase::Done));
                        }
                    }
                }
                Phase::Done => return None,
            }
        }
    }

    /// Looks up the cache, else opens the first target that answers.
    async fn start(&mut self) -> Phase {
        if let Some(slot) = &self.slot
            && let Some(cached) = self.exchange.lookup(slot).await
        {
            self.outcome.cache_hit = true;
            self.route = Some(RouteDecision {
                model: self.exchange.route.model.clone(),
                provider: String::new(),
                upstream_model: String::new(),
                cache_hit: true,
            });
            return Phase::Replaying(cached.chunks.into_iter());
        }
        match self.exchange.open_first_target().await {
            Ok((provider, upstream_model, OpenAttempt { first, rest })) => {
                self.route = Some(RouteDecision {
                    model: self.exchange.route.model.clone(),
                    provider: provider.clone(),
                    upstream_model: upstream_model.clone(),
                    cache_hit: false,
                });
                self.outcome.provider = provider;
                self.outcome.upstream_model = upstream_model;
                self.kept = self.slot.is_some().then(Vec::new);
                Phase::Forwarding {
                    first: Some(first),
                    rest,
                }
            }
            Err(error) => {
                self.outcome.error_class = Some(error.class);
                // The error is the stream's only item.
                Phase::Forwarding {
                    first: None,
                    rest: futures::stream::once(async move { Err(error.to_status()) }).boxed(),
                }
            }
        }
    }

    /// Wraps a chunk, with the route decision on the first message.
    fn message(&mut self, chunk: ChatChunk) -> RouterChatResponse {
        self.outcome.first_chunk_at.get_or_insert_with(Instant::now);
        if let Some(usage) = &chunk.usage {
            self.outcome.usage = *usage;
        }
        RouterChatResponse {
            route: self.route.take(),
            chunk: Some(chunk),
        }
    }
}

impl Drop for Journey {
    fn drop(&mut self) {
        let mut outcome = std::mem::take(&mut self.outcome);
        if !outcome.completed && outcome.error_class.is_none() {
            // Dropped before the end: the caller went away. Tokens the
            // provider reports only at the end are unknown, so none are
            // claimed; the class says the record is partial.
            outcome.error_class = Some(ErrorClass::Cancelled);
        }
        let completed = outcome.completed && !outcome.cache_hit;
        // Only whole answers are cached: something was said and it ended.
        let kept = self
            .kept
            .take()
            .filter(|chunks| chunks.iter().any(|chunk| chunk.finish_reason != 0));
        if completed && let (Some(slot), Some(chunks)) = (self.slot.take(), kept) {
            let mut cache = self.exchange.cache.clone();
            // Tracked: stores the completed response after the caller has it.
            self.exchange.tasks.spawn(async move {
                store(&mut cache, slot, chunks).await;
            });
        }
        self.exchange
            .emit_usage(outcome, self.started, self.created_at_unix_ms);
    }
}

impl Exchange {
    /// Tries the route's targets in order; moves on only after a retryable
    /// failure that happened before any output.
    async fn open_first_target(&mut self) -> Result<(String, String, OpenAttempt), ServiceError> {
        let route = Arc::clone(&self.route);
        let (chat, adapters, context) = (&mut self.chat, &self.adapters, &self.context);
        let (target, attempt) = try_targets(&route.targets, move |target, is_last| {
            let mut request = if is_last {
                std::mem::take(chat)
            } else {
                chat.clone()
            };
            request.model.clone_from(&target.upstream_model);
            adapters.open(context.clone(), target.clone(), request)
        })
        .await?;
        Ok((
            target.provider.clone(),
            target.upstream_model.clone(),
            attempt,
        ))
    }
}

async fn store(
    cache: &mut CacheServiceClient<GrpcChannel>,
    slot: CacheSlot,
    chunks: Vec<ChatChunk>,
) {
    let request = StoreRequest {
        namespace: slot.namespace,
        key: slot.key,
        response: Some(CachedResponse {
            chunks,
            stored_at_unix_ms: unix_millis(),
        }),
        ttl_ms: u64::try_from(slot.ttl.as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(status) = cache.store(request).await {
        tracing::warn!(code = ?status.code(), "cache store failed");
    }
}

impl Exchange {
    fn emit_usage(&self, outcome: Outcome, started: Instant, created_at_unix_ms: u64) {
        let cost = if outcome.cache_hit {
            None
        } else {
            cost_of(
                &outcome.usage,
                self.route.input_price_per_million.as_ref(),
                self.route.output_price_per_million.as_ref(),
            )
        };
        let event = UsageEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            request_id: self.context.request_id.clone(),
            key_id: self.context.key_id.clone(),
            team_id: self.context.team_id.clone(),
            end_user: self.context.end_user.clone(),
            model: self.route.model.clone(),
            provider: outcome.provider,
            upstream_model: outcome.upstream_model,
            usage: Some(outcome.usage),
            cost,
            cache_hit: outcome.cache_hit,
            stream: outcome.stream,
            error_class: outcome
                .error_class
                .map_or(0, |class| class.to_proto() as i32),
            latency_ms: millis(started.elapsed()),
            ttft_ms: outcome
                .first_chunk_at
                .map_or(0, |at| millis(at.duration_since(started))),
            created_at_unix_ms,
        };
        self.usage.emit(event);
    }
}

/// Whole milliseconds of `duration`, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}
