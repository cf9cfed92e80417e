//! The scenarios, each taking the URL of a fresh database.

use std::time::Duration;

use sqlx::Row;
use switchyard_control_plane::{ConfigStore, sha256_hex};
use switchyard_proto::v1::{Money, SecretRef, Snapshot, WatchRequest, secret_ref::Source};
use tonic::Streaming;

use crate::fixtures::{
    DEMO_SECRET, RunningControlPlane, changed_declarative, declarative, environment,
};

/// How long a scenario waits for a published change.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

async fn next_snapshot(stream: &mut Streaming<switchyard_proto::v1::WatchResponse>) -> Snapshot {
    tokio::time::timeout(PUBLISH_TIMEOUT, stream.message())
        .await
        .expect("a snapshot arrives in time")
        .expect("stream is healthy")
        .expect("stream is open")
        .snapshot
        .expect("response carries a snapshot")
}

fn model<'a>(snapshot: &'a Snapshot, name: &str) -> &'a switchyard_proto::v1::Model {
    snapshot
        .models
        .iter()
        .find(|model| model.name == name)
        .expect("model is in the snapshot")
}

pub async fn sync_publishes_declared_objects(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let snapshot = control_plane.snapshot().await;
    assert_eq!(snapshot.version, 1);

    let providers: Vec<&str> = snapshot.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(providers, ["mock", "openai"]);
    let openai = &snapshot.providers[1];
    assert_eq!(openai.kind, "openai");
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert_eq!(openai.timeout_ms, 60_000);
    assert_eq!(
        openai.api_key,
        Some(SecretRef {
            source: Some(Source::Env("OPENAI_API_KEY".to_owned()))
        })
    );
    assert_eq!(openai.options["organization"], "org-123");
    assert_eq!(
        openai.secrets["project_key"],
        SecretRef {
            source: Some(Source::File("/run/secrets/openai-project".to_owned()))
        }
    );
    let mock = &snapshot.providers[0];
    assert_eq!((mock.base_url.as_str(), mock.timeout_ms), ("", 0));
    assert!(mock.options.is_empty() && mock.secrets.is_empty());
    assert_eq!(mock.api_key, None);

    let models: Vec<&str> = snapshot.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(models, ["demo", "gpt"]);
    let demo = model(&snapshot, "demo");
    assert_eq!(demo.cache_ttl_ms, 300_000);
    assert_eq!(demo.owned_by, "switchyard");
    assert_eq!(
        demo.input_price_per_million,
        Some(Money {
            micros: 150_000,
            currency: "USD".to_owned()
        })
    );
    assert_eq!(
        demo.output_price_per_million,
        Some(Money {
            micros: 600_000,
            currency: "USD".to_owned()
        })
    );
    let gpt = model(&snapshot, "gpt");
    let targets: Vec<(&str, &str)> = gpt
        .targets
        .iter()
        .map(|t| (t.provider.as_str(), t.upstream_model.as_str()))
        .collect();
    assert_eq!(targets, [("openai", "gpt-4o-mini"), ("mock", "mock-2")]);
    assert_eq!(gpt.owned_by, "openai");
    assert_eq!(
        (gpt.cache_ttl_ms, gpt.input_price_per_million.as_ref()),
        (0, None)
    );

    let keys: Vec<&str> = snapshot.api_keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(keys, ["demo", "from-env"]);
    let demo_key = &snapshot.api_keys[0];
    assert_eq!(demo_key.sha256, sha256_hex("abc"), "hash is lowercased");
    assert_eq!(
        (demo_key.name.as_str(), demo_key.team_id.as_str()),
        ("Demo key", "default")
    );
    assert!(demo_key.allowed_models.is_empty() && !demo_key.disabled);
    let env_key = &snapshot.api_keys[1];
    assert_eq!(env_key.sha256, sha256_hex(DEMO_SECRET));
    assert_eq!(env_key.allowed_models, ["demo"]);
    assert!(env_key.disabled);

    control_plane.stop().await;
}

pub async fn same_file_keeps_version_and_changed_file_bumps_it(url: String) {
    let mut first = RunningControlPlane::start(&url, &declarative()).await;
    let original = first.snapshot().await;
    first.stop().await;

    let mut restarted = RunningControlPlane::start(&url, &declarative()).await;
    let same = restarted.snapshot().await;
    assert_eq!(same, original, "same file, same snapshot and version");
    restarted.stop().await;

    let mut changed = RunningControlPlane::start(&url, &changed_declarative()).await;
    let bumped = changed.snapshot().await;
    assert_eq!(bumped.version, original.version + 1);
    assert_eq!(model(&bumped, "demo").cache_ttl_ms, 60_000);
    changed.stop().await;
}

