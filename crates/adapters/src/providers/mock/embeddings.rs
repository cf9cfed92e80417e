//! Mock embeddings: deterministic vectors for demos and tests, no network.
//!
//! - Each input gets a unit-length vector of `dimensions` values (8 when
//!   the request does not choose; at most [`MAX_DIMENSIONS`]) derived from
//!   an FNV-1a hash of its text (or token ids), so equal inputs always get
//!   equal embeddings.
//! - Usage counts whitespace-separated words of the texts (or the token
//!   ids); completion tokens are 0.
//! - An input of exactly `mock:error:<class>` fails the attempt with that
//!   error class, as the mock chat does.

use switchyard_common::ServiceError;
use switchyard_proto::v1::{EmbedResponse, Embedding, Usage};

use super::{ERROR_TRIGGER_PREFIX, saturating_u32, triggered_error};
use crate::provider::EmbedAttempt;

/// Dimensions of a mock embedding when the request does not choose.
pub const DEFAULT_DIMENSIONS: u32 = 8;
/// The most dimensions a mock embedding may have.
pub const MAX_DIMENSIONS: u32 = 4096;

/// Answers an embeddings attempt without any network.
pub fn embed(attempt: &EmbedAttempt) -> Result<EmbedResponse, ServiceError> {
    let request = &attempt.request;
    if let Some(class_name) = request
        .input
        .iter()
        .find_map(|text| text.strip_prefix(ERROR_TRIGGER_PREFIX))
    {
        return Err(triggered_error(&attempt.provider, class_name));
    }
    let dimensions = request.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if !(1..=MAX_DIMENSIONS).contains(&dimensions) {
        return Err(ServiceError::invalid_request(format!(
            "mock provider: `dimensions` must be between 1 and {MAX_DIMENSIONS}"
        ))
        .with_param("dimensions")
        .with_provider(&attempt.provider));
    }
    let (seeds, tokens): (Vec<u64>, usize) = if request.input_tokens.is_empty() {
        let seeds = request
            .input
            .iter()
            .map(|text| fnv1a(text.as_bytes()))
            .collect();
        let words = request
            .input
            .iter()
            .map(|text| text.split_whitespace().count())
            .sum();
        (seeds, words)
    } else {
        let seeds = request
            .input_tokens
            .iter()
            .map(|tokens| {
                let bytes: Vec<u8> = tokens.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                fnv1a(&bytes)
            })
            .collect();
        let count = request
            .input_tokens
            .iter()
            .map(|tokens| tokens.ids.len())
            .sum();
        (seeds, count)
    };
    let data = seeds
        .into_iter()
        .enumerate()
        .map(|(position, seed)| Embedding {
            index: saturating_u32(position),
            values: unit_vector(seed, dimensions),
        })
        .collect();
    let prompt_tokens = saturating_u32(tokens);
    Ok(EmbedResponse {
        data,
        model: attempt.upstream_model.clone(),
        usage: Some(Usage {
            prompt_tokens,
            total_tokens: prompt_tokens,
            ..Usage::default()
        }),
    })
}

/// 64-bit FNV-1a: small, stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A unit-length vector of `dimensions` values in a sequence seeded by `seed`.
fn unit_vector(seed: u64, dimensions: u32) -> Vec<f32> {
    let mut state = seed;
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            // SplitMix64 step, mapped to [-1, 1).
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = state;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^= mixed >> 31;
            let unit = (mixed >> 11) as f64 / (1_u64 << 53) as f64;
            unit.mul_add(2.0, -1.0)
        })
        .collect();
    let norm = raw.iter().map(|value| value * value).sum::<f64>().sqrt();
    raw.iter()
        .map(|value| {
            if norm > 0.0 {
                (value / norm) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_length_and_distinct() {
        let first = unit_vector(fnv1a(b"hello"), 8);
        assert_eq!(first, unit_vector(fnv1a(b"hello"), 8));
        assert_ne!(first, unit_vector(fnv1a(b"world"), 8));
        assert_eq!(first.len(), 8);
        let norm: f32 = first.iter().map(|value| value * value).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
}
