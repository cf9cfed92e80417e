//! The scenarios, each taking the URL of a fresh database.

use std::time::Duration;

use sqlx::Row;
use switchyard_control_plane::{ConfigStore, ObjectKind, StoredObject, sha256_hex};
use switchyard_proto::v1::{
    FallbackStrategy, Money, Owner, Route, SecretRef, Snapshot, SnapshotAudience, TimeoutPolicy,
    WatchRequest, route::Strategy, secret_ref::Source,
};

use crate::fixtures::{
    DEMO_SECRET, RunningControlPlane, Watched, changed_declarative, declarative, environment,
};

/// How long a scenario waits for a published change.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

async fn next_snapshot(watched: &mut Watched) -> Snapshot {
    watched.next_within(PUBLISH_TIMEOUT).await
}

fn route<'a>(snapshot: &'a Snapshot, name: &str) -> &'a Route {
    snapshot
        .routes
        .iter()
        .find(|route| route.name == name)
        .expect("route is in the snapshot")
}

fn cache_ttl_ms(route: &Route) -> u64 {
    route.cache.map_or(0, |cache| cache.ttl_ms)
}

fn watch(known_version: u64) -> WatchRequest {
    WatchRequest {
        known_version,
        audience: SnapshotAudience::Router as i32,
    }
}

fn usd(nanos: i64) -> Option<Money> {
    Some(Money {
        nanos,
        currency: "USD".to_owned(),
    })
}

pub async fn sync_publishes_declared_objects(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let adapter = control_plane.snapshot_for(SnapshotAudience::Adapter).await;
    assert_eq!(adapter.version, 1);

    let providers: Vec<&str> = adapter.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(providers, ["mock", "openai"]);
    let openai = &adapter.providers[1];
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
    let mock = &adapter.providers[0];
    assert_eq!((mock.base_url.as_str(), mock.timeout_ms), ("", 0));
    assert!(mock.options.is_empty() && mock.secrets.is_empty());
    assert_eq!(mock.api_key, None);
    let meta = openai.meta.expect("objects carry meta");
    assert_eq!((meta.owner, meta.revision), (Owner::File as i32, 1));

    let snapshot = control_plane.snapshot().await;
    let routes: Vec<&str> = snapshot.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(routes, ["demo", "gpt"]);
    let demo = route(&snapshot, "demo");
    assert_eq!(cache_ttl_ms(demo), 300_000);
    assert_eq!(demo.owned_by, "switchyard");
    let gpt = route(&snapshot, "gpt");
    assert_eq!(
        gpt.strategy,
        Some(Strategy::Fallback(FallbackStrategy {
            deployments: vec!["openai-mini".to_owned(), "mock-2".to_owned()],
        }))
    );
    assert_eq!((gpt.owned_by.as_str(), cache_ttl_ms(gpt)), ("openai", 0));
    assert_eq!(gpt.cost_ceiling_nanos, 250_000_000);
    assert_eq!(gpt.tier_routes["free"], "demo");
    assert_eq!(
        gpt.shadow
            .as_ref()
            .map(|s| (s.deployment.as_str(), s.percent)),
        Some(("mock-2", 5))
    );
    assert_eq!(gpt.slo.map(|slo| slo.first_token_p95_ms), Some(2_000));
    assert_eq!(
        gpt.hedge.map(|h| (h.after_ms, h.after_p95)),
        Some((3_000, true))
    );
    assert_eq!(
        gpt.timeout,
        Some(TimeoutPolicy {
            request_ms: 90_000,
            idle_ms: 15_000,
            ..TimeoutPolicy::default()
        })
    );
    let deployment = |id: &str| {
        snapshot
            .deployments
            .iter()
            .find(|deployment| deployment.id == id)
            .unwrap_or_else(|| panic!("deployment {id}"))
    };
    let implicit = deployment("demo/mock/mock-1");
    let pricing = implicit.pricing.clone().expect("priced");
    assert_eq!(pricing.input_per_million, usd(150_000_000));
    assert_eq!(pricing.output_per_million, usd(600_000_000));
    assert_eq!(deployment("openai-mini").upstream_model, "gpt-4o-mini");
    assert_eq!(
        deployment("openai-mini").timeout,
        Some(TimeoutPolicy {
            first_token_ms: 20_000,
            connect_ms: 2_000,
            ..TimeoutPolicy::default()
        })
    );
    assert_eq!(deployment("mock-2").pricing, None);

    let keys: Vec<&str> = snapshot.api_keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(keys, ["demo", "from-env"]);
    let demo_key = &snapshot.api_keys[0];
    assert_eq!(
        (demo_key.name.as_str(), demo_key.team_id.as_str()),
        ("Demo key", "default")
    );
    assert!(demo_key.allowed_models.is_empty() && !demo_key.disabled);
    let env_key = &snapshot.api_keys[1];
    assert_eq!(env_key.allowed_models, ["demo"]);
    assert!(env_key.disabled);
    assert_eq!(snapshot.teams[0].name, "Default team");
    assert_eq!(snapshot.teams[0].tier, "premium");
    assert_eq!(snapshot.teams[0].allowed_models, ["gpt", "demo"]);
    assert_eq!(snapshot.users[0].team_id, "default");
    assert_eq!(snapshot.budgets[0].limit, usd(250_000_000_000));
    assert_eq!(snapshot.rate_limits[0].requests_per_minute, 60);

    let edge = control_plane.snapshot_for(SnapshotAudience::Edge).await;
    assert_eq!(
        edge.api_keys[0].sha256,
        sha256_hex("abc"),
        "hash is lowercased"
    );
    assert_eq!(edge.api_keys[1].sha256, sha256_hex(DEMO_SECRET));

    control_plane.stop().await;
}

