//! OpenAI Chat Completions wire types and their translation to and from the
//! canonical proto messages.

pub mod request;
pub mod response;
