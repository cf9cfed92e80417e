//! Test support: fake providers speaking real wire formats, recording what they receive.
//!
//! - [`FakeOpenAi`]: an OpenAI Chat Completions server on `127.0.0.1:0` that
//!   answers deterministically in the exact shapes of OpenAI's API
//!   reference, records every request and injects [`Fault`]s; with
//!   [`FakeOpenAi::start_flavor`] it imitates an OpenAI-compatible provider
//!   ([`FakeFlavor`]: Azure, Groq, DeepSeek, Mistral, a minimal server).
//! - [`FakeAnthropic`]: the same for Anthropic's Messages API
//!   (`POST /v1/messages`, JSON and server-sent events).
//! - [`FakeBedrock`]: the same for the Bedrock Converse API (`converse` JSON
//!   and `converse-stream` binary event streams), verifying SigV4 signatures.
//! - [`FakeGemini`]: the same for Gemini `generateContent` /
//!   `streamGenerateContent`, on both the Gemini API and Vertex AI paths.
//!
//! - [`launch`]: starting `switchyard` processes, all-in-one or one per
//!   role with fresh service tokens (the e2e suite and the benchmark).
//!
//! Used by service crates' integration tests, the end-to-end suite and the
//! benchmark. The fakes use no Switchyard types, so they test the wire, not
//! our types.

pub mod collector;
mod fake_anthropic;
mod fake_bedrock;
mod fake_gemini;
mod fake_gemini_embeddings;
mod fake_openai;
mod forward_proxy;
pub mod launch;
mod recording;

pub use fake_anthropic::{FakeAnthropic, anthropic_error_body};
pub use fake_bedrock::{
    FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY, FAKE_BEDROCK_API_KEY, FakeBedrock,
    bedrock_error_fault,
};
pub use fake_gemini::{FakeGemini, gemini_error_body, gemini_rate_limit_body};
pub use fake_gemini_embeddings::FakeGeminiEmbeddings;
pub use fake_openai::fake_embedding;
pub use fake_openai::{FakeFlavor, FakeOpenAi, Fault, RecordedRequest, openai_error_body};
pub use forward_proxy::ForwardProxy;
