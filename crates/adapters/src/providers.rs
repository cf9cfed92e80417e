//! One module per provider wire format.

pub mod mock;
pub mod openai;
