//! The AWS event stream framing (`application/vnd.amazon.eventstream`),
//! encoding side: what Bedrock's `converse-stream` sends.

use bytes::{BufMut, Bytes, BytesMut};

/// Header value type byte of strings.
const STRING: u8 = 7;

/// Frames one message: prelude (total length, headers length, CRC32 of
/// both), string headers, payload, CRC32 of everything before it.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut header_block = BytesMut::new();
    for (name, value) in headers {
        header_block.put_u8(u8::try_from(name.len()).expect("header names are short"));
        header_block.put_slice(name.as_bytes());
        header_block.put_u8(STRING);
        header_block.put_u16(u16::try_from(value.len()).expect("header values are short"));
        header_block.put_slice(value.as_bytes());
    }
    let total = 12 + header_block.len() + payload.len() + 4;
    let mut frame = BytesMut::with_capacity(total);
    frame.put_u32(u32::try_from(total).expect("messages are small"));
    frame.put_u32(u32::try_from(header_block.len()).expect("headers are small"));
    let prelude_crc = crc32fast::hash(&frame);
    frame.put_u32(prelude_crc);
    frame.put_slice(&header_block);
    frame.put_slice(payload);
    let message_crc = crc32fast::hash(&frame);
    frame.put_u32(message_crc);
    frame.freeze()
}

/// Frames an event (`:message-type: event`) with a JSON payload.
pub fn event(event_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// Frames a modeled exception (`:message-type: exception`), e.g.
/// `throttlingException`, with a `{"message": ...}` payload.
pub fn exception(exception_type: &str, payload: &[u8]) -> Bytes {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_vectors() {
        // The empty message and a `test: hello` string header message of
        // the AWS event stream test suite.
        assert_eq!(
            &message(&[], b"")[..],
            &[
                0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
                0xc8, 0xff
            ]
        );
        let framed = message(&[("test", "hello")], b"");
        assert_eq!(
            &framed[..12],
            &[0, 0, 0, 0x1d, 0, 0, 0, 0x0d, 0x83, 0xe3, 0xf0, 0xe7]
        );
        assert_eq!(&framed[25..], &[0x1a, 0xfe, 0x71, 0x00]);
    }
}
