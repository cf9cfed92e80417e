//! Exact-match cache keys and namespaces.

use prost::Message;
use sha2::{Digest, Sha256};
use switchyard_proto::v1::{ChatRequest, RequestContext};

/// Returns the hex SHA-256 of the request's semantic content: everything that
/// can change the answer. Transport choices (`stream`, `include_usage`) and
/// accounting labels (`user`, `metadata`) are left out, so a streamed and a
/// non-streamed ask of the same question share one entry.
pub fn cache_key(request: &ChatRequest) -> String {
    let mut semantic = request.clone();
    semantic.stream = false;
    semantic.include_usage = false;
    semantic.user.clear();
    semantic.metadata.clear();
    let digest = Sha256::digest(semantic.encode_to_vec());
    hex::encode(digest)
}

/// Returns the tenant namespace of a request: its team, or its key when the
/// key has no team. Entries never cross namespaces.
pub fn cache_namespace(context: &RequestContext) -> String {
    if context.team_id.is_empty() {
        format!("key:{}", context.key_id)
    } else {
        format!("team:{}", context.team_id)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ContentPart, Message as ChatMessage, content_part::Part};

    use super::*;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "demo".to_owned(),
            messages: vec![ChatMessage {
                role: 2,
                content: vec![ContentPart {
                    part: Some(Part::Text(text.to_owned())),
                }],
                content_is_text: true,
                ..ChatMessage::default()
            }],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn streaming_and_user_do_not_change_the_key() {
        let plain = request("hi");
        let mut streamed = request("hi");
        streamed.stream = true;
        streamed.include_usage = true;
        streamed.user = "alice".to_owned();
        assert_eq!(cache_key(&plain), cache_key(&streamed));
    }

    #[test]
    fn content_and_parameters_change_the_key() {
        assert_ne!(cache_key(&request("hi")), cache_key(&request("hello")));
        let mut warm = request("hi");
        warm.temperature = Some(0.7);
        assert_ne!(cache_key(&request("hi")), cache_key(&warm));
    }

    #[test]
    fn namespace_prefers_team() {
        let mut context = RequestContext {
            key_id: "k1".to_owned(),
            ..RequestContext::default()
        };
        assert_eq!(cache_namespace(&context), "key:k1");
        context.team_id = "t1".to_owned();
        assert_eq!(cache_namespace(&context), "team:t1");
    }
}
