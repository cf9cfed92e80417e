//! One request's journey: cache lookup, attempts over the route's targets,
//! forwarding chunks, then cache store and usage event.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use switchyard_common::{ErrorClass, GrpcChannel, ServiceError};
use switchyard_proto::v1::{
    CachedResponse, ChatChunk, ChatRequest, LookupRequest, RequestContext, RouteDecision,
    RouterChatResponse, StoreRequest, Usage, UsageEvent, cache_service_client::CacheServiceClient,
};
use tokio::sync::mpsc;
use tonic::Status;

use crate::{
    attempt::{Adapters, OpenAttempt, try_targets},
    cache_key::{cache_key, cache_namespace},
    pricing::cost_of,
    route_table::Route,
    usage::UsageEmitter,
};

type Sender = mpsc::Sender<Result<RouterChatResponse, Status>>;

/// Everything one request needs, moved into its task.
pub struct Exchange {
    pub context: RequestContext,
    pub chat: ChatRequest,
    pub route: Arc<Route>,
    pub adapters: Adapters,
    pub cache: CacheServiceClient<GrpcChannel>,
    pub cache_lookup_timeout: Duration,
    pub usage: UsageEmitter,
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
}

impl Exchange {
    /// Serves the request into `sender` and records its usage.
    pub async fn run(mut self, sender: Sender) {
        let started = Instant::now();
        let created_at_unix_ms = unix_millis();
        let slot = self.cache_slot();
        let mut outcome = Outcome {
            stream: self.chat.stream,
            ..Outcome::default()
        };

        // Each phase is boxed so the task only holds the one that is running:
        // with thousands of open streams, task size is memory.
        let cached = match &slot {
            Some(slot) => Box::pin(self.lookup(slot)).await,
            None => None,
        };
        let to_store = match cached {
            Some(cached) => {
                Box::pin(self.replay(cached, &sender, &mut outcome)).await;
                None
            }
            None => Box::pin(self.forward(&sender, slot.is_some(), &mut outcome)).await,
        };
        // The caller has everything once the sender is gone; settle afterwards.
        drop(sender);
        if let (Some(slot), Some(chunks)) = (slot, to_store) {
            Box::pin(self.store(slot, chunks)).await;
        }
        self.emit_usage(outcome, started, created_at_unix_ms);
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

    async fn replay(&self, cached: CachedResponse, sender: &Sender, outcome: &mut Outcome) {
        outcome.cache_hit = true;
        let mut route = Some(RouteDecision {
            model: self.route.model.clone(),
            provider: String::new(),
            upstream_model: String::new(),
            cache_hit: true,
        });
        for chunk in cached.chunks {
            if let Some(usage) = &chunk.usage {
                outcome.usage = *usage;
            }
            outcome.first_chunk_at.get_or_insert_with(Instant::now);
            let message = RouterChatResponse {
                route: route.take(),
                chunk: Some(chunk),
            };
            if sender.send(Ok(message)).await.is_err() {
                return;
            }
        }
    }

    /// Runs attempts until one produces output, forwards it, and returns the
    /// chunks to cache when the response completed and `keep` is set.
    async fn forward(
        &mut self,
        sender: &Sender,
        keep: bool,
        outcome: &mut Outcome,
    ) -> Option<Vec<ChatChunk>> {
        let (target_provider, target_model, attempt) = match Box::pin(self.open_first_target()).await {
            Ok(opened) => opened,
            Err(error) => {
                outcome.error_class = Some(error.class);
                // A closed receiver means the caller left; nothing to tell.
                let _ = sender.send(Err(error.to_status())).await;
                return None;
            }
        };
        outcome.provider = target_provider.clone();
        outcome.upstream_model = target_model.clone();
        let OpenAttempt { first, mut rest } = attempt;
        let mut kept = keep.then(Vec::new);
        let mut route = Some(RouteDecision {
            model: self.route.model.clone(),
            provider: target_provider,
            upstream_model: target_model,
            cache_hit: false,
        });
        let mut next = Some(first);
        loop {
            let Some(message) = next.take() else {
                match rest.next().await {
                    Some(Ok(message)) => {
                        next = Some(message);
                        continue;
                    }
                    None => return kept,
                    Some(Err(status)) => {
                        let error = ServiceError::from_status(&status);
                        outcome.error_class = Some(error.class);
                        let _ = sender.send(Err(error.to_status())).await;
                        return None;
                    }
                }
            };
            let Some(chunk) = message.chunk else {
                continue;
            };
            outcome.first_chunk_at.get_or_insert_with(Instant::now);
            if let Some(usage) = &chunk.usage {
                outcome.usage = *usage;
            }
            if let Some(kept) = kept.as_mut() {
                kept.push(chunk.clone());
            }
            let message = RouterChatResponse {
                route: route.take(),
                chunk: Some(chunk),
            };
            if sender.send(Ok(message)).await.is_err() {
                // The caller went away: dropping `rest` cancels the attempt.
                return None;
            }
        }
    }

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

    async fn store(&mut self, slot: CacheSlot, chunks: Vec<ChatChunk>) {
        let request = StoreRequest {
            namespace: slot.namespace,
            key: slot.key,
            response: Some(CachedResponse {
                chunks,
                stored_at_unix_ms: unix_millis(),
            }),
            ttl_ms: u64::try_from(slot.ttl.as_millis()).unwrap_or(u64::MAX),
        };
        if let Err(status) = self.cache.store(request).await {
            tracing::warn!(code = ?status.code(), "cache store failed");
        }
    }

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

