//! The admin API's scenarios, each on a fresh database.

use std::time::Duration;

use switchyard_common::config::{Environment, load_yaml};
use switchyard_control_plane::{Declarative, StoredConfig, StoredObject, to_declarative};
use switchyard_proto::v1::{
    AdminRole, ApiKey, ApplyRequest, Budget, BudgetPeriod, ChangeAction, ConfigObject,
    CreateAdminTokenRequest, CreateKeyRequest, CreateObjectRequest, DeleteObjectRequest,
    ExportRequest, FallbackStrategy, GetObjectRequest, ListAdminTokensRequest, ListAuditRequest,
    ListObjectsRequest, Money, ObjectKind, RevokeKeyRequest, Route, Scope, SnapshotAudience, Team,
    UpdateObjectRequest, WhoAmIRequest, config_object::Object, route::Strategy, scope::Subject,
};
use tonic::Code;

use crate::fixtures::{RunningControlPlane, as_admin, declarative, with_token};

/// How long a committed change may take to reach a `Watch` stream: the
/// issue's bound for a revoked key to reach every edge.
const PUBLISH_BOUND: Duration = Duration::from_secs(1);

fn team(id: &str) -> ConfigObject {
    ConfigObject {
        object: Some(Object::Team(Team {
            id: id.to_owned(),
            name: format!("Team {id}"),
            ..Team::default()
        })),
    }
}

fn budget(id: &str, team: &str, nanos: i64) -> ConfigObject {
    ConfigObject {
        object: Some(Object::Budget(Budget {
            id: id.to_owned(),
            scope: Some(Scope {
                subject: Some(Subject::TeamId(team.to_owned())),
            }),
            limit: Some(Money {
                nanos,
                currency: "USD".to_owned(),
            }),
            period: BudgetPeriod::Monthly as i32,
            meta: None,
        })),
    }
}

fn route_to(name: &str, deployment: &str) -> ConfigObject {
    ConfigObject {
        object: Some(Object::Route(Route {
            name: name.to_owned(),
            strategy: Some(Strategy::Fallback(FallbackStrategy {
                deployments: vec![deployment.to_owned()],
            })),
            ..Route::default()
        })),
    }
}

fn revision(object: &ConfigObject) -> u64 {
    let meta = match object.object.as_ref().expect("an object") {
        Object::Team(team) => team.meta,
        Object::Budget(budget) => budget.meta,
        Object::Route(route) => route.meta,
        Object::Key(key) => key.meta,
        _ => None,
    };
    meta.expect("meta is set").revision
}

fn with_revision(mut object: ConfigObject, revision: u64) -> ConfigObject {
    let meta = Some(switchyard_proto::v1::ObjectMeta { owner: 0, revision });
    match object.object.as_mut().expect("an object") {
        Object::Budget(budget) => budget.meta = meta,
        Object::Team(team) => team.meta = meta,
        _ => panic!("not used"),
    }
    object
}

