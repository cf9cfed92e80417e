//! Starting `switchyard` processes: one per service in dependency order,
//! each on port 0, wired together through `SWITCHYARD__ENDPOINTS__*`, with a
//! fresh service token per calling role unless the environment sets them.
//! Used by the benchmark's split mode and the end-to-end tests.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use switchyard_common::{auth::ServiceRole, service_auth::default_token_variable};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The roles in start order: each only needs the ones before it.
pub const ROLES_IN_START_ORDER: [&str; 6] = [
    "control-plane",
    "ledger",
    "cache",
    "adapter",
    "router",
    "edge",
];

/// Environment variable naming a profiler command to run the processes under.
pub const WRAPPER_VARIABLE: &str = "SWITCHYARD_LAUNCH_WRAPPER";

/// How to start one process.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The `switchyard` executable.
    pub binary: &'a Path,
    /// The config file every process reads.
    pub config: &'a Path,
    /// Extra environment (secrets, overrides).
    pub environment: &'a BTreeMap<String, String>,
    /// CPU list to pin the processes to with `taskset` (e.g. `"1"`), if any.
    pub cpus: Option<&'a str>,
    /// A directory to write each process's stderr (its logs) to, as
    /// `<role>.log`; `None` leaves it on this process's stderr.
    pub log_directory: Option<&'a Path>,
}

/// Running processes; killed when dropped.
pub struct Processes {
    /// The children, in start order.
    pub children: Vec<Child>,
    /// Address the edge listens on.
    pub edge_address: String,
    /// Address each role listens on, by role name.
    pub addresses: BTreeMap<String, String>,
    /// Address of each role's admin listener (`/metrics`), by role name
    /// (`serve` for all-in-one).
    pub admin_addresses: BTreeMap<String, String>,
    /// The service tokens the processes were given, by environment variable.
    pub service_tokens: BTreeMap<String, String>,
    /// How each role was started, so it can be started again.
    relaunch: BTreeMap<String, Relaunch>,
}

/// What starting one role again needs: the launch's settings and the
/// environment the role was given (tokens, endpoints, its address).
#[derive(Debug)]
struct Relaunch {
    binary: std::path::PathBuf,
    config: std::path::PathBuf,
    cpus: Option<String>,
    log_directory: Option<std::path::PathBuf>,
    environment: BTreeMap<String, String>,
}

