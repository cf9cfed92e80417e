//! Entry points of the libFuzzer targets in `fuzz/`, compiled only for
//! tests and for fuzzing builds (`cargo fuzz` sets `--cfg fuzzing`). The
//! property tests below and the seed-corpus test run the very same
//! functions in every stable test run.
//!
//! Each entry takes arbitrary bytes and must not panic, hang or hold more
//! memory than its limits; where a property holds for every input (a stream
//! cut into pieces decodes as the whole does), the entry asserts it.

use std::{cell::RefCell, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use switchyard_common::ServiceError;
use tokio::{runtime::Runtime, time::Instant};

use crate::{
    cut,
    http::{AttemptLimits, BodyReader},
    provider::ChunkStream,
    providers::{anthropic, bedrock, gemini, openai},
    sse,
};

/// Bytes at the start of an input that steer it (limit, cuts) rather than
/// being parsed.
const CONTROL_BYTES: usize = 7;

/// Splits an input into a small parser limit, cut positions and the bytes
/// to parse: the first byte sets the limit, the next six three cuts.
fn steer(data: &[u8]) -> (usize, Vec<usize>, &[u8]) {
    let (control, rest) = data.split_at(data.len().min(CONTROL_BYTES));
    let limit = 16 + usize::from(control.first().copied().unwrap_or(0)) * 8;
    let cuts = control
        .get(1..)
        .unwrap_or_default()
        .chunks(2)
        .map(|pair| {
            pair.iter()
                .fold(0_usize, |at, &byte| at * 256 + usize::from(byte))
        })
        .collect();
    (limit, cuts, rest)
}

/// SSE parsing: any bytes, cut anywhere, parse as the whole does, within a
/// bounded buffer.
pub fn sse_stream(data: &[u8]) {
    let (limit, cuts, stream) = steer(data);
    let whole = sse::parse_pieces_bounded(&[stream], limit);
    let pieces = cut::pieces(stream, &cuts);
    assert_eq!(sse::parse_pieces_bounded(&pieces, limit), whole);
}

/// AWS event-stream decoding: any bytes, cut anywhere, decode as the whole
/// does.
pub fn event_stream(data: &[u8]) {
    let (limit, cuts, stream) = steer(data);
    let decode = bedrock::event_stream::decode_pieces;
    let whole = decode(&[stream], limit);
    let pieces = cut::pieces(stream, &cuts);
    assert_eq!(decode(&pieces, limit), whole);
}

/// A provider's answer, streamed or whole, translated to canonical chunks.
/// The first byte picks the provider (bits 0–1), streamed or not (bit 2)
/// and a structured-output tool (bit 3); three cuts follow as for
/// [`sse_stream`], then the body. A translation ends with its first error:
/// nothing follows one. Returns how many chunks were translated, or the
/// error that ended the translation; `None` for an empty input.
pub fn provider_answer(data: &[u8]) -> Option<Result<usize, ServiceError>> {
    let (&choice, rest) = data.split_first()?;
    let (_limit, cuts, body) = steer(rest);
    let structured = (choice & 8 != 0).then_some("json_answer");
    let provider = "fuzz";
    if choice & 4 == 0 {
        return Some(match choice % 4 {
            0 => openai::whole_answer(provider, body, None).map(|chunks| chunks.len()),
            1 => anthropic::whole_answer(provider, body, structured).map(|_| 1),
            2 => gemini::whole_answer(provider, body, None).map(|chunks| chunks.len()),
            _ => bedrock::whole_answer(provider, body, structured, Default::default()).map(|_| 1),
        });
    }
    let pieces: Vec<Bytes> = cut::pieces(body, &cuts)
        .into_iter()
        .map(Bytes::copy_from_slice)
        .collect();
    with_runtime(|runtime| {
        runtime.block_on(async {
            let reader = reader_of(pieces);
            let chunks: ChunkStream = match choice % 4 {
                0 => openai::stream::chunks(provider, reader, None),
                1 => {
                    anthropic::stream::chunks(provider, reader, None, structured.map(str::to_owned))
                }
                2 => gemini::stream::chunks(provider, reader, None),
                _ => bedrock::stream::chunks(
                    provider,
                    reader,
                    None,
                    structured.map(str::to_owned),
                    Default::default(),
                ),
            };
            let mut items: Vec<_> = chunks.collect().await;
            match items.iter().position(Result::is_err) {
                Some(first_error) => {
                    assert_eq!(first_error, items.len() - 1, "items after an error");
                    items.pop().and_then(Result::err).map(Err)
                }
                None => Some(Ok(items.len())),
            }
        })
    })
}

/// A body reader over `pieces`, as if they came from the network.
fn reader_of(pieces: Vec<Bytes>) -> BodyReader {
    let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let response = reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(stream)));
    let deadline = Instant::now() + Duration::from_secs(60);
    BodyReader::new(
        "fuzz",
        response,
        AttemptLimits::new(deadline, Duration::from_secs(60)),
    )
}

thread_local! {
    /// One runtime per thread, reused across inputs.
    static RUNTIME: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

fn with_runtime<T>(run: impl FnOnce(&Runtime) -> T) -> T {
    RUNTIME.with(|cell| {
        let mut cell = cell.borrow_mut();
        let runtime = cell.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime")
        });
        run(runtime)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The seed corpus of a fuzz target, kept in the repository: each
    /// seed's file name and bytes.
    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("the seed corpus {}: {error}", folder.display()));
        let seeds: Vec<(String, Vec<u8>)> = entries
            .map(|entry| {
                let path = entry.expect("a corpus entry").path();
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned());
                (
                    name.unwrap_or_default(),
                    std::fs::read(&path).expect("readable"),
                )
            })
            .collect();
        assert!(!seeds.is_empty(), "{} has no seeds", folder.display());
        seeds
    }

    #[test]
    fn every_seed_of_the_corpus_passes_its_target() {
        for (_, seed) in corpus("sse_stream") {
            sse_stream(&seed);
        }
        for (_, seed) in corpus("event_stream") {
            event_stream(&seed);
        }
        for (name, seed) in corpus("provider_answer") {
            let outcome = provider_answer(&seed).expect("a seed is not empty");
            // The seeds are real answers: they translate, except the ones
            // that carry a provider's error.
            if name.contains("error") || name.contains("exception") {
                assert!(outcome.is_err(), "{name}: {outcome:?}");
            } else {
                assert!(
                    outcome.as_ref().is_ok_and(|&chunks| chunks > 0),
                    "{name}: {outcome:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The fuzz targets, bounded, on arbitrary bytes.
        #[test]
        fn the_fuzz_targets_hold_on_arbitrary_bytes(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            sse_stream(&data);
            event_stream(&data);
            provider_answer(&data);
        }

        /// The provider target on its seeds with bytes changed, so bodies
        /// stay close to real answers and reach deep into translation.
        #[test]
        fn the_provider_target_holds_on_changed_seeds(
            pick in proptest::prelude::any::<usize>(),
            changes in proptest::collection::vec(
                (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()),
                1..8,
            ),
        ) {
            let seeds = corpus("provider_answer");
            let mut data = seeds[pick % seeds.len()].1.clone();
            for (at, byte) in changes {
                let index = at % data.len();
                data[index] = byte;
            }
            provider_answer(&data);
        }
    }
}
