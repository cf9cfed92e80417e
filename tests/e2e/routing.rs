//! Routing scenarios: circuit breakers, and the decision record that shows
//! them.

use serde_json::json;
use switchyard_test_support::{Fault, anthropic_error_body, openai_error_body};

use crate::{cluster::TestCluster, observability::Scrape};

/// The compact decision record a debug key gets with an answer.
pub fn decision_header(response: &reqwest::Response) -> String {
    response.headers()["x-switchyard-decision"]
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// Sends `request`, and checks it was answered by `deployment`.
async fn served_by(
    cluster: &TestCluster,
    request: &serde_json::Value,
    deployment: &str,
) -> reqwest::Response {
    let response = cluster.chat(request).await;
    assert_eq!(response.status(), 200, "{}", request["model"]);
    assert_eq!(
        response.headers()["x-switchyard-deployment"],
        deployment,
        "{}",
        request["model"]
    );
    response
}

fn hello(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// A route that retries in place waits as long as the provider's 429
/// asked (`retry-after-ms`), then tries the same deployment again.
pub async fn a_retry_in_place_waits_the_providers_retry_after(cluster: &TestCluster) {
    cluster.upstream.push_fault(Fault::Status {
        status: 429,
        body: openai_error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        headers: vec![("retry-after-ms".to_owned(), "400".to_owned())],
    });
    let started = std::time::Instant::now();
    let response = cluster.chat(&hello("patient")).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-attempts"], "2");
    assert_eq!(
        cluster.upstream.requests().len(),
        2,
        "the same deployment twice"
    );
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "answered after {waited:?}, before the provider's 400 ms"
    );
}

/// A route that hedges sends a backup when its first deployment has not
/// answered after 200 ms, serves the backup's answer, and keeps both
/// attempts in the usage record, the slow one as cancelled.
pub async fn a_slow_first_token_is_hedged_to_the_next_deployment(cluster: &TestCluster) {
    cluster
        .primary
        .push_fault(Fault::Delay(std::time::Duration::from_millis(900)));
    let started = std::time::Instant::now();
    served_by(cluster, &hello("hedged"), "openai-backup").await;
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(200)
            && waited < std::time::Duration::from_millis(850),
        "answered after {waited:?}"
    );
    assert_eq!(cluster.primary.requests().len(), 1);
    assert_eq!(cluster.upstream.requests().len(), 1);
    // The loser's upstream connection was closed at once: the slow
    // provider was hung up on while it still held its answer back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(600);
    while cluster.primary.hung_up() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        cluster.primary.hung_up(),
        1,
        "the cancelled hedge's connection is closed"
    );
    let rows = crate::ledger::wait_for_usage_rows(cluster, 1).await;
    let attempts: serde_json::Value = serde_json::from_str(&rows[0].attempts).expect("JSON");
    let outcomes = crate::ledger::outcomes(&attempts);
    assert_eq!(
        outcomes,
        [("anthropic-primary", "cancelled"), ("openai-backup", "")]
    );
    assert_eq!(attempts[0]["reason"], "first");
    assert_eq!(attempts[1]["reason"], "hedge");
}

