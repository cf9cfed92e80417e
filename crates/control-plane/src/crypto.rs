//! Hashing of API key secrets.
//!
//! Keys are identified by the lowercase hex SHA-256 of the secret's UTF-8
//! bytes, exactly as the client presents it; the edge hashes the bearer token
//! the same way and looks the hash up in the snapshot.

use sha2::{Digest, Sha256};

/// Returns the lowercase hex SHA-256 of `secret`.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Characters a hint shows from the start of a secret (`sk-sy-`).
const HINT_PREFIX_CHARS: usize = 6;
/// Characters a hint shows from the end of a secret.
const HINT_SUFFIX_CHARS: usize = 4;
/// Secrets shorter than this get no hint: it would show too much of them.
const MIN_HINTED_CHARS: usize = 24;

/// Returns the part of a secret that listings may show: its prefix and last
/// four characters (`sk-sy-…a1B2`), or nothing when the secret is too short
/// for that to leave most of it hidden.
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MIN_HINTED_CHARS {
        return String::new();
    }
    let prefix: String = chars[..HINT_PREFIX_CHARS].iter().collect();
    let suffix: String = chars[chars.len() - HINT_SUFFIX_CHARS..].iter().collect();
    format!("{prefix}…{suffix}")
}

/// Normalizes a configured hash to lowercase hex, or says why it is not one.
pub(crate) fn normalize_sha256_hex(text: &str) -> Result<String, &'static str> {
    if text.len() != 64 {
        return Err("must be 64 hex digits");
    }
    if !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err("must contain only hex digits");
    }
    Ok(text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_to_lowercase_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hints_show_prefix_and_last_four_of_long_secrets_only() {
        assert_eq!(secret_hint("sk-sy-0123456789abcdefghijWXYZ"), "sk-sy-…WXYZ");
        assert_eq!(secret_hint("short-secret"), "");
    }

    #[test]
    fn normalizes_uppercase_and_rejects_bad_hex() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(normalize_sha256_hex(upper), Ok(sha256_hex("abc")));
        assert!(normalize_sha256_hex("abc").is_err());
        assert!(normalize_sha256_hex(&"g".repeat(64)).is_err());
    }
}
