//! Reporting every decryption of a stored credential to the control plane's
//! audit log ("audit every access").
//!
//! The adapters decrypt a credential's revision once and hand the read to a
//! background reporter, which batches reads and sends them with
//! `RecordCredentialReads`, retrying with backoff while the control plane is
//! unreachable. The request path never waits for it. The read is also
//! logged locally (`switchyard::audit`) at once, so it is on record even if
//! the control plane never comes back before the process ends.

use std::time::Duration;

use switchyard_common::{client::ControlPlaneClient, config::Environment, task::spawn_detached};
use switchyard_proto::v1::{CredentialRead, RecordCredentialReadsRequest};
use tokio::sync::mpsc;

/// Reads waiting to be reported; past it a read is logged locally only.
const QUEUE: usize = 1024;
/// Most reads sent in one call.
const BATCH: usize = 100;
/// Calls made for one batch before it is given up (about 8 minutes).
const ATTEMPTS: u32 = 20;
/// The first wait between calls, doubled up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Where the adapters put the credential reads they make.
#[derive(Debug, Clone)]
pub struct CredentialReads {
    sender: mpsc::Sender<CredentialRead>,
    reader: String,
}

impl CredentialReads {
    /// Starts the reporter sending to `control_plane`; the reader is named
    /// from this process's host (`HOSTNAME` in `environment`, the pod name
    /// on Kubernetes) and pid.
    pub fn spawn(control_plane: ControlPlaneClient, environment: &Environment) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        spawn_detached(
            "report credential reads to the control plane's audit log",
            report(control_plane, receiver),
        );
        let host = environment
            .get("HOSTNAME")
            .map_or("unknown-host", String::as_str);
        Self {
            sender,
            reader: format!("adapter {host} pid {}", std::process::id()),
        }
    }

    /// Who reads: the adapter process.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Queues `read` for the audit log; never waits.
    pub fn record(&self, read: CredentialRead) {
        if self.sender.try_send(read).is_err() {
            tracing::warn!(
                target: "switchyard::audit",
                "credential read not queued for the control plane's audit log (queue full); it is in this log only"
            );
        }
    }
}

/// Sends queued reads in batches until every sender is gone.
async fn report(control_plane: ControlPlaneClient, mut receiver: mpsc::Receiver<CredentialRead>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        send(&control_plane, std::mem::take(&mut batch)).await;
    }
}

/// Sends one batch, retrying with backoff.
async fn send(control_plane: &ControlPlaneClient, reads: Vec<CredentialRead>) {
    let request = RecordCredentialReadsRequest { reads };
    let mut wait = FIRST_WAIT;
    for attempt in 1..=ATTEMPTS {
        match control_plane.record_credential_reads(request.clone()).await {
            Ok(()) => return,
            Err(status) if attempt < ATTEMPTS => {
                tracing::debug!(code = ?status.code(), attempt, "credential reads not reported yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            Err(status) => {
                tracing::error!(
                    target: "switchyard::audit",
                    code = ?status.code(),
                    reads = request.reads.len(),
                    "credential reads could not be written to the control plane's audit log; they are in this log only"
                );
            }
        }
    }
}