/// A deprecated deployment still answers before its sunset, with
/// `Deprecation` and `Sunset` headers and a counter; past its sunset, its
/// route's traffic goes to the successor, and the decision record says so.
pub async fn deprecation_is_announced_and_a_sunset_shifts_to_the_successor(cluster: &TestCluster) {
    let response = served_by(cluster, &hello("aging"), "old-mini").await;
    let deprecation = response.headers()["deprecation"].to_str().expect("ASCII");
    assert!(
        deprecation.starts_with('@') && deprecation[1..].parse::<u64>().is_ok(),
        "{deprecation}"
    );
    assert_eq!(
        response.headers()["sunset"],
        "Thu, 31 Dec 2099 00:00:00 GMT"
    );
    let sent = cluster.upstream.requests();
    assert_eq!(sent.last().expect("sent").body["model"], "gpt-4o-mini-old");

    let response = served_by(cluster, &hello("retired"), "openai-backup").await;
    assert!(response.headers().get("deprecation").is_none());
    let decision = decision_header(&response);
    assert!(
        decision.contains("skipped=retired-mini(lifecycle:sunset:openai-backup)"),
        "{decision}"
    );
    let sent = cluster.upstream.requests();
    assert_eq!(sent.len(), 2, "the retired model was never called");
    assert_eq!(sent[1].body["model"], "gpt-4o-mini");
    // The control plane made the shift, once, and says so in its audit log.
    let audit = crate::control::ctl(cluster, &["audit", "-o", "json"]).await;
    let entries: serde_json::Value = serde_json::from_str(&audit.stdout).expect("JSON");
    let shifts: Vec<&serde_json::Value> = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["action"] == "sunset-shift")
        .collect();
    assert_eq!(shifts.len(), 1, "{entries:#}");
    assert_eq!(
        (&shifts[0]["actor"], &shifts[0]["id"]),
        (&json!("control-plane"), &json!("retired-mini"))
    );
    let after: serde_json::Value =
        serde_json::from_str(shifts[0]["after"].as_str().expect("text")).expect("JSON");
    assert_eq!(
        (&after["to"], &after["routes"]),
        (&json!("openai-backup"), &json!(["retired"]))
    );

    let scrape = Scrape::parse(&cluster.scrape("router").await);
    assert_eq!(
        scrape.sum(
            "switchyard_deprecated_answers_total",
            &[("deployment", "old-mini")]
        ),
        1.0,
        "{}",
        scrape.text()
    );
}

/// A route's rules send code to one route and tagged classification to
/// another; what no rule matches takes the route's own strategy. The
/// decision record names the rule.
pub async fn rules_send_requests_to_the_route_their_features_ask_for(cluster: &TestCluster) {
    let ask = |text: &str, metadata: serde_json::Value| {
        json!({"model": "auto", "metadata": metadata,
               "messages": [{"role": "user", "content": text}]})
    };
    let code = cluster
        .chat(&ask("why does fn main() not compile?", json!({})))
        .await;
    assert_eq!(code.status(), 200);
    assert_eq!(code.headers()["x-switchyard-provider"], "mock");
    let decision = decision_header(&code);
    assert!(decision.starts_with("rule=code->demo; "), "{decision}");
    let tagged = cluster
        .chat(&ask("is this spam?", json!({"task": "classify"})))
        .await;
    assert_eq!(tagged.status(), 200);
    assert_eq!(tagged.headers()["x-switchyard-provider"], "mock");
    assert!(decision_header(&tagged).starts_with("rule=classify->demo; "));
    let plain = cluster
        .chat(&ask("what is the capital of France?", json!({})))
        .await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["x-switchyard-deployment"], "openai-backup");
    assert!(!decision_header(&plain).contains("rule="));
}

/// Requests a breaker opens for (the router's default: 10 requests in the
/// window, half of them failed).
const OPENING_FAILURES: usize = 10;

