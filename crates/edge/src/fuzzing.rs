//! Entry point of the edge's libFuzzer target in `fuzz/`, compiled only for
//! tests and for fuzzing builds (`cargo fuzz` sets `--cfg fuzzing`); the
//! request parser's property test and the seed-corpus test run the same
//! function in every stable test run.

use switchyard_common::ErrorClass;

use crate::openai::{embeddings, request};

/// A client's request body, parsed and translated as the edge does: the
/// first byte picks chat completions (even) or embeddings (odd), the rest
/// is the body. Any body is accepted or refused as an invalid request;
/// never a panic, never another class of error.
pub fn edge_request(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let outcome = if choice % 2 == 0 {
        request::parse(body)
            .and_then(request::ChatCompletionRequest::into_proto)
            .map(drop)
    } else {
        embeddings::parse(body)
            .and_then(embeddings::EmbeddingsRequest::into_proto)
            .map(drop)
    };
    if let Err(error) = outcome {
        assert_eq!(error.class, ErrorClass::InvalidRequest, "{}", error.message);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn every_seed_of_the_corpus_passes_the_target() {
        let folder =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/edge_request");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&folder).expect("the seed corpus is in the repository") {
            edge_request(&std::fs::read(entry.expect("an entry").path()).expect("readable"));
            seeds += 1;
        }
        assert!(seeds > 0, "{} has no seeds", folder.display());
    }
}
