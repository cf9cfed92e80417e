//! Snapshot deltas: what changed between two published versions, merged
//! across several versions, and filtered per role like a snapshot.
//!
//! The publisher keeps the deltas of its recent versions. A `Watch` caller
//! that holds one of those versions is sent the merged changes since, not
//! the whole snapshot: with 100,000 keys, one revoked key is one key on the
//! wire.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use switchyard_proto::v1::{
    ObjectRef, Snapshot, SnapshotAudience, SnapshotDelta, config_object::Object,
};

use crate::{
    audience::view_for,
    objects::{ObjectKind, StoredObject},
};

/// How many recent versions' deltas the publisher keeps.
pub(crate) const KEPT_DELTAS: usize = 64;

/// An object's place in a snapshot: kind and id.
type Key = (ObjectKind, String);

/// Every object of a full snapshot, by kind and id.
fn objects_of(snapshot: &Snapshot) -> BTreeMap<Key, StoredObject> {
    let mut objects = BTreeMap::new();
    let mut add = |object: StoredObject| {
        objects.insert((object.kind(), object.id().to_owned()), object);
    };
    snapshot
        .providers
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Provider(o)));
    snapshot
        .deployments
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Deployment(o)));
    snapshot
        .routes
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Route(o)));
    snapshot
        .api_keys
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::ApiKey(o)));
    snapshot
        .teams
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Team(o)));
    snapshot
        .credentials
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Credential(o)));
    snapshot
        .users
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::User(o)));
    snapshot
        .budgets
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::Budget(o)));
    snapshot
        .rate_limits
        .iter()
        .cloned()
        .for_each(|o| add(StoredObject::RateLimit(o)));
    objects
}

/// The changes from `old` to `new` (both full, unfiltered snapshots, every
/// list sorted by id as the store publishes them). A merge of sorted lists:
/// only changed objects are cloned.
pub(crate) fn diff(old: &Snapshot, new: &Snapshot) -> SnapshotDelta {
    let mut delta = SnapshotDelta {
        from_version: old.version,
        to_version: new.version,
        ..SnapshotDelta::default()
    };
    let d = &mut delta;
    diff_list(
        &old.providers,
        &new.providers,
        |o| &o.name,
        StoredObject::Provider,
        d,
    );
    diff_list(
        &old.deployments,
        &new.deployments,
        |o| &o.id,
        StoredObject::Deployment,
        d,
    );
    diff_list(
        &old.routes,
        &new.routes,
        |o| &o.name,
        StoredObject::Route,
        d,
    );
    diff_list(
        &old.api_keys,
        &new.api_keys,
        |o| &o.id,
        StoredObject::ApiKey,
        d,
    );
    diff_list(&old.teams, &new.teams, |o| &o.id, StoredObject::Team, d);
    diff_list(&old.users, &new.users, |o| &o.id, StoredObject::User, d);
    diff_list(
        &old.budgets,
        &new.budgets,
        |o| &o.id,
        StoredObject::Budget,
        d,
    );
    diff_list(
        &old.rate_limits,
        &new.rate_limits,
        |o| &o.id,
        StoredObject::RateLimit,
        d,
    );
    diff_list(
        &old.credentials,
        &new.credentials,
        |o| &o.id,
        StoredObject::Credential,
        d,
    );
    delta
}

/// Adds to `delta` what changed from `old` to `new`, two lists sorted by id.
fn diff_list<T: Clone + PartialEq>(
    old: &[T],
    new: &[T],
    id: impl Fn(&T) -> &String,
    wrap: impl Fn(T) -> StoredObject,
    delta: &mut SnapshotDelta,
) {
    let (mut i, mut j) = (0, 0);
    let removed = |object: &T, delta: &mut SnapshotDelta| {
        let object = wrap(object.clone());
        delta
            .removed
            .push(object_ref(&(object.kind(), object.id().to_owned())));
    };
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(before), Some(after)) => id(before).cmp(id(after)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                removed(&old[i], delta);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                delta.upserted.push(wrap(new[j].clone()).into_proto());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if old[i] != new[j] {
                    delta.upserted.push(wrap(new[j].clone()).into_proto());
                }
                i += 1;
                j += 1;
            }
        }
    }
}

fn object_ref((kind, id): &Key) -> ObjectRef {
    ObjectRef {
        kind: kind.to_proto() as i32,
        id: id.clone(),
    }
}

/// One delta from the first of `chain`'s versions to the last's. `chain`
/// must be consecutive (each delta starting where the previous ends).
pub(crate) fn merge<'a>(
    chain: impl IntoIterator<Item = &'a SnapshotDelta>,
) -> Option<SnapshotDelta> {
    let mut chain = chain.into_iter().peekable();
    let from_version = chain.peek()?.from_version;
    let mut to_version = from_version;
    // `None` marks a removal.
    let mut changes: BTreeMap<Key, Option<StoredObject>> = BTreeMap::new();
    for delta in chain {
        if delta.from_version != to_version {
            return None;
        }
        to_version = delta.to_version;
        for removed in &delta.removed {
            let kind = switchyard_proto::v1::ObjectKind::try_from(removed.kind)
                .ok()
                .and_then(ObjectKind::from_proto)?;
            changes.insert((kind, removed.id.clone()), None);
        }
        for object in &delta.upserted {
            let object = StoredObject::from_proto(object.clone())?;
            changes.insert((object.kind(), object.id().to_owned()), Some(object));
        }
    }
    let mut merged = SnapshotDelta {
        from_version,
        to_version,
        ..SnapshotDelta::default()
    };
    for (key, change) in changes {
        match change {
            Some(object) => merged.upserted.push(object.into_proto()),
            None => merged.removed.push(object_ref(&key)),
        }
    }
    Some(merged)
}