/// A deployment that keeps failing gets its breaker opened: from then on
/// it is not called at all, the backup answers at once, and the decision
/// record says why; the breaker's state is exported.
pub async fn an_open_breaker_keeps_requests_off_a_failing_deployment(cluster: &TestCluster) {
    for _ in 0..OPENING_FAILURES {
        cluster.primary.push_fault(Fault::Status {
            status: 503,
            body: anthropic_error_body("api_error", "scripted"),
            headers: Vec::new(),
        });
    }
    for round in 0..OPENING_FAILURES {
        let response = cluster.chat(&hello("fallback")).await;
        assert_eq!(response.status(), 200, "round {round}");
        assert_eq!(response.headers()["x-switchyard-attempts"], "2");
    }
    assert_eq!(cluster.primary.requests().len(), OPENING_FAILURES);
    for round in 0..3 {
        let response = cluster.chat(&hello("fallback")).await;
        assert_eq!(response.status(), 200, "open round {round}");
        assert_eq!(response.headers()["x-switchyard-attempts"], "1");
        let decision = decision_header(&response);
        assert!(
            decision.contains("skipped=anthropic-primary(health:breaker_open)"),
            "{decision}"
        );
        assert!(decision.contains("order=openai-backup;"), "{decision}");
    }
    assert_eq!(
        cluster.primary.requests().len(),
        OPENING_FAILURES,
        "nothing is sent to an open breaker"
    );
    let scrape = Scrape::parse(&cluster.scrape("router").await);
    let open = scrape.sum(
        "switchyard_breaker_state",
        &[("deployment", "anthropic-primary")],
    );
    assert_eq!(open, 2.0, "{}", scrape.text());
    let closed = scrape.sum(
        "switchyard_breaker_state",
        &[("deployment", "openai-backup")],
    );
    assert_eq!(closed, 0.0);
    let opened = scrape.sum(
        "switchyard_breaker_transitions_total",
        &[("deployment", "anthropic-primary"), ("to", "open")],
    );
    assert_eq!(opened, 1.0, "{}", scrape.text());
}

/// A streamed request to `model`.
fn streamed(model: &str) -> serde_json::Value {
    let mut request = hello(model);
    request["stream"] = json!(true);
    request
}

