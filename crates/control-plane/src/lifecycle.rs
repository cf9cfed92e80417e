//! Sunset shifts: from the start of its sunset date (UTC), a deployment
//! with a successor hands its traffic to the successor. The control plane
//! makes the shift, once: it records it with one audit row
//! (`sunset-shift`: which deployment, to which successor, for which routes,
//! when) and publishes it in the next snapshot as the deployment's
//! `lifecycle.shifted_at_ms`. Routers follow the snapshot and never compare
//! dates themselves, so every replica shifts at the same version.
//!
//! A shift is state the control plane keeps beside the config, not part of
//! the deployment's declared object: the config file and the admin API
//! never see or overwrite it. It stands while the deployment names the
//! successor it was shifted to; naming another makes a new shift.

use switchyard_common::calendar::start_of_date;
use switchyard_proto::v1 as pb;

use crate::{
    objects::StoredObject,
    store::{Shifts, StoredEntries},
};

/// One shift of a deployment's traffic to its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The deployment past its sunset.
    pub deployment: String,
    /// Where its traffic goes.
    pub successor: String,
    /// When the shift was made, in Unix milliseconds.
    pub at_ms: i64,
    /// The routes that named the deployment then (for the audit record).
    pub routes: Vec<String>,
}

/// The shifts due at `now_ms` among `entries` that `made` does not hold:
/// deployments past the start of their sunset date, naming a successor the
/// config holds, not yet shifted to that successor.
pub(crate) fn due(entries: &StoredEntries, made: &Shifts, now_ms: i64) -> Vec<Shift> {
    let deployments = entries.values().filter_map(|entry| match &entry.object {
        StoredObject::Deployment(deployment) => Some(deployment),
        _ => None,
    });
    let mut due = Vec::new();
    for deployment in deployments {
        let Some(lifecycle) = &deployment.lifecycle else {
            continue;
        };
        if lifecycle.successor.is_empty()
            || made
                .get(&deployment.id)
                .is_some_and(|shift| shift.successor == lifecycle.successor)
        {
            continue;
        }
        let Some(sunset_ms) = start_of_date(&lifecycle.sunset_date)
            .and_then(|seconds| i64::try_from(seconds.saturating_mul(1000)).ok())
        else {
            continue;
        };
        let successor_known = entries.values().any(|entry| {
            matches!(&entry.object, StoredObject::Deployment(other) if other.id == lifecycle.successor)
        });
        if now_ms < sunset_ms || !successor_known {
            continue;
        }
        due.push(Shift {
            deployment: deployment.id.clone(),
            successor: lifecycle.successor.clone(),
            at_ms: now_ms,
            routes: routes_naming(entries, &deployment.id),
        });
    }
    due
}

/// The routes whose strategy names `deployment`.
fn routes_naming(entries: &StoredEntries, deployment: &str) -> Vec<String> {
    entries
        .values()
        .filter_map(|entry| match &entry.object {
            StoredObject::Route(route) => Some(route),
            _ => None,
        })
        .filter(|route| match &route.strategy {
            Some(pb::route::Strategy::Fallback(fallback)) => {
                fallback.deployments.iter().any(|id| id == deployment)
            }
            Some(pb::route::Strategy::Tiered(tiered)) => tiered
                .tiers
                .iter()
                .any(|tier| tier.deployments.iter().any(|id| id == deployment)),
            None => false,
        })
        .map(|route| route.name.clone())
        .collect()
}

/// Marks the shifts `made` on `snapshot`'s deployments: those that still
/// name the successor they were shifted to.
pub(crate) fn publish(snapshot: &mut pb::Snapshot, made: &Shifts) {
    if made.is_empty() {
        return;
    }
    for deployment in &mut snapshot.deployments {
        let Some(shift) = made.get(&deployment.id) else {
            continue;
        };
        if let Some(lifecycle) = deployment.lifecycle.as_mut()
            && lifecycle.successor == shift.successor
        {
            lifecycle.shifted_at_ms = shift.at_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::objects::{ObjectKind, ObjectOwner, StoredEntry};

    use super::*;

    fn deployment(id: &str, sunset: &str, successor: &str) -> ((ObjectKind, String), StoredEntry) {
        (
            (ObjectKind::Deployment, id.to_owned()),
            StoredEntry {
                object: StoredObject::Deployment(pb::Deployment {
                    id: id.to_owned(),
                    lifecycle: (!sunset.is_empty()).then(|| pb::Lifecycle {
                        sunset_date: sunset.to_owned(),
                        successor: successor.to_owned(),
                        ..pb::Lifecycle::default()
                    }),
                    ..pb::Deployment::default()
                }),
                owner: ObjectOwner::File,
                revision: 1,
            },
        )
    }

    #[test]
    fn a_shift_is_due_once_from_the_sunset_while_the_successor_stays() {
        let route = (
            (ObjectKind::Route, "chat".to_owned()),
            StoredEntry {
                object: StoredObject::Route(pb::Route {
                    name: "chat".to_owned(),
                    strategy: Some(pb::route::Strategy::Fallback(pb::FallbackStrategy {
                        deployments: vec!["old".to_owned()],
                    })),
                    ..pb::Route::default()
                }),
                owner: ObjectOwner::File,
                revision: 1,
            },
        );
        let entries: StoredEntries = [
            deployment("old", "2027-01-01", "new"),
            deployment("new", "", ""),
            deployment("gone", "2020-01-01", "nowhere"),
            route,
        ]
        .into_iter()
        .collect();
        // 2027-01-01T00:00:00Z is 1,798,761,600 s.
        let sunset_ms = 1_798_761_600_000;
        assert!(due(&entries, &Shifts::new(), sunset_ms - 1).is_empty());
        let shifts = due(&entries, &Shifts::new(), sunset_ms);
        assert_eq!(
            shifts,
            [Shift {
                deployment: "old".to_owned(),
                successor: "new".to_owned(),
                at_ms: sunset_ms,
                routes: vec!["chat".to_owned()],
            }],
            "an unknown successor is never shifted to"
        );
        let made: Shifts = shifts
            .into_iter()
            .map(|shift| (shift.deployment.clone(), shift))
            .collect();
        assert!(due(&entries, &made, sunset_ms + 60_000).is_empty(), "once");

        let mut snapshot = pb::Snapshot {
            deployments: entries
                .values()
                .filter_map(|entry| match &entry.object {
                    StoredObject::Deployment(deployment) => Some(deployment.clone()),
                    _ => None,
                })
                .collect(),
            ..pb::Snapshot::default()
        };
        publish(&mut snapshot, &made);
        let shifted: Vec<(&str, i64)> = snapshot
            .deployments
            .iter()
            .map(|d| {
                (
                    d.id.as_str(),
                    d.lifecycle.as_ref().map_or(0, |l| l.shifted_at_ms),
                )
            })
            .collect();
        assert_eq!(shifted, [("gone", 0), ("new", 0), ("old", sunset_ms)]);
    }
}