/// The deltas in `kept` that lead from `held` to `current`, merged; `None`
/// when they no longer reach back that far.
pub(crate) fn since(
    kept: &VecDeque<Arc<SnapshotDelta>>,
    held: u64,
    current: u64,
) -> Option<SnapshotDelta> {
    let start = kept.iter().position(|delta| delta.from_version == held)?;
    let merged = merge(kept.iter().skip(start).map(|delta| delta.as_ref()))?;
    (merged.to_version == current).then_some(merged)
}

/// Whether `audience`'s view holds objects of `kind` (see [`view_for`]).
fn visible(kind: ObjectKind, audience: SnapshotAudience) -> bool {
    use ObjectKind::*;
    match audience {
        SnapshotAudience::Edge => matches!(kind, ApiKey | Team | Route | Budget | RateLimit),
        SnapshotAudience::Router => !matches!(kind, Provider | Credential),
        SnapshotAudience::Adapter => matches!(kind, Provider | Deployment | Credential),
        SnapshotAudience::Unspecified => false,
    }
}

/// The part of `delta` that `audience` may see, stripped as its snapshots are.
pub(crate) fn delta_view(delta: &SnapshotDelta, audience: SnapshotAudience) -> SnapshotDelta {
    // Filter the upserted objects the way a snapshot is filtered.
    let mut partial = Snapshot::default();
    for object in &delta.upserted {
        match object.object.clone() {
            Some(Object::Provider(o)) => partial.providers.push(o),
            Some(Object::Deployment(o)) => partial.deployments.push(o),
            Some(Object::Route(o)) => partial.routes.push(o),
            Some(Object::Key(o)) => partial.api_keys.push(o),
            Some(Object::Team(o)) => partial.teams.push(o),
            Some(Object::User(o)) => partial.users.push(o),
            Some(Object::Budget(o)) => partial.budgets.push(o),
            Some(Object::RateLimit(o)) => partial.rate_limits.push(o),
            Some(Object::Credential(o)) => partial.credentials.push(o),
            None => {}
        }
    }
    let view = view_for(&partial, audience);
    let upserted = objects_of(&view)
        .into_values()
        .map(StoredObject::into_proto)
        .collect();
    let removed = delta
        .removed
        .iter()
        .filter(|removed| {
            switchyard_proto::v1::ObjectKind::try_from(removed.kind)
                .ok()
                .and_then(ObjectKind::from_proto)
                .is_some_and(|kind| visible(kind, audience))
        })
        .cloned()
        .collect();
    SnapshotDelta {
        from_version: delta.from_version,
        to_version: delta.to_version,
        upserted,
        removed,
        audience: audience as i32,
    }
}

#[cfg(test)]
mod tests {
    use switchyard_common::snapshot::delta::apply_delta;
    use switchyard_proto::v1::{ApiKey, Provider, Team};

    use super::*;

    fn key(id: &str, disabled: bool) -> ApiKey {
        ApiKey {
            id: id.to_owned(),
            sha256: "ab".repeat(32),
            disabled,
            ..ApiKey::default()
        }
    }

    fn snapshot(version: u64, keys: Vec<ApiKey>, teams: &[&str]) -> Snapshot {
        Snapshot {
            version,
            api_keys: keys,
            teams: teams
                .iter()
                .map(|id| Team {
                    id: (*id).to_owned(),
                    ..Team::default()
                })
                .collect(),
            providers: vec![Provider {
                name: "openai".to_owned(),
                ..Provider::default()
            }],
            // A credential from version 2 on.
            credentials: (version >= 2)
                .then(|| switchyard_proto::v1::Credential {
                    id: "openai-main".to_owned(),
                    provider: "openai".to_owned(),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn merged_deltas_turn_the_old_view_into_the_new_one_for_every_role() {
        let v1 = snapshot(1, vec![key("a", false), key("b", false)], &["t1"]);
        let v2 = snapshot(
            2,
            vec![key("a", true), key("b", false), key("c", false)],
            &["t1"],
        );
        let v3 = snapshot(3, vec![key("a", true), key("c", false)], &["t2"]);
        let kept = VecDeque::from([Arc::new(diff(&v1, &v2)), Arc::new(diff(&v2, &v3))]);
        let merged = since(&kept, 1, 3).expect("reaches back to 1");
        assert!(
            since(&kept, 0, 3).is_none(),
            "no delta from a version not kept"
        );
        for audience in [
            SnapshotAudience::Edge,
            SnapshotAudience::Router,
            SnapshotAudience::Adapter,
        ] {
            let mut held = view_for(&v1, audience);
            apply_delta(&mut held, delta_view(&merged, audience)).expect("applies");
            assert_eq!(held, view_for(&v3, audience), "{audience:?}");
        }
    }

    #[test]
    fn an_unchanged_object_is_not_resent() {
        let v1 = snapshot(2, vec![key("a", false), key("b", false)], &[]);
        let v2 = snapshot(3, vec![key("a", false), key("b", true)], &[]);
        let delta = diff(&v1, &v2);
        assert_eq!(delta.upserted.len(), 1);
        assert!(delta.removed.is_empty());
        let edge = delta_view(&delta, SnapshotAudience::Edge);
        assert_eq!(edge.upserted.len(), 1);
        let adapter = delta_view(&delta, SnapshotAudience::Adapter);
        assert!(adapter.upserted.is_empty(), "adapters see no keys");
    }
}
