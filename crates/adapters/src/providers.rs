//! One module per provider wire format.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod gemini_embeddings;
pub mod mock;
pub mod openai;
