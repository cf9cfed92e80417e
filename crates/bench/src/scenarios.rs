//! The scenarios: each measured against the mock directly (the baseline)
//! and through every gateway binary under test.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use bytes::Bytes;
use switchyard_test_support::{
    collector::Collector,
    launch::{Launch, Processes, WRAPPER_VARIABLE},
};

use crate::{
    load::{self, LoadResult, LoadSpec},
    report::{self, Row, Summary},
    system,
    upstream::{self, UpstreamBehaviour},
};

/// Options of `switchyard-bench`.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "Measures the latency, throughput and memory the gateway adds.")]
pub struct BenchArgs {
    /// The `switchyard` binary to measure. Defaults to the one next to this
    /// executable, built first when run through `cargo run`.
    #[arg(long)]
    pub gateway: Option<PathBuf>,
    /// Name of `--gateway` in the report when there is a baseline.
    #[arg(long, default_value = "this build")]
    pub label: String,
    /// A second `switchyard` binary (e.g. built from an earlier commit),
    /// measured side by side in the same run, scenario by scenario.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Name of `--baseline` in the report.
    #[arg(long, default_value = "baseline")]
    pub baseline_label: String,
    /// How many times to run the whole set; with a baseline, the order of
    /// the two binaries alternates from round to round.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Seconds each measurement runs (after a one-second warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Scenarios to run, comma-separated: c1, c64, c256, stream,
    /// streams2000, governance, split, idle (the default set), routed and
    /// routed-c1 (a three-deployment route under a latency strategy with
    /// breakers and hedging configured), and soak,
    /// governance-c1 (c1 without usage events, to tell the ledger's share of
    /// the c=1 tail apart), split-c1 and slow-readers (split mode at c=1,
    /// without and with four clients that stopped reading large streams),
    /// which run only when named.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Length of the `soak` scenario in seconds.
    #[arg(long, default_value_t = 600)]
    pub soak_seconds: u64,
    /// Also write the report (Markdown) to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Turns tracing on in `--gateway` (not the baseline), exporting this
    /// share of traces to an OTLP collector the bench runs.
    #[arg(long)]
    pub trace_sample_ratio: Option<f64>,
}

const DEFAULT_SCENARIOS: [&str; 8] = [
    "idle",
    "c1",
    "c64",
    "c256",
    "stream",
    "streams2000",
    "governance",
    "split",
];
const BENCH_KEY: &str = "sk-switchyard-bench";

/// Clients of the `slow-readers` scenario that stop reading their streams.
const SLOW_READERS: usize = 4;

/// Chunks of each slow reader's stream: about 20 MB, far more than the
/// socket buffers and flow-control windows on the way hold.
const SLOW_READER_CHUNKS: usize = 100_000;

/// Pins this process (all its threads) to the first core, leaving the others
/// to the gateway, and returns how many cores the machine offered before.
/// Call before any thread is started.
pub fn pin_load_generator() -> usize {
    let cores = system::available_cores();
    if cores < 2 {
        return cores;
    }
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &pid])
        .stdout(std::process::Stdio::null())
        .status();
    cores
}

/// A gateway binary under test, its name in the report, and the
/// environment it runs with beyond the bench's own.
struct Subject {
    label: String,
    binary: PathBuf,
    environment: BTreeMap<String, String>,
}

