//! The adapters own their providers: requests name a deployment id, the
//! snapshot says where it goes and which secrets it uses.

use std::time::Duration;

use switchyard_common::{ErrorClass, config::Environment};
use switchyard_proto::v1::secret_ref::Source;
use switchyard_test_support::FakeOpenAi;

use crate::{
    API_KEY, Harness, MASTER_KEYS_VARIABLE, SecretRef, Target, content, test_keyring, user_request,
};

fn file_key(path: &std::path::Path) -> SecretRef {
    SecretRef {
        source: Some(Source::File(path.display().to_string())),
    }
}

#[tokio::test]
async fn a_request_for_an_unknown_deployment_is_refused_without_calling_anyone() {
    let harness = Harness::start().await;
    harness.deploy(&harness.openai_target());
    let outcome = harness
        .chat_deployment("elsewhere/gpt-4o".to_owned(), user_request("hi", false))
        .await;
    let error = outcome.expect_error();
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);
    assert!(
        error.message.contains("elsewhere/gpt-4o"),
        "{}",
        error.message
    );
    assert!(
        harness.fake.requests().is_empty(),
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn the_snapshot_decides_endpoint_model_and_key() {
    let harness = Harness::start().await;
    let mut request = user_request("hi", false);
    // Whatever model the caller names, the deployment's upstream model goes out.
    request.model = "something-else".to_owned();
    let chunks = harness
        .chat(harness.openai_target(), request)
        .await
        .expect_chunks();
    assert!(!content(&chunks).is_empty());
    let sent = &harness.fake.requests()[0];
    assert_eq!(sent.headers["authorization"], format!("Bearer {API_KEY}"));
    assert_eq!(sent.body["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn only_the_secrets_the_snapshot_declares_are_resolved() {
    // The environment holds the conventional OpenAI key variable, but the
    // snapshot declares no key for this provider: nothing may pick it up.
    let environment =
        Environment::from([("OPENAI_API_KEY".to_owned(), "sk-undeclared".to_owned())]);
    let harness = Harness::start_with(environment).await;
    let keyless = Target {
        api_key: None,
        ..harness.openai_target()
    };
    let _ = harness.chat(keyless, user_request("hi", false)).await;
    let sent = harness.fake.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        !sent[0].headers.contains_key("authorization"),
        "no key was attached: {:?}",
        sent[0].headers.get("authorization")
    );
}

#[tokio::test]
async fn a_rotated_key_file_is_used_without_a_restart() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("openai-key");
    std::fs::write(&path, "sk-first\n").expect("write key");
    let harness = Harness::over(FakeOpenAi::start().await, Environment::new());
    let target = Target {
        api_key: Some(file_key(&path)),
        ..harness.openai_target()
    };
    harness
        .chat(target.clone(), user_request("one", false))
        .await
        .expect_chunks();
    std::fs::write(&path, "sk-second\n").expect("rotate key");
    // The default refresh is 5 s, within the 10 s a rotation may take.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        harness
            .chat(target.clone(), user_request("again", false))
            .await
            .expect_chunks();
        let last = harness.fake.requests().last().cloned().expect("a request");
        if last.headers["authorization"] == "Bearer sk-second" {
            break;
        }
        assert_eq!(last.headers["authorization"], "Bearer sk-first");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated key was not used within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A provider behind the company's egress proxy: every attempt goes through
/// it, and providers without one still connect directly.
#[tokio::test]
async fn a_provider_with_a_proxy_is_reached_through_it() {
    let proxy = switchyard_test_support::ForwardProxy::start().await;
    let harness = Harness::start().await;
    let proxied = Target {
        proxy_url: proxy.url(),
        ..harness.openai_target()
    };
    harness
        .chat(proxied, user_request("through the proxy", false))
        .await
        .expect_chunks();
    let upstream = harness
        .fake
        .base_url()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned();
    assert_eq!(proxy.destinations(), vec![upstream]);
    assert_eq!(
        harness.fake.requests().len(),
        1,
        "the fake answered through the proxy"
    );

    harness
        .chat(harness.openai_target(), user_request("direct", false))
        .await
        .expect_chunks();
    assert_eq!(
        proxy.destinations().len(),
        1,
        "no proxy for a provider without one"
    );
    assert_eq!(harness.fake.requests().len(), 2);
}

/// A provider whose key is a stored credential: the adapters decrypt it with
/// the master keys and send it; a credential of another provider, or one
/// that does not decrypt, fails the attempt as the provider's auth, naming
/// no value.
#[tokio::test]
async fn a_stored_credential_is_decrypted_and_sent_as_the_key() {
    use base64::Engine;
    use switchyard_proto::v1::{Credential, ObjectMeta, SealedSecret};

    let keys = format!(
        "k1:{}",
        base64::engine::general_purpose::STANDARD.encode([9_u8; 32])
    );
    let environment = Environment::from([(MASTER_KEYS_VARIABLE.to_owned(), keys)]);
    let keyring = test_keyring(&environment);
    let sealed = keyring
        .seal("openai-main", b"sk-stored-credential-value")
        .expect("sealed");
    let harness = Harness::start_with(environment).await;
    let credential = |provider: &str| Credential {
        id: "openai-main".to_owned(),
        provider: provider.to_owned(),
        sealed: Some(SealedSecret {
            wrapped_key: sealed.wrapped_key.clone(),
            key_nonce: sealed.key_nonce.clone(),
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        }),
        hint: String::new(),
        meta: Some(ObjectMeta {
            owner: 2,
            revision: 1,
        }),
        master_key_id: sealed.master_key_id.clone(),
    };
    let stored_key = SecretRef {
        source: Some(Source::Credential("openai-main".to_owned())),
    };
    let target = Target {
        api_key: Some(stored_key.clone()),
        credentials: vec![credential("fake-openai")],
        ..harness.openai_target()
    };
    harness
        .chat(target, user_request("stored", false))
        .await
        .expect_chunks();
    let sent = harness.fake.requests();
    assert_eq!(
        sent[0].headers["authorization"],
        "Bearer sk-stored-credential-value"
    );

    let foreign = Target {
        api_key: Some(stored_key),
        credentials: vec![credential("someone-else")],
        ..harness.openai_target()
    };
    let answer = harness.chat(foreign, user_request("foreign", false)).await;
    let error = answer.expect_error();
    // The gateway's own credential is at fault, not the client's key.
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(
        error.message.contains("openai-main") && !error.message.contains("sk-stored"),
        "{}",
        error.message
    );
    assert_eq!(harness.fake.requests().len(), 1, "nothing was sent");
}
