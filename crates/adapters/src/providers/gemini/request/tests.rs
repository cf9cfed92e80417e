use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_common::ErrorClass;
use switchyard_proto::v1::{
    ContentPart, FunctionDefinition, ImageUrl, Message, ResponseFormat, Tool, ToolCall, ToolChoice,
};

use super::*;

fn text(text: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::Text(text.to_owned())),
    }
}

fn image(url: &str, detail: &str) -> ContentPart {
    ContentPart {
        part: Some(Part::ImageUrl(ImageUrl {
            url: url.to_owned(),
            detail: detail.to_owned(),
        })),
    }
}

fn message(role: Role, content: Vec<ContentPart>) -> Message {
    Message {
        role: role as i32,
        content,
        content_is_text: true,
        ..Message::default()
    }
}

fn body_json(request: &ChatRequest, api: GeminiApi) -> Value {
    let body = generate_content_body(request, api).expect("a valid request");
    serde_json::from_slice(&body).expect("the body is JSON")
}

fn error_of(request: &ChatRequest) -> ServiceError {
    generate_content_body(request, GeminiApi::GenerativeLanguage).expect_err("refused")
}

#[test]
fn minimal_request_has_only_contents() {
    let request = ChatRequest {
        model: "gemini-2.5-flash".to_owned(),
        messages: vec![message(Role::User, vec![text("Hi")])],
        ..ChatRequest::default()
    };
    let body = generate_content_body(&request, GeminiApi::GenerativeLanguage).expect("valid");
    assert_eq!(
        String::from_utf8(body).expect("utf-8"),
        r#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#
    );
}

#[test]
fn conversation_with_tools_images_and_settings_translates() {
    let request = ChatRequest {
        model: "gemini-2.5-flash".to_owned(),
        messages: vec![
            message(Role::System, vec![text("Be brief.")]),
            message(Role::Developer, vec![text("Use metric units.")]),
            message(
                Role::User,
                vec![
                    text("What is in these?"),
                    image("data:image/png;base64,iVBORw0KGgo=", "low"),
                    image("https://example.com/cat.WEBP?size=2", ""),
                    image("https://example.com/photo", "high"),
                ],
            ),
            message(Role::User, vec![text("And the weather?")]),
            Message {
                content_is_null: true,
                tool_calls: vec![
                    ToolCall {
                        id: "call_0.ts.c2lnbmF0dXJl".to_owned(),
                        name: "get_weather".to_owned(),
                        arguments: r#"{"location": "Boston, MA", "n": 1.50}"#.to_owned(),
                    },
                    ToolCall {
                        id: "call_1".to_owned(),
                        name: "get_time".to_owned(),
                        arguments: String::new(),
                    },
                ],
                ..message(Role::Assistant, vec![])
            },
            Message {
                tool_call_id: "call_0.ts.c2lnbmF0dXJl".to_owned(),
                ..message(Role::Tool, vec![text(r#"{"temp": 20}"#)])
            },
            Message {
                tool_call_id: "call_1".to_owned(),
                ..message(Role::Tool, vec![text("noon")])
            },
            message(Role::Assistant, vec![text("It is 20 degrees at noon.")]),
        ],
        tools: vec![Tool {
            function: Some(FunctionDefinition {
                name: "get_weather".to_owned(),
                description: "Weather.".to_owned(),
                parameters_json: r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"location":{"type":"string"}},"additionalProperties":false}"#.to_owned(),
                strict: Some(true),
            }),
        }],
        tool_choice: Some(ToolChoice {
            choice: Some(Choice::FunctionName("get_weather".to_owned())),
        }),
        response_format: Some(ResponseFormat {
            r#type: ResponseFormatType::JsonSchema as i32,
            json_schema_json: r#"{"name":"r","schema":{"type":"object","additionalProperties":false},"strict":true}"#.to_owned(),
        }),
        temperature: Some(0.5),
        top_p: Some(0.9),
        max_tokens: Some(100),
        n: Some(2),
        stop: vec!["END".to_owned()],
        presence_penalty: Some(0.1),
        frequency_penalty: Some(0.2),
        seed: Some(7),
        user: "u-1".to_owned(),
        parallel_tool_calls: Some(true),
        extra_json: r#"{"safety_settings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]}"#.to_owned(),
        ..ChatRequest::default()
    };
    let body = body_json(&request, GeminiApi::GenerativeLanguage);
    assert_eq!(
        body,
        json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="},
                     "mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}},
                    {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.WEBP?size=2"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"},
                     "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"}},
                    {"text": "And the weather?"}
                ]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"location": "Boston, MA", "n": 1.50}},
                     "thoughtSignature": "c2lnbmF0dXJl"},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": {"temp": 20}}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}
                ]},
                {"role": "model", "parts": [{"text": "It is 20 degrees at noon."}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric units."}]},
            "tools": [{"functionDeclarations": [{
                "name": "get_weather",
                "description": "Weather.",
                "parametersJsonSchema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"location": {"type": "string"}}, "additionalProperties": false}
            }]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {
                "temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"],
                "candidateCount": 2, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "additionalProperties": false}
            }
        })
    );
}

