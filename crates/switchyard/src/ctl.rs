//! `switchyard ctl`: the admin API from the command line, with kubectl's
//! habits: `get`/`describe`/`apply`/`delete`/`diff`/`export`, `keys`,
//! `budgets`, `pricing`, `audit`, `tokens`; tables by default and `-o
//! yaml|json` for scripts.
//!
//! Exit codes scripts can rely on:
//! - 0: done (for `diff`: no differences);
//! - 1: `diff` found differences;
//! - 2: the command line or a file is wrong (clap uses 2 as well);
//! - 3: the server refused the change (invalid, conflicting revision,
//!   missing or existing object, owned by the file);
//! - 4: the admin token is missing, unknown, or lacks the role;
//! - 5: the server is unreachable or its database is down.

mod connect;
mod render;

use std::{
    io::{Read, Write},
    path::PathBuf,
};

use clap::{Args, Subcommand};
use switchyard_common::config::{Environment, process_environment};
use switchyard_control_plane::{ObjectKind, StoredConfig, StoredObject};
use switchyard_proto::v1 as pb;

use crate::SwitchyardConfig;
use connect::Admin;
pub use render::Format;

/// Why `ctl` failed, and the exit code that says so.
#[derive(Debug)]
pub struct CtlError {
    /// The process's exit code.
    pub exit_code: u8,
    /// What to tell the user (never a secret).
    pub message: String,
}

impl CtlError {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            exit_code: 2,
            message: message.into(),
        }
    }

    fn unreachable(message: impl Into<String>) -> Self {
        Self {
            exit_code: 5,
            message: message.into(),
        }
    }

    fn output(error: std::io::Error) -> Self {
        Self {
            exit_code: 1,
            message: format!("cannot write the output: {error}"),
        }
    }
}

impl From<tonic::Status> for CtlError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        if let Some(source) = std::error::Error::source(&status) {
            // The call never completed: the connection failed, e.g. a TLS
            // listener refused the client certificate after the handshake.
            let mut reasons = Vec::new();
            let mut cause: Option<&dyn std::error::Error> = Some(source);
            while let Some(error) = cause {
                reasons.push(error.to_string());
                cause = error.source();
            }
            return Self::unreachable(format!(
                "the connection to the admin API failed: {}; does the listener require a                  client certificate (--client-cert, --client-key)?",
                reasons.join(": ")
            ));
        }
        let exit_code = match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::Aborted => 3,
            Code::Unauthenticated | Code::PermissionDenied => 4,
            Code::Unavailable | Code::DeadlineExceeded => 5,
            Code::Unimplemented => {
                return Self::unreachable(
                    "the server does not serve the admin API: set `control_plane.admin_token` \
                     and point --server at the control plane's admin listener",
                );
            }
            _ => 1,
        };
        Self {
            exit_code,
            message: status.message().to_owned(),
        }
    }
}

