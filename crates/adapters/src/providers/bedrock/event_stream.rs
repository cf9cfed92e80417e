//! An incremental decoder for the AWS event stream framing
//! (`application/vnd.amazon.eventstream`), which `converse-stream` answers in.
//!
//! Each message is:
//!
//! ```text
//! total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (u32 BE)
//! headers | payload | message CRC32 (u32 BE)
//! ```
//!
//! The prelude CRC covers the first 8 bytes, the message CRC everything
//! before it. A header is a name (u8 length, bytes), a type byte and a
//! value whose size the type fixes (strings and byte arrays carry a u16
//! length). Bytes are pushed as they arrive, in pieces of any size; complete
//! messages are pulled out one at a time. A bad CRC or an impossible length
//! is an error: the stream cannot be resynchronized after one.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes before the headers: two lengths and the prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The smallest message: a prelude and a message CRC.
const MIN_MESSAGE_BYTES: usize = PRELUDE_BYTES + 4;
/// The largest message AWS sends (16 MiB).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The largest header block AWS sends (128 KiB).
const MAX_HEADERS_BYTES: usize = 128 * 1024;

/// Header value type of strings (`:event-type`, `:message-type`, ...).
const TYPE_STRING: u8 = 7;

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in order of appearance.
    pub headers: Vec<Header>,
    /// The payload (JSON for Bedrock).
    pub payload: Bytes,
}

impl Message {
    /// Returns the value of a string header, if the message has one named `name`.
    pub fn string_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name == name)
            .and_then(|header| match &header.value {
                HeaderValue::String(value) => Some(value.as_str()),
                HeaderValue::Other { .. } => None,
            })
    }
}

/// One message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name, e.g. `:event-type`.
    pub name: String,
    /// The header value.
    pub value: HeaderValue,
}

/// A header value: strings are decoded, other types are kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 7.
    String(String),
    /// Any other type (booleans, integers, byte arrays, timestamps, UUIDs).
    Other {
        /// The type byte.
        kind: u8,
        /// The value's bytes, without any length prefix.
        bytes: Bytes,
    },
}

/// Why a stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The prelude's CRC does not match its lengths.
    #[error("an event-stream message whose prelude checksum does not match")]
    PreludeChecksum,
    /// The message's CRC does not match its bytes.
    #[error("an event-stream message whose checksum does not match")]
    MessageChecksum,
    /// A length is out of bounds or inconsistent.
    #[error("an event-stream message with an invalid or oversized length")]
    Length,
    /// A header is truncated or of an unknown type.
    #[error("an event-stream message with an invalid header")]
    Header,
}

/// Decodes messages from bytes pushed in arbitrary pieces. It holds at
/// most one message (bounded by its limit) plus the last piece pushed, and
/// checks a partial message's prelude once per push: linear in the bytes.
#[derive(Debug)]
pub struct EventStreamDecoder {
    buffer: BytesMut,
    /// Largest message accepted.
    max_message_bytes: usize,
}

impl Default for EventStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamDecoder {
    /// Creates an empty decoder that accepts messages up to AWS's maximum.
    pub fn new() -> Self {
        Self::with_limit(MAX_MESSAGE_BYTES)
    }

    /// Creates an empty decoder that refuses messages larger than `limit`
    /// bytes (or than AWS's maximum, whichever is smaller).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_message_bytes: limit.min(MAX_MESSAGE_BYTES),
        }
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes of an incomplete message are waiting.
    pub fn has_partial_message(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Returns the next complete message, `Ok(None)` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.buffer.len() < PRELUDE_BYTES {
            return Ok(None);
        }
        let total = length(be_u32(&self.buffer[0..4]));
        let headers_length = length(be_u32(&self.buffer[4..8]));
        if crc32fast::hash(&self.buffer[0..8]) != be_u32(&self.buffer[8..12]) {
            return Err(DecodeError::PreludeChecksum);
        }
        if !(MIN_MESSAGE_BYTES..=self.max_message_bytes).contains(&total)
            || headers_length > MAX_HEADERS_BYTES
            || headers_length > total - MIN_MESSAGE_BYTES
        {
            return Err(DecodeError::Length);
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let message = self.buffer.split_to(total).freeze();
        let checksum_at = total - 4;
        if crc32fast::hash(&message[..checksum_at]) != be_u32(&message[checksum_at..]) {
            return Err(DecodeError::MessageChecksum);
        }
        let headers_end = PRELUDE_BYTES + headers_length;
        let headers = parse_headers(message.slice(PRELUDE_BYTES..headers_end))?;
        Ok(Some(Message {
            headers,
            payload: message.slice(headers_end..checksum_at),
        }))
    }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut array = [0; 4];
    array.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(array)
}