async fn create(
    control_plane: &mut RunningControlPlane,
    object: ConfigObject,
) -> Result<ConfigObject, tonic::Status> {
    control_plane
        .admin
        .create(as_admin(CreateObjectRequest {
            object: Some(object),
        }))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn admin_changes_carry_revisions_are_audited_and_published_at_once(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let mut watch = control_plane.watch(SnapshotAudience::Router).await;
    let first_version = watch.next_within(PUBLISH_BOUND).await.version;

    let created = create(&mut control_plane, team("growth"))
        .await
        .expect("created");
    assert_eq!(revision(&created), 1);
    let published = watch.next_within(PUBLISH_BOUND).await;
    assert!(published.version > first_version);
    assert!(published.teams.iter().any(|team| team.id == "growth"));

    let again = create(&mut control_plane, team("growth")).await;
    assert_eq!(again.expect_err("exists").code(), Code::AlreadyExists);

    let created = create(
        &mut control_plane,
        budget("growth-monthly", "growth", 50_000_000_000),
    )
    .await
    .expect("budget created");
    assert_eq!(revision(&created), 1);
    let raised = control_plane
        .admin
        .update(as_admin(UpdateObjectRequest {
            object: Some(with_revision(
                budget("growth-monthly", "growth", 80_000_000_000),
                1,
            )),
        }))
        .await
        .expect("updated at the stored revision")
        .into_inner();
    assert_eq!(revision(&raised), 2);
    let stale = control_plane
        .admin
        .update(as_admin(UpdateObjectRequest {
            object: Some(with_revision(
                budget("growth-monthly", "growth", 90_000_000_000),
                1,
            )),
        }))
        .await
        .expect_err("revision 1 is stale");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert!(
        stale.message().contains("revision 2"),
        "{}",
        stale.message()
    );

    let file_owned = control_plane
        .admin
        .update(as_admin(UpdateObjectRequest {
            object: Some(with_revision(team("default"), 1)),
        }))
        .await
        .expect_err("the file owns `default`");
    assert_eq!(file_owned.code(), Code::FailedPrecondition);

    control_plane
        .admin
        .delete(as_admin(DeleteObjectRequest {
            kind: ObjectKind::Budget as i32,
            id: "growth-monthly".to_owned(),
            revision: 2,
        }))
        .await
        .expect("deleted");
    let gone = control_plane
        .admin
        .get(as_admin(GetObjectRequest {
            kind: ObjectKind::Budget as i32,
            id: "growth-monthly".to_owned(),
        }))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    let audit = control_plane
        .admin
        .list_audit(as_admin(ListAuditRequest { limit: 10 }))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let actions: Vec<(&str, &str, &str, u64, u64)> = audit
        .iter()
        .take(4)
        .map(|entry| {
            (
                entry.actor.as_str(),
                entry.action.as_str(),
                entry.id.as_str(),
                entry.before_revision,
                entry.after_revision,
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("bootstrap", "delete", "growth-monthly", 2, 0),
            ("bootstrap", "update", "growth-monthly", 1, 2),
            ("bootstrap", "create", "growth-monthly", 0, 1),
            ("bootstrap", "create", "growth", 0, 1),
        ]
    );
    assert!(audit[1].before.contains("50") && audit[1].after.contains("80"));
    control_plane.stop().await;
}

pub async fn changes_that_would_break_routing_are_refused_naming_the_field(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let before = control_plane.store.version().await.expect("version");
    let cases = [
        (
            route_to("broken", "no-such-deployment"),
            "routes[broken].strategy.fallback[0]",
        ),
        (budget("negative", "default", -1), "budgets[negative].limit"),
        (budget("nobody", "no-such-team", 1), "budgets[nobody].scope"),
        (
            ConfigObject {
                object: Some(Object::Key(ApiKey {
                    id: "orphan".to_owned(),
                    sha256: "ab".repeat(32),
                    team_id: "no-such-team".to_owned(),
                    ..ApiKey::default()
                })),
            },
            "keys[orphan].team",
        ),
    ];
    for (object, field) in cases {
        let error = create(&mut control_plane, object)
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Code::InvalidArgument, "{}", error.message());
        assert!(
            error.message().contains(field),
            "{field}: {}",
            error.message()
        );
    }

    // A key with another key's secret, and a key a budget is scoped to.
    let twin = create(
        &mut control_plane,
        ConfigObject {
            object: Some(Object::Key(ApiKey {
                id: "twin".to_owned(),
                sha256: switchyard_control_plane::sha256_hex("abc"),
                ..ApiKey::default()
            })),
        },
    )
    .await
    .expect_err("the `demo` key has that secret");
    assert!(twin.message().contains("same secret"), "{}", twin.message());
    control_plane
        .admin
        .create_key(as_admin(CreateKeyRequest {
            key: Some(ApiKey {
                id: "scoped".to_owned(),
                ..ApiKey::default()
            }),
        }))
        .await
        .expect("a key");
    let mut scoped_budget = budget("per-key", "default", 1);
    if let Some(Object::Budget(budget)) = scoped_budget.object.as_mut() {
        budget.scope = Some(Scope {
            subject: Some(Subject::KeyId("scoped".to_owned())),
        });
    }
    create(&mut control_plane, scoped_budget)
        .await
        .expect("scoped to the key");
    let error = control_plane
        .admin
        .delete(as_admin(DeleteObjectRequest {
            kind: ObjectKind::Key as i32,
            id: "scoped".to_owned(),
            revision: 0,
        }))
        .await
        .expect_err("the budget would be scoped to nothing");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("budgets[per-key].scope"),
        "{}",
        error.message()
    );

    // Deleting a deployment a route uses would leave the route dangling; the
    // file owns these, so make an API pair to try it on.
    create(&mut control_plane, route_to("api-route", "mock-2"))
        .await
        .expect("an API route over a file deployment");
    let error = control_plane
        .admin
        .delete(as_admin(DeleteObjectRequest {
            kind: ObjectKind::Deployment as i32,
            id: "mock-2".to_owned(),
            revision: 0,
        }))
        .await
        .expect_err("the file owns mock-2");
    assert_eq!(error.code(), Code::FailedPrecondition);

    // A cycle of successors.
    let mut cyclic = declarative();
    cyclic.deployments[0].lifecycle = Some(switchyard_control_plane::LifecycleConfig {
        successor: Some("mock-2".to_owned()),
        ..Default::default()
    });
    cyclic.deployments[1].lifecycle = Some(switchyard_control_plane::LifecycleConfig {
        successor: Some("openai-mini".to_owned()),
        ..Default::default()
    });
    let error = StoredConfig::from_declarative(&cyclic, &crate::fixtures::environment())
        .expect_err("a successor cycle");
    assert!(
        error.to_string().contains("lifecycle.successor") && error.to_string().contains("cycle"),
        "{error}"
    );
    assert_eq!(
        control_plane.store.version().await.expect("version"),
        before + 3,
        "only the valid key, budget and route were stored"
    );
    control_plane.stop().await;
}