/// `switchyard ctl` and its global flags.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The admin listener of the control plane (`switchyard serve`'s by
    /// default); also `SWITCHYARD_SERVER` or `server:` in
    /// `~/.config/switchyard/ctl.yaml`.
    #[arg(long, env = "SWITCHYARD_SERVER", global = true)]
    server: Option<String>,
    /// An admin token; also `SWITCHYARD_ADMIN_TOKEN` or `token:` in
    /// `~/.config/switchyard/ctl.yaml`.
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
    /// For an `https://` server: the PEM file of the CA its certificate
    /// chains to; also `SWITCHYARD_CA_CERT` or `ca_cert:` in ctl.yaml.
    #[arg(long, env = "SWITCHYARD_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// A client certificate (PEM) for an admin listener that requires one
    /// (`admin.tls.client_ca`); also `SWITCHYARD_CLIENT_CERT` or
    /// `client_cert:` in ctl.yaml.
    #[arg(long, env = "SWITCHYARD_CLIENT_CERT", global = true)]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); also
    /// `SWITCHYARD_CLIENT_KEY` or `client_key:` in ctl.yaml.
    #[arg(long, env = "SWITCHYARD_CLIENT_KEY", global = true)]
    client_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// List the objects of a kind, or show one.
    Get {
        /// provider, deployment, route, key, team, user, budget or rate-limit
        /// (plurals work too).
        #[arg(value_parser = parse_kind)]
        kind: ObjectKind,
        /// One object's id; all of the kind when absent.
        id: Option<String>,
    },
    /// Show one object in full, with its owner and revision.
    Describe {
        #[arg(value_parser = parse_kind)]
        kind: ObjectKind,
        id: String,
    },
    /// Make the live config match a file's objects: shows the diff, then
    /// applies it in one transaction.
    Apply(ApplyArgs),
    /// Show how a file differs from the live config (exit 1 when it does).
    Diff {
        /// The config file (`-` reads stdin).
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Delete an object created through the API.
    Delete {
        #[arg(value_parser = parse_kind)]
        kind: ObjectKind,
        id: String,
        /// Refuse unless the object is still at this revision.
        #[arg(long)]
        revision: Option<u64>,
    },
    /// Write the live config as YAML that `apply` reads back unchanged.
    Export,
    /// Client keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List routes (`get routes`).
    Routes,
    /// List teams (`get teams`).
    Teams,
    /// Budgets.
    #[command(subcommand)]
    Budgets(BudgetsCommand),
    /// The prices every deployment is costed at.
    Pricing,
    /// The audit log, newest first.
    Audit {
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Admin tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Stored provider credentials (encrypted; values are never shown).
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// The token in use and its role.
    Whoami,
    /// Print a shell completion script for `switchyard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// The config file (`-` reads stdin). Its declarative sections are
    /// applied; the services' sections are ignored.
    #[arg(long, short)]
    file: PathBuf,
    /// Show the diff only.
    #[arg(long)]
    dry_run: bool,
    /// Also delete file-owned objects the file no longer declares.
    #[arg(long)]
    prune: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; its secret is printed once and stored only as a hash.
    Create {
        /// The key's id; drawn when absent.
        #[arg(long)]
        id: Option<String>,
        /// A readable name.
        #[arg(long)]
        name: Option<String>,
        /// The team it belongs to.
        #[arg(long)]
        team: Option<String>,
        /// The user it belongs to.
        #[arg(long)]
        user: Option<String>,
        /// Routes it may use, comma-separated; all when absent.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// When it stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List keys by prefix and last four characters, never the key.
    List,
    /// Refuse every further request with a key, on every edge within a second.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum BudgetsCommand {
    /// Create a budget, or change its limit.
    Set {
        id: String,
        /// team:ID, user:ID or key:ID.
        #[arg(long)]
        scope: String,
        /// The most that may be spent per period, e.g. 100.00.
        #[arg(long)]
        limit: String,
        /// daily, monthly or total.
        #[arg(long, default_value = "monthly")]
        period: String,
        /// ISO 4217 code.
        #[arg(long, default_value = "USD")]
        currency: String,
    },
    /// List budgets, or show one.
    Show { id: Option<String> },
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// Store a credential's value, read from stdin (or `--from-env`),
    /// encrypted; a provider uses it as `api_key: {credential: ID}`.
    Set {
        id: String,
        /// The provider it belongs to.
        #[arg(long)]
        provider: String,
        /// Read the value from this environment variable instead of stdin.
        #[arg(long)]
        from_env: Option<String>,
    },
    /// List credentials: provider, master key, hint; never a value.
    List,
    /// Wrap every credential's data key with the current master key (after
    /// a rotation, before the old key is dropped).
    Rewrap,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create an admin token; printed once.
    Create {
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        id: Option<String>,
    },
    /// List admin tokens by hint.
    List,
    /// Revoke an admin token.
    Revoke { id: String },
}

fn parse_kind(text: &str) -> Result<ObjectKind, String> {
    let singular = text.trim_end_matches('s').replace('-', "_");
    let singular = match singular.as_str() {
        "api_key" | "apikey" => "key",
        "ratelimit" => "rate_limit",
        other => other,
    };
    ObjectKind::parse(singular).ok_or_else(|| {
        format!(
            "unknown kind `{text}`: one of provider, deployment, route, key, team, user, budget, rate-limit"
        )
    })
}

fn stored_objects(objects: Vec<pb::ConfigObject>) -> Vec<StoredObject> {
    objects
        .into_iter()
        .filter_map(StoredObject::from_proto)
        .collect()
}

/// Writes `text` to stdout.
fn out(text: &str) -> Result<(), CtlError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CtlError::output)
}