impl Processes {
    /// Kills the process of `role` (as `kill -9` would) and waits until it
    /// is gone.
    pub async fn kill(&mut self, role: &str) -> anyhow::Result<()> {
        let index = role_index(role, self.children.len())?;
        let child = &mut self.children[index];
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// Starts `role` again, as it was started, on the address it had, and
    /// waits until it listens.
    pub async fn restart(&mut self, role: &str) -> anyhow::Result<()> {
        let index = role_index(role, self.children.len())?;
        let relaunch = self
            .relaunch
            .get(role)
            .ok_or_else(|| anyhow::anyhow!("no launch settings for `{role}`"))?;
        let launch = Launch {
            binary: &relaunch.binary,
            config: &relaunch.config,
            environment: &relaunch.environment,
            cpus: relaunch.cpus.as_deref(),
            log_directory: relaunch.log_directory.as_deref(),
        };
        let (child, _bound) = start(launch.command(&["run", role])?, role).await?;
        self.children[index] = child;
        Ok(())
    }
}

/// Position of `role`'s process among `started` children.
fn role_index(role: &str, started: usize) -> anyhow::Result<usize> {
    ROLES_IN_START_ORDER
        .iter()
        .position(|known| *known == role)
        .filter(|&index| index < started)
        .ok_or_else(|| anyhow::anyhow!("no process for role `{role}`"))
}

impl Launch<'_> {
    fn command(&self, arguments: &[&str]) -> anyhow::Result<Command> {
        // `taskset -c CPUS` and then any profiler from `SWITCHYARD_LAUNCH_WRAPPER`
        // (e.g. `heaptrack` or `perf record -g`) go in front of the binary.
        let mut program: Vec<String> = Vec::new();
        if let Some(cpus) = self.cpus {
            program.extend(["taskset".to_owned(), "-c".to_owned(), cpus.to_owned()]);
        }
        if let Some(wrapper) = self.environment.get(WRAPPER_VARIABLE) {
            program.extend(wrapper.split_whitespace().map(str::to_owned));
        }
        program.push(self.binary.display().to_string());
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]);
        command
            .arg("--config")
            .arg(self.config)
            .args(arguments)
            .envs(self.environment)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        match self.log_directory {
            Some(directory) => {
                let name = arguments.last().copied().unwrap_or("switchyard");
                let path = directory.join(format!("{name}.log"));
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                command.stderr(Stdio::from(log));
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        Ok(command)
    }

    /// Starts `switchyard serve` on port 0 and returns it with its address.
    pub async fn all_in_one(&self) -> anyhow::Result<Processes> {
        let mut command = self.command(&["serve"])?;
        command.env("SWITCHYARD__EDGE__LISTEN", "127.0.0.1:0");
        // The admin listener keeps its default port: binaries from before
        // it existed refuse an `admin` override, and the benchmark runs one
        // gateway at a time.
        let (child, bound) = start(command, "serve").await?;
        Ok(Processes {
            children: vec![child],
            addresses: BTreeMap::from([("serve".to_owned(), bound.address.clone())]),
            admin_addresses: BTreeMap::from([("serve".to_owned(), bound.admin_address)]),
            edge_address: bound.address,
            service_tokens: BTreeMap::new(),
            relaunch: BTreeMap::new(),
        })
    }

    /// Starts one process per role and returns them with the edge's address.
    pub async fn distributed(&self) -> anyhow::Result<Processes> {
        let mut children = Vec::new();
        let mut endpoints: Vec<(String, String)> = Vec::new();
        let mut addresses = BTreeMap::new();
        let mut admin_addresses = BTreeMap::new();
        let mut relaunch = BTreeMap::new();
        let service_tokens = self.service_tokens()?;
        for role in ROLES_IN_START_ORDER {
            let section = role.replace('-', "_").to_uppercase();
            let mut command = self.command(&["run", role])?;
            command.envs(&service_tokens);
            command.env(format!("SWITCHYARD__{section}__LISTEN"), "127.0.0.1:0");
            command.env(format!("SWITCHYARD__ADMIN__{section}"), "127.0.0.1:0");
            for (name, url) in &endpoints {
                command.env(format!("SWITCHYARD__ENDPOINTS__{name}"), url);
            }
            let (child, bound) = start(command, role).await?;
            let address = bound.address;
            children.push(child);
            addresses.insert(role.to_owned(), address.clone());
            admin_addresses.insert(role.to_owned(), bound.admin_address.clone());
            let mut environment = self.environment.clone();
            environment.extend(service_tokens.clone());
            environment.insert(format!("SWITCHYARD__{section}__LISTEN"), address.clone());
            environment.insert(format!("SWITCHYARD__ADMIN__{section}"), bound.admin_address);
            for (name, url) in &endpoints {
                environment.insert(format!("SWITCHYARD__ENDPOINTS__{name}"), url.clone());
            }
            relaunch.insert(
                role.to_owned(),
                Relaunch {
                    binary: self.binary.to_owned(),
                    config: self.config.to_owned(),
                    cpus: self.cpus.map(str::to_owned),
                    log_directory: self.log_directory.map(Path::to_path_buf),
                    environment,
                },
            );
            if role == "edge" {
                return Ok(Processes {
                    children,
                    edge_address: address,
                    addresses,
                    admin_addresses,
                    service_tokens,
                    relaunch,
                });
            }
            endpoints.push((section, format!("http://{address}")));
        }
        bail!("the edge is the last role")
    }
}

impl Launch<'_> {
    /// A random token per calling role, for the variables the environment
    /// does not already set.
    fn service_tokens(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut tokens = BTreeMap::new();
        for role in ServiceRole::CALLERS {
            let variable = default_token_variable(role);
            if self.environment.contains_key(&variable) {
                continue;
            }
            let mut bytes = [0_u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|error| anyhow::anyhow!("no randomness for a service token: {error}"))?;
            let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            tokens.insert(variable, token);
        }
        Ok(tokens)
    }
}

/// The addresses a process announced.
#[derive(Debug)]
struct Bound {
    address: String,
    admin_address: String,
}

/// Spawns a process and reads its addresses from its startup line.
async fn start(mut command: Command, role: &str) -> anyhow::Result<(Child, Bound)> {
    let mut child = command
        .spawn()
        .with_context(|| format!("spawning {role}"))?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    // Skip anything a wrapper prints before the startup line.
    let read_address = async {
        while let Some(line) = lines.next_line().await? {
            let Ok(announced) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(address) = announced["address"].as_str() {
                return Ok::<_, anyhow::Error>(Bound {
                    address: address.to_owned(),
                    admin_address: announced["admin_address"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
        bail!("{role} exited before listening")
    };
    let address = tokio::time::timeout(Duration::from_secs(30), read_address)
        .await
        .with_context(|| format!("{role} did not start in time"))??;
    // Detached: keeps reading the child's stdout (a profiler may write
    // there) until it exits, so it never blocks on a full pipe.
    switchyard_common::task::spawn_detached(
        "drains a child process's output until it exits",
        async move { while let Ok(Some(_)) = lines.next_line().await {} },
    );
    Ok((child, address))
}