/// The text of a streamed answer, and whether it ended with `[DONE]`.
fn streamed_text(body: &str) -> (String, bool) {
    let events = crate::scenarios::sse_data(body);
    let done = events.last().map(String::as_str) == Some("[DONE]");
    let text = events
        .iter()
        .filter_map(|event| serde_json::from_str::<serde_json::Value>(event).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    (text, done)
}

/// Route `impatient` waits 500 ms for a first token (the provider's own
/// timeout is 10 s). A first token in 200 ms is served from the first
/// deployment; one that would take 3 s is given up at 500 ms, and the next
/// deployment answers.
pub async fn a_first_token_later_than_the_routes_timeout_falls_back_and_one_in_time_is_served(
    cluster: &TestCluster,
) {
    cluster
        .upstream
        .push_fault(Fault::Delay(std::time::Duration::from_millis(200)));
    let response = served_by(cluster, &streamed("impatient"), "openai-backup").await;
    let (text, done) = streamed_text(&response.text().await.expect("body"));
    assert_eq!((text.as_str(), done), ("Echo: hello there", true));
    assert!(cluster.primary.requests().is_empty(), "no fallback needed");

    cluster
        .upstream
        .push_fault(Fault::Delay(std::time::Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let response = served_by(cluster, &streamed("impatient"), "anthropic-primary").await;
    let waited = started.elapsed();
    let (text, done) = streamed_text(&response.text().await.expect("body"));
    assert!(done && !text.is_empty(), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(500)
            && waited < std::time::Duration::from_millis(2_500),
        "the fallback answered after {waited:?}"
    );
    assert_eq!(cluster.upstream.requests().len(), 2);
    assert_eq!(cluster.primary.requests().len(), 1);
    let rows = crate::ledger::wait_for_usage_rows(cluster, 2).await;
    let attempts: serde_json::Value = serde_json::from_str(&rows[1].attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [("openai-backup", "timeout"), ("anthropic-primary", "")]
    );
}

/// Once a token has reached the client, a provider that drops the
/// connection ends the stream with an error event: the request is never
/// sent to the next deployment, which could only repeat what was said. A
/// drop before the first token is an ordinary failure, and falls back.
pub async fn a_stream_cut_after_its_first_token_is_never_sent_elsewhere(cluster: &TestCluster) {
    cluster
        .upstream
        .push_fault(Fault::DropMidStream { after_chunks: 2 });
    let response = cluster.chat(&streamed("impatient")).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let (text, done) = streamed_text(&body);
    assert!(!done, "the stream must not look complete: {body}");
    assert!(!text.is_empty() && text != "Echo: hello there", "{body}");
    let last = crate::scenarios::sse_data(&body)
        .pop()
        .expect("an error event");
    let error: serde_json::Value = serde_json::from_str(&last).expect("JSON error event");
    assert!(error["error"]["message"].is_string(), "{last}");
    assert_eq!(cluster.upstream.requests().len(), 1);
    assert!(
        cluster.primary.requests().is_empty(),
        "never sent elsewhere"
    );
    let rows = crate::ledger::wait_for_usage_rows(cluster, 1).await;
    let attempts: serde_json::Value = serde_json::from_str(&rows[0].attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [("openai-backup", "upstream_unavailable")]
    );

    // Cut before its first event, nothing reached the client: the next
    // deployment answers in its place.
    cluster
        .upstream
        .push_fault(Fault::DropMidStream { after_chunks: 0 });
    let response = served_by(cluster, &streamed("impatient"), "anthropic-primary").await;
    let (text, done) = streamed_text(&response.text().await.expect("body"));
    assert!(done && !text.is_empty(), "{text}");
    assert_eq!(cluster.upstream.requests().len(), 2);
    assert_eq!(cluster.primary.requests().len(), 1);
}

/// With both of its deployments hanging, route `impatient` gives each
/// 500 ms for a first token within its 1.5 s for the whole request: the
/// client gets an OpenAI-shaped 504 in about a second, never a hang.
pub async fn with_every_deployment_hanging_the_client_gets_a_timeout_within_the_routes_bound(
    cluster: &TestCluster,
) {
    let hang = std::time::Duration::from_secs(20);
    cluster.upstream.push_fault(Fault::Delay(hang));
    cluster.primary.push_fault(Fault::Delay(hang));
    let started = std::time::Instant::now();
    let response = cluster.chat(&streamed("impatient")).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(
        waited >= std::time::Duration::from_millis(900)
            && waited < std::time::Duration::from_millis(2_500),
        "answered after {waited:?}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON error");
    assert_eq!(body["error"]["type"], "timeout_error", "{body}");
    assert_eq!(cluster.upstream.requests().len(), 1);
    assert_eq!(cluster.primary.requests().len(), 1);
    let rows = crate::ledger::wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows[0].error_class, "timeout");
    let attempts: serde_json::Value = serde_json::from_str(&rows[0].attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [
            ("openai-backup", "timeout"),
            ("anthropic-primary", "timeout")
        ]
    );
}

/// A provider answering that it does not know a deployment's model (it was
/// retired early, say) sends the request to the deployment's successor at
/// once; the client never sees a 404 for a model it named correctly, and
/// the usage record shows the successor's attempt as such.
pub async fn a_model_the_provider_no_longer_knows_goes_to_its_successor(cluster: &TestCluster) {
    cluster.upstream.push_fault(Fault::Status {
        status: 404,
        body: openai_error_body(
            "The model `gpt-4o-mini-old` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        headers: Vec::new(),
    });
    served_by(cluster, &hello("aging"), "openai-backup").await;
    let models: Vec<String> = cluster
        .upstream
        .requests()
        .iter()
        .map(|request| {
            request.body["model"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(models, ["gpt-4o-mini-old", "gpt-4o-mini"]);
    let rows = crate::ledger::wait_for_usage_rows(cluster, 1).await;
    let attempts: serde_json::Value = serde_json::from_str(&rows[0].attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [("old-mini", "upstream_unavailable"), ("openai-backup", "")]
    );
    assert_eq!(attempts[1]["reason"], "successor");
}

/// Route `capped` allows $0.01 per request at each deployment. With room
/// for 100 output tokens, the primary ($200 per million out) would cost
/// about 2 cents and is skipped without being called; the backup answers,
/// and the decision says why. With room for 5,000, no deployment fits: a
/// clear 400 naming `max_tokens`, and no provider is called.
pub async fn a_deployment_over_the_routes_cost_ceiling_is_never_called(cluster: &TestCluster) {
    let mut request = hello("capped");
    request["max_tokens"] = json!(100);
    let response = served_by(cluster, &request, "openai-backup").await;
    let header = decision_header(&response);
    assert!(
        header.contains("skipped=anthropic-primary(constraints:cost_ceiling)"),
        "{header}"
    );
    assert!(cluster.primary.requests().is_empty());
    assert_eq!(cluster.upstream.requests().len(), 1);

    request["max_tokens"] = json!(5_000);
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON error");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], "max_tokens", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("ceiling")),
        "{body}"
    );
    assert!(cluster.primary.requests().is_empty());
    assert_eq!(cluster.upstream.requests().len(), 1, "no provider called");
}

/// Keys of a `free` team asking for `premium` are served by its tier's
/// route (`thrifty`, the backup only), and the decision says so; a key of
/// no tier gets the premium deployment. The team's route set bounds what
/// its keys may name and list.
pub async fn a_keys_tier_picks_its_route_and_its_team_bounds_its_models(cluster: &TestCluster) {
    let premium = served_by(cluster, &hello("premium"), "anthropic-primary").await;
    assert!(!decision_header(&premium).contains("policy="));

    let free = cluster.chat_as(&cluster.free_key, &hello("premium")).await;
    assert_eq!(free.status(), 200);
    assert_eq!(free.headers()["x-switchyard-deployment"], "openai-backup");
    assert_eq!(free.headers()["x-switchyard-route"], "thrifty");
    let decision = decision_header(&free);
    assert!(
        decision.starts_with("policy=tier:free->thrifty; "),
        "{decision}"
    );
    assert_eq!(cluster.primary.requests().len(), 1, "premium traffic only");

    let outside = cluster.chat_as(&cluster.free_key, &hello("demo")).await;
    assert_eq!(
        outside.status(),
        404,
        "the team's routes do not hold `demo`"
    );
    let listed: serde_json::Value = cluster
        .http
        .get(format!("{}/v1/models", cluster.base_url))
        .bearer_auth(&cluster.free_key)
        .send()
        .await
        .expect("edge answers")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, ["gpt-test", "premium"]);
}

/// An answer whose `x-ratelimit-remaining-requests` is 0 is served, and
/// its deployment rests until the reported reset: the next request goes
/// straight to the next deployment instead of collecting a 429, and the
/// decision says why.
pub async fn a_deployment_whose_provider_limit_is_used_up_rests_until_the_reset(
    cluster: &TestCluster,
) {
    cluster.upstream.limit_requests(0, "30s");
    served_by(cluster, &hello("impatient"), "openai-backup").await;
    let next = served_by(cluster, &hello("impatient"), "anthropic-primary").await;
    let decision = decision_header(&next);
    assert!(
        decision.contains("skipped=openai-backup(health:provider_limit)"),
        "{decision}"
    );
    assert_eq!(cluster.upstream.requests().len(), 1, "not asked again");
    assert_eq!(cluster.primary.requests().len(), 1);
    let scrape = Scrape::parse(&cluster.scrape("router").await);
    assert_eq!(
        scrape.sum(
            "switchyard_deployment_rests_total",
            &[("deployment", "openai-backup")]
        ),
        1.0,
        "{}",
        scrape.text()
    );
}

/// Sends a request to `model` that the OpenAI fake answers in 600 ms, and
/// 150 ms later another; returns both answers.
async fn one_slow_then_another(
    cluster: &TestCluster,
    model: &str,
) -> (reqwest::Response, reqwest::Response) {
    cluster
        .upstream
        .push_fault(Fault::Delay(std::time::Duration::from_millis(600)));
    let request = hello(model);
    let next = async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        cluster.chat(&request).await
    };
    tokio::join!(cluster.chat(&request), next)
}

/// Deployment `one-at-a-time` takes one request at once: while a slow one
/// holds its slot, the next request goes to the route's next deployment
/// and the decision says why; once the slot is free, it serves again.
pub async fn a_deployment_at_its_concurrency_sends_the_next_request_elsewhere(
    cluster: &TestCluster,
) {
    let (slow, next) = one_slow_then_another(cluster, "single").await;
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.headers()["x-switchyard-deployment"], "one-at-a-time");
    assert_eq!(next.status(), 200);
    assert_eq!(
        next.headers()["x-switchyard-deployment"],
        "anthropic-primary"
    );
    let decision = decision_header(&next);
    assert!(
        decision.contains("skipped=one-at-a-time(health:capacity)"),
        "{decision}"
    );
    let again = cluster.chat(&hello("single")).await;
    assert_eq!(
        again.headers()["x-switchyard-deployment"],
        "one-at-a-time",
        "its slot is free again"
    );
    assert_eq!(cluster.upstream.requests().len(), 2);
    assert_eq!(cluster.primary.requests().len(), 1);
    let scrape = Scrape::parse(&cluster.scrape("router").await);
    assert_eq!(
        scrape.sum(
            "switchyard_capacity_skips_total",
            &[("deployment", "one-at-a-time")]
        ),
        1.0,
        "{}",
        scrape.text()
    );
}

/// Provider `fake-openai-account` takes one request at once across its
/// two deployments: while a slow one holds the account's slot, the next
/// request passes over both for the route's Anthropic deployment.
pub async fn a_provider_account_at_its_concurrency_bounds_all_its_deployments(
    cluster: &TestCluster,
) {
    let (slow, next) = one_slow_then_another(cluster, "shared").await;
    assert_eq!(slow.headers()["x-switchyard-deployment"], "account-mini");
    assert_eq!(
        next.headers()["x-switchyard-deployment"],
        "anthropic-primary"
    );
    let decision = decision_header(&next);
    assert!(
        decision.contains("account-mini(health:capacity)")
            && decision.contains("account-nano(health:capacity)"),
        "{decision}"
    );
    served_by(cluster, &hello("shared"), "account-mini").await;
    assert_eq!(cluster.upstream.requests().len(), 2);
}

/// Route `steady` holds its deployments to a 150 ms p95 time to first
/// token. Once its first deployment has answered ten times in about
/// 250 ms, the next request goes to the other deployment first; the slow
/// one is demoted, not removed, and the decision says why.
pub async fn a_deployment_slower_than_the_routes_slo_is_demoted_behind_the_next(
    cluster: &TestCluster,
) {
    for _ in 0..10 {
        cluster
            .upstream
            .push_fault(Fault::Delay(std::time::Duration::from_millis(250)));
        let slow = cluster.chat(&hello("steady")).await;
        assert_eq!(slow.headers()["x-switchyard-deployment"], "openai-backup");
    }
    let next = served_by(cluster, &hello("steady"), "anthropic-primary").await;
    let decision = decision_header(&next);
    assert!(
        decision.contains("order=anthropic-primary,openai-backup")
            && decision.contains("demoted=openai-backup:first_token_p95="),
        "{decision}"
    );
}

/// Route `shadowed` copies every request to `anthropic-primary`: the
/// client gets the route's own answer, and the usage event carries the
/// copy as an attempt (reason `shadow`) with its own cost; a copy that
/// fails changes nothing for the client.
pub async fn shadow_traffic_is_recorded_with_the_request_and_never_returned(cluster: &TestCluster) {
    let response = served_by(cluster, &hello("shadowed"), "openai-backup").await;
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["model"], "gpt-4o-mini", "the route's own answer");
    // The usage event waits for the copy to end.
    let rows = crate::ledger::wait_for_usage_rows(cluster, 1).await;
    assert_eq!(cluster.primary.requests().len(), 1, "the copy was sent");
    let row = &rows[0];
    assert_eq!(row.deployment_id, "openai-backup");
    let attempts: serde_json::Value = serde_json::from_str(&row.attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [("anthropic-primary", ""), ("openai-backup", "")]
    );
    assert_eq!(attempts[0]["reason"], "shadow");
    let shadow_cost = attempts[0]["cost_nanos"].as_i64().expect("costed");
    let own_cost = attempts[1]["cost_nanos"].as_i64().expect("costed");
    assert!(shadow_cost > 0 && own_cost > 0);
    assert_eq!(
        row.cost_nanos,
        shadow_cost + own_cost,
        "the copy is paid for too"
    );

    cluster.primary.push_fault(Fault::Status {
        status: 503,
        body: anthropic_error_body("api_error", "scripted"),
        headers: Vec::new(),
    });
    served_by(cluster, &hello("shadowed"), "openai-backup").await;
    let rows = crate::ledger::wait_for_usage_rows(cluster, 2).await;
    let attempts: serde_json::Value = serde_json::from_str(&rows[1].attempts).expect("JSON");
    assert_eq!(
        crate::ledger::outcomes(&attempts),
        [
            ("anthropic-primary", "upstream_unavailable"),
            ("openai-backup", "")
        ]
    );
    assert_eq!(rows[1].error_class, "", "the client was answered");
}

/// A deployment that asks for active probes (added to the saved config
/// file) gets a one-token request that often without any client traffic;
/// each feeds its health and is counted like a request, under route
/// `probe`.
pub async fn a_deployment_with_probes_is_asked_without_traffic_and_counted(cluster: &TestCluster) {
    let anchor = "deployments:\n";
    assert!(cluster.config_text.contains(anchor));
    let probed = cluster.config_text.replacen(
        anchor,
        "deployments:\n  - {id: probed-mock, provider: mock, model: mock-1, probe: {every: 200ms}}\n",
        1,
    );
    std::fs::write(&cluster.config_path, &probed).expect("save the file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let scrape = Scrape::parse(&cluster.scrape("router").await);
        let probes = scrape.sum(
            "switchyard_upstream_attempts_total",
            &[("deployment", "probed-mock"), ("reason", "probe")],
        );
        let requests = scrape.sum("switchyard_requests_total", &[("route", "probe")]);
        if probes >= 3.0 && requests >= 3.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{probes} probes, {requests} counted requests:\n{}",
            scrape.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // No client asked for anything.
    assert!(crate::ledger::usage_rows(cluster).await.is_empty());
    std::fs::write(&cluster.config_path, &cluster.config_text).expect("restore the file");
}

/// A request for log probabilities or several choices is never planned onto
/// a deployment whose provider cannot express them (Anthropic here): it is
/// skipped without being called, and when the deployment that can is down,
/// the client gets that outage, not a refusal that reads as its own fault.
pub async fn a_feature_a_provider_cannot_express_skips_it_without_a_call(cluster: &TestCluster) {
    let mut logprobs = hello("fallback");
    logprobs["logprobs"] = json!(true);
    let mut choices = hello("fallback");
    choices["n"] = json!(2);
    for (request, reason) in [
        (&logprobs, "no_logprobs"),
        (&choices, "no_multiple_choices"),
    ] {
        let response = served_by(cluster, request, "openai-backup").await;
        let decision = decision_header(&response);
        assert!(
            decision.contains(&format!("skipped=anthropic-primary(constraints:{reason})")),
            "{decision}"
        );
    }
    assert!(cluster.primary.requests().is_empty());

    // `steady` tries the OpenAI deployment first; it is down.
    cluster.upstream.push_fault(Fault::Status {
        status: 503,
        body: openai_error_body("The server is overloaded.", "server_error", "server_error"),
        headers: Vec::new(),
    });
    let mut request = hello("steady");
    request["logprobs"] = json!(true);
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 502, "the provider's outage, not a 400");
    assert!(
        cluster.primary.requests().is_empty(),
        "Anthropic never called"
    );
}