pub async fn views_for_edges_and_routers_hold_no_provider_endpoint_or_credential(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    for audience in [SnapshotAudience::Edge, SnapshotAudience::Router] {
        let view = control_plane.snapshot_for(audience).await;
        assert!(view.providers.is_empty(), "{audience:?} sees providers");
        let text = format!("{view:?}");
        for secret_or_endpoint in [
            "OPENAI_API_KEY",
            "api.openai.com",
            "/run/secrets",
            "org-123",
        ] {
            assert!(
                !text.contains(secret_or_endpoint),
                "{audience:?} sees {secret_or_endpoint}"
            );
        }
    }
    let router = control_plane.snapshot_for(SnapshotAudience::Router).await;
    assert!(
        router.api_keys.iter().all(|key| key.sha256.is_empty()),
        "routers get no key hashes"
    );
    let nothing = control_plane
        .snapshot_for(SnapshotAudience::Unspecified)
        .await;
    assert!(
        nothing.routes.is_empty() && nothing.providers.is_empty() && nothing.api_keys.is_empty()
    );
    control_plane.stop().await;
}

fn api_route(name: &str, deployment: &str) -> StoredObject {
    StoredObject::Route(Route {
        name: name.to_owned(),
        strategy: Some(Strategy::Fallback(FallbackStrategy {
            deployments: vec![deployment.to_owned()],
        })),
        owned_by: "api".to_owned(),
        ..Route::default()
    })
}

pub async fn api_objects_survive_a_restart_with_a_changed_file(url: String) {
    let first = RunningControlPlane::start(&url, &declarative()).await;
    first.stop().await;
    let store = ConfigStore::connect(&url).await.expect("store");
    let revision = store
        .put_api_object(api_route("from-api", "mock-2"))
        .await
        .expect("API write");
    assert_eq!(revision, 1);
    let revision = store
        .put_api_object(api_route("from-api", "openai-mini"))
        .await
        .expect("API update");
    assert_eq!(revision, 2, "a change bumps the object's revision");
    store.close().await;

    // The file changes (and drops the `gpt` route); the API's route stays.
    let mut changed = changed_declarative();
    changed.routes.clear();
    let mut restarted = RunningControlPlane::start(&url, &changed).await;
    let snapshot = restarted.snapshot().await;
    let kept = route(&snapshot, "from-api");
    let meta = kept.meta.expect("meta");
    assert_eq!((meta.owner, meta.revision), (Owner::Api as i32, 2));
    assert!(
        snapshot.routes.iter().all(|route| route.name != "gpt"),
        "a file-owned route that left the file is pruned"
    );
    let demo = route(&snapshot, "demo");
    assert_eq!(cache_ttl_ms(demo), 60_000);
    assert_eq!(demo.meta.map(|meta| meta.revision), Some(2));
    restarted.stop().await;
}