/// Runs the selected scenarios and prints the report.
/// `cores` is the machine's core count before [`pin_load_generator`].
pub async fn run(args: BenchArgs, cores: usize) -> anyhow::Result<()> {
    // Kept running for the whole bench: the traced gateway exports to it.
    let collector = match args.trace_sample_ratio {
        Some(_) => Some(Collector::start().await),
        None => None,
    };
    let tracing = collector
        .iter()
        .zip(args.trace_sample_ratio)
        .flat_map(|(collector, ratio)| {
            [
                (
                    "SWITCHYARD__TELEMETRY__OTLP_ENDPOINT".to_owned(),
                    collector.endpoint(),
                ),
                (
                    "SWITCHYARD__TELEMETRY__TRACE_SAMPLE_RATIO".to_owned(),
                    ratio.to_string(),
                ),
            ]
        })
        .collect();
    let mut subjects = vec![Subject {
        label: args.label.clone(),
        binary: crate::gateway::binary(args.gateway.as_deref())?,
        environment: tracing,
    }];
    if let Some(baseline) = &args.baseline {
        subjects.push(Subject {
            label: args.baseline_label.clone(),
            binary: baseline.clone(),
            environment: BTreeMap::new(),
        });
    }
    let scenarios: Vec<String> = if args.scenarios.is_empty() {
        DEFAULT_SCENARIOS
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    } else {
        args.scenarios.clone()
    };
    let bench = Bench {
        measure: Duration::from_secs_f64(args.seconds),
        gateway_cpus: (cores >= 2).then(|| "1".to_owned()),
    };
    let mut rows = Vec::new();
    for round in 0..args.rounds.max(1) {
        for scenario in &scenarios {
            // Alternate which binary goes first, so drift favours neither.
            let mut order: Vec<&Subject> = subjects.iter().collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for subject in order {
                eprintln!("bench: running {scenario} on {}", subject.label);
                let mut row = bench.scenario(scenario, subject, &args).await?;
                if subjects.len() > 1 {
                    row.append_label(&subject.label);
                }
                if args.rounds > 1 {
                    row.append_label(&format!("round {}", round + 1));
                }
                rows.push(row);
            }
        }
    }
    let report = report::render(
        &rows,
        &system::describe_machine(cores),
        bench.gateway_cpus.is_some(),
    );
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, report.as_bytes())?;
    if let Some(path) = &args.output {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

impl Bench {
    async fn scenario(
        &self,
        scenario: &str,
        subject: &Subject,
        args: &BenchArgs,
    ) -> anyhow::Result<Row> {
        let bench = Gateways {
            bench: self,
            binary: &subject.binary,
            environment: &subject.environment,
        };
        let row = match scenario {
            "idle" => bench.idle().await?,
            "c1" | "c64" | "c256" => {
                let concurrency: usize = scenario[1..].parse()?;
                let label = format!("non-streaming, c={concurrency}");
                bench
                    .non_streaming(&label, concurrency, Mode::AllInOne, true)
                    .await?
            }
            "stream" => {
                bench
                    .streaming(
                        "streaming 64 chunks, c=64",
                        64,
                        64,
                        Duration::from_millis(1),
                    )
                    .await?
            }
            "streams2000" => {
                bench
                    .streaming(
                        "2,000 slow streams (64 chunks, 50 ms apart)",
                        2000,
                        64,
                        Duration::from_millis(50),
                    )
                    .await?
            }
            "governance" => {
                bench
                    .non_streaming(
                        "governance off (no usage events), c=64",
                        64,
                        Mode::AllInOne,
                        false,
                    )
                    .await?
            }
            "governance-c1" => {
                bench
                    .non_streaming(
                        "governance off (no usage events), c=1",
                        1,
                        Mode::AllInOne,
                        false,
                    )
                    .await?
            }
            "split" => {
                bench
                    .non_streaming("split mode, c=32", 32, Mode::Split, true)
                    .await?
            }
            "split-c1" => {
                bench
                    .non_streaming("split mode, c=1", 1, Mode::Split, true)
                    .await?
            }
            "routed" | "routed-c1" => {
                let concurrency = if scenario == "routed" { 64 } else { 1 };
                let label = format!(
                    "three deployments, latency strategy, breakers and hedging on, c={concurrency}"
                );
                bench
                    .non_streaming_on(ROUTED_ROUTE, &label, concurrency, Mode::AllInOne, true)
                    .await?
            }
            "slow-readers" => bench.slow_readers(SLOW_READERS).await?,
            "soak" => bench.soak(Duration::from_secs(args.soak_seconds)).await?,
            other => anyhow::bail!("unknown scenario `{other}`"),
        };
        Ok(row)
    }
}

/// The scenarios, run on one gateway binary.
struct Gateways<'a> {
    bench: &'a Bench,
    binary: &'a Path,
    environment: &'a BTreeMap<String, String>,
}

