//! Planning a change to the stored config: which objects it creates,
//! replaces or deletes, checked against owners and revisions, and validated
//! as a whole before anything is written.
//!
//! Validation exports the resulting objects to the config file's form and
//! validates that ([`crate::export`]), so the API and the file obey one set
//! of rules and errors name fields the same way (`routes[demo].strategy…`).

use std::collections::BTreeMap;

use switchyard_common::config::Environment;

use crate::{
    Error, Result,
    export::to_declarative,
    objects::{ObjectKind, ObjectOwner, StoredConfig, StoredEntry, StoredObject},
    store::StoredEntries,
};

mod credentials;
mod leaves;

use leaves::{MAX_LEAF_CHANGES, is_leaf, validated_leaves};

/// A change an admin or the config file asks for.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates an API-owned object; refused when its kind and id exist.
    Create {
        /// The new object.
        object: StoredObject,
    },
    /// Replaces an API-owned object whose revision is `object`'s.
    Update {
        /// The new content, its revision the one the caller last read.
        object: StoredObject,
    },
    /// Deletes an API-owned object.
    Delete {
        /// The object's kind.
        kind: ObjectKind,
        /// The object's id.
        id: String,
        /// The revision the caller last read; 0 deletes whatever is stored.
        revision: u64,
    },
    /// Makes the file-owned objects those of `desired` (as `ctl apply` and the
    /// config file do).
    Apply {
        /// Every object the file declares.
        desired: StoredConfig,
        /// Deletes file-owned objects `desired` does not hold.
        prune: bool,
        /// Reports the changes without making them.
        dry_run: bool,
    },
}

impl Change {
    /// Whether the change is only to be reported.
    pub(crate) fn is_dry_run(&self) -> bool {
        matches!(self, Self::Apply { dry_run: true, .. })
    }

    /// The action recorded in the audit log.
    pub(crate) fn action_name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::Update { .. } => "update",
            Self::Delete { .. } => "delete",
            Self::Apply { .. } => "apply",
        }
    }
}

/// One object that a change creates, replaces or deletes.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectChange {
    /// The stored object; `None` when it is created.
    pub before: Option<StoredEntry>,
    /// The object as it is stored afterwards; `None` when it is deleted.
    pub after: Option<StoredEntry>,
}

/// What a change did (or, on a dry run, would do).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The config version afterwards.
    pub version: u64,
    /// The objects that changed, in kind and id order.
    pub changes: Vec<ObjectChange>,
}

/// Plans `change` against the `stored` objects and validates the result.
/// The objects in the planned `after`s are in their validated (normalized)
/// form, with revisions set.
pub(crate) fn plan(change: Change, stored: &StoredEntries) -> Result<Vec<ObjectChange>> {
    let planned = match change {
        Change::Create { object } => {
            let key = (object.kind(), object.id().to_owned());
            if stored.contains_key(&key) {
                return Err(Error::AlreadyExists {
                    kind: key.0.as_str(),
                    id: key.1,
                });
            }
            vec![ObjectChange {
                before: None,
                after: Some(StoredEntry {
                    object,
                    owner: ObjectOwner::Api,
                    revision: 1,
                }),
            }]
        }
        Change::Update { object } => {
            let entry = api_owned(stored, object.kind(), object.id())?;
            let asked = object.revision();
            if asked != entry.revision {
                return Err(Error::StaleRevision {
                    kind: object.kind().as_str(),
                    id: object.id().to_owned(),
                    asked,
                    stored: entry.revision,
                });
            }
            vec![ObjectChange {
                before: Some(entry.clone()),
                after: Some(StoredEntry {
                    object,
                    owner: ObjectOwner::Api,
                    revision: entry.revision + 1,
                }),
            }]
        }
        Change::Delete { kind, id, revision } => {
            let entry = api_owned(stored, kind, &id)?;
            if revision != 0 && revision != entry.revision {
                return Err(Error::StaleRevision {
                    kind: kind.as_str(),
                    id,
                    asked: revision,
                    stored: entry.revision,
                });
            }
            vec![ObjectChange {
                before: Some(entry.clone()),
                after: None,
            }]
        }
        Change::Apply { desired, prune, .. } => plan_apply(desired, prune, stored)?,
    };
    validated(planned, stored)
}

