//! Embeddings requests: the same plan, attempts and settle as chat, without
//! the cache. Each request settles one usage event (prompt tokens only).

use std::time::Instant;

use switchyard_common::{ServiceError, trace::HopSpan};
use switchyard_proto::v1::{
    EmbedRequest, EmbedResponse, RequestContext, RouterEmbedResponse, Usage,
};

use crate::{
    attempt::{Adapters, EmbedAnswer, try_in_order, upstream_timing},
    decision::route_decision,
    health::Health,
    plan::Plan,
    settle::{Settlement, Settler, unix_millis},
};

/// Serves one embeddings request on `plan` and settles its usage.
pub async fn embed(
    adapters: &Adapters,
    settler: &Settler,
    health: &Health,
    context: RequestContext,
    mut plan: Plan,
    mut request: EmbedRequest,
    span: HopSpan,
) -> Result<RouterEmbedResponse, ServiceError> {
    let started = Instant::now();
    let created_at_unix_ms = unix_millis();
    let mut attempts = Vec::with_capacity(1);
    let timeouts = plan.route.timeouts;
    let answered = try_in_order(
        &context,
        &span,
        &mut plan,
        health,
        &mut attempts,
        |deployment, is_last, context| {
            let request = if is_last {
                std::mem::take(&mut request)
            } else {
                request.clone()
            };
            let timeouts = timeouts.for_attempt(&deployment);
            async move {
                adapters
                    .embed(context, &deployment, request, timeouts)
                    .await
            }
        },
    )
    .await;
    if let Some(answering) = attempts.last_mut() {
        answering.ended.get_or_insert_with(Instant::now);
    }
    let mut settlement = Settlement {
        context,
        route: plan.route.name.clone(),
        snapshot_version: plan.snapshot_version,
        tags: Default::default(),
        operation: "embeddings",
        stream: false,
        cache_hit: false,
        attempts,
        error_class: None,
        started,
        ended: Instant::now(),
        created_at_unix_ms,
        first_chunk_at: None,
        decision: Some(std::mem::take(&mut plan.decision)),
        span,
        cut_short: None,
    };
    let EmbedAnswer {
        response,
        upstream,
        credential,
        provider_exhausted_ms,
    } = match answered {
        Ok(answer) => answer,
        Err(error) => {
            settlement.error_class = Some(error.class);
            let error =
                error.with_upstream_micros(upstream_timing(&settlement.attempts).total_micros);
            settler.settle(settlement, None);
            return Err(error);
        }
    };
    let usage = normalized_usage(&response);
    // The whole answer arrives at once: its first byte is its last.
    settlement.first_chunk_at = Some(Instant::now());
    if let Some(answering) = settlement.attempts.last_mut() {
        health.rest(
            &answering.deployment,
            std::time::Duration::from_millis(provider_exhausted_ms),
            &credential,
        );
        answering.upstream = upstream;
        answering.credential = credential;
    }
    let upstream = upstream_timing(&settlement.attempts);
    if let Some(answering) = settlement.attempts.last_mut() {
        answering.usage = usage;
    }
    let cost = crate::attempt::request_cost(&settlement.attempts);
    let route = route_decision(
        &plan.route.name,
        settlement.decision.as_ref(),
        &settlement.attempts,
        settlement.context.debug,
        settler.metrics(),
    );
    settler.settle(settlement, None);
    Ok(RouterEmbedResponse {
        route,
        response: Some(EmbedResponse {
            usage: Some(usage),
            ..response
        }),
        upstream: Some(upstream),
        cost,
    })
}

/// The response's usage with no completion tokens and a consistent total.
fn normalized_usage(response: &EmbedResponse) -> Usage {
    let prompt_tokens = response.usage.map_or(0, |usage| usage.prompt_tokens);
    Usage {
        prompt_tokens,
        total_tokens: prompt_tokens,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
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