pub async fn concurrent_updates_of_one_revision_let_exactly_one_win(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    create(
        &mut control_plane,
        budget("shared", "default", 1_000_000_000),
    )
    .await
    .expect("created");
    let updates = (1..=6).map(|dollars| {
        let mut admin = control_plane.admin.clone();
        async move {
            admin
                .update(as_admin(UpdateObjectRequest {
                    object: Some(with_revision(
                        budget("shared", "default", 1_000_000_000 * (dollars + 1)),
                        1,
                    )),
                }))
                .await
        }
    });
    let results = futures::future::join_all(updates).await;
    let won = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for result in results.iter().filter_map(|result| result.as_ref().err()) {
        assert_eq!(result.code(), Code::FailedPrecondition);
    }
    control_plane.stop().await;
}

pub async fn created_keys_are_shown_once_stored_as_hashes_and_revoked_within_a_second(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let created = control_plane
        .admin
        .create_key(as_admin(CreateKeyRequest {
            key: Some(ApiKey {
                id: "ci-bot".to_owned(),
                team_id: "default".to_owned(),
                allowed_models: vec!["demo".to_owned()],
                ..ApiKey::default()
            }),
        }))
        .await
        .expect("key created")
        .into_inner();
    let secret = created.secret.clone();
    assert!(
        secret.starts_with("sk-sy-") && secret.len() == 49,
        "{secret}"
    );
    let key = created.key.expect("key");
    assert_eq!(key.hint, format!("sk-sy-…{}", &secret[secret.len() - 4..]));
    assert_eq!(key.sha256, switchyard_control_plane::sha256_hex(&secret));

    for shown in control_plane.everything_shown(ObjectKind::Key).await {
        assert!(!shown.contains(&secret[6..]), "the secret leaked: {shown}");
    }

    let mut edge = control_plane.watch(SnapshotAudience::Edge).await;
    // The stream starts at whatever is published; the key arrives with it or
    // right after.
    loop {
        let current = edge.next_within(PUBLISH_BOUND).await;
        if current.api_keys.iter().any(|key| key.id == "ci-bot") {
            assert!(
                current
                    .api_keys
                    .iter()
                    .any(|key| key.id == "ci-bot" && !key.disabled)
            );
            break;
        }
    }
    control_plane
        .admin
        .revoke_key(as_admin(RevokeKeyRequest {
            id: "ci-bot".to_owned(),
        }))
        .await
        .expect("revoked");
    let revoked = edge.next_within(PUBLISH_BOUND).await;
    assert!(
        revoked
            .api_keys
            .iter()
            .any(|key| key.id == "ci-bot" && key.disabled)
    );
    control_plane.stop().await;
}