pub async fn watch_sends_current_snapshot_then_updates_from_other_writers(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut stream = control_plane
        .client
        .watch(WatchRequest { known_version: 0 })
        .await
        .expect("Watch starts")
        .into_inner();
    let initial = next_snapshot(&mut stream).await;
    assert_eq!(initial.version, 1);
    assert_eq!(model(&initial, "demo").cache_ttl_ms, 300_000);

    // Another writer (a second replica) changes the same database; the poll
    // task notices the new version.
    let other_writer = ConfigStore::connect(&url).await.expect("second store");
    let written = other_writer
        .sync(&changed_declarative(), &environment())
        .await
        .expect("second sync");
    assert_eq!(written, 2);
    other_writer.close().await;

    let update = next_snapshot(&mut stream).await;
    assert_eq!(update.version, 2);
    assert_eq!(model(&update, "demo").cache_ttl_ms, 60_000);
    assert_eq!(control_plane.snapshot().await, update);
    control_plane.stop().await;
}

pub async fn watch_skips_the_known_version(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut stream = control_plane
        .client
        .watch(WatchRequest { known_version: 1 })
        .await
        .expect("Watch starts")
        .into_inner();
    let nothing = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(nothing.is_err(), "the known version is not sent again");

    let other_writer = ConfigStore::connect(&url).await.expect("second store");
    other_writer
        .sync(&changed_declarative(), &environment())
        .await
        .expect("second sync");
    other_writer.close().await;
    assert_eq!(next_snapshot(&mut stream).await.version, 2);
    control_plane.stop().await;
}

pub async fn watch_ends_on_shutdown(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut stream = control_plane
        .client
        .watch(WatchRequest { known_version: 0 })
        .await
        .expect("Watch starts")
        .into_inner();
    next_snapshot(&mut stream).await;
    control_plane.stop().await;
    let end = tokio::time::timeout(PUBLISH_TIMEOUT, stream.message())
        .await
        .expect("stream ends in time")
        .expect("stream ends cleanly");
    assert!(end.is_none(), "no message after shutdown");
}

pub async fn key_secrets_are_stored_only_as_hashes(url: String) {
    let control_plane = RunningControlPlane::start(&url, &declarative()).await;
    control_plane.stop().await;

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url)
        .await
        .expect("inspect database");
    let rows = sqlx::query("SELECT id, sha256, name, team_id, allowed_models FROM api_keys")
        .fetch_all(&pool)
        .await
        .expect("read api_keys");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for column in ["id", "sha256", "name", "team_id", "allowed_models"] {
            let value: String = row.try_get(column).expect("text column");
            assert!(!value.contains(DEMO_SECRET), "{column} holds the secret");
        }
    }
    let hash: String = sqlx::query_scalar("SELECT sha256 FROM api_keys WHERE id = $1")
        .bind("from-env")
        .fetch_one(&pool)
        .await
        .expect("key row");
    assert_eq!(hash, sha256_hex(DEMO_SECRET));
    pool.close().await;

    if let Some(path) = url.strip_prefix("sqlite://") {
        let bytes = std::fs::read(path).expect("read the SQLite file");
        let leaked = bytes
            .windows(DEMO_SECRET.len())
            .any(|window| window == DEMO_SECRET.as_bytes());
        assert!(!leaked, "the secret appears in the database file");
    }
}

pub async fn concurrent_syncs_serialize(url: String) {
    let first = ConfigStore::connect(&url).await.expect("first store");
    let second = ConfigStore::connect(&url).await.expect("second store");
    let (environment, original, changed) = (environment(), declarative(), changed_declarative());
    let (a, b) = tokio::join!(
        first.sync(&original, &environment),
        second.sync(&changed, &environment),
    );
    let mut versions = [a.expect("first sync"), b.expect("second sync")];
    versions.sort_unstable();
    assert_eq!(versions, [1, 2], "each change gets its own version");
    let snapshot = first.load_snapshot().await.expect("load");
    assert_eq!(snapshot.version, 2);
    first.close().await;
    second.close().await;
}
