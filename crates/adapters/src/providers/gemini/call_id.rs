//! Tool call ids for Gemini, which has none of its own.
//!
//! A Gemini `functionCall` part usually carries no `id`, so the adapter
//! synthesizes `call_<n>`, `n` being the call's position among the calls of
//! its candidate (0, 1, ...). When Gemini does send an `id`, that id is used.
//! Gemini 3 models attach a `thoughtSignature` to function call parts and
//! reject a later turn whose function call lacks it; the signature therefore
//! rides inside the id, after [`THOUGHT_SIGNATURE_MARKER`]
//! (`call_0.ts.<signature>`), and is put back on the `functionCall` part when
//! the client sends the conversation back.

/// Separates the call id from a thought signature carried in it. Base64
/// (the signature's alphabet) has no `.`, so the last marker is the one.
pub const THOUGHT_SIGNATURE_MARKER: &str = ".ts.";

/// Returns the canonical id of the `position`-th call of a candidate.
pub fn encode(upstream_id: Option<&str>, position: u32, thought_signature: Option<&str>) -> String {
    let mut id = match upstream_id.filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None => format!("call_{position}"),
    };
    if let Some(signature) = thought_signature.filter(|signature| !signature.is_empty()) {
        id.push_str(THOUGHT_SIGNATURE_MARKER);
        id.push_str(signature);
    }
    id
}

/// Returns the thought signature carried in a canonical id, if any.
pub fn thought_signature(id: &str) -> Option<&str> {
    let (_, signature) = id.rsplit_once(THOUGHT_SIGNATURE_MARKER)?;
    (!signature.is_empty()).then_some(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positional_unless_gemini_sends_one() {
        assert_eq!(encode(None, 0, None), "call_0");
        assert_eq!(encode(Some(""), 2, None), "call_2");
        assert_eq!(encode(Some("abc"), 2, None), "abc");
        assert_eq!(encode(None, 1, Some("c2ln+/=")), "call_1.ts.c2ln+/=");
        assert_eq!(thought_signature("call_1.ts.c2ln+/="), Some("c2ln+/="));
        assert_eq!(thought_signature("call_1"), None);
        assert_eq!(thought_signature("call_1.ts."), None);
    }
}
