//! [`SqliteWriter`]: the one connection that writes usage rows, on a thread
//! of its own.
//!
//! sqlx's SQLite driver copies every text argument twice, allocates and
//! frees SQLite's copy per value and clears all bindings after each
//! statement: about 40,000 instructions per 30-column row, twice SQLite's
//! own insert work (BENCHMARKS.md). This writer keeps one prepared
//! statement for the life of the connection and rebinds it row by row, so
//! SQLite reuses its value buffers, and the caller's rows cross to the
//! thread as one [`RowBatch`] (two vectors and one string) instead of one
//! allocation per value.

use std::{
    ops::Range,
    path::Path,
    sync::mpsc::{self, Receiver, Sender},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, Statement};
use tokio::sync::oneshot;

use crate::{
    error::{Error, Result},
    event::UsageRow,
};

/// Text columns of a row, bound first.
pub(super) const TEXT_COLUMNS: usize = 17;

/// Integer columns of a row, bound after the text columns.
pub(super) const INTEGER_COLUMNS: usize = 14;

/// The columns of `usage_events` in the order [`RowBatch::push`] records
/// them: the text columns, then the integer columns.
pub(super) const COLUMNS: [&str; TEXT_COLUMNS + INTEGER_COLUMNS] = [
    "event_id",
    "request_id",
    "key_id",
    "team_id",
    "end_user",
    "model",
    "provider",
    "upstream_model",
    "currency",
    "error_class",
    "route_id",
    "deployment_id",
    "tags",
    "attempts",
    "user_id",
    "operation",
    "decision",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_prompt_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_nanos",
    "cache_hit",
    "stream",
    "latency_ms",
    "ttft_ms",
    "created_at",
    "created_at_ms",
    "snapshot_version",
];

/// Rows per multi-row `INSERT`. One statement per row costs about 7,000
/// more instructions per row inside SQLite; only two statements exist
/// (this many rows, and one), both prepared once.
const ROWS_PER_STATEMENT: usize = 64;

/// SQLite's limit on bound parameters in one statement.
const MAX_PARAMETERS: usize = 32_766;
const _: () = assert!(ROWS_PER_STATEMENT * COLUMNS.len() <= MAX_PARAMETERS);

/// How long a write waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The rows of one insert, owned so they can cross to the writer thread:
/// every text value in one string, addressed by byte ranges.
#[derive(Debug, Default)]
pub(super) struct RowBatch {
    text: String,
    /// `TEXT_COLUMNS` (start, end) byte ranges into `text` per row.
    spans: Vec<(usize, usize)>,
    /// `INTEGER_COLUMNS` values per row.
    integers: Vec<i64>,
}

impl RowBatch {
    /// Copies `rows` into one batch.
    pub(super) fn from_rows(rows: &[UsageRow<'_>]) -> Self {
        let text_bytes = rows.iter().map(text_len).sum();
        let mut batch = Self {
            text: String::with_capacity(text_bytes),
            spans: Vec::with_capacity(rows.len() * TEXT_COLUMNS),
            integers: Vec::with_capacity(rows.len() * INTEGER_COLUMNS),
        };
        for row in rows {
            batch.push(row);
        }
        batch
    }

    /// Number of rows.
    pub(super) fn len(&self) -> usize {
        self.integers.len() / INTEGER_COLUMNS
    }

    /// Appends one row, in the order of [`COLUMNS`].
    fn push(&mut self, row: &UsageRow<'_>) {
        for value in texts(row) {
            let start = self.text.len();
            self.text.push_str(value);
            self.spans.push((start, self.text.len()));
        }
        self.integers.extend_from_slice(&[
            i64::from(row.prompt_tokens),
            i64::from(row.completion_tokens),
            i64::from(row.total_tokens),
            i64::from(row.cached_prompt_tokens),
            i64::from(row.reasoning_tokens),
            i64::from(row.cache_write_tokens),
            row.cost_nanos,
            i64::from(row.cache_hit),
            i64::from(row.stream),
            saturating_i64(row.latency_ms),
            saturating_i64(row.ttft_ms),
            i64::from(row.created_at),
            saturating_i64(row.created_at_ms),
            saturating_i64(row.snapshot_version),
        ]);
    }

    /// The text values of row `index`.
    fn text_values(&self, index: usize) -> impl Iterator<Item = &str> {
        self.spans[index * TEXT_COLUMNS..(index + 1) * TEXT_COLUMNS]
            .iter()
            .map(|&(start, end)| &self.text[start..end])
    }

    /// The integer values of row `index`.
    fn integer_values(&self, index: usize) -> &[i64] {
        &self.integers[index * INTEGER_COLUMNS..(index + 1) * INTEGER_COLUMNS]
    }
}

/// The text columns of `row`, in the order of [`COLUMNS`].
fn texts<'r>(row: &'r UsageRow<'_>) -> [&'r str; TEXT_COLUMNS] {
    [
        row.event_id.as_ref(),
        row.request_id,
        row.key_id,
        row.team_id,
        row.end_user,
        row.model,
        row.provider,
        row.upstream_model,
        row.currency,
        row.error_class,
        row.route_id,
        row.deployment_id,
        row.tags.as_str(),
        row.attempts.as_str(),
        row.user_id,
        row.operation,
        row.decision.as_str(),
    ]
}

