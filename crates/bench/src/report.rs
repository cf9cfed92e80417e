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

    /// Appends ` · {suffix}` to the row's label (which binary, which round).
    pub fn append_label(&mut self, suffix: &str) {
        let (Row::Compare { label, .. } | Row::Idle { label, .. } | Row::Soak { label, .. }) = self;
        label.push_str(" · ");
        label.push_str(suffix);
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

/// Writes the direct and the gateway line of one scenario: the latency
/// columns `measured` picks, the two "added" columns of what `compared`
/// picks (gateway − direct), then throughput, errors, memory and CPU.
fn write_comparison(
    out: &mut String,
    label: &str,
    direct: &Summary,
    gateway: &Summary,
    measured: impl Fn(&Summary) -> Vec<u64>,
    compared: impl Fn(&Summary) -> [u64; 2],
) {
    let [gateway_first, gateway_second] = compared(gateway);
    let [direct_first, direct_second] = compared(direct);
    let gateway_added = [
        added(gateway_first, direct_first),
        added(gateway_second, direct_second),
    ];
    for (path, summary, added) in [
        ("direct", direct, [String::new(), String::new()]),
        ("gateway", gateway, gateway_added),
    ] {
        let mut cells = vec![label.to_owned(), path.to_owned()];
        cells.extend(measured(summary).iter().map(u64::to_string));
        cells.extend(added);
        cells.push(format!("{:.0}", summary.rps));
        cells.push(summary.errors.to_string());
        cells.push(mib(summary.peak_rss_kib));
        cells.push(
            summary
                .cpu_per_1k
                .map_or_else(|| "–".to_owned(), |cpu| format!("{cpu:.3}")),
        );
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
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
            write_comparison(
                &mut out,
                label,
                direct,
                gateway,
                |summary| {
                    let latency = &summary.latency;
                    vec![latency.p50, latency.p90, latency.p99, latency.max]
                },
                |summary| [summary.latency.p50, summary.latency.p99],
            );
        }
    }
    let streaming: Vec<_> = rows
        .iter()
        .filter_map(|row| match row {
            Row::Compare {
                label,
                direct,
                gateway,
                streaming: true,
            } => Some((label, direct, gateway)),
            _ => None,
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
        for (label, direct, gateway) in streaming {
            write_comparison(
                &mut out,
                label,
                direct,
                gateway,
                |summary| {
                    let (first, gaps) = (&summary.first_chunk, &summary.gaps);
                    vec![first.p50, first.p99, gaps.p50, gaps.p99, gaps.max]
                },
                |summary| [summary.first_chunk.p99, summary.gaps.p99],
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn percentiles(p50: u64, p90: u64, p99: u64, max: u64) -> Percentiles {
        Percentiles {
            p50,
            p90,
            p99,
            max,
            count: 100,
        }
    }

    fn summary(latency: Percentiles, rps: f64, rss_kib: Option<u64>, cpu: Option<f64>) -> Summary {
        Summary {
            latency,
            first_chunk: latency,
            gaps: percentiles(latency.p50 * 2, 0, latency.p99 * 2, latency.max * 2),
            rps,
            requests: 100,
            errors: 1,
            peak_rss_kib: rss_kib,
            cpu_per_1k: cpu,
        }
    }

    #[test]
    fn comparison_rows_show_added_latency_on_the_gateway_line_only() {
        let direct = summary(percentiles(10, 12, 20, 90), 5000.4, None, None);
        let gateway = summary(
            percentiles(15, 18, 18, 95),
            4000.6,
            Some(2048),
            Some(0.0625),
        );
        let rows = [
            Row::new("plain", direct.clone(), gateway.clone()),
            Row::new("streamed", direct, gateway).streaming(),
        ];
        let report = render(&rows, "test machine", true);
        let lines: Vec<&str> = report
            .lines()
            .filter(|line| line.starts_with("| "))
            .collect();
        assert_eq!(
            lines,
            [
                "| scenario | path | p50 | p90 | p99 | max | added p50 | added p99 | req/s | errors | peak RSS | CPU s / 1k req |",
                "| plain | direct | 10 | 12 | 20 | 90 |  |  | 5000 | 1 | – | – |",
                // A gateway faster than the baseline at p99 shows a negative difference.
                "| plain | gateway | 15 | 18 | 18 | 95 | 5 | -2 | 4001 | 1 | 2.0 MiB | 0.062 |",
                "| scenario | path | TTFT p50 | TTFT p99 | gap p50 | gap p99 | gap max | added TTFT p99 | added gap p99 | streams/s | errors | peak RSS | CPU s / 1k streams |",
                "| streamed | direct | 10 | 20 | 20 | 40 | 180 |  |  | 5000 | 1 | – | – |",
                "| streamed | gateway | 15 | 18 | 30 | 36 | 190 | -2 | -4 | 4001 | 1 | 2.0 MiB | 0.062 |",
            ]
        );
    }
}