pub async fn admin_tokens_have_roles_and_bad_tokens_are_refused(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let token = |id: &str, role: AdminRole| {
        let mut admin = control_plane.admin.clone();
        let id = id.to_owned();
        async move {
            admin
                .create_admin_token(as_admin(CreateAdminTokenRequest {
                    id,
                    role: role as i32,
                }))
                .await
                .expect("token created")
                .into_inner()
                .secret
        }
    };
    let viewer = token("dashboards", AdminRole::Viewer).await;
    let operator = token("on-call", AdminRole::Operator).await;
    assert!(viewer.starts_with("sy-admin-"));

    let who = control_plane
        .admin
        .who_am_i(with_token(WhoAmIRequest {}, &operator))
        .await
        .expect("known token")
        .into_inner();
    assert_eq!(
        (who.token_id.as_str(), who.role),
        ("on-call", AdminRole::Operator as i32)
    );

    let denied = control_plane
        .admin
        .create(with_token(
            CreateObjectRequest {
                object: Some(budget("b", "default", 1)),
            },
            &viewer,
        ))
        .await
        .expect_err("viewers only read");
    assert_eq!(denied.code(), Code::PermissionDenied);
    control_plane
        .admin
        .create(with_token(
            CreateObjectRequest {
                object: Some(budget("b", "default", 1)),
            },
            &operator,
        ))
        .await
        .expect("operators change budgets");
    let denied = control_plane
        .admin
        .create(with_token(
            CreateObjectRequest {
                object: Some(route_to("r", "mock-2")),
            },
            &operator,
        ))
        .await
        .expect_err("operators do not change routes");
    assert_eq!(denied.code(), Code::PermissionDenied);
    control_plane
        .admin
        .list(with_token(
            ListObjectsRequest {
                kind: ObjectKind::Route as i32,
            },
            &viewer,
        ))
        .await
        .expect("viewers read");

    for bad in ["sy-admin-not-a-token", ""] {
        let refused = control_plane
            .admin
            .list(with_token(
                ListObjectsRequest {
                    kind: ObjectKind::Route as i32,
                },
                bad,
            ))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert!(!refused.message().contains("not-a-token"));
    }
    let tokens = control_plane
        .admin
        .list_admin_tokens(as_admin(ListAdminTokensRequest {}))
        .await
        .expect("list tokens")
        .into_inner();
    let listed = format!("{tokens:?}");
    assert!(listed.contains("on-call") && !listed.contains(&operator[9..]));
    control_plane.stop().await;
}

/// The live state, exported to the file's form and read back.
fn exported_objects(objects: Vec<ConfigObject>) -> (String, Declarative) {
    let objects: Vec<StoredObject> = objects
        .into_iter()
        .map(|object| {
            StoredObject::from_proto(object)
                .expect("an object")
                .without_meta()
        })
        .collect();
    let declarative = to_declarative(&objects);
    let yaml = serde_yaml::to_string(&declarative).expect("yaml");
    let parsed: Declarative = load_yaml("export.yaml", &yaml, &Environment::new()).expect("parses");
    (yaml, parsed)
}

pub async fn apply_shows_a_diff_prunes_and_export_round_trips(url: String) {
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    create(&mut control_plane, team("api-team"))
        .await
        .expect("an API object is exported too");
    let export = control_plane
        .admin
        .export(as_admin(ExportRequest {}))
        .await
        .expect("export")
        .into_inner();
    let (yaml, parsed) = exported_objects(export.objects);
    let objects = |declarative: &Declarative| -> Vec<ConfigObject> {
        StoredConfig::from_declarative(declarative, &Environment::new())
            .expect("the export validates")
            .objects
            .into_values()
            .map(StoredObject::into_proto)
            .collect()
    };
    let dry = control_plane
        .admin
        .apply(as_admin(ApplyRequest {
            objects: objects(&parsed),
            prune: true,
            dry_run: true,
        }))
        .await
        .expect("dry run")
        .into_inner();
    assert!(
        dry.changes.is_empty(),
        "export | apply shows no diff: {:?}",
        dry.changes
    );
    assert_eq!(dry.version, export.version);

    // The round trip is byte-stable.
    let again = control_plane
        .admin
        .export(as_admin(ExportRequest {}))
        .await
        .expect("export")
        .into_inner();
    assert_eq!(exported_objects(again.objects).0, yaml);

    // Change one route, drop another.
    let mut changed = parsed.clone();
    changed.routes.retain(|route| route.name != "gpt");
    let demo = changed
        .routes
        .iter_mut()
        .find(|route| route.name == "demo")
        .expect("demo");
    demo.owned_by = Some("platform".to_owned());
    let dry = control_plane
        .admin
        .apply(as_admin(ApplyRequest {
            objects: objects(&changed),
            prune: true,
            dry_run: true,
        }))
        .await
        .expect("dry run")
        .into_inner();
    let actions: Vec<i32> = dry.changes.iter().map(|change| change.action).collect();
    assert_eq!(
        actions,
        vec![ChangeAction::Update as i32, ChangeAction::Delete as i32],
        "{:?}",
        dry.changes
    );
    assert_eq!(
        control_plane.store.version().await.expect("version"),
        export.version
    );

    let without_prune = control_plane
        .admin
        .apply(as_admin(ApplyRequest {
            objects: objects(&changed),
            prune: false,
            dry_run: false,
        }))
        .await
        .expect("applied")
        .into_inner();
    assert_eq!(
        without_prune.changes.len(),
        1,
        "only the update without --prune"
    );
    assert_eq!(without_prune.version, export.version + 1);
    let pruned = control_plane
        .admin
        .apply(as_admin(ApplyRequest {
            objects: objects(&changed),
            prune: true,
            dry_run: false,
        }))
        .await
        .expect("applied")
        .into_inner();
    assert_eq!(pruned.changes.len(), 1, "the prune deletes `gpt`");
    let snapshot = control_plane.snapshot_at_least(pruned.version).await;
    assert!(snapshot.routes.iter().all(|route| route.name != "gpt"));
    assert!(
        snapshot.teams.iter().any(|team| team.id == "api-team"),
        "API objects stay"
    );
    control_plane.stop().await;
}