/// Bytes of text in `row`.
fn text_len(row: &UsageRow<'_>) -> usize {
    texts(row).iter().map(|value| value.len()).sum()
}

/// SQLite integers are signed 64-bit; larger values are clamped.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One batch to write and where to answer.
struct Job {
    batch: RowBatch,
    done: oneshot::Sender<Result<()>>,
}

/// Handle to the writer thread; the thread ends when the last handle is
/// dropped, after finishing the batch in hand.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    jobs: Sender<Job>,
}

impl SqliteWriter {
    /// Opens the existing database at `path` (its schema already applied)
    /// on a new thread and prepares the insert statement there.
    pub(super) async fn start(path: &Path) -> Result<Self> {
        let (jobs, receiver) = mpsc::channel();
        let (ready, started) = oneshot::channel();
        let path = path.to_owned();
        // A plain thread rather than a task: SQLite blocks, and this
        // thread only waits for batches. It is not tracked because it ends
        // by itself once the sink (the last sender) is dropped, after the
        // batch in hand; shutdown has flushed every batch before that.
        std::thread::Builder::new()
            .name("ledger-sqlite".to_owned())
            .spawn(move || run(&path, &receiver, ready))
            .map_err(|error| Error::Config(format!("cannot start the SQLite writer: {error}")))?;
        started.await.map_err(|_| Error::WriterStopped)??;
        Ok(Self { jobs })
    }

    /// Writes `batch` in one transaction; nothing of it is stored on error.
    pub(super) async fn write(&self, batch: RowBatch) -> Result<()> {
        let (done, written) = oneshot::channel();
        self.jobs
            .send(Job { batch, done })
            .map_err(|_| Error::WriterStopped)?;
        written.await.map_err(|_| Error::WriterStopped)?
    }
}