impl std::ops::Deref for Gateways<'_> {
    type Target = Bench;

    fn deref(&self) -> &Bench {
        self.bench
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AllInOne,
    Split,
}

struct Bench {
    measure: Duration,
    gateway_cpus: Option<String>,
}

/// A gateway under test, with what it needs kept alive.
struct Gateway {
    processes: Processes,
    _directory: tempfile::TempDir,
}

impl Gateway {
    fn pids(&self) -> Vec<u32> {
        self.processes
            .children
            .iter()
            .filter_map(tokio::process::Child::id)
            .collect()
    }

    fn cpu_seconds(&self) -> f64 {
        self.pids().into_iter().map(system::cpu_seconds).sum()
    }

    fn memory_kib(&self, field: &str) -> u64 {
        self.pids()
            .into_iter()
            .map(|pid| system::memory_kib(pid, field))
            .sum()
    }

    fn address(&self) -> anyhow::Result<std::net::SocketAddr> {
        self.processes.edge_address.parse().context("edge address")
    }
}

/// The route of the single-target scenarios.
const SINGLE_ROUTE: &str = "bench";
/// Three deployments of the same upstream under a latency strategy, with
/// breakers on and hedging configured (after 10 s: never triggered here).
const ROUTED_ROUTE: &str = "bench-routed";

fn chat_body(model: &str, stream: bool) -> Bytes {
    let body = serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence, please."}
        ],
        "max_tokens": 64,
        "stream": stream,
    });
    Bytes::from(body.to_string())
}

impl Gateways<'_> {
    async fn start_gateway(
        &self,
        upstream: std::net::SocketAddr,
        mode: Mode,
        usage_events: bool,
    ) -> anyhow::Result<Gateway> {
        let directory = tempfile::tempdir()?;
        let path = |file: &str| directory.path().join(file).display().to_string();
        let config = format!(
            r#"
router: {{usage_events: {usage_events}}}
control_plane: {{database_url: "sqlite://{control}"}}
ledger: {{sqlite_url: "sqlite://{ledger}"}}
telemetry: {{log_filter: error}}
providers:
  - {{name: upstream, kind: openai, base_url: "http://{upstream}/v1"}}
models:
  - name: bench
    targets: [{{provider: upstream, model: bench-model}}]
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
deployments:
  - {{id: r1, provider: upstream, model: bench-model, pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}}}
  - {{id: r2, provider: upstream, model: bench-model, pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}}}
  - {{id: r3, provider: upstream, model: bench-model, pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}}}
routes:
  - name: bench-routed
    strategy: {{latency: [r1, r2, r3]}}
    hedge: {{after: 10s}}
teams: [{{id: bench}}]
keys:
  - {{id: bench, team: bench, secret: {{env: SWITCHYARD_BENCH_KEY}}}}
"#,
            control = path("control.db"),
            ledger = path("ledger.db"),
        );
        let config_path = directory.path().join("bench.yaml");
        std::fs::write(&config_path, config)?;
        let mut environment = self.environment.clone();
        environment.insert("SWITCHYARD_BENCH_KEY".to_owned(), BENCH_KEY.to_owned());
        if let Ok(wrapper) = std::env::var(WRAPPER_VARIABLE) {
            environment.insert(WRAPPER_VARIABLE.to_owned(), wrapper);
        }
        let launch = Launch {
            binary: self.binary,
            config: &config_path,
            environment: &environment,
            cpus: self.gateway_cpus.as_deref(),
            log_directory: None,
        };
        let processes = match mode {
            Mode::AllInOne => launch.all_in_one().await?,
            Mode::Split => launch.distributed().await?,
        };
        let gateway = Gateway {
            processes,
            _directory: directory,
        };
        self.wait_until_serving(gateway.address()?).await?;
        Ok(gateway)
    }
}