/// Keys in the large config.
const MANY_KEYS: usize = 100_000;

/// With 100,000 keys, revoking one sends edges that one key, not the config.
pub async fn with_100k_keys_a_revocation_travels_as_a_one_key_delta(url: String) {
    let mut declarative = declarative();
    let template = declarative.keys[0].clone();
    for index in 0..MANY_KEYS {
        let mut key = template.clone();
        key.id = format!("bulk-{index:06}");
        key.name = None;
        key.sha256 = Some(switchyard_control_plane::sha256_hex(&format!(
            "bulk secret {index}"
        )));
        declarative.keys.push(key);
    }
    let started = std::time::Instant::now();
    let mut control_plane = RunningControlPlane::start(&url, &declarative).await;
    let loaded = started.elapsed();

    let mut edge = control_plane.watch(SnapshotAudience::Edge).await;
    let first = edge.message(Duration::from_secs(30)).await;
    let full_bytes = prost::Message::encoded_len(&first);
    let full = first.snapshot.expect("the first message is the whole view");
    assert_eq!(full.api_keys.len(), MANY_KEYS + 2);
    edge.held = Some(full);

    // A key created through the API arrives as itself.
    control_plane
        .admin
        .create_key(as_admin(CreateKeyRequest {
            key: Some(ApiKey {
                id: "launch-key".to_owned(),
                team_id: "default".to_owned(),
                ..ApiKey::default()
            }),
        }))
        .await
        .expect("created");
    let created = edge.next_within(Duration::from_secs(30)).await;
    assert_eq!(created.api_keys.len(), MANY_KEYS + 3);

    let revoked_at = std::time::Instant::now();
    control_plane
        .admin
        .revoke_key(as_admin(RevokeKeyRequest {
            id: "launch-key".to_owned(),
        }))
        .await
        .expect("revoked");
    let committed = revoked_at.elapsed();
    let message = edge.message(Duration::from_secs(30)).await;
    let arrived = revoked_at.elapsed();
    let delta_bytes = prost::Message::encoded_len(&message);
    let delta = message.delta.clone().expect("a delta, not the whole view");
    assert_eq!(delta.upserted.len(), 1);
    assert!(delta.removed.is_empty());
    assert!(
        delta_bytes < 1024,
        "one key is {delta_bytes} bytes on the wire, against {full_bytes} for the view"
    );
    let mut held = edge.held.take().expect("held");
    switchyard_common::snapshot::delta::apply_delta(&mut held, delta).expect("applies");
    let key = held
        .api_keys
        .iter()
        .find(|key| key.id == "launch-key")
        .expect("still listed");
    assert!(key.disabled);
    eprintln!(
        "{MANY_KEYS} keys: loaded in {loaded:?}; full view {full_bytes} bytes; \
         revoke committed in {committed:?}, delta of {delta_bytes} bytes at the edge after {arrived:?}"
    );
    control_plane.stop().await;
}

