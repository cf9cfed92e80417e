//! libFuzzer target: `switchyard_adapters::fuzzing::sse_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_adapters::fuzzing::sse_stream(data));