#[test]
fn tool_choice_modes_map_to_function_calling_modes() {
    for (mode, expected) in [
        (ToolChoiceMode::Auto, "AUTO"),
        (ToolChoiceMode::None, "NONE"),
        (ToolChoiceMode::Required, "ANY"),
    ] {
        let request = ChatRequest {
            tool_choice: Some(ToolChoice {
                choice: Some(Choice::Mode(mode as i32)),
            }),
            ..ChatRequest::default()
        };
        let body = body_json(&request, GeminiApi::GenerativeLanguage);
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": expected}})
        );
    }
}

#[test]
fn json_object_sets_only_the_mime_type_and_metadata_labels_vertex() {
    let request = ChatRequest {
        response_format: Some(ResponseFormat {
            r#type: ResponseFormatType::JsonObject as i32,
            json_schema_json: String::new(),
        }),
        metadata: BTreeMap::from([("team".to_owned(), "a".to_owned())]),
        ..ChatRequest::default()
    };
    let vertex = body_json(&request, GeminiApi::Vertex);
    assert_eq!(
        vertex["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    assert_eq!(vertex["labels"], json!({"team": "a"}));
    let gemini = body_json(&request, GeminiApi::GenerativeLanguage);
    assert_eq!(gemini.get("labels"), None);
}

#[test]
fn inexpressible_features_are_refused_by_name() {
    let cases: Vec<(ChatRequest, &str)> = vec![
        (
            ChatRequest {
                parallel_tool_calls: Some(false),
                ..ChatRequest::default()
            },
            "parallel_tool_calls",
        ),
        (
            ChatRequest {
                extra_json: r#"{"logprobs":true,"top_k":3,"safetySettings":[]}"#.to_owned(),
                ..ChatRequest::default()
            },
            "logprobs",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    name: "ann".to_owned(),
                    ..message(Role::User, vec![text("hi")])
                }],
                ..ChatRequest::default()
            },
            "messages[0].name",
        ),
        (
            ChatRequest {
                messages: vec![Message {
                    tool_call_id: "call_9".to_owned(),
                    ..message(Role::Tool, vec![text("x")])
                }],
                ..ChatRequest::default()
            },
            "messages[0].tool_call_id",
        ),
        (
            ChatRequest {
                messages: vec![message(Role::User, vec![image("ftp://x/cat.png", "")])],
                ..ChatRequest::default()
            },
            "messages[0].content",
        ),
        (
            ChatRequest {
                messages: vec![message(Role::User, vec![image("data:image/png,abc", "")])],
                ..ChatRequest::default()
            },
            "messages[0].content",
        ),
        (
            ChatRequest {
                seed: Some(1 << 40),
                ..ChatRequest::default()
            },
            "seed",
        ),
        (
            ChatRequest {
                response_format: Some(ResponseFormat {
                    r#type: ResponseFormatType::JsonSchema as i32,
                    json_schema_json: r#"{"name":"x"}"#.to_owned(),
                }),
                ..ChatRequest::default()
            },
            "response_format",
        ),
    ];
    for (request, param) in cases {
        let error = error_of(&request);
        assert_eq!(error.class, ErrorClass::InvalidRequest, "{param}");
        assert_eq!(error.param.as_deref(), Some(param), "{}", error.message);
    }
    let error = error_of(&ChatRequest {
        extra_json: r#"{"logprobs":true,"top_k":3}"#.to_owned(),
        ..ChatRequest::default()
    });
    assert!(
        error.message.contains("`logprobs`, `top_k`"),
        "{}",
        error.message
    );
}

#[test]
fn reused_call_ids_resolve_to_the_latest_call() {
    let call = |name: &str| Message {
        content_is_null: true,
        tool_calls: vec![ToolCall {
            id: "call_0".to_owned(),
            name: name.to_owned(),
            arguments: "{}".to_owned(),
        }],
        ..message(Role::Assistant, vec![])
    };
    let result = Message {
        tool_call_id: "call_0".to_owned(),
        ..message(Role::Tool, vec![text("ok")])
    };
    let request = ChatRequest {
        messages: vec![call("first"), result.clone(), call("second"), result],
        ..ChatRequest::default()
    };
    let body = body_json(&request, GeminiApi::GenerativeLanguage);
    assert_eq!(
        body["contents"][3]["parts"][0]["functionResponse"]["name"],
        "second"
    );
}