/// Writes a note for people to stderr (scripts read stdout).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn show(objects: &[StoredObject], format: Format) -> Result<(), CtlError> {
    match format {
        Format::Table => out(&render::table(objects)),
        Format::Yaml => out(&render::yaml(objects)),
        Format::Json => out(&render::json(objects)),
    }
}

/// Runs `ctl`; `command` builds the whole CLI for completions. Returns the
/// exit code.
pub fn run(args: CtlArgs, command: impl FnOnce() -> clap::Command) -> u8 {
    if let CtlCommand::Completions { shell } = args.command {
        let mut command = command();
        clap_complete::generate(shell, &mut command, "switchyard", &mut std::io::stdout());
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            note(&format!("error: cannot start the async runtime: {error}"));
            return 1;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(code) => code,
        Err(error) => {
            note(&format!("error: {}", error.message));
            error.exit_code
        }
    }
}

async fn execute(args: CtlArgs) -> Result<u8, CtlError> {
    let format = args.output;
    let tls = connect::TlsFiles {
        ca_cert: args.ca_cert.clone(),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
    };
    let mut admin = connect::connect(args.server.as_deref(), args.token.as_deref(), tls).await?;
    match args.command {
        CtlCommand::Get { kind, id } => get(&mut admin, kind, id.as_deref(), format).await?,
        CtlCommand::Routes => get(&mut admin, ObjectKind::Route, None, format).await?,
        CtlCommand::Teams => get(&mut admin, ObjectKind::Team, None, format).await?,
        CtlCommand::Describe { kind, id } => {
            let object = admin
                .get(pb::GetObjectRequest {
                    kind: kind.to_proto() as i32,
                    id,
                })
                .await?
                .into_inner();
            let objects = stored_objects(vec![object]);
            if format == Format::Table
                && let Some(object) = objects.first()
            {
                let meta = object.meta().copied().unwrap_or_default();
                let owner = if meta.owner == pb::Owner::File as i32 {
                    "file"
                } else {
                    "api"
                };
                out(&format!("# owner: {owner}, revision: {}\n", meta.revision))?;
                out(&render::yaml(&objects))?;
            } else {
                show(&objects, format)?;
            }
        }
        CtlCommand::Apply(apply_args) => {
            return apply(
                &mut admin,
                &apply_args.file,
                apply_args.prune,
                apply_args.dry_run,
                false,
            )
            .await;
        }
        CtlCommand::Diff { file } => return apply(&mut admin, &file, true, true, true).await,
        CtlCommand::Delete { kind, id, revision } => {
            let deleted = admin
                .delete(pb::DeleteObjectRequest {
                    kind: kind.to_proto() as i32,
                    id: id.clone(),
                    revision: revision.unwrap_or(0),
                })
                .await?
                .into_inner();
            note(&format!(
                "{} {id} deleted (version {})",
                kind.as_str(),
                deleted.version
            ));
        }
        CtlCommand::Export => {
            let export = admin.export(pb::ExportRequest {}).await?.into_inner();
            // Credentials are the API's alone: the file has no form for them.
            let objects: Vec<StoredObject> = stored_objects(export.objects)
                .into_iter()
                .filter(|object| object.kind() != ObjectKind::Credential)
                .map(StoredObject::without_meta)
                .collect();
            match format {
                Format::Json => out(&render::json(&objects))?,
                _ => out(&render::yaml(&objects))?,
            }
        }
        CtlCommand::Keys(command) => keys(&mut admin, command, format).await?,
        CtlCommand::Budgets(command) => budgets(&mut admin, command, format).await?,
        CtlCommand::Pricing => pricing(&mut admin, format).await?,
        CtlCommand::Audit { limit } => audit(&mut admin, limit, format).await?,
        CtlCommand::Tokens(command) => tokens(&mut admin, command, format).await?,
        CtlCommand::Credentials(command) => credentials(&mut admin, command, format).await?,
        CtlCommand::Whoami => {
            let who = admin.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
            let role = pb::AdminRole::try_from(who.role)
                .map(|role| {
                    role.as_str_name()
                        .trim_start_matches("ADMIN_ROLE_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            out(&format!("{} ({role})\n", who.token_id))?;
        }
        CtlCommand::Completions { .. } => {}
    }
    Ok(0)
}

/// Every object of `kind`, in id order.
async fn list(admin: &mut Admin, kind: ObjectKind) -> Result<Vec<StoredObject>, CtlError> {
    let objects = admin
        .list(pb::ListObjectsRequest {
            kind: kind.to_proto() as i32,
        })
        .await?
        .into_inner()
        .objects;
    Ok(stored_objects(objects))
}

async fn get(
    admin: &mut Admin,
    kind: ObjectKind,
    id: Option<&str>,
    format: Format,
) -> Result<(), CtlError> {
    let objects = match id {
        Some(id) => stored_objects(vec![
            admin
                .get(pb::GetObjectRequest {
                    kind: kind.to_proto() as i32,
                    id: id.to_owned(),
                })
                .await?
                .into_inner(),
        ]),
        None => list(admin, kind).await?,
    };
    show(&objects, format)
}

/// Reads a config file (or stdin for `-`) and returns its objects, key
/// secrets resolved from this process's environment and hashed.
fn file_objects(path: &std::path::Path) -> Result<Vec<pb::ConfigObject>, CtlError> {
    let (name, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| CtlError::usage(format!("cannot read stdin: {error}")))?;
        ("stdin".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|error| CtlError::usage(format!("cannot read {}: {error}", path.display())))?;
        (path.display().to_string(), text)
    };
    let environment: Environment = process_environment();
    let config = SwitchyardConfig::parse(&name, &text, &environment)
        .map_err(|error| CtlError::usage(format!("{error:#}")))?;
    let objects = StoredConfig::from_declarative(&config.declarative(), &environment)
        .map_err(|error| CtlError::usage(format!("{name}: {error}")))?;
    Ok(objects
        .objects
        .into_values()
        .map(StoredObject::into_proto)
        .collect())
}

async fn apply(
    admin: &mut Admin,
    file: &std::path::Path,
    prune: bool,
    dry_run: bool,
    diff_only: bool,
) -> Result<u8, CtlError> {
    let objects = file_objects(file)?;
    let applied = admin
        .apply(pb::ApplyRequest {
            objects,
            prune,
            dry_run,
        })
        .await?
        .into_inner();
    for change in &applied.changes {
        out(&render::change(change))?;
    }
    let count = applied.changes.len();
    if diff_only {
        return Ok(u8::from(count > 0));
    }
    match (dry_run, count) {
        (_, 0) => note("no changes"),
        (true, _) => note(&format!(
            "{count} object(s) would change (dry run: nothing applied)"
        )),
        (false, _) => note(&format!(
            "{count} object(s) changed; config version {}",
            applied.version
        )),
    }
    Ok(0)
}

async fn keys(admin: &mut Admin, command: KeysCommand, format: Format) -> Result<(), CtlError> {
    match command {
        KeysCommand::Create {
            id,
            name,
            team,
            user,
            models,
            expires_at,
        } => {
            let expires_at = match expires_at {
                Some(text) => parse_rfc3339(&text)?,
                None => 0,
            };
            let created = admin
                .create_key(pb::CreateKeyRequest {
                    key: Some(pb::ApiKey {
                        id: id.unwrap_or_default(),
                        name: name.unwrap_or_default(),
                        team_id: team.unwrap_or_default(),
                        user_id: user.unwrap_or_default(),
                        allowed_models: models,
                        expires_at,
                        ..pb::ApiKey::default()
                    }),
                })
                .await?
                .into_inner();
            let id = created.key.map(|key| key.id).unwrap_or_default();
            if format == Format::Table {
                note(&format!(
                    "key {id} created; its secret is shown this once and stored only as a hash:"
                ));
                out(&format!("{}\n", created.secret))?;
            } else {
                let value = serde_json::json!({ "id": id, "secret": created.secret });
                out(&if format == Format::Json {
                    format!("{value:#}\n")
                } else {
                    serde_yaml::to_string(&value).unwrap_or_default()
                })?;
            }
        }
        KeysCommand::List => {
            let objects = list(admin, ObjectKind::ApiKey).await?;
            if format != Format::Table {
                return show(&objects, format);
            }
            let mut rows = vec![
                ["ID", "KEY", "TEAM", "USER", "MODELS", "EXPIRES", "STATUS"].map(str::to_owned),
            ];
            for object in &objects {
                let StoredObject::ApiKey(key) = object else {
                    continue;
                };
                let dash = |text: &str| {
                    if text.is_empty() {
                        "-".to_owned()
                    } else {
                        text.to_owned()
                    }
                };
                rows.push([
                    key.id.clone(),
                    dash(&key.hint),
                    dash(&key.team_id),
                    dash(&key.user_id),
                    if key.allowed_models.is_empty() {
                        "all".to_owned()
                    } else {
                        key.allowed_models.join(",")
                    },
                    if key.expires_at == 0 {
                        "never".to_owned()
                    } else {
                        switchyard_control_plane::format_rfc3339_seconds(key.expires_at)
                    },
                    if key.disabled { "revoked" } else { "active" }.to_owned(),
                ]);
            }
            out(&render::columns(&rows))?;
        }
        KeysCommand::Revoke { id } => {
            admin
                .revoke_key(pb::RevokeKeyRequest { id: id.clone() })
                .await?;
            note(&format!("key {id} revoked"));
        }
    }
    Ok(())
}

fn parse_rfc3339(text: &str) -> Result<i64, CtlError> {
    switchyard_control_plane::parse_rfc3339_seconds(text).ok_or_else(|| {
        CtlError::usage(format!(
            "`{text}` is not an RFC 3339 time like 2027-01-31T00:00:00Z"
        ))
    })
}

async fn budgets(
    admin: &mut Admin,
    command: BudgetsCommand,
    format: Format,
) -> Result<(), CtlError> {
    match command {
        BudgetsCommand::Show { id } => get(admin, ObjectKind::Budget, id.as_deref(), format).await,
        BudgetsCommand::Set {
            id,
            scope,
            limit,
            period,
            currency,
        } => {
            let (what, subject) = scope
                .split_once(':')
                .ok_or_else(|| CtlError::usage("--scope is team:ID, user:ID or key:ID"))?;
            let subject = match what {
                "team" => pb::scope::Subject::TeamId(subject.to_owned()),
                "user" => pb::scope::Subject::UserId(subject.to_owned()),
                "key" => pb::scope::Subject::KeyId(subject.to_owned()),
                _ => return Err(CtlError::usage("--scope is team:ID, user:ID or key:ID")),
            };
            let period = match period.as_str() {
                "daily" => pb::BudgetPeriod::Daily,
                "monthly" => pb::BudgetPeriod::Monthly,
                "total" => pb::BudgetPeriod::Total,
                _ => return Err(CtlError::usage("--period is daily, monthly or total")),
            };
            let nanos = switchyard_control_plane::parse_price_nanos(&limit)
                .map_err(|reason| CtlError::usage(format!("--limit: {reason}")))?;
            let mut budget = pb::Budget {
                id: id.clone(),
                scope: Some(pb::Scope {
                    subject: Some(subject),
                }),
                limit: Some(pb::Money { nanos, currency }),
                period: period as i32,
                meta: None,
            };
            let existing = admin
                .get(pb::GetObjectRequest {
                    kind: pb::ObjectKind::Budget as i32,
                    id: id.clone(),
                })
                .await;
            let object = match existing {
                Ok(existing) => {
                    let revision = StoredObject::from_proto(existing.into_inner())
                        .map_or(0, |object| object.revision());
                    budget.meta = Some(pb::ObjectMeta { owner: 0, revision });
                    admin
                        .update(pb::UpdateObjectRequest {
                            object: Some(StoredObject::Budget(budget).into_proto()),
                        })
                        .await?
                }
                Err(status) if status.code() == tonic::Code::NotFound => {
                    admin
                        .create(pb::CreateObjectRequest {
                            object: Some(StoredObject::Budget(budget).into_proto()),
                        })
                        .await?
                }
                Err(status) => return Err(status.into()),
            };
            show(&stored_objects(vec![object.into_inner()]), format)
        }
    }
}

async fn pricing(admin: &mut Admin, format: Format) -> Result<(), CtlError> {
    let objects = list(admin, ObjectKind::Deployment).await?;
    if format != Format::Table {
        return show(&objects, format);
    }
    let mut rows = vec![
        [
            "DEPLOYMENT",
            "MODEL",
            "INPUT/1M",
            "OUTPUT/1M",
            "CACHED INPUT/1M",
            "CACHE WRITE/1M",
        ]
        .map(str::to_owned),
    ];
    for object in &objects {
        let StoredObject::Deployment(deployment) = object else {
            continue;
        };
        let pricing = deployment.pricing.clone().unwrap_or_default();
        let unpriced = deployment.pricing.is_none();
        let price = |money: Option<&pb::Money>, fallback: Option<&pb::Money>| {
            if unpriced {
                "unpriced".to_owned()
            } else {
                render::money(money.or(fallback))
            }
        };
        rows.push([
            deployment.id.clone(),
            format!("{}/{}", deployment.provider, deployment.upstream_model),
            price(pricing.input_per_million.as_ref(), None),
            price(pricing.output_per_million.as_ref(), None),
            price(
                pricing.cached_input_per_million.as_ref(),
                pricing.input_per_million.as_ref(),
            ),
            price(
                pricing.cache_write_per_million.as_ref(),
                pricing.input_per_million.as_ref(),
            ),
        ]);
    }
    out(&render::columns(&rows))
}

async fn audit(admin: &mut Admin, limit: u32, format: Format) -> Result<(), CtlError> {
    let entries = admin
        .list_audit(pb::ListAuditRequest { limit })
        .await?
        .into_inner()
        .entries;
    if format != Format::Table {
        let values: Vec<serde_json::Value> = entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "sequence": entry.sequence,
                    "at": switchyard_control_plane::format_rfc3339_seconds(entry.at_ms / 1000),
                    "actor": entry.actor,
                    "action": entry.action,
                    "kind": entry.kind,
                    "id": entry.id,
                    "before_revision": entry.before_revision,
                    "after_revision": entry.after_revision,
                    "version": entry.version,
                    "before": entry.before,
                    "after": entry.after,
                })
            })
            .collect();
        return out(&if format == Format::Json {
            format!("{:#}\n", serde_json::Value::Array(values))
        } else {
            serde_yaml::to_string(&values).unwrap_or_default()
        });
    }
    let mut rows = vec![["SEQ", "AT", "ACTOR", "ACTION", "OBJECT", "REVISION"].map(str::to_owned)];
    for entry in &entries {
        rows.push([
            entry.sequence.to_string(),
            switchyard_control_plane::format_rfc3339_seconds(entry.at_ms / 1000),
            entry.actor.clone(),
            entry.action.clone(),
            format!("{} {}", entry.kind, entry.id),
            format!("{} -> {}", entry.before_revision, entry.after_revision),
        ]);
    }
    out(&render::columns(&rows))
}

