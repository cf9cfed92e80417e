//! Applying a `SnapshotDelta` to the snapshot a holder keeps.
//!
//! Every list in a snapshot is sorted by id (the control plane publishes
//! them so), so each upsert and removal is a binary search: a change to one
//! of 100,000 keys costs a search and a move, not a rebuild.

use switchyard_proto::v1::{
    ConfigObject, ObjectKind, ObjectRef, Snapshot, SnapshotDelta, config_object::Object,
};

/// Why a delta could not be applied; the holder then asks for a full snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the delta starts at version {from}, but version {held} is held")]
pub struct DeltaMismatch {
    /// The version the delta starts from.
    pub from: u64,
    /// The version held.
    pub held: u64,
}

/// Turns `snapshot` into the snapshot at `delta.to_version`.
pub fn apply_delta(snapshot: &mut Snapshot, delta: SnapshotDelta) -> Result<(), DeltaMismatch> {
    if snapshot.version != delta.from_version {
        return Err(DeltaMismatch {
            from: delta.from_version,
            held: snapshot.version,
        });
    }
    for removed in &delta.removed {
        remove(snapshot, removed);
    }
    for ConfigObject { object } in delta.upserted {
        let Some(object) = object else {
            continue;
        };
        match object {
            Object::Provider(object) => upsert(&mut snapshot.providers, object, |o| &o.name),
            Object::Deployment(object) => upsert(&mut snapshot.deployments, object, |o| &o.id),
            Object::Route(object) => upsert(&mut snapshot.routes, object, |o| &o.name),
            Object::Key(object) => upsert(&mut snapshot.api_keys, object, |o| &o.id),
            Object::Team(object) => upsert(&mut snapshot.teams, object, |o| &o.id),
            Object::User(object) => upsert(&mut snapshot.users, object, |o| &o.id),
            Object::Budget(object) => upsert(&mut snapshot.budgets, object, |o| &o.id),
            Object::RateLimit(object) => upsert(&mut snapshot.rate_limits, object, |o| &o.id),
            Object::Credential(object) => upsert(&mut snapshot.credentials, object, |o| &o.id),
        }
    }
    snapshot.version = delta.to_version;
    Ok(())
}

fn remove(snapshot: &mut Snapshot, removed: &ObjectRef) {
    let id = removed.id.as_str();
    match ObjectKind::try_from(removed.kind) {
        Ok(ObjectKind::Provider) => drop_id(&mut snapshot.providers, id, |o| &o.name),
        Ok(ObjectKind::Deployment) => drop_id(&mut snapshot.deployments, id, |o| &o.id),
        Ok(ObjectKind::Route) => drop_id(&mut snapshot.routes, id, |o| &o.name),
        Ok(ObjectKind::Key) => drop_id(&mut snapshot.api_keys, id, |o| &o.id),
        Ok(ObjectKind::Team) => drop_id(&mut snapshot.teams, id, |o| &o.id),
        Ok(ObjectKind::User) => drop_id(&mut snapshot.users, id, |o| &o.id),
        Ok(ObjectKind::Budget) => drop_id(&mut snapshot.budgets, id, |o| &o.id),
        Ok(ObjectKind::RateLimit) => drop_id(&mut snapshot.rate_limits, id, |o| &o.id),
        Ok(ObjectKind::Credential) => drop_id(&mut snapshot.credentials, id, |o| &o.id),
        Ok(ObjectKind::Unspecified) | Err(_) => {}
    }
}

/// Replaces the item with `object`'s id, or inserts it in id order.
fn upsert<T>(items: &mut Vec<T>, object: T, id: impl Fn(&T) -> &String) {
    match items.binary_search_by(|item| id(item).cmp(id(&object))) {
        Ok(index) => items[index] = object,
        Err(index) => items.insert(index, object),
    }
}

/// Removes the item with `wanted` id, if present.
fn drop_id<T>(items: &mut Vec<T>, wanted: &str, id: impl Fn(&T) -> &String) {
    if let Ok(index) = items.binary_search_by(|item| id(item).as_str().cmp(wanted)) {
        items.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ApiKey, Team};

    use super::*;

    fn key(id: &str, disabled: bool) -> ApiKey {
        ApiKey {
            id: id.to_owned(),
            disabled,
            ..ApiKey::default()
        }
    }

    #[test]
    fn upserts_and_removals_keep_lists_sorted_and_move_the_version() {
        let mut snapshot = Snapshot {
            version: 4,
            api_keys: vec![key("a", false), key("c", false), key("e", false)],
            teams: vec![Team {
                id: "t".to_owned(),
                ..Team::default()
            }],
            ..Snapshot::default()
        };
        let delta = SnapshotDelta {
            from_version: 4,
            to_version: 6,
            upserted: vec![
                ConfigObject {
                    object: Some(Object::Key(key("d", false))),
                },
                ConfigObject {
                    object: Some(Object::Key(key("a", true))),
                },
            ],
            removed: vec![
                ObjectRef {
                    kind: ObjectKind::Key as i32,
                    id: "c".to_owned(),
                },
                ObjectRef {
                    kind: ObjectKind::Team as i32,
                    id: "t".to_owned(),
                },
            ],
            ..SnapshotDelta::default()
        };
        apply_delta(&mut snapshot, delta).expect("applies");
        assert_eq!(snapshot.version, 6);
        let keys: Vec<(&str, bool)> = snapshot
            .api_keys
            .iter()
            .map(|key| (key.id.as_str(), key.disabled))
            .collect();
        assert_eq!(keys, vec![("a", true), ("d", false), ("e", false)]);
        assert!(snapshot.teams.is_empty());
    }

    #[test]
    fn a_delta_from_another_version_is_refused() {
        let mut snapshot = Snapshot {
            version: 3,
            ..Snapshot::default()
        };
        let delta = SnapshotDelta {
            from_version: 4,
            to_version: 5,
            ..SnapshotDelta::default()
        };
        assert_eq!(
            apply_delta(&mut snapshot, delta),
            Err(DeltaMismatch { from: 4, held: 3 })
        );
        assert_eq!(snapshot.version, 3);
    }
}
