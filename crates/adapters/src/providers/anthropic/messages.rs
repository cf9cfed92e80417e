//! Canonical messages to Anthropic's `system` and alternating `messages`.
//!
//! - System and developer messages, wherever they appear, become the
//!   top-level `system` (a string, or text blocks when there are several).
//! - Anthropic wants user and assistant turns to alternate: consecutive
//!   messages of the same role are merged into one turn, block by block.
//! - OpenAI `tool` messages become `tool_result` blocks of a user turn, so
//!   adjacent results (and a user message right after them) share a turn,
//!   results first, as Anthropic requires.
//! - Assistant `tool_calls` become `tool_use` blocks after the text.
//! - Empty text parts are left out (Anthropic rejects empty text blocks);
//!   a plain-string message stays a plain string unless it is merged.
//! - Message `name`s and image `detail`s have no Anthropic equivalent and
//!   are not sent.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use switchyard_common::ServiceError;
use switchyard_proto::v1::{self as pb, Role, content_part::Part};

/// The `system` field: one text, or several text blocks.
#[derive(Debug)]
pub enum WireSystem<'a> {
    /// A single system message.
    Text(&'a str),
    /// Several system messages, in order.
    Blocks(Vec<Block<'a>>),
}

impl Serialize for WireSystem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Blocks(blocks) => blocks.serialize(serializer),
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Serialize)]
pub struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
}

/// A turn's content: a plain string or content blocks.
#[derive(Debug)]
enum WireContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl Serialize for WireContent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Blocks(blocks) => blocks.serialize(serializer),
        }
    }
}

/// An Anthropic content block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block<'a> {
    /// Text.
    Text {
        /// The text.
        text: &'a str,
    },
    /// An image, inline or by URL.
    Image {
        /// Where the image comes from.
        source: ImageSource<'a>,
    },
    /// A tool call the assistant made.
    ToolUse {
        /// The call id.
        id: &'a str,
        /// The tool name.
        name: &'a str,
        /// The arguments object, byte for byte.
        input: &'a RawValue,
    },
    /// The result of a tool call.
    ToolResult {
        /// The id of the call answered.
        tool_use_id: &'a str,
        /// The result.
        content: ToolResultContent<'a>,
    },
}

/// The source of an image block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource<'a> {
    /// Inline data from a `data:` URL.
    Base64 {
        /// E.g. `image/png`.
        media_type: &'a str,
        /// Base64 data.
        data: &'a str,
    },
    /// An `http(s)` URL Anthropic fetches.
    Url {
        /// The URL.
        url: &'a str,
    },
}

/// A tool result: plain text or text and image blocks.
#[derive(Debug)]
pub enum ToolResultContent<'a> {
    /// A plain-string tool message.
    Text(&'a str),
    /// A tool message with content parts.
    Blocks(Vec<Block<'a>>),
}

impl Serialize for ToolResultContent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Blocks(blocks) => blocks.serialize(serializer),
        }
    }
}

/// The translated conversation.
#[derive(Debug)]
pub struct Conversation<'a> {
    /// The `system` field, when there are system or developer messages.
    pub system: Option<WireSystem<'a>>,
    /// The alternating turns.
    pub messages: Vec<WireMessage<'a>>,
}

/// A turn being assembled.
struct Turn<'a> {
    role: &'static str,
    /// Set while the turn is one plain-string message.
    text: Option<&'a str>,
    blocks: Vec<Block<'a>>,
}

impl<'a> Turn<'a> {
    fn plain(role: &'static str, text: &'a str) -> Self {
        Self {
            role,
            text: Some(text),
            blocks: Vec::new(),
        }
    }

    fn blocks(role: &'static str, blocks: Vec<Block<'a>>) -> Self {
        Self {
            role,
            text: None,
            blocks,
        }
    }

    fn into_message(self) -> WireMessage<'a> {
        let content = match self.text {
            Some(text) => WireContent::Text(text),
            None => WireContent::Blocks(self.blocks),
        };
        WireMessage {
            role: self.role,
            content,
        }
    }

    /// Turns a plain-string turn into blocks, so more can be appended.
    fn make_blocks(&mut self) {
        if let Some(text) = self.text.take()
            && !text.is_empty()
        {
            self.blocks.insert(0, Block::Text { text });
        }
    }
}

