//! `forward`: one chat request as the stream the caller reads: cache lookup,
//! attempts over the plan's candidates, chunks forwarded as they arrive;
//! then, when the stream ends or the caller drops it, `settle`.
//!
//! The stream is driven by whoever reads it (the edge's response body), so a
//! request costs no task of its own and no channel hop per chunk.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use switchyard_common::{ErrorClass, ServiceError, client::ResponseStream, trace::HopSpan};
use switchyard_proto::v1::{
    AdapterChatResponse, CacheMode, CacheQuery, CachedResponse, ChatChunk, ChatRequest,
    LookupRequest, Money, RequestContext, RouteDecision, RouterChatResponse, Usage,
};
use tonic::Status;

use crate::{
    attempt::{Adapters, AttemptRecord, OpenAttempt, request_cost, try_in_order, upstream_timing},
    decision::route_decision,
    health::Health,
    plan::Plan,
    settle::{CacheEntry, CutShort, Settlement, Settler, unix_millis},
    shadow::{Copy, Shadow},
};

/// Everything one chat request needs.
pub struct Exchange {
    /// Who asks.
    pub context: RequestContext,
    /// What they ask.
    pub chat: ChatRequest,
    /// Where it may go.
    pub plan: Plan,
    /// The adapters.
    pub adapters: Adapters,
    /// Records the outcome.
    pub settler: Settler,
    /// How the cache may be used.
    pub cache: CacheLimits,
    /// What the router has seen of each deployment.
    pub health: Arc<Health>,
    /// The request's span at the router.
    pub span: HopSpan,
}

/// How long the router waits for the cache, and how much it keeps for it.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// How long a cache lookup may take before the request goes upstream.
    pub lookup_timeout: Duration,
    /// Largest answer kept for the cache, in encoded bytes.
    pub max_answer_bytes: usize,
}

/// Where the stream is.
#[expect(
    clippy::large_enum_variant,
    reason = "one phase per request, moved only between polls; boxing the first message would add an allocation per request"
)]
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
/// end, or when the caller goes away) settles the request.
struct Journey {
    exchange: Exchange,
    /// The cache query of a cacheable request.
    query: Option<CacheQuery>,
    /// Chunks kept for the cache, when the request is cacheable and the
    /// answer so far fits [`CacheLimits::max_answer_bytes`].
    kept: Option<Vec<ChatChunk>>,
    /// Encoded bytes of the chunks kept.
    kept_bytes: usize,
    route: Option<RouteDecision>,
    attempts: Vec<AttemptRecord>,
    cache_hit: bool,
    error_class: Option<ErrorClass>,
    first_chunk_at: Option<Instant>,
    /// The response reached its end (not cut off by an error or the caller).
    completed: bool,
    /// The copy of the request sent as shadow traffic, while it runs.
    shadow: Option<Shadow>,
    /// The text answered so far (content, refusal, tool call arguments):
    /// counted when the caller leaves before the provider reported usage.
    streamed: String,
    /// Whether the client asked for a stream, and its tags: kept apart
    /// because the request itself moves into the last attempt.
    stream: bool,
    tags: std::collections::BTreeMap<String, String>,
    started: Instant,
    created_at_unix_ms: u64,
}