impl Bench {
    /// Sends requests until one succeeds (the snapshot has arrived).
    async fn wait_until_serving(&self, address: std::net::SocketAddr) -> anyhow::Result<()> {
        let spec = LoadSpec {
            address,
            body: chat_body(SINGLE_ROUTE, false),
            api_key: Some(BENCH_KEY.to_owned()),
            concurrency: 1,
            duration: Duration::from_millis(50),
            warmup: Duration::ZERO,
            rate: None,
        };
        for _ in 0..200 {
            let result = load::run(&spec).await;
            if result.errors == 0 && !result.latencies.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the gateway did not start serving")
    }

    fn spec(
        &self,
        address: std::net::SocketAddr,
        stream: bool,
        concurrency: usize,
        api_key: bool,
    ) -> LoadSpec {
        LoadSpec {
            address,
            body: chat_body(SINGLE_ROUTE, stream),
            api_key: api_key.then(|| BENCH_KEY.to_owned()),
            concurrency,
            duration: self.measure,
            warmup: Duration::from_secs(1),
            rate: None,
        }
    }

    async fn measure(&self, spec: &LoadSpec, gateway: Option<&Gateway>) -> Summary {
        let cpu_before = gateway.map_or(0.0, Gateway::cpu_seconds);
        let result: LoadResult = load::run(spec).await;
        let cpu_after = gateway.map_or(0.0, Gateway::cpu_seconds);
        let mut summary = Summary::from_result(result);
        if let Some(gateway) = gateway {
            summary.peak_rss_kib = Some(gateway.memory_kib("VmHWM"));
            // The warm-up's CPU is included; count its requests too, pro rata.
            let measured = summary.requests as f64;
            let window = spec.duration.as_secs_f64();
            let requests = measured * (window + spec.warmup.as_secs_f64()) / window;
            if requests > 0.0 {
                summary.cpu_per_1k = Some((cpu_after - cpu_before) * 1000.0 / requests);
            }
        }
        summary
    }
}

impl Gateways<'_> {
    async fn non_streaming(
        &self,
        label: &str,
        concurrency: usize,
        mode: Mode,
        usage_events: bool,
    ) -> anyhow::Result<Row> {
        self.non_streaming_on(SINGLE_ROUTE, label, concurrency, mode, usage_events)
            .await
    }

    /// Non-streamed requests for `route`, straight to the mock and through
    /// the gateway.
    async fn non_streaming_on(
        &self,
        route: &str,
        label: &str,
        concurrency: usize,
        mode: Mode,
        usage_events: bool,
    ) -> anyhow::Result<Row> {
        let upstream = upstream::start(UpstreamBehaviour {
            latency: Duration::ZERO,
            stream_chunks: 0,
            chunk_interval: Duration::ZERO,
        })
        .await?;
        let direct = self
            .measure(&self.spec(upstream, false, concurrency, false), None)
            .await;
        let gateway = self.start_gateway(upstream, mode, usage_events).await?;
        let mut spec = self.spec(gateway.address()?, false, concurrency, true);
        spec.body = chat_body(route, false);
        let through = self.measure(&spec, Some(&gateway)).await;
        Ok(Row::new(label, direct, through))
    }

    async fn streaming(
        &self,
        label: &str,
        concurrency: usize,
        chunks: usize,
        interval: Duration,
    ) -> anyhow::Result<Row> {
        let upstream = upstream::start(UpstreamBehaviour {
            latency: Duration::ZERO,
            stream_chunks: chunks,
            chunk_interval: interval,
        })
        .await?;
        let mut spec = self.spec(upstream, true, concurrency, false);
        // Slow streams need a window longer than one stream.
        let stream_length = interval * u32::try_from(chunks).unwrap_or(u32::MAX);
        spec.duration = spec.duration.max(stream_length * 2);
        let direct = self.measure(&spec, None).await;
        let gateway = self.start_gateway(upstream, Mode::AllInOne, true).await?;
        spec.address = gateway.address()?;
        spec.api_key = Some(BENCH_KEY.to_owned());
        let through = self.measure(&spec, Some(&gateway)).await;
        Ok(Row::new(label, direct, through).streaming())
    }

