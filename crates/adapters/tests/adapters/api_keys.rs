//! A provider with several API keys: attempts go round them, report the
//! key they used, and a key the provider refuses rests while the others
//! serve; the attempt that met the refusal is never retried here.

use std::collections::BTreeMap;

use switchyard_common::{ErrorClass, config::Environment};
use switchyard_test_support::{FakeOpenAi, Fault, openai_error_body};

use crate::{Harness, Target, env_key, user_request};

const KEY_A: &str = "sk-proj-alpha-1111";
const KEY_B: &str = "sk-proj-bravo-2222";

async fn two_keys() -> (Harness, Target) {
    let environment = Environment::from([
        ("KEY_A".to_owned(), KEY_A.to_owned()),
        ("KEY_B".to_owned(), KEY_B.to_owned()),
    ]);
    let harness = Harness::over(FakeOpenAi::start().await, environment);
    let target = Target {
        api_key: None,
        api_keys: BTreeMap::from([
            ("alpha".to_owned(), env_key("KEY_A")),
            ("bravo".to_owned(), env_key("KEY_B")),
        ]),
        ..harness.openai_target()
    };
    (harness, target)
}

/// The bearer keys of the requests the fake received, in order.
fn keys_sent(harness: &Harness) -> Vec<String> {
    harness
        .fake
        .requests()
        .iter()
        .map(|request| {
            request.headers["authorization"]
                .trim_start_matches("Bearer ")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn attempts_go_round_the_keys_and_report_which_they_used() {
    let (harness, target) = two_keys().await;
    let mut used = Vec::new();
    for _ in 0..4 {
        let outcome = harness
            .chat(target.clone(), user_request("hi", false))
            .await;
        used.push(outcome.credential.clone());
        outcome.expect_chunks();
    }
    assert_eq!(used, ["alpha", "bravo", "alpha", "bravo"]);
    assert_eq!(keys_sent(&harness), [KEY_A, KEY_B, KEY_A, KEY_B]);
}

#[tokio::test]
async fn a_rate_limited_key_rests_and_the_refusal_names_it() {
    let (harness, target) = two_keys().await;
    harness.fake.push_fault(Fault::Status {
        status: 429,
        body: openai_error_body(
            "Rate limit reached for requests",
            "requests",
            "rate_limit_exceeded",
        ),
        headers: vec![("retry-after".to_owned(), "20".to_owned())],
    });
    let refused = harness.chat(target.clone(), user_request("hi", true)).await;
    let error = refused.expect_error();
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.credential.as_deref(), Some("alpha"));
    // Not retried with the other key: the router sees the refusal.
    assert_eq!(harness.fake.requests().len(), 1);
    for _ in 0..3 {
        let outcome = harness.chat(target.clone(), user_request("hi", true)).await;
        assert_eq!(outcome.credential, "bravo");
        outcome.expect_chunks();
    }
    assert_eq!(keys_sent(&harness), [KEY_A, KEY_B, KEY_B, KEY_B]);
}

#[tokio::test]
async fn a_revoked_key_rests_as_provider_auth_without_its_value_in_the_error() {
    let (harness, target) = two_keys().await;
    harness.fake.revoke_key(KEY_A);
    let refused = harness
        .chat(target.clone(), user_request("hi", false))
        .await;
    let error = refused.expect_error();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert_eq!(error.credential.as_deref(), Some("alpha"));
    assert!(
        !error.message.contains("alpha-1111") && !error.message.contains("1111"),
        "{}",
        error.message
    );
    for _ in 0..3 {
        let outcome = harness
            .chat(target.clone(), user_request("hi", false))
            .await;
        assert_eq!(outcome.credential, "bravo");
        outcome.expect_chunks();
    }
}

#[tokio::test]
async fn a_key_whose_secret_is_missing_rests_too() {
    let (harness, mut target) = two_keys().await;
    target
        .api_keys
        .insert("alpha".to_owned(), env_key("KEY_NOT_SET"));
    let refused = harness
        .chat(target.clone(), user_request("hi", false))
        .await;
    let error = refused.expect_error();
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert_eq!(error.credential.as_deref(), Some("alpha"));
    assert!(error.message.contains("KEY_NOT_SET"), "{}", error.message);
    let outcome = harness
        .chat(target.clone(), user_request("hi", false))
        .await;
    assert_eq!(outcome.credential, "bravo");
    outcome.expect_chunks();
    assert_eq!(keys_sent(&harness), [KEY_B]);
}

#[tokio::test]
async fn a_provider_with_one_key_reports_none() {
    let harness = Harness::start().await;
    let outcome = harness
        .chat(harness.openai_target(), user_request("hi", true))
        .await;
    assert_eq!(outcome.credential, "");
    outcome.expect_chunks();
}