pub async fn api_writes_to_file_owned_objects_are_refused(url: String) {
    let control_plane = RunningControlPlane::start(&url, &declarative()).await;
    control_plane.stop().await;
    let store = ConfigStore::connect(&url).await.expect("store");
    let before = store.version().await.expect("version");
    let error = store
        .put_api_object(api_route("gpt", "mock-2"))
        .await
        .expect_err("the file owns `gpt`");
    assert!(error.to_string().contains("config file"), "{error}");
    let error = store
        .delete_api_object(ObjectKind::Route, "demo")
        .await
        .expect_err("the file owns `demo`");
    assert!(error.to_string().contains("change it there"), "{error}");
    assert_eq!(
        store.version().await.expect("version"),
        before,
        "nothing changed"
    );

    // And the file may not take over an object the API owns.
    store
        .put_api_object(api_route("taken", "mock-2"))
        .await
        .expect("API write");
    store.close().await;
    let mut declarative = declarative();
    declarative.routes[0].name = "taken".to_owned();
    let error = ConfigStore::connect(&url)
        .await
        .expect("store")
        .sync(&declarative, &environment())
        .await
        .expect_err("the API owns `taken`");
    assert!(error.to_string().contains("admin API"), "{error}");
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
    assert_eq!(cache_ttl_ms(route(&bumped, "demo")), 60_000);
    changed.stop().await;
}

pub async fn watch_sends_current_snapshot_then_updates_from_other_writers(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut stream = control_plane.watch(SnapshotAudience::Router).await;
    let initial = next_snapshot(&mut stream).await;
    assert_eq!(initial.version, 1);
    assert_eq!(cache_ttl_ms(route(&initial, "demo")), 300_000);

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
    assert_eq!(cache_ttl_ms(route(&update, "demo")), 60_000);
    assert_eq!(control_plane.snapshot().await, update);
    control_plane.stop().await;
}

pub async fn watch_skips_the_known_version(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let held = control_plane.snapshot().await;
    assert_eq!(held.version, 1);
    let mut raw = control_plane
        .client
        .watch(watch(1))
        .await
        .expect("Watch starts")
        .into_inner();
    let nothing = tokio::time::timeout(Duration::from_millis(300), raw.message()).await;
    assert!(nothing.is_err(), "the known version is not sent again");
    let mut stream = Watched::new(raw, Some(held));

    let other_writer = ConfigStore::connect(&url).await.expect("second store");
    other_writer
        .sync(&changed_declarative(), &environment())
        .await
        .expect("second sync");
    other_writer.close().await;
    // Only the change travels: the `demo` route, not the whole config.
    let message = stream.message(PUBLISH_TIMEOUT).await;
    let delta = message
        .delta
        .expect("a caller at version 1 is sent a delta");
    assert_eq!((delta.from_version, delta.to_version), (1, 2));
    assert_eq!(delta.upserted.len(), 1, "{delta:?}");
    assert!(delta.removed.is_empty());
    control_plane.stop().await;
}

