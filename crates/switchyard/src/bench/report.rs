//! The benchmark report: Markdown tables of baseline and gateway figures.

use std::fmt::Write;

use super::{
    load::LoadResult,
    stats::{Percentiles, percentiles},
};

/// One measurement's figures.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Whole-request latency.
    pub latency: Percentiles,
    /// Time to first body frame.
    pub first_chunk: Percentiles,
    /// Gaps between body frames.
    pub gaps: Percentiles,
    /// Completed requests per second.
    pub rps: f64,
    /// Completed requests in the window.
    pub requests: usize,
    /// Failed requests.
    pub errors: u64,
    /// Peak resident memory of the gateway's processes.
    pub peak_rss_kib: Option<u64>,
    /// Gateway CPU seconds per 1,000 requests.
    pub cpu_per_1k: Option<f64>,
}

impl Summary {
    /// Summarizes a load run.
    pub fn from_result(mut result: LoadResult) -> Self {
        let requests = result.latencies.len();
        Self {
            latency: percentiles(&mut result.latencies),
            first_chunk: percentiles(&mut result.first_chunk),
            gaps: percentiles(&mut result.gaps),
            rps: requests as f64 / result.elapsed.as_secs_f64().max(f64::EPSILON),
            requests,
            errors: result.errors,
            peak_rss_kib: None,
            cpu_per_1k: None,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub enum Row {
    /// Baseline and gateway under the same load.
    Compare {
        /// What was measured.
        label: String,
        /// Straight to the mock upstream.
        direct: Box<Summary>,
        /// Through the gateway.
        gateway: Box<Summary>,
        /// Whether to report stream timings.
        streaming: bool,
    },
    /// Resident memory of an idle gateway.
    Idle {
        /// What was measured.
        label: String,
        /// Resident memory.
        rss_kib: u64,
    },
    /// RSS over a long run.
    Soak {
        /// What was measured.
        label: String,
        /// RSS samples, one per slice.
        samples: Vec<u64>,
        /// Completed requests.
        requests: u64,
        /// Failed requests.
        errors: u64,
    },
}

impl Row {
    /// A comparison row.
    pub fn new(label: &str, direct: Summary, gateway: Summary) -> Self {
        Row::Compare {
            label: label.to_owned(),
            direct: Box::new(direct),
            gateway: Box::new(gateway),
            streaming: false,
        }
    }

    /// Marks a comparison row as a streaming one.
    pub fn streaming(self) -> Self {
        match self {
            Row::Compare {
                label,
                direct,
                gateway,
                ..
            } => Row::Compare {
                label,
                direct,
                gateway,
                streaming: true,
            },
            other => other,
        }
    }

    /// An idle-memory row.
    pub fn idle(label: &str, rss_kib: u64) -> Self {
        Row::Idle {
            label: label.to_owned(),
            rss_kib,
        }
    }

    /// A soak row.
    pub fn soak(label: &str, samples: &[u64], requests: u64, errors: u64) -> Self {
        Row::Soak {
            label: label.to_owned(),
            samples: samples.to_vec(),
            requests,
            errors,
        }
    }
}

fn added(gateway: u64, direct: u64) -> String {
    let difference = i128::from(gateway) - i128::from(direct);
    format!("{difference}")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "–".to_owned(),
        |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
    )
}

/// Renders the report as Markdown.
pub fn render(rows: &[Row], machine: &str, pinned: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {machine}. Gateway pinned to core 1, load generator and mock upstream to core 0: {pinned}."
    );
    let _ = writeln!(
        out,
        "Latencies in µs; \"added\" = gateway − direct at the same percentile.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | path | p50 | p90 | p99 | max | added p50 | added p99 | req/s | errors | peak RSS | CPU s / 1k req |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        if let Row::Compare {
            label,
            direct,
            gateway,
            streaming: false,
        } = row
        {
            for (path, summary) in [("direct", direct), ("gateway", gateway)] {
                let is_gateway = path == "gateway";
                let _ = writeln!(
                    out,
                    "| {label} | {path} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                    summary.latency.p50,
                    summary.latency.p90,
                    summary.latency.p99,
                    summary.latency.max,
                    if is_gateway {
                        added(gateway.latency.p50, direct.latency.p50)
                    } else {
                        String::new()
                    },
                    if is_gateway {
                        added(gateway.latency.p99, direct.latency.p99)
                    } else {
                        String::new()
                    },
                    summary.rps,
                    summary.errors,
                    mib(summary.peak_rss_kib),
                    summary
                        .cpu_per_1k
                        .map_or_else(|| "–".to_owned(), |cpu| format!("{cpu:.3}")),
                );
            }
        }
    }
    let streaming: Vec<_> = rows
        .iter()
        .filter(|row| {
            matches!(
                row,
                Row::Compare {
                    streaming: true,
                    ..
                }
            )
        })
        .collect();
    if !streaming.is_empty() {
        let _ = writeln!(
            out,
            "\n| scenario | path | TTFT p50 | TTFT p99 | gap p50 | gap p99 | gap max | added TTFT p99 | added gap p99 | streams/s | errors | peak RSS | CPU s / 1k streams |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for row in streaming {
            if let Row::Compare {
                label,
                direct,
                gateway,
                ..
            } = row
            {
                for (path, summary) in [("direct", direct), ("gateway", gateway)] {
                    let is_gateway = path == "gateway";
                    let _ = writeln!(
                        out,
                        "| {label} | {path} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                        summary.first_chunk.p50,
                        summary.first_chunk.p99,
                        summary.gaps.p50,
                        summary.gaps.p99,
                        summary.gaps.max,
                        if is_gateway {
                            added(gateway.first_chunk.p99, direct.first_chunk.p99)
                        } else {
                            String::new()
                        },
                        if is_gateway {
                            added(gateway.gaps.p99, direct.gaps.p99)
                        } else {
                            String::new()
                        },
                        summary.rps,
                        summary.errors,
                        mib(summary.peak_rss_kib),
                        summary
                            .cpu_per_1k
                            .map_or_else(|| "–".to_owned(), |cpu| format!("{cpu:.3}")),
                    );
                }
            }
        }
    }
    for row in rows {
        match row {
            Row::Idle { label, rss_kib } => {
                let _ = writeln!(out, "\n{label}: RSS {}", mib(Some(*rss_kib)));
            }
            Row::Soak {
                label,
                samples,
                requests,
                errors,
            } => {
                let series: Vec<String> = samples
                    .iter()
                    .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
                    .collect();
                let _ = writeln!(
                    out,
                    "\n{label}: {requests} requests, {errors} errors; RSS every 10 s (MiB): {}",
                    series.join(", ")
                );
            }
            Row::Compare { .. } => {}
        }
    }
    out
}
