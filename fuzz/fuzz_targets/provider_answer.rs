//! libFuzzer target: `switchyard_adapters::fuzzing::provider_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = switchyard_adapters::fuzzing::provider_answer(data);
});
