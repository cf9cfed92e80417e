//! libFuzzer target: `switchyard_edge::fuzzing::edge_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_edge::fuzzing::edge_request(data));
