//! libFuzzer target: config text loads or is refused with an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = switchyard::SwitchyardConfig::parse(
        "fuzz.yaml",
        &text,
        &switchyard_common::config::Environment::new(),
    );
});