impl Exchange {
    /// Returns the response stream; nothing happens until it is polled.
    pub fn into_stream(self) -> ResponseStream<RouterChatResponse> {
        let journey = Journey {
            query: self.cache_query(),
            kept: None,
            kept_bytes: 0,
            route: None,
            attempts: Vec::with_capacity(1),
            cache_hit: false,
            error_class: None,
            first_chunk_at: None,
            completed: false,
            shadow: None,
            streamed: String::new(),
            stream: self.chat.stream,
            tags: self.chat.metadata.clone(),
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

    /// The cache query, when the route caches and the request may use it.
    fn cache_query(&self) -> Option<CacheQuery> {
        self.plan.route.cache_ttl?;
        let bypass = self.context.cache_mode == CacheMode::Bypass as i32;
        if bypass || self.chat.n.unwrap_or(1) > 1 {
            return None;
        }
        Some(CacheQuery {
            namespace: cache_namespace(&self.context),
            request: Some(normalized(&self.chat)),
            route: self.plan.route.name.clone(),
        })
    }

    async fn lookup(&self, query: &CacheQuery) -> Option<CachedResponse> {
        let lookup = self.settler.cache().lookup(LookupRequest {
            context: Some(self.context.clone()),
            query: Some(query.clone()),
        });
        match tokio::time::timeout(self.cache.lookup_timeout, lookup).await {
            Ok(Ok(response)) => response.response,
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

/// The request as far as its answer goes: transport choices (`stream`,
/// `include_usage`) and accounting labels (`user`, `metadata`) are cleared,
/// so a streamed and a non-streamed ask of the same question share an entry.
pub(crate) fn normalized(request: &ChatRequest) -> ChatRequest {
    let mut semantic = request.clone();
    semantic.stream = false;
    semantic.include_usage = false;
    semantic.user.clear();
    semantic.metadata.clear();
    semantic
}

/// The tenant namespace of a request: its team, or its key when the key has
/// no team. Entries never cross namespaces.
pub(crate) fn cache_namespace(context: &RequestContext) -> String {
    if context.team_id.is_empty() {
        format!("key:{}", context.key_id)
    } else {
        format!("team:{}", context.team_id)
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
                        self.completed = true;
                        return Some((Ok(self.last_message()), Phase::Done));
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
                                if let Some(answering) = self.attempts.last_mut() {
                                    answering.upstream = message.upstream.or(answering.upstream);
                                    self.exchange.health.rest(
                                        &answering.deployment,
                                        Duration::from_millis(message.provider_exhausted_ms),
                                        &message.credential,
                                    );
                                    if !message.credential.is_empty() {
                                        answering.credential = message.credential;
                                    }
                                }
                                phase = Phase::Forwarding { first, rest };
                                continue;
                            };
                            self.keep_for_cache(&chunk);
                            let item = Ok(self.message(chunk));
                            return Some((item, Phase::Forwarding { first, rest }));
                        }
                        None => {
                            self.completed = true;
                            return Some((Ok(self.last_message()), Phase::Done));
                        }
                        Some(Err(status)) => {
                            let error = ServiceError::from_status(&status);
                            if let (Some(answering), Some(credential)) =
                                (self.attempts.last_mut(), error.credential.as_deref())
                            {
                                credential.clone_into(&mut answering.credential);
                            }
                            self.fail(error.class);
                            return Some((Err(error.to_status()), Phase::Done));
                        }
                    }
                }
                Phase::Done => return None,
            }
        }
    }

    /// Keeps a copy of `chunk` for the cache, unless the answer has grown
    /// past the cache's limit: then it is passed on but not cached, and
    /// nothing more is held for it.
    fn keep_for_cache(&mut self, chunk: &ChatChunk) {
        let Some(kept) = self.kept.as_mut() else {
            return;
        };
        self.kept_bytes += prost::Message::encoded_len(chunk);
        if self.kept_bytes > self.exchange.cache.max_answer_bytes {
            self.kept = None;
        } else {
            kept.push(chunk.clone());
        }
    }

    /// Looks up the cache, else opens the first deployment that answers.
    async fn start(&mut self) -> Phase {
        let cached = match &self.query {
            Some(query) => {
                let cached = self.exchange.lookup(query).await;
                self.exchange
                    .settler
                    .metrics()
                    .cache_lookup(&query.route, cached.is_some());
                cached
            }
            None => None,
        };
        if let Some(cached) = cached {
            self.cache_hit = true;
            self.route = Some(RouteDecision {
                model: self.exchange.plan.route.name.clone(),
                cache_hit: true,
                ..RouteDecision::default()
            });
            return Phase::Replaying(cached.chunks.into_iter());
        }
        if let Some(deployment) = self.exchange.plan.shadow.take() {
            let exchange = &self.exchange;
            let tokens = exchange.plan.estimated_tokens;
            // A copy takes its share of the shadow deployment's capacity;
            // without room, the request goes without a copy.
            let permit = exchange
                .health
                .capacity(&deployment)
                .map(|capacity| capacity.reserve_now(tokens));
            if !matches!(permit, Some(None)) {
                let copy = Copy {
                    context: &exchange.context,
                    parent: &exchange.span,
                    timeouts: exchange.plan.route.timeouts.for_attempt(&deployment),
                    deployment,
                    request: exchange.chat.clone(),
                    permit: permit.flatten(),
                };
                self.shadow = Some(Shadow::start(
                    copy,
                    &exchange.adapters,
                    exchange.settler.tasks(),
                ));
            }
        }
        match self.open_first_deployment().await {
            Ok(OpenAttempt { first, rest }) => {
                self.kept = self.query.is_some().then(Vec::new);
                Phase::Forwarding {
                    first: Some(first),
                    rest,
                }
            }
            Err(error) => {
                self.error_class = Some(error.class);
                let error =
                    error.with_upstream_micros(upstream_timing(&self.attempts).total_micros);
                // The error is the stream's only item.
                Phase::Forwarding {
                    first: None,
                    rest: futures::stream::once(async move { Err(error.to_status()) }).boxed(),
                }
            }
        }
    }

    /// Tries the plan's candidates in order; moves on only after a retryable
    /// failure that happened before any output.
    async fn open_first_deployment(&mut self) -> Result<OpenAttempt, ServiceError> {
        // A stream's request is kept for counting its prompt should the
        // client leave early (streams are where clients do); otherwise the
        // last attempt takes it rather than a copy.
        let keep_request = self.stream;
        let Journey {
            exchange, attempts, ..
        } = self;
        let Exchange {
            context,
            chat,
            plan,
            adapters,
            health,
            span,
            ..
        } = exchange;
        let timeouts = plan.route.timeouts;
        let open = try_in_order(
            context,
            span,
            plan,
            health,
            attempts,
            |deployment, is_last, context| {
                let request = if is_last && !keep_request {
                    std::mem::take(chat)
                } else {
                    chat.clone()
                };
                let adapters = adapters.clone();
                let timeouts = timeouts.for_attempt(&deployment);
                async move {
                    adapters
                        .open_chat(context, &deployment, request, timeouts)
                        .await
                }
            },
        )
        .await?;
        self.route = route_decision(
            &self.exchange.plan.route.name,
            Some(&self.exchange.plan.decision),
            &self.attempts,
            self.exchange.context.debug,
            self.exchange.settler.metrics(),
        );
        Ok(open)
    }

    /// Wraps a chunk, with the route decision on the first message, and
    /// the request's cost on the one carrying the answer's usage.
    fn message(&mut self, chunk: ChatChunk) -> RouterChatResponse {
        self.first_chunk_at.get_or_insert_with(Instant::now);
        if !self.cache_hit {
            self.streamed.push_str(&chunk.content);
            self.streamed.push_str(&chunk.refusal);
            for call in &chunk.tool_calls {
                self.streamed.push_str(&call.name);
                self.streamed.push_str(&call.arguments);
            }
        }
        let mut cost = None;
        if let Some(usage) = &chunk.usage
            && let Some(answering) = self.attempts.last_mut()
        {
            answering.usage = *usage;
            cost = self.cost();
        }
        RouterChatResponse {
            route: self.route.take(),
            chunk: Some(chunk),
            upstream: None,
            cost,
        }
    }

    /// The message that ends a whole answer: the time spent at providers
    /// (none for a cache hit), what the request cost, and the route
    /// decision if no chunk took it.
    fn last_message(&mut self) -> RouterChatResponse {
        RouterChatResponse {
            route: self.route.take(),
            chunk: None,
            upstream: Some(upstream_timing(&self.attempts)),
            cost: self.cost(),
        }
    }

    /// What the request has cost so far: nothing for a cached answer.
    fn cost(&self) -> Option<Money> {
        if self.cache_hit {
            return Some(Money {
                nanos: 0,
                currency: "USD".to_owned(),
            });
        }
        request_cost(&self.attempts)
    }

    /// Records that the answering attempt (and so the request) failed.
    fn fail(&mut self, class: ErrorClass) {
        self.error_class = Some(class);
        if let Some(answering) = self.attempts.last_mut()
            && answering.ended.is_none()
        {
            answering.fail(class);
        }
    }
}