/// Translates the canonical messages.
pub fn conversation(messages: &[pb::Message]) -> Result<Conversation<'_>, ServiceError> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let turn = match message.role() {
            Role::System | Role::Developer => {
                system.extend(system_texts(index, message)?);
                continue;
            }
            Role::User => match plain_text(message) {
                Some(text) => Turn::plain("user", text),
                None => Turn::blocks("user", content_blocks(index, message)?),
            },
            Role::Assistant => match plain_text(message) {
                Some(text) if message.tool_calls.is_empty() => Turn::plain("assistant", text),
                _ => {
                    let mut blocks = content_blocks(index, message)?;
                    blocks.extend(tool_uses(index, message)?);
                    Turn::blocks("assistant", blocks)
                }
            },
            Role::Tool => Turn::blocks(
                "user",
                vec![Block::ToolResult {
                    tool_use_id: &message.tool_call_id,
                    content: tool_result_content(index, message)?,
                }],
            ),
            Role::Unspecified => {
                return Err(
                    ServiceError::invalid_request(format!("message {index} has no role"))
                        .with_param(format!("messages[{index}].role")),
                );
            }
        };
        if turn.text.is_none() && turn.blocks.is_empty() {
            // Nothing Anthropic would accept (e.g. content null, no calls).
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == turn.role => {
                last.make_blocks();
                let mut turn = turn;
                turn.make_blocks();
                last.blocks.append(&mut turn.blocks);
            }
            _ => turns.push(turn),
        }
    }
    let system = match system.as_slice() {
        [] => None,
        [only] => Some(WireSystem::Text(only)),
        several => Some(WireSystem::Blocks(
            several.iter().map(|text| Block::Text { text }).collect(),
        )),
    };
    Ok(Conversation {
        system,
        messages: turns.into_iter().map(Turn::into_message).collect(),
    })
}

/// The text of a plain-string message (`content_is_text`, one text part).
fn plain_text(message: &pb::Message) -> Option<&str> {
    if !message.content_is_text || message.content_is_null {
        return None;
    }
    match message.content.as_slice() {
        [
            pb::ContentPart {
                part: Some(Part::Text(text)),
            },
        ] => Some(text),
        _ => None,
    }
}

fn system_texts(index: usize, message: &pb::Message) -> Result<Vec<&str>, ServiceError> {
    message
        .content
        .iter()
        .filter_map(|part| part.part.as_ref())
        .map(|part| match part {
            Part::Text(text) => Ok(text.as_str()),
            Part::ImageUrl(_) => Err(ServiceError::invalid_request(
                "Anthropic accepts only text in system and developer messages",
            )
            .with_param(format!("messages[{index}].content"))),
        })
        .filter(|text| !matches!(text, Ok("")))
        .collect()
}

fn content_blocks(index: usize, message: &pb::Message) -> Result<Vec<Block<'_>>, ServiceError> {
    let mut blocks = Vec::with_capacity(message.content.len());
    for part in message.content.iter().filter_map(|part| part.part.as_ref()) {
        match part {
            Part::Text(text) if text.is_empty() => {}
            Part::Text(text) => blocks.push(Block::Text { text }),
            Part::ImageUrl(image) => blocks.push(Block::Image {
                source: image_source(index, &image.url)?,
            }),
        }
    }
    Ok(blocks)
}

/// Parses `data:<media type>;base64,<data>` or accepts an `http(s)` URL.
fn image_source(index: usize, url: &str) -> Result<ImageSource<'_>, ServiceError> {
    let invalid = |why: &str| {
        ServiceError::invalid_request(format!("message {index} has an image {why}"))
            .with_param(format!("messages[{index}].content"))
    };
    if let Some(rest) = url.strip_prefix("data:") {
        let (header, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("with a malformed data URL"))?;
        let media_type = header
            .strip_suffix(";base64")
            .ok_or_else(|| invalid("data URL that is not base64, which Anthropic requires"))?;
        if media_type.is_empty() {
            return Err(invalid("data URL without a media type"));
        }
        return Ok(ImageSource::Base64 { media_type, data });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(ImageSource::Url { url })
    } else {
        Err(invalid("URL that is neither http(s) nor a data URL"))
    }
}

fn tool_uses(index: usize, message: &pb::Message) -> Result<Vec<Block<'_>>, ServiceError> {
    message
        .tool_calls
        .iter()
        .map(|call| {
            let arguments = call.arguments.trim();
            // An empty string is how some clients write "no arguments".
            let text = if arguments.is_empty() { "{}" } else { arguments };
            let input: &RawValue = serde_json::from_str(text)
                .ok()
                .filter(|raw: &&RawValue| raw.get().starts_with('{'))
                .ok_or_else(|| {
                    ServiceError::invalid_request(format!(
                        "the `tool_calls` of message {index}: the arguments of call `{}` are not a JSON object",
                        call.id
                    ))
                    .with_param(format!("messages[{index}].tool_calls"))
                })?;
            Ok(Block::ToolUse {
                id: &call.id,
                name: &call.name,
                input,
            })
        })
        .collect()
}

fn tool_result_content(
    index: usize,
    message: &pb::Message,
) -> Result<ToolResultContent<'_>, ServiceError> {
    if message.content_is_null || message.content.is_empty() {
        return Ok(ToolResultContent::Text(""));
    }
    if let Some(text) = plain_text(message) {
        return Ok(ToolResultContent::Text(text));
    }
    Ok(ToolResultContent::Blocks(content_blocks(index, message)?))
}
