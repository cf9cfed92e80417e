//! OpenAI wire types (Chat Completions, embeddings) and their translation
//! to and from the canonical proto messages.

pub mod embeddings;
pub mod request;
pub mod response;
