//! Integration tests of the control plane against real databases: every
//! scenario runs once on an SQLite file and once on a fresh PostgreSQL
//! database.

// The helpers and scenarios live in `tests/control_plane/`.
mod control_plane {
    pub mod admin;
    pub mod database;
    pub mod fixtures;
    pub mod scenarios;
}

use control_plane::{database, fixtures};

/// Every scenario, from both files.
mod scenario {
    pub use crate::control_plane::{admin::*, scenarios::*};
}

/// Generates one test per scenario and database.
macro_rules! on_every_database {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let database = crate::database::TestDatabase::sqlite();
                    database.run(crate::scenario::$scenario).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(database) = crate::database::TestDatabase::postgres().await else {
                        return;
                    };
                    database.run(crate::scenario::$scenario).await;
                }
            )*
        }
    };
}

on_every_database!(
    sync_publishes_declared_objects,
    same_file_keeps_version_and_changed_file_bumps_it,
    watch_sends_current_snapshot_then_updates_from_other_writers,
    watch_skips_the_known_version,
    watch_ends_on_shutdown,
    key_secrets_are_stored_only_as_hashes,
    concurrent_syncs_serialize,
    views_for_edges_and_routers_hold_no_provider_endpoint_or_credential,
    api_objects_survive_a_restart_with_a_changed_file,
    api_writes_to_file_owned_objects_are_refused,
    admin_changes_carry_revisions_are_audited_and_published_at_once,
    changes_that_would_break_routing_are_refused_naming_the_field,
    concurrent_updates_of_one_revision_let_exactly_one_win,
    created_keys_are_shown_once_stored_as_hashes_and_revoked_within_a_second,
    admin_tokens_have_roles_and_bad_tokens_are_refused,
    apply_shows_a_diff_prunes_and_export_round_trips,
    stored_credentials_are_encrypted_never_shown_and_rewrapped_after_rotation,
    credential_reads_reported_by_adapters_are_audited,
    a_sunset_is_shifted_once_by_the_control_plane_with_one_audit_record,
);

/// `LISTEN/NOTIFY` is PostgreSQL's; SQLite control planes poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_is_notified_to_the_other() {
    let Some(database) = database::TestDatabase::postgres().await else {
        return;
    };
    database
        .run(scenario::a_change_through_one_replica_is_notified_to_the_other)
        .await;
}

/// The large-config test runs on the production database only: at 100,000
/// keys it is the slowest test of the crate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_100k_keys_a_revocation_travels_as_a_one_key_delta() {
    let Some(database) = database::TestDatabase::postgres().await else {
        return;
    };
    database
        .run(scenario::with_100k_keys_a_revocation_travels_as_a_one_key_delta)
        .await;
}
