//! Validating a change to keys, budgets and rate limits against the stored
//! objects, without validating the whole config again: nothing but budget
//! and rate-limit scopes refers to these kinds, so what a change to them can
//! break is known and checked here.

use switchyard_proto::v1 as pb;

use super::{ObjectChange, change_key};
use crate::{
    Error, Result,
    objects::{ObjectKind, StoredObject},
    store::StoredEntries,
    validate::{Known, validate_leaf},
};

/// The most objects a change may touch to be validated here: each is checked
/// against every stored key for a shared secret, so a bulk import is
/// cheaper validated whole.
pub(super) const MAX_LEAF_CHANGES: usize = 64;

/// Whether nothing but budget and rate-limit scopes refers to objects of
/// `kind`, so a change to them can be validated without the whole config.
pub(super) fn is_leaf(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::ApiKey | ObjectKind::Budget | ObjectKind::RateLimit
    )
}

/// The stored objects as a change leaves them, without copying them.
struct Overlay<'a> {
    stored: &'a StoredEntries,
    planned: &'a [ObjectChange],
}

impl Overlay<'_> {
    /// The object of `kind` and `id` after the change.
    fn get(&self, kind: ObjectKind, id: &str) -> Option<&StoredObject> {
        for change in self.planned {
            if change_key(change) == (kind, id) {
                return change.after.as_ref().map(|entry| &entry.object);
            }
        }
        self.stored
            .get(&(kind, id.to_owned()))
            .map(|entry| &entry.object)
    }

    /// Every object of `kind` after the change.
    fn all(&self, kind: ObjectKind) -> impl Iterator<Item = &StoredObject> {
        let changed: Vec<&str> = self
            .planned
            .iter()
            .map(change_key)
            .filter(|(of, _)| *of == kind)
            .map(|(_, id)| id)
            .collect();
        let kept = self
            .stored
            .iter()
            .filter(move |((of, id), _)| *of == kind && !changed.contains(&id.as_str()))
            .map(|(_, entry)| &entry.object);
        let planned = self
            .planned
            .iter()
            .filter_map(|change| change.after.as_ref())
            .map(|entry| &entry.object)
            .filter(move |object| object.kind() == kind);
        kept.chain(planned)
    }
}

impl Known for Overlay<'_> {
    fn contains(&self, kind: ObjectKind, id: &str) -> bool {
        self.get(kind, id).is_some()
    }
}

/// Validates a change to keys, budgets and rate limits only, against the
/// stored objects rather than by validating the whole config again: with
/// 100,000 keys, a revocation checks one key. The rules and field names are
/// the whole validation's: references must exist, no two keys share a
/// secret, and no budget or rate limit may be left scoped to a deleted key.
pub(super) fn validated_leaves(
    mut planned: Vec<ObjectChange>,
    stored: &StoredEntries,
) -> Result<Vec<ObjectChange>> {
    let mut normalized = Vec::with_capacity(planned.len());
    {
        let overlay = Overlay {
            stored,
            planned: &planned,
        };
        for change in &planned {
            let Some(after) = &change.after else {
                normalized.push(None);
                continue;
            };
            let object =
                validate_leaf(&after.object, &overlay)?.unwrap_or_else(|| after.object.clone());
            if let StoredObject::ApiKey(key) = &object {
                let shared = overlay.all(ObjectKind::ApiKey).any(|other| {
                    matches!(other, StoredObject::ApiKey(other) if other.id != key.id && other.sha256 == key.sha256)
                });
                if shared {
                    return Err(Error::invalid(
                        format!("keys[{}]", key.id),
                        "has the same secret as another key",
                    ));
                }
            }
            normalized.push(Some(object));
        }
        for change in &planned {
            if let (Some(before), None) = (&change.before, &change.after)
                && let StoredObject::ApiKey(key) = &before.object
            {
                check_unscoped(&overlay, &key.id)?;
            }
        }
    }
    for (change, object) in planned.iter_mut().zip(normalized) {
        if let (Some(after), Some(object)) = (&mut change.after, object) {
            after.object = object;
        }
    }
    planned.retain(|change| {
        !matches!(
            (&change.before, &change.after),
            (Some(before), Some(after)) if before.object == after.object && before.owner == after.owner
        )
    });
    Ok(planned)
}

/// Refuses to leave a budget or rate limit scoped to the deleted key `id`.
fn check_unscoped(overlay: &Overlay<'_>, id: &str) -> Result<()> {
    let scoped_to = |scope: Option<&pb::Scope>| {
        matches!(
            scope.and_then(|scope| scope.subject.as_ref()),
            Some(pb::scope::Subject::KeyId(key)) if key == id
        )
    };
    for kind in [ObjectKind::Budget, ObjectKind::RateLimit] {
        for object in overlay.all(kind) {
            let (section, scope) = match object {
                StoredObject::Budget(budget) => ("budgets", budget.scope.as_ref()),
                StoredObject::RateLimit(limit) => ("rate_limits", limit.scope.as_ref()),
                _ => continue,
            };
            if scoped_to(scope) {
                return Err(Error::invalid(
                    format!("{section}[{}].scope", object.id()),
                    format!("names unknown key `{id}`"),
                ));
            }
        }
    }
    Ok(())
}