    /// Split mode at c=1 while `readers` clients hold large streams they
    /// have stopped reading: what the other requests on the same edge and
    /// the same gRPC connections see.
    async fn slow_readers(&self, readers: usize) -> anyhow::Result<Row> {
        let upstream = upstream::start(UpstreamBehaviour {
            latency: Duration::ZERO,
            stream_chunks: SLOW_READER_CHUNKS,
            chunk_interval: Duration::ZERO,
        })
        .await?;
        let direct = self
            .measure(&self.spec(upstream, false, 1, false), None)
            .await;
        let gateway = self.start_gateway(upstream, Mode::Split, true).await?;
        let address = gateway.address()?;
        let mut stalled = Vec::with_capacity(readers);
        for _ in 0..readers {
            stalled.push(stalled_stream(address).await?);
        }
        // Let the streams fill every buffer and window on the way.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let through = self
            .measure(&self.spec(address, false, 1, true), Some(&gateway))
            .await;
        drop(stalled);
        Ok(Row::new(
            &format!("split mode, c=1, {readers} slow readers connected"),
            direct,
            through,
        ))
    }

    async fn idle(&self) -> anyhow::Result<Row> {
        let upstream = upstream::start(UpstreamBehaviour {
            latency: Duration::ZERO,
            stream_chunks: 0,
            chunk_interval: Duration::ZERO,
        })
        .await?;
        let gateway = self.start_gateway(upstream, Mode::AllInOne, true).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(Row::idle(
            "idle, all-in-one (after one request)",
            gateway.memory_kib("VmRSS"),
        ))
    }

    /// Runs at half the measured maximum throughput for `length`, sampling RSS.
    async fn soak(&self, length: Duration) -> anyhow::Result<Row> {
        let upstream = upstream::start(UpstreamBehaviour {
            latency: Duration::ZERO,
            stream_chunks: 0,
            chunk_interval: Duration::ZERO,
        })
        .await?;
        let gateway = self.start_gateway(upstream, Mode::AllInOne, true).await?;
        let address = gateway.address()?;
        let maximum = self
            .measure(&self.spec(address, false, 64, true), Some(&gateway))
            .await;
        let rate = (maximum.rps / 2.0).max(1.0);
        let mut samples = Vec::new();
        let mut errors = 0;
        let mut requests = 0;
        let slice = Duration::from_secs(10);
        let slices = (length.as_secs() / slice.as_secs()).max(1);
        for _ in 0..slices {
            let mut spec = self.spec(address, false, 64, true);
            spec.duration = slice;
            spec.warmup = Duration::ZERO;
            spec.rate = Some(rate);
            let result = load::run(&spec).await;
            errors += result.errors;
            requests += result.latencies.len() as u64;
            samples.push(gateway.memory_kib("VmRSS"));
        }
        Ok(Row::soak(
            &format!(
                "soak {} s at {rate:.0} req/s (50% of max)",
                length.as_secs()
            ),
            &samples,
            requests,
            errors,
        ))
    }
}

/// Opens a streamed request on `address` and reads only the start of the
/// answer: a client that has stopped reading. The connection stays open
/// until the returned stream is dropped.
async fn stalled_stream(address: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = chat_body(SINGLE_ROUTE, true);
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {BENCH_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut start = [0_u8; 1024];
    let read = stream.read(&mut start).await?;
    anyhow::ensure!(
        start[..read].starts_with(b"HTTP/1.1 200"),
        "the slow reader's stream did not start: {}",
        String::from_utf8_lossy(&start[..read])
    );
    Ok(stream)
}
