//! Drawing secrets: client keys (`sk-sy-…`) and admin tokens (`sy-admin-…`).

use crate::{Error, Result};

/// The prefix of every client key the control plane draws.
pub const KEY_PREFIX: &str = "sk-sy-";
/// The prefix of every admin token the control plane draws.
pub const ADMIN_TOKEN_PREFIX: &str = "sy-admin-";
/// Random characters after the prefix: 43 base62 characters carry 256 bits.
const SECRET_CHARS: usize = 43;
/// Random characters of a drawn id.
const ID_CHARS: usize = 10;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Returns `prefix` followed by 43 uniformly drawn base62 characters.
pub fn draw_secret(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}{}", draw_base62(SECRET_CHARS)?))
}

/// Returns a fresh id: `prefix` and ten lowercase base62 characters.
pub fn draw_id(prefix: &str) -> Result<String> {
    Ok(format!(
        "{prefix}{}",
        draw_base62(ID_CHARS)?.to_ascii_lowercase()
    ))
}

/// `count` base62 characters from the operating system's generator, by
/// rejection sampling so every character is equally likely.
fn draw_base62(count: usize) -> Result<String> {
    let mut drawn = String::with_capacity(count);
    let mut bytes = [0_u8; 64];
    while drawn.len() < count {
        getrandom::fill(&mut bytes).map_err(|error| Error::Random(error.to_string()))?;
        for byte in bytes {
            // 248 = 4 × 62: bytes above it would favour the first characters.
            if byte < 248 && drawn.len() < count {
                drawn.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    Ok(drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_the_prefix_and_43_base62_characters_and_differ() {
        let first = draw_secret(KEY_PREFIX).expect("drawn");
        let second = draw_secret(KEY_PREFIX).expect("drawn");
        assert!(first.starts_with("sk-sy-"));
        assert_eq!(first.len(), 6 + 43);
        assert!(first[6..].bytes().all(|byte| byte.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }
}