/// Two control planes on one PostgreSQL database: a change committed through
/// one reaches the other's watchers at once by `LISTEN/NOTIFY`, long before
/// its next poll.
pub async fn a_change_through_one_replica_is_notified_to_the_other(url: String) {
    let poll = Duration::from_secs(60);
    let mut first = RunningControlPlane::start_polling_every(&url, &declarative(), poll).await;
    let mut second = RunningControlPlane::start_polling_every(&url, &declarative(), poll).await;
    let mut watched = second.watch(SnapshotAudience::Router).await;
    let before = watched.next_within(PUBLISH_BOUND).await;
    // The listener may still be connecting: give it the moment it needs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    create(&mut first, team("notified")).await.expect("created");
    let after = watched.next_within(PUBLISH_BOUND).await;
    assert!(after.version > before.version);
    assert!(after.teams.iter().any(|team| team.id == "notified"));
    first.stop().await;
    second.stop().await;
}

/// A stored credential: encrypted at rest, sent only to adapters, never
/// shown by the API or the audit log; a provider may use it; after a master
/// key rotation `RewrapCredentials` moves it to the new key, and the old key
/// can then go.
pub async fn stored_credentials_are_encrypted_never_shown_and_rewrapped_after_rotation(
    url: String,
) {
    use switchyard_proto::v1::{RewrapCredentialsRequest, SetCredentialRequest};

    const VALUE: &str = "sk-live-a-stored-provider-credential-7Qe9";
    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let set = control_plane
        .admin
        .set_credential(as_admin(SetCredentialRequest {
            id: "openai-main".to_owned(),
            provider: "openai".to_owned(),
            value: VALUE.to_owned(),
        }))
        .await
        .expect("stored")
        .into_inner();
    let Some(Object::Credential(shown)) = set.object else {
        panic!("a credential");
    };
    assert!(shown.sealed.is_none(), "the API never returns the value");
    assert_eq!(shown.master_key_id, "k1");
    assert_eq!(shown.hint, "sk-liv…7Qe9");

    // Only SetCredential stores one: not Create, not a file's Apply.
    let smuggled = ConfigObject {
        object: Some(Object::Credential(switchyard_proto::v1::Credential {
            id: "smuggled".to_owned(),
            provider: "openai".to_owned(),
            ..Default::default()
        })),
    };
    let refused = create(&mut control_plane, smuggled.clone())
        .await
        .expect_err("not through Create");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let refused = control_plane
        .admin
        .apply(as_admin(ApplyRequest {
            objects: vec![smuggled],
            prune: false,
            dry_run: false,
        }))
        .await
        .expect_err("not through Apply");
    assert_eq!(refused.code(), Code::InvalidArgument);

    // A provider of the file uses it; a missing one is refused by name.
    let mut uses_it = declarative();
    uses_it.providers[1].api_key = Some(switchyard_common::SecretSource::credential("openai-main"));
    control_plane
        .store
        .sync(&uses_it, &crate::fixtures::environment())
        .await
        .expect("the file may name a stored credential");
    let mut missing = declarative();
    missing.providers[1].api_key = Some(switchyard_common::SecretSource::credential("nope"));
    let error = control_plane
        .store
        .sync(&missing, &crate::fixtures::environment())
        .await
        .expect_err("no such credential");
    assert!(
        error.to_string().contains("providers[openai].api_key"),
        "{error}"
    );
    // So is one of several keys.
    let mut one_of_several = declarative();
    one_of_several.providers[1].api_key = None;
    one_of_several.providers[1].api_keys = std::collections::BTreeMap::from([
        (
            "main".to_owned(),
            switchyard_common::SecretSource::credential("openai-main"),
        ),
        (
            "spare".to_owned(),
            switchyard_common::SecretSource::credential("nope"),
        ),
    ]);
    let error = control_plane
        .store
        .sync(&one_of_several, &crate::fixtures::environment())
        .await
        .expect_err("no such credential");
    assert!(
        error
            .to_string()
            .contains("providers[openai].api_keys.spare"),
        "{error}"
    );
    let in_use = control_plane
        .admin
        .delete(as_admin(DeleteObjectRequest {
            kind: ObjectKind::Credential as i32,
            id: "openai-main".to_owned(),
            revision: 0,
        }))
        .await
        .expect_err("a provider uses it");
    assert_eq!(in_use.code(), Code::InvalidArgument);

    // Only adapters are sent it, encrypted.
    let adapter = control_plane
        .snapshot_at_least(control_plane.store.version().await.expect("version"))
        .await;
    assert!(adapter.credentials.is_empty(), "routers see no credentials");
    let adapter = control_plane.snapshot_for(SnapshotAudience::Adapter).await;
    let sent = adapter
        .credentials
        .first()
        .expect("adapters get it")
        .clone();
    assert!(sent.sealed.is_some());
    assert!(
        control_plane
            .snapshot_for(SnapshotAudience::Edge)
            .await
            .credentials
            .is_empty()
    );

    // The value is nowhere: not in the API, the audit log, the rows, or a
    // snapshot.
    let mut shown = control_plane.everything_shown(ObjectKind::Credential).await;
    shown.push(format!("{adapter:?}"));
    for shown in shown {
        assert!(
            !shown.contains("a-stored-provider"),
            "the value leaked: {shown}"
        );
    }

    // Rotation: k2 wraps from now on, k1 still unwraps; rewrap, drop k1.
    control_plane.rotate_master_keys(&["k2", "k1"]);
    let rewrapped = control_plane
        .admin
        .rewrap_credentials(as_admin(RewrapCredentialsRequest {}))
        .await
        .expect("rewrapped")
        .into_inner();
    assert_eq!(
        (rewrapped.rewrapped, rewrapped.master_key_id.as_str()),
        (1, "k2")
    );
    control_plane.rotate_master_keys(&["k2"]);
    let version = control_plane.store.version().await.expect("version");
    control_plane.snapshot_at_least(version).await;
    let after = control_plane.snapshot_for(SnapshotAudience::Adapter).await;
    let credential = after.credentials.first().expect("still stored");
    assert_eq!(credential.master_key_id, "k2");
    let sealed = credential.sealed.clone().expect("sealed");
    let keyring = switchyard_common::envelope::Keyring::new(
        switchyard_common::SecretSource::file(control_plane.master_keys_file.clone()),
        crate::fixtures::environment(),
    );
    let opened = keyring
        .open(
            "openai-main",
            &switchyard_common::envelope::Sealed {
                master_key_id: credential.master_key_id.clone(),
                wrapped_key: sealed.wrapped_key,
                key_nonce: sealed.key_nonce,
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
            },
        )
        .expect("opens with the new key alone");
    assert_eq!(opened, VALUE.as_bytes());
    control_plane.stop().await;
}