/// The writer thread: opens the connection, says whether that worked, then
/// writes batches until every sender is gone.
fn run(path: &Path, jobs: &Receiver<Job>, ready: oneshot::Sender<Result<()>>) {
    let connection = match open(path) {
        Ok(connection) => connection,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let statements = connection
        .prepare(&insert_sql(ROWS_PER_STATEMENT))
        .and_then(|group| Ok((group, connection.prepare(&insert_sql(1))?)));
    let (mut insert_group, mut insert_one) = match statements {
        Ok(statements) => statements,
        Err(error) => {
            let _ = ready.send(Err(error.into()));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(job) = jobs.recv() {
        let result = write_batch(
            &connection,
            [&mut insert_group, &mut insert_one],
            &job.batch,
        );
        // The caller may have given up waiting; the batch is written anyway.
        let _ = job.done.send(result);
    }
}

/// Opens the writing connection.
fn open(path: &Path) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // The same durability as the sqlx pool: every commit reaches the disk.
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

/// Inserts every row of `batch` in one transaction: full groups of
/// [`ROWS_PER_STATEMENT`] rows through the first statement, the rest one
/// by one through the second.
fn write_batch(
    connection: &Connection,
    [insert_group, insert_one]: [&mut Statement<'_>; 2],
    batch: &RowBatch,
) -> Result<()> {
    let transaction = connection.unchecked_transaction()?;
    let full_groups = batch.len() / ROWS_PER_STATEMENT;
    for group in 0..full_groups {
        let first = group * ROWS_PER_STATEMENT;
        bind_rows(insert_group, batch, first..first + ROWS_PER_STATEMENT)?;
        insert_group.raw_execute()?;
    }
    for index in full_groups * ROWS_PER_STATEMENT..batch.len() {
        bind_rows(insert_one, batch, index..index + 1)?;
        insert_one.raw_execute()?;
    }
    transaction.commit()?;
    Ok(())
}

/// Binds the values of `rows` to `statement`, row after row.
fn bind_rows(statement: &mut Statement<'_>, batch: &RowBatch, rows: Range<usize>) -> Result<()> {
    let mut column = 1;
    for index in rows {
        for value in batch.text_values(index) {
            statement.raw_bind_parameter(column, value)?;
            column += 1;
        }
        for &value in batch.integer_values(index) {
            statement.raw_bind_parameter(column, value)?;
            column += 1;
        }
    }
    Ok(())
}

/// `INSERT … VALUES (…), … ON CONFLICT DO NOTHING` for `rows` rows.
pub(super) fn insert_sql(rows: usize) -> String {
    let placeholders = vec!["?"; COLUMNS.len()].join(", ");
    let values = vec![format!("({placeholders})"); rows].join(", ");
    format!(
        "INSERT INTO usage_events ({}) VALUES {values} ON CONFLICT (event_id) DO NOTHING",
        COLUMNS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::UsageEvent;

    use super::*;

    /// A row's values paired with the names of their columns.
    type Named<'a> = (Vec<(&'a str, &'a str)>, Vec<(&'a str, i64)>);

    /// The values a batch holds for `row`, by the column names of [`COLUMNS`].
    fn by_column(batch: &RowBatch, row: usize) -> Named<'_> {
        let texts = COLUMNS[..TEXT_COLUMNS]
            .iter()
            .copied()
            .zip(batch.text_values(row));
        let integers = COLUMNS[TEXT_COLUMNS..]
            .iter()
            .copied()
            .zip(batch.integer_values(row).iter().copied());
        (texts.collect(), integers.collect())
    }

    #[test]
    fn every_value_lands_in_the_column_that_names_it() {
        // A distinct value in every field, so a swapped column shows.
        let event = UsageEvent {
            event_id: "0192f3a4-5b6c-7d8e-9f00-112233445566".to_owned(),
            request_id: "req-\u{fc}".to_owned(),
            key_id: "key".to_owned(),
            team_id: "team".to_owned(),
            end_user: "o'neil\n".to_owned(),
            model: "alias".to_owned(),
            provider: "openai".to_owned(),
            upstream_model: "gpt-4o".to_owned(),
            usage: Some(switchyard_proto::v1::Usage {
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
                cached_prompt_tokens: 4,
                reasoning_tokens: 5,
                cache_write_tokens: 6,
            }),
            cost: Some(switchyard_proto::v1::Money {
                nanos: 7,
                currency: "USD".to_owned(),
            }),
            cache_hit: true,
            stream: false,
            error_class: switchyard_proto::v1::ErrorClass::Timeout as i32,
            latency_ms: u64::MAX,
            ttft_ms: 9,
            created_at_unix_ms: 1_700_000_000_123,
            route_id: "route".to_owned(),
            deployment_id: "deployment".to_owned(),
            snapshot_version: 11,
            tags: [("feature".to_owned(), "search".to_owned())].into(),
            user_id: "user".to_owned(),
            operation: "chat".to_owned(),
            ..Default::default()
        };
        let second = UsageEvent {
            event_id: "0192f3a4-5b6c-7d8e-9f00-112233445567".to_owned(),
            request_id: "req-2".to_owned(),
            created_at_unix_ms: 1_700_000_000_124,
            ..Default::default()
        };
        let rows = [
            UsageRow::from_event(0, &event).expect("valid event"),
            UsageRow::from_event(1, &second).expect("valid event"),
        ];
        let batch = RowBatch::from_rows(&rows);
        assert_eq!(batch.len(), 2);
        let (texts, integers) = by_column(&batch, 0);
        assert_eq!(
            texts,
            [
                ("event_id", "0192f3a4-5b6c-7d8e-9f00-112233445566"),
                ("request_id", "req-\u{fc}"),
                ("key_id", "key"),
                ("team_id", "team"),
                ("end_user", "o'neil\n"),
                ("model", "alias"),
                ("provider", "openai"),
                ("upstream_model", "gpt-4o"),
                ("currency", "USD"),
                ("error_class", "timeout"),
                ("route_id", "route"),
                ("deployment_id", "deployment"),
                ("tags", r#"{"feature":"search"}"#),
                ("attempts", "[]"),
                ("user_id", "user"),
                ("operation", "chat"),
                ("decision", ""),
            ]
        );
        assert_eq!(
            integers,
            [
                ("prompt_tokens", 1),
                ("completion_tokens", 2),
                ("total_tokens", 3),
                ("cached_prompt_tokens", 4),
                ("reasoning_tokens", 5),
                ("cache_write_tokens", 6),
                ("cost_nanos", 7),
                ("cache_hit", 1),
                ("stream", 0),
                ("latency_ms", i64::MAX),
                ("ttft_ms", 9),
                ("created_at", 1_700_000_000),
                ("created_at_ms", 1_700_000_000_123),
                ("snapshot_version", 11),
            ]
        );
        // The second row starts where the first ends.
        let (texts, integers) = by_column(&batch, 1);
        assert_eq!(texts[1], ("request_id", "req-2"));
        assert_eq!(integers[12], ("created_at_ms", 1_700_000_000_124));
        assert_eq!(insert_sql(3).matches('?').count(), 3 * COLUMNS.len());
    }
}