pub async fn watch_ends_on_shutdown(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut stream = control_plane.watch(SnapshotAudience::Router).await;
    next_snapshot(&mut stream).await;
    control_plane.stop().await;
    let end = tokio::time::timeout(PUBLISH_TIMEOUT, stream.stream().message())
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
    let rows = sqlx::query("SELECT id, body FROM config_objects WHERE kind = 'key'")
        .fetch_all(&pool)
        .await
        .expect("read config_objects");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let body: String = row.try_get("body").expect("text column");
        assert!(!body.contains(DEMO_SECRET), "the body holds the secret");
    }
    pool.close().await;
    let store = ConfigStore::connect(&url).await.expect("store");
    let snapshot = store.load_snapshot().await.expect("load");
    store.close().await;
    let key = snapshot
        .api_keys
        .iter()
        .find(|key| key.id == "from-env")
        .expect("key");
    assert_eq!(key.sha256, sha256_hex(DEMO_SECRET));

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

/// A deployment past its sunset, with a successor, is shifted by the
/// control plane once: one `sunset-shift` audit row (which deployment, to
/// which successor, for which routes, when) under the version that
/// publishes it as the deployment's `shifted_at_ms`. Another control plane
/// on the same database, and later polls, shift nothing more; one before
/// its sunset is not shifted.
pub async fn a_sunset_is_shifted_once_by_the_control_plane_with_one_audit_record(url: String) {
    let text = format!(
        "{}\n{}",
        crate::fixtures::CONFIG.replace(
            "deployments:\n",
            "deployments:\n  - {id: retiring, provider: openai, model: gpt-4-legacy, \
             lifecycle: {sunset_date: \"2020-01-01\", successor: openai-mini}}\n  \
             - {id: aging, provider: openai, model: gpt-4o-2025, \
             lifecycle: {deprecated: true, sunset_date: \"2099-01-01\", successor: openai-mini}}\n",
        ),
        "",
    )
    .replace(
        "routes:\n",
        "routes:\n  - {name: legacy, strategy: {fallback: [retiring, aging]}}\n",
    );
    let declarative = switchyard_common::config::load_yaml("sunset.yaml", &text, &environment())
        .expect("valid config");
    let mut control_plane = RunningControlPlane::start(&url, &declarative).await;
    let snapshot = control_plane.snapshot().await;
    let shifted_at = |snapshot: &Snapshot, id: &str| {
        snapshot
            .deployments
            .iter()
            .find(|deployment| deployment.id == id)
            .and_then(|deployment| deployment.lifecycle.as_ref())
            .map_or(0, |lifecycle| lifecycle.shifted_at_ms)
    };
    assert!(
        shifted_at(&snapshot, "retiring") > 0,
        "published from the first snapshot"
    );
    assert_eq!(shifted_at(&snapshot, "aging"), 0, "before its sunset");
    let shifts = |records: Vec<switchyard_control_plane::AuditRecord>| {
        records
            .into_iter()
            .filter(|record| record.action == "sunset-shift")
            .collect::<Vec<_>>()
    };
    let recorded = shifts(control_plane.store.audit(100).await.expect("audit"));
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let record = &recorded[0];
    assert_eq!(
        (
            record.actor.as_str(),
            record.kind.as_str(),
            record.id.as_str()
        ),
        ("control-plane", "deployment", "retiring")
    );
    assert_eq!(record.version, snapshot.version);
    let after: serde_json::Value = serde_json::from_str(&record.after).expect("JSON");
    assert_eq!(after["from"], "retiring");
    assert_eq!(after["to"], "openai-mini");
    assert_eq!(after["routes"], serde_json::json!(["legacy"]));

    // Routers see it in their view; later polls and a second control plane
    // on the same database shift nothing more.
    let router = control_plane.snapshot_for(SnapshotAudience::Router).await;
    assert!(shifted_at(&router, "retiring") > 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let replica = RunningControlPlane::start(&url, &declarative).await;
    assert!(
        replica
            .store
            .shift_due("test")
            .await
            .expect("checked")
            .is_empty()
    );
    let recorded = shifts(control_plane.store.audit(100).await.expect("audit"));
    assert_eq!(recorded.len(), 1, "shifted once: {recorded:?}");
    replica.stop().await;
    control_plane.stop().await;
}