async fn credentials(
    admin: &mut Admin,
    command: CredentialsCommand,
    format: Format,
) -> Result<(), CtlError> {
    match command {
        CredentialsCommand::Set {
            id,
            provider,
            from_env,
        } => {
            let value = match from_env {
                Some(variable) => std::env::var(&variable).map_err(|_| {
                    CtlError::usage(format!("environment variable `{variable}` is not set"))
                })?,
                None => {
                    let mut value = String::new();
                    std::io::stdin()
                        .read_to_string(&mut value)
                        .map_err(|error| CtlError::usage(format!("cannot read stdin: {error}")))?;
                    value
                }
            };
            let value = value.trim().to_owned();
            if value.is_empty() {
                return Err(CtlError::usage("the credential's value is empty"));
            }
            let stored = admin
                .set_credential(pb::SetCredentialRequest {
                    id,
                    provider,
                    value,
                })
                .await?
                .into_inner();
            show(&stored_objects(vec![stored]), format)
        }
        CredentialsCommand::List => show(&list(admin, ObjectKind::Credential).await?, format),
        CredentialsCommand::Rewrap => {
            let rewrapped = admin
                .rewrap_credentials(pb::RewrapCredentialsRequest {})
                .await?
                .into_inner();
            note(&format!(
                "{} credential(s) rewrapped; all are wrapped with master key {}",
                rewrapped.rewrapped, rewrapped.master_key_id
            ));
            Ok(())
        }
    }
}