/// Returns the stored API-owned object of `kind` and `id`.
fn api_owned<'a>(stored: &'a StoredEntries, kind: ObjectKind, id: &str) -> Result<&'a StoredEntry> {
    match stored.get(&(kind, id.to_owned())) {
        None => Err(Error::NotFound {
            kind: kind.as_str(),
            id: id.to_owned(),
        }),
        Some(entry) if entry.owner == ObjectOwner::File => Err(Error::OwnedByFile {
            kind: kind.as_str(),
            id: id.to_owned(),
        }),
        Some(entry) => Ok(entry),
    }
}

/// The changes that make the file-owned objects `desired`'s. An object the
/// API owns may appear in `desired` only with the same content (as in an
/// export of the live state); it is then left alone.
fn plan_apply(
    desired: StoredConfig,
    prune: bool,
    stored: &StoredEntries,
) -> Result<Vec<ObjectChange>> {
    let mut planned = Vec::new();
    for (key, object) in &desired.objects {
        let (before, revision) = match stored.get(key) {
            Some(entry) if entry.owner == ObjectOwner::Api && entry.object == *object => continue,
            Some(entry) if entry.owner == ObjectOwner::Api => {
                return Err(Error::OwnedByApi {
                    kind: key.0.as_str(),
                    id: key.1.clone(),
                });
            }
            Some(entry) if entry.object == *object => continue,
            Some(entry) => (Some(entry.clone()), entry.revision + 1),
            None => (None, 1),
        };
        planned.push(ObjectChange {
            before,
            after: Some(StoredEntry {
                object: object.clone(),
                owner: ObjectOwner::File,
                revision,
            }),
        });
    }
    if prune {
        for (key, entry) in stored {
            if entry.owner == ObjectOwner::File && !desired.objects.contains_key(key) {
                planned.push(ObjectChange {
                    before: Some(entry.clone()),
                    after: None,
                });
            }
        }
    }
    planned.sort_by(|a, b| change_key(a).cmp(&change_key(b)));
    Ok(planned)
}

/// The kind and id of the object a change is about.
fn change_key(change: &ObjectChange) -> (ObjectKind, &str) {
    let entry = change
        .after
        .as_ref()
        .or(change.before.as_ref())
        .map(|entry| &entry.object);
    entry.map_or((ObjectKind::Provider, ""), |object| {
        (object.kind(), object.id())
    })
}

/// Validates the config `planned` leaves behind and puts the validated form
/// of each changed object into its `after`. Changes that turn out to change
/// nothing once normalized are dropped.
fn validated(planned: Vec<ObjectChange>, stored: &StoredEntries) -> Result<Vec<ObjectChange>> {
    if planned.is_empty() {
        return Ok(planned);
    }
    if planned.len() <= MAX_LEAF_CHANGES
        && planned.iter().all(|change| is_leaf(change_key(change).0))
    {
        return validated_leaves(planned, stored);
    }
    let mut result: BTreeMap<(ObjectKind, String), &StoredObject> = stored
        .iter()
        .map(|(key, entry)| (key.clone(), &entry.object))
        .collect();
    for change in &planned {
        if let Some(before) = &change.before {
            result.remove(&(before.object.kind(), before.object.id().to_owned()));
        }
        if let Some(after) = &change.after {
            result.insert(
                (after.object.kind(), after.object.id().to_owned()),
                &after.object,
            );
        }
    }
    let declarative = to_declarative(result.values().copied());
    let normalized = StoredConfig::from_declarative(&declarative, &Environment::new())?;
    credentials::check(&result, &normalized)?;
    let mut checked = Vec::with_capacity(planned.len());
    for mut change in planned {
        if let Some(after) = &mut change.after {
            let key = (after.object.kind(), after.object.id().to_owned());
            if let Some(object) = normalized.objects.get(&key) {
                after.object = object.clone();
            }
        }
        let unchanged = matches!(
            (&change.before, &change.after),
            (Some(before), Some(after)) if before.object == after.object && before.owner == after.owner
        );
        if !unchanged {
            checked.push(change);
        }
    }
    Ok(checked)
}
