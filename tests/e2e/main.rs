//! End-to-end suite: the whole gateway against fake providers, every
//! scenario in both deployment modes (all-in-one in this process, and one
//! process per service over real gRPC on loopback ports) and with both
//! backend sets (embedded SQLite/memory, and PostgreSQL/ClickHouse/Redis).

mod admin_tls;
mod backends;
mod cluster;
mod conformance;
mod control;
mod faults;
mod hot_reload;
mod ledger;
mod money;
mod observability;
mod python_sdk;
mod routing;
mod scenarios;
mod service_auth;
mod tracing;

/// Generates one test per scenario per mode and backend set.
macro_rules! both_modes {
    ($($scenario:ident),* $(,)?) => {
        mod all_in_one_embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(cluster) = crate::cluster::TestCluster::start(
                    crate::cluster::Mode::AllInOne, crate::cluster::Backends::Embedded).await else { return };
                crate::scenarios::$scenario(&cluster).await;
            })*
        }
        mod all_in_one_production {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(cluster) = crate::cluster::TestCluster::start(
                    crate::cluster::Mode::AllInOne, crate::cluster::Backends::Production).await else { return };
                crate::scenarios::$scenario(&cluster).await;
            })*
        }
        mod distributed_embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(cluster) = crate::cluster::TestCluster::start(
                    crate::cluster::Mode::Distributed, crate::cluster::Backends::Embedded).await else { return };
                crate::scenarios::$scenario(&cluster).await;
            })*
        }
        mod distributed_production {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(cluster) = crate::cluster::TestCluster::start(
                    crate::cluster::Mode::Distributed, crate::cluster::Backends::Production).await else { return };
                crate::scenarios::$scenario(&cluster).await;
            })*
        }
    };
}

both_modes!(
    non_streaming_completion,
    streaming_completion_with_usage,
    usage_event_lands_in_the_ledger,
    repeat_request_is_served_from_the_cache,
    an_answer_over_the_cache_limit_is_answered_but_not_cached,
    bad_key_is_rejected_without_usage,
    unknown_model_is_not_found_without_usage,
    malformed_json_is_a_clear_400,
    every_error_carries_its_request_id,
    a_slow_reader_does_not_stall_other_requests,
    slowloris_is_closed_within_the_header_timeout,
    requests_hyper_refuses_get_openai_errors_with_request_ids,
    a_stalled_body_is_answered_408,
    a_transfer_coding_other_than_chunked_is_refused,
    the_connection_limit_answers_503,
    oversized_body_is_413,
    upstream_rate_limit_maps_to_429,
    models_are_listed_for_the_key,
    mock_provider_serves_demo,
    provider_refusing_the_gateway_is_a_502_not_the_clients_401,
    client_leaving_early_is_recorded_as_cancelled,
    embeddings_round_trip,
    fallback_goes_to_the_next_deployment_on_retryable_failures,
    a_refused_provider_key_rests_while_the_providers_other_key_serves,
    a_request_that_fell_back_twice_explains_itself,
    an_open_breaker_keeps_requests_off_a_failing_deployment,
    a_retry_in_place_waits_the_providers_retry_after,
    a_slow_first_token_is_hedged_to_the_next_deployment,
    a_first_token_later_than_the_routes_timeout_falls_back_and_one_in_time_is_served,
    a_stream_cut_after_its_first_token_is_never_sent_elsewhere,
    with_every_deployment_hanging_the_client_gets_a_timeout_within_the_routes_bound,
    deprecation_is_announced_and_a_sunset_shifts_to_the_successor,
    a_model_the_provider_no_longer_knows_goes_to_its_successor,
    a_deployment_over_the_routes_cost_ceiling_is_never_called,
    a_feature_a_provider_cannot_express_skips_it_without_a_call,
    a_whole_answer_carries_its_exact_cost_and_tokens,
    a_streams_usage_carries_its_cost,
    a_stream_cut_short_is_charged_for_what_was_streamed,
    a_provider_account_at_its_concurrency_bounds_all_its_deployments,
    a_keys_tier_picks_its_route_and_its_team_bounds_its_models,
    a_deployment_whose_provider_limit_is_used_up_rests_until_the_reset,
    a_deployment_at_its_concurrency_sends_the_next_request_elsewhere,
    a_deployment_slower_than_the_routes_slo_is_demoted_behind_the_next,
    shadow_traffic_is_recorded_with_the_request_and_never_returned,
    a_deployment_with_probes_is_asked_without_traffic_and_counted,
    rules_send_requests_to_the_route_their_features_ask_for,
    the_edge_deadline_bounds_a_slow_upstream,
    metrics_move_as_requests_flow,
    the_gateway_overhead_is_reported_without_the_providers_time,
    dashboards_and_alerts_name_only_exported_series,
    ctl_creates_a_key_sets_a_budget_and_revokes_the_key_within_a_second,
    export_applies_back_without_a_diff_and_changes_apply_atomically,
    the_admin_listener_serves_the_admin_api_with_reflection,
    a_saved_config_file_change_applies_within_a_second_and_a_bad_one_is_refused,
    fifty_config_changes_under_load_fail_no_request_and_split_none,
    a_provider_key_stored_with_ctl_is_used_upstream_and_never_shown,
);
