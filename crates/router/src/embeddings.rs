//! Embeddings requests: the same route resolution, key policy and fallback
//! over targets as chat, without the cache. Each request emits one usage
//! event (prompt tokens only, costed at the route's input price).

use std::{sync::Arc, time::Instant};

use switchyard_common::ServiceError;
use switchyard_proto::v1::{
    EmbedRequest, EmbedResponse, RequestContext, RouteDecision, RouterEmbedResponse, UsageEvent,
};

use crate::{
    attempt::{Adapters, try_targets},
    exchange::{millis, unix_millis},
    pricing::cost_of,
    route_table::Route,
    usage::UsageEmitter,
};

/// Serves one embeddings request on `route` and records its usage.
pub async fn embed(
    adapters: &Adapters,
    usage: &UsageEmitter,
    context: RequestContext,
    route: Arc<Route>,
    mut request: EmbedRequest,
) -> Result<RouterEmbedResponse, ServiceError> {
    let started = Instant::now();
    let created_at_unix_ms = unix_millis();
    let answered = try_targets(&route.targets, |target, is_last| {
        let mut request = if is_last {
            std::mem::take(&mut request)
        } else {
            request.clone()
        };
        request.model.clone_from(&target.upstream_model);
        adapters.embed(context.clone(), target.clone(), request)
    })
    .await;
    let latency_ms = millis(started.elapsed());
    let mut event = UsageEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        request_id: context.request_id.clone(),
        key_id: context.key_id.clone(),
        team_id: context.team_id.clone(),
        end_user: context.end_user.clone(),
        model: route.model.clone(),
        latency_ms,
        created_at_unix_ms,
        ..UsageEvent::default()
    };
    match answered {
        Ok((target, response)) => {
            let usage_counts = normalized_usage(&response);
            event.provider.clone_from(&target.provider);
            event.upstream_model.clone_from(&target.upstream_model);
            event.cost = cost_of(&usage_counts, route.input_price_per_million.as_ref(), None);
            event.usage = Some(usage_counts);
            // The whole answer arrives at once: its first byte is its last.
            event.ttft_ms = latency_ms;
            usage.emit(event);
            Ok(RouterEmbedResponse {
                route: Some(RouteDecision {
                    model: route.model.clone(),
                    provider: target.provider.clone(),
                    upstream_model: target.upstream_model.clone(),
                    cache_hit: false,
                }),
                response: Some(EmbedResponse {
                    usage: Some(usage_counts),
                    ..response
                }),
            })
        }
        Err(error) => {
            event.usage = Some(Default::default());
            event.error_class = error.class.to_proto() as i32;
            usage.emit(event);
            Err(error)
        }
    }
}

/// The response's usage with no completion tokens and a consistent total.
fn normalized_usage(response: &EmbedResponse) -> switchyard_proto::v1::Usage {
    let prompt_tokens = response.usage.map_or(0, |usage| usage.prompt_tokens);
    switchyard_proto::v1::Usage {
        prompt_tokens,
        total_tokens: prompt_tokens,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::Usage;

    use super::*;

    #[test]
    fn usage_counts_prompt_tokens_only() {
        let response = EmbedResponse {
            usage: Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 3,
                total_tokens: 10,
                ..Usage::default()
            }),
            ..EmbedResponse::default()
        };
        let usage = normalized_usage(&response);
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (7, 0, 7)
        );
        assert_eq!(normalized_usage(&EmbedResponse::default()).total_tokens, 0);
    }
}
