//! Watching the config file: a saved change is applied within a second.
//!
//! The file's directory is watched, not the file: editors replace files by
//! renaming, and Kubernetes updates a mounted ConfigMap by swapping the
//! `..data` symlink beside it, neither of which a watch on the file itself
//! sees. Every burst of events in the directory leads to one read of the
//! file; only a changed text is handed on.

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use switchyard_common::config::Environment;
use switchyard_control_plane::ConfigReloader;
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::SwitchyardConfig;

/// How long the directory must stay quiet before the file is read: editors
/// and `kubectl` write in several steps.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches `path`'s directory and calls `on_change` with the file's text
/// each time it differs from the last text seen (initially `initial`).
/// Tracked by `tasks`; stops on `shutdown`. Fails when the directory cannot
/// be watched.
pub fn spawn_config_watch<F, Fut>(
    path: PathBuf,
    initial: String,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
    mut on_change: F,
) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let directory = watched_directory(&path);
    let (events, mut received) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // Full means a read is already due; one is enough.
            let _ = events.try_send(());
        }
    })
    .context("starting the config file watcher")?;
    watcher
        .watch(&directory, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", directory.display()))?;
    tracing::info!(path = %path.display(), "watching the config file for changes");
    // Tracked: lives as long as the service, stops on shutdown.
    tasks.spawn(async move {
        // Owned by the task: dropping it stops the watch.
        let _watcher = watcher;
        let mut last = initial;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = received.recv() => {
                    if event.is_none() {
                        break;
                    }
                }
            }
            // Let the burst settle, then read once.
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(SETTLE) => break,
                    _ = received.recv() => {}
                }
            }
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(text) => text,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read the changed config file; keeping the running config");
                    continue;
                }
            };
            if text != last {
                last.clone_from(&text);
                on_change(text).await;
            }
        }
    });
    Ok(())
}

/// Watches the config file at `path` (none: nothing to watch) and applies each saved change to the
/// control plane through `reloader`: its declarative objects (providers,
/// deployments, routes, keys, teams, users, budgets, rate limits) take
/// effect without a restart. An invalid file is rejected with the error
/// logged, and the running config is kept. The services' own sections are
/// read at startup only.
pub fn watch_config_file(
    path: Option<PathBuf>,
    environment: Environment,
    reloader: ConfigReloader,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let initial = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let name = path.display().to_string();
    spawn_config_watch(path, initial, tasks, shutdown, move |text| {
        let (environment, reloader, name) = (environment.clone(), reloader.clone(), name.clone());
        async move {
            let config = match SwitchyardConfig::parse(&name, &text, &environment) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "the changed config file is invalid; keeping the running config"
                    );
                    return;
                }
            };
            match reloader.reload(&config.declarative(), &environment).await {
                Ok(version) => tracing::info!(version, "config file change applied"),
                Err(error) => tracing::error!(
                    %error,
                    "the changed config file cannot be applied; keeping the running config"
                ),
            }
        }
    })
}

/// The directory holding `path` (`.` for a bare file name).
fn watched_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a watch on `path` whose changes arrive on the returned channel.
    fn watch(
        path: PathBuf,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<String> {
        let initial = std::fs::read_to_string(&path).expect("readable");
        let (sender, receiver) = mpsc::channel(8);
        spawn_config_watch(path, initial, tasks, shutdown, move |text| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(text).await;
            }
        })
        .expect("watch starts");
        receiver
    }

    async fn next(changes: &mut mpsc::Receiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(1), changes.recv())
            .await
            .expect("a saved change is seen within a second")
            .expect("the watch is running")
    }

    #[tokio::test]
    async fn a_saved_change_is_seen_once_and_an_unchanged_save_not_at_all() {
        let directory = tempfile::tempdir().expect("dir");
        let path = directory.path().join("switchyard.yaml");
        std::fs::write(&path, "a: 1\n").expect("write");
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let mut changes = watch(path.clone(), &tasks, shutdown.clone());

        std::fs::write(&path, "a: 2\n").expect("write");
        assert_eq!(next(&mut changes).await, "a: 2\n");
        // Saving the same text again, and a file beside it, change nothing.
        std::fs::write(&path, "a: 2\n").expect("write");
        std::fs::write(directory.path().join("other.txt"), "x").expect("write");
        // An editor's save: write a temporary file, rename it over.
        let temporary = directory.path().join(".switchyard.yaml.swp");
        std::fs::write(&temporary, "a: 3\n").expect("write");
        std::fs::rename(&temporary, &path).expect("rename");
        assert_eq!(next(&mut changes).await, "a: 3\n");
        shutdown.cancel();
    }

    /// Kubernetes mounts a ConfigMap as `file -> ..data/file` and updates it
    /// by pointing `..data` at a new timestamped directory.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_configmap_symlink_swap_is_seen() {
        use std::os::unix::fs::symlink;
        let directory = tempfile::tempdir().expect("dir");
        let root = directory.path();
        std::fs::create_dir(root.join("..2026_12_01")).expect("dir");
        std::fs::write(root.join("..2026_12_01/switchyard.yaml"), "v: 1\n").expect("write");
        symlink("..2026_12_01", root.join("..data")).expect("symlink");
        symlink("..data/switchyard.yaml", root.join("switchyard.yaml")).expect("symlink");
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let mut changes = watch(root.join("switchyard.yaml"), &tasks, shutdown.clone());

        std::fs::create_dir(root.join("..2026_12_02")).expect("dir");
        std::fs::write(root.join("..2026_12_02/switchyard.yaml"), "v: 2\n").expect("write");
        symlink("..2026_12_02", root.join("..data_tmp")).expect("symlink");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
        assert_eq!(next(&mut changes).await, "v: 2\n");
        shutdown.cancel();
    }
}