fn length(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn parse_headers(mut block: Bytes) -> Result<Vec<Header>, DecodeError> {
    let mut headers = Vec::new();
    while block.has_remaining() {
        let name_length = usize::from(block.get_u8());
        let name = take(&mut block, name_length)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| DecodeError::Header)?;
        if !block.has_remaining() {
            return Err(DecodeError::Header);
        }
        let kind = block.get_u8();
        let fixed = match kind {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | TYPE_STRING => None,
            _ => return Err(DecodeError::Header),
        };
        let length = match fixed {
            Some(length) => length,
            None => {
                if block.remaining() < 2 {
                    return Err(DecodeError::Header);
                }
                usize::from(block.get_u16())
            }
        };
        let bytes = take(&mut block, length)?;
        let value = if kind == TYPE_STRING {
            HeaderValue::String(String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Header)?)
        } else {
            HeaderValue::Other { kind, bytes }
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

fn take(block: &mut Bytes, length: usize) -> Result<Bytes, DecodeError> {
    if block.remaining() < length {
        return Err(DecodeError::Header);
    }
    Ok(block.split_to(length))
}

impl crate::http::StreamDecoder for EventStreamDecoder {
    type Item = Message;
    type Error = DecodeError;

    fn push(&mut self, bytes: &[u8]) {
        EventStreamDecoder::push(self, bytes);
    }

    fn next_item(&mut self) -> Result<Option<Message>, DecodeError> {
        self.next_message()
    }

    fn has_partial_item(&self) -> bool {
        self.has_partial_message()
    }
}

/// Decodes `pieces` with `limit`, returning the messages and the error that
/// stopped the decoder, if any. Shared by the property tests and the fuzz
/// target.
#[cfg(any(test, fuzzing))]
pub(crate) fn decode_pieces(pieces: &[&[u8]], limit: usize) -> (Vec<Message>, Option<DecodeError>) {
    crate::http::decode_pieces(EventStreamDecoder::with_limit(limit), pieces, |_, _| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empty message of the AWS event stream test suite.
    const EMPTY_MESSAGE: [u8; 16] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];

    /// A message with one string header (`test: hello`) and no payload.
    const STRING_HEADER_MESSAGE: [u8; 29] = [
        0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, 0x0d, 0x83, 0xe3, 0xf0, 0xe7, 0x04, b't', b'e',
        b's', b't', 0x07, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0x1a, 0xfe, 0x71, 0x00,
    ];

    /// Frames a message the way AWS does (test-only encoder).
    fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in headers {
            block.push(u8::try_from(name.len()).expect("short name"));
            block.extend_from_slice(name.as_bytes());
            block.push(TYPE_STRING);
            block.extend_from_slice(&u16::try_from(value.len()).expect("short").to_be_bytes());
            block.extend_from_slice(value.as_bytes());
        }
        let total = PRELUDE_BYTES + block.len() + payload.len() + 4;
        let mut message = Vec::with_capacity(total);
        message.extend_from_slice(&u32::try_from(total).expect("small").to_be_bytes());
        message.extend_from_slice(&u32::try_from(block.len()).expect("small").to_be_bytes());
        let prelude_crc = crc32fast::hash(&message);
        message.extend_from_slice(&prelude_crc.to_be_bytes());
        message.extend_from_slice(&block);
        message.extend_from_slice(payload);
        let message_crc = crc32fast::hash(&message);
        message.extend_from_slice(&message_crc.to_be_bytes());
        message
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<Message>, DecodeError> {
        let mut decoder = EventStreamDecoder::new();
        let mut messages = Vec::new();
        for piece in pieces {
            decoder.push(piece);
            while let Some(message) = decoder.next_message()? {
                messages.push(message);
            }
        }
        assert!(!decoder.has_partial_message(), "bytes left over");
        Ok(messages)
    }

    #[test]
    fn decodes_the_published_vectors() {
        let messages = decode_all(&[&EMPTY_MESSAGE, &STRING_HEADER_MESSAGE]).expect("valid");
        assert_eq!(messages.len(), 2);
        assert!(messages[0].headers.is_empty() && messages[0].payload.is_empty());
        assert_eq!(messages[1].string_header("test"), Some("hello"));
        assert_eq!(frame(&[("test", "hello")], b""), STRING_HEADER_MESSAGE);
    }

    #[test]
    fn skips_non_string_headers() {
        // `test` of type short (3) = 0x0078, then a string header.
        let mut block = vec![4, b't', b'e', b's', b't', 3, 0x00, 0x78];
        block.extend_from_slice(&[1, b'a', TYPE_STRING, 0, 1, b'b']);
        let headers = parse_headers(Bytes::from(block)).expect("valid headers");
        assert_eq!(
            headers[0].value,
            HeaderValue::Other {
                kind: 3,
                bytes: Bytes::from_static(&[0x00, 0x78])
            }
        );
        assert_eq!(headers[1].value, HeaderValue::String("b".to_owned()));
        assert_eq!(
            parse_headers(Bytes::from_static(&[1, b'a', 42])),
            Err(DecodeError::Header)
        );
    }

    #[test]
    fn reassembles_messages_split_at_every_byte() {
        let first = frame(
            &[
                (":event-type", "contentBlockDelta"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            br#"{"contentBlockIndex":0,"delta":{"text":"h\u00e9"},"p":"abcd"}"#,
        );
        let second = frame(
            &[(":event-type", "messageStop")],
            br#"{"stopReason":"end_turn"}"#,
        );
        let stream = [first.as_slice(), second.as_slice()].concat();
        for split in 0..=stream.len() {
            let (head, tail) = stream.split_at(split);
            let messages = decode_all(&[head, tail]).expect("valid stream");
            assert_eq!(messages.len(), 2, "split at {split}");
            assert_eq!(
                messages[0].string_header(":event-type"),
                Some("contentBlockDelta")
            );
            assert_eq!(messages[1].payload, &br#"{"stopReason":"end_turn"}"#[..]);
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_all(&bytes).expect("valid").len(), 2);
    }

    #[test]
    fn rejects_bad_checksums_and_lengths() {
        let message = frame(
            &[(":event-type", "messageStart")],
            br#"{"role":"assistant"}"#,
        );
        let mut bad_payload = message.clone();
        let at = bad_payload.len() - 6;
        bad_payload[at] ^= 1;
        assert_eq!(
            decode_all(&[&bad_payload]).expect_err("payload corrupted"),
            DecodeError::MessageChecksum
        );
        let mut bad_prelude = message.clone();
        bad_prelude[3] ^= 1;
        assert_eq!(
            decode_all(&[&bad_prelude[..PRELUDE_BYTES]]).expect_err("length corrupted"),
            DecodeError::PreludeChecksum
        );
        let mut bad_crc = message;
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert_eq!(
            decode_all(&[&bad_crc]).expect_err("checksum corrupted"),
            DecodeError::MessageChecksum
        );
        // Headers longer than the message, with a valid prelude checksum.
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&16u32.to_be_bytes());
        prelude.extend_from_slice(&8u32.to_be_bytes());
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_all(&[&prelude]).expect_err("impossible"),
            DecodeError::Length
        );
    }

    #[test]
    fn a_message_over_the_configured_limit_is_refused_from_its_prelude() {
        let message = frame(&[(":event-type", "contentBlockDelta")], &[b'p'; 4096]);
        let mut decoder = EventStreamDecoder::with_limit(1024);
        // Only the prelude has arrived: the length alone refuses it, before
        // the rest is buffered.
        decoder.push(&message[..PRELUDE_BYTES]);
        assert_eq!(decoder.next_message(), Err(DecodeError::Length));
        let mut roomy = EventStreamDecoder::with_limit(8192);
        roomy.push(&message);
        assert!(roomy.next_message().expect("fits").is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The fuzz target's property, bounded: valid messages with some
        /// corrupted bytes, cut anywhere, decode as the whole does and
        /// never panic.
        #[test]
        fn any_message_bytes_cut_anywhere_decode_like_the_whole(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..4),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..3),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..6),
        ) {
            let mut bytes: Vec<u8> = payloads
                .iter()
                .flat_map(|payload| frame(&[(":event-type", "chunk")], payload))
                .collect();
            for (at, value) in flips {
                if !bytes.is_empty() {
                    let index = at % bytes.len();
                    bytes[index] = value;
                }
            }
            let limit = 128;
            let whole = decode_pieces(&[&bytes], limit);
            let pieces = crate::cut::pieces(&bytes, &cuts);
            proptest::prop_assert_eq!(decode_pieces(&pieces, limit), whole);
        }
    }
}
