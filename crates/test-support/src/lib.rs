//! Test support: fake providers speaking real wire formats, recording what they receive.
//!
//! - [`FakeOpenAi`]: an OpenAI Chat Completions server on `127.0.0.1:0` that
//!   answers deterministically in the exact shapes of OpenAI's API
//!   reference, records every request and injects [`Fault`]s.
//!
//! Used by service crates' integration tests and the end-to-end suite; it
//! depends on no Switchyard crate, so it tests the wire, not our types.

mod fake_openai;

pub use fake_openai::{FakeOpenAi, Fault, RecordedRequest, openai_error_body};