impl Drop for Journey {
    fn drop(&mut self) {
        let mut cut_short = None;
        if !self.completed && self.error_class.is_none() {
            // Dropped before the end: the caller went away. The provider
            // still charges for what it read and wrote: when it has not
            // reported usage yet, settling counts the prompt and the text
            // streamed so far.
            if self.attempts.last().is_some_and(|answering| {
                answering.outcome.is_none() && answering.usage == Usage::default()
            }) {
                let request = std::mem::take(&mut self.exchange.chat);
                cut_short = Some(CutShort {
                    request: (!request.messages.is_empty()).then_some(request),
                    prompt_tokens: self.exchange.plan.prompt_tokens,
                    streamed: std::mem::take(&mut self.streamed),
                });
            }
            self.fail(ErrorClass::Cancelled);
        }
        if let Some(answering) = self.attempts.last_mut() {
            answering.ended.get_or_insert_with(Instant::now);
            // The provider's own time, as the adapters measured it: not how
            // slowly the client read.
            if let (true, None, Some(upstream)) =
                (self.completed, answering.outcome, answering.upstream)
            {
                self.exchange.health.record_total(
                    &answering.deployment,
                    Duration::from_micros(upstream.total_micros),
                );
            }
        }
        // Only whole answers are cached: something was said and it ended.
        let kept = self
            .kept
            .take()
            .filter(|chunks| chunks.iter().any(|chunk| chunk.finish_reason != 0));
        let entry = match (self.completed && !self.cache_hit, self.query.take(), kept) {
            (true, Some(query), Some(chunks)) => self
                .exchange
                .plan
                .route
                .cache_ttl
                .map(|ttl| CacheEntry { query, chunks, ttl }),
            _ => None,
        };
        let plan = &self.exchange.plan;
        let settlement = Settlement {
            context: std::mem::take(&mut self.exchange.context),
            route: plan.route.name.clone(),
            snapshot_version: plan.snapshot_version,
            tags: std::mem::take(&mut self.tags),
            operation: "chat",
            stream: self.stream,
            cache_hit: self.cache_hit,
            attempts: std::mem::take(&mut self.attempts),
            error_class: self.error_class,
            started: self.started,
            ended: Instant::now(),
            created_at_unix_ms: self.created_at_unix_ms,
            first_chunk_at: self.first_chunk_at,
            decision: (!self.cache_hit).then(|| std::mem::take(&mut self.exchange.plan.decision)),
            span: std::mem::replace(&mut self.exchange.span, HopSpan::none()),
            cut_short,
        };
        match self.shadow.take() {
            Some(shadow) => {
                let mut settlement = settlement;
                // The answer is over: its slot is free while the copy runs.
                for attempt in &mut settlement.attempts {
                    attempt.permit = None;
                }
                self.exchange
                    .settler
                    .settle_after(shadow, self.completed, settlement, entry);
            }
            None => self.exchange.settler.settle(settlement, entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ContentPart, Message as ChatMessage, content_part::Part};

    use super::*;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "demo".to_owned(),
            messages: vec![ChatMessage {
                role: 2,
                content: vec![ContentPart {
                    part: Some(Part::Text(text.to_owned())),
                }],
                content_is_text: true,
                ..ChatMessage::default()
            }],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn streaming_and_user_do_not_change_the_normalized_request() {
        let plain = request("hi");
        let mut streamed = request("hi");
        streamed.stream = true;
        streamed.include_usage = true;
        streamed.user = "alice".to_owned();
        streamed
            .metadata
            .insert("feature".to_owned(), "x".to_owned());
        assert_eq!(normalized(&plain), normalized(&streamed));
        let mut warm = request("hi");
        warm.temperature = Some(0.7);
        assert_ne!(normalized(&plain), normalized(&warm));
    }

    #[test]
    fn namespace_prefers_team() {
        let mut context = RequestContext {
            key_id: "k1".to_owned(),
            ..RequestContext::default()
        };
        assert_eq!(cache_namespace(&context), "key:k1");
        context.team_id = "t1".to_owned();
        assert_eq!(cache_namespace(&context), "team:t1");
    }
}