async fn tokens(admin: &mut Admin, command: TokensCommand, format: Format) -> Result<(), CtlError> {
    match command {
        TokensCommand::Create { role, id } => {
            let role = match role.as_str() {
                "viewer" => pb::AdminRole::Viewer,
                "operator" => pb::AdminRole::Operator,
                "admin" => pb::AdminRole::Admin,
                _ => return Err(CtlError::usage("--role is viewer, operator or admin")),
            };
            let created = admin
                .create_admin_token(pb::CreateAdminTokenRequest {
                    id: id.unwrap_or_default(),
                    role: role as i32,
                })
                .await?
                .into_inner();
            let id = created.token.map(|token| token.id).unwrap_or_default();
            if format == Format::Table {
                note(&format!(
                    "admin token {id} created; it is shown this once and stored only as a hash:"
                ));
                out(&format!("{}\n", created.secret))?;
            } else {
                let value = serde_json::json!({ "id": id, "secret": created.secret });
                out(&format!("{value:#}\n"))?;
            }
        }
        TokensCommand::List => {
            let tokens = admin
                .list_admin_tokens(pb::ListAdminTokensRequest {})
                .await?
                .into_inner()
                .tokens;
            let mut rows = vec![["ID", "ROLE", "TOKEN", "CREATED", "BY"].map(str::to_owned)];
            for token in tokens {
                let role = pb::AdminRole::try_from(token.role)
                    .map(|role| {
                        role.as_str_name()
                            .trim_start_matches("ADMIN_ROLE_")
                            .to_lowercase()
                    })
                    .unwrap_or_default();
                rows.push([
                    token.id,
                    role,
                    token.hint,
                    switchyard_control_plane::format_rfc3339_seconds(token.created_at),
                    token.created_by,
                ]);
            }
            out(&render::columns(&rows))?;
        }
        TokensCommand::Revoke { id } => {
            admin
                .revoke_admin_token(pb::RevokeAdminTokenRequest { id: id.clone() })
                .await?;
            note(&format!("admin token {id} revoked"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_singular_plural_and_dashed_forms() {
        assert_eq!(parse_kind("routes"), Ok(ObjectKind::Route));
        assert_eq!(parse_kind("key"), Ok(ObjectKind::ApiKey));
        assert_eq!(parse_kind("rate-limits"), Ok(ObjectKind::RateLimit));
        assert!(parse_kind("widgets").is_err());
    }

    #[test]
    fn refusals_map_to_exit_codes_scripts_can_rely_on() {
        let code = |status: tonic::Status| CtlError::from(status).exit_code;
        assert_eq!(code(tonic::Status::failed_precondition("stale")), 3);
        assert_eq!(code(tonic::Status::invalid_argument("bad")), 3);
        assert_eq!(code(tonic::Status::unauthenticated("who")), 4);
        assert_eq!(code(tonic::Status::permission_denied("no")), 4);
        assert_eq!(code(tonic::Status::unavailable("down")), 5);
    }
}