/// Adapters report each credential decryption; it lands in the audit log
/// with the reader as actor. Another proven role may not report.
pub async fn credential_reads_reported_by_adapters_are_audited(url: String) {
    use switchyard_common::auth::{CallerRole, ServiceRole};
    use switchyard_proto::v1::{CredentialRead, RecordCredentialReadsRequest};

    let mut control_plane = RunningControlPlane::start(&url, &declarative()).await;
    let read = CredentialRead {
        credential_id: "openai-main".to_owned(),
        revision: 3,
        master_key_id: "k1".to_owned(),
        reader: "adapter pod-7 pid 42".to_owned(),
        at_unix_ms: 1_796_000_000_000,
    };
    let request = |role: Option<ServiceRole>| {
        let mut request = tonic::Request::new(RecordCredentialReadsRequest {
            reads: vec![read.clone()],
        });
        if let Some(role) = role {
            request.extensions_mut().insert(CallerRole(role));
        }
        request
    };
    let refused = control_plane
        .client
        .record_credential_reads(request(Some(ServiceRole::Router)))
        .await
        .expect_err("a router decrypts nothing");
    assert_eq!(refused.code(), Code::PermissionDenied);
    for role in [Some(ServiceRole::Adapter), None] {
        control_plane
            .client
            .record_credential_reads(request(role))
            .await
            .expect("an adapter reports");
    }
    let entries = control_plane
        .admin
        .list_audit(as_admin(ListAuditRequest { limit: 10 }))
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let reads: Vec<_> = entries
        .iter()
        .filter(|entry| entry.action == "decrypt")
        .collect();
    assert_eq!(reads.len(), 2, "{entries:?}");
    for entry in reads {
        assert_eq!(
            (
                entry.actor.as_str(),
                entry.kind.as_str(),
                entry.id.as_str(),
                entry.after_revision,
                entry.at_ms
            ),
            (
                "adapter pod-7 pid 42",
                "credential",
                "openai-main",
                3,
                1_796_000_000_000
            )
        );
        assert!(entry.after.contains("k1"), "{}", entry.after);
    }
    control_plane.stop().await;
}
