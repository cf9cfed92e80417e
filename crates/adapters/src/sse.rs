//! An incremental parser for `text/event-stream` (server-sent events).
//!
//! Bytes are pushed as they arrive from the network, in pieces of any size;
//! complete events are pulled out one at a time. Follows the WHATWG event
//! stream rules that matter for LLM providers: lines end in `\n`, `\r\n` or
//! `\r` (also when split across reads), several `data:` lines join with `\n`,
//! lines starting with `:` are comments, one space after the colon is dropped,
//! and an empty line dispatches the event. `id` and `retry` are ignored.

/// The media type of an event stream, as `content-type` names it.
pub const MEDIA_TYPE: &str = "text/event-stream";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default `message` type.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Parses an event stream pushed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes received but not yet consumed as complete lines.
    buffer: Vec<u8>,
    /// Where unconsumed bytes start in `buffer`.
    start: usize,
    /// The previous piece ended in `\r`: a leading `\n` belongs to that line end.
    skip_line_feed: bool,
    /// Data of the event being built, lines joined with `\n`.
    data: Vec<u8>,
    /// Whether a `data` field was seen for the event being built.
    has_data: bool,
    /// The event type of the event being built.
    event: Option<String>,
}

impl SseParser {
    /// Creates an empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4096 {
            // Compact now and then so the buffer does not grow with the stream.
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Returns the next complete event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if self.skip_line_feed && self.start < self.buffer.len() {
                if self.buffer[self.start] == b'\n' {
                    self.start += 1;
                }
                self.skip_line_feed = false;
            }
            let rest = &self.buffer[self.start..];
            let end = rest
                .iter()
                .position(|&byte| byte == b'\n' || byte == b'\r')?;
            let terminator_length = match (rest[end], rest.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => {
                    self.skip_line_feed = true;
                    1
                }
                _ => 1,
            };
            let line_start = self.start;
            self.start += end + terminator_length;
            if let Some(event) = self.process_line(line_start, line_start + end) {
                return Some(event);
            }
        }
    }

    /// Handles one line (without its terminator); returns an event when the
    /// line is blank and an event is pending.
    fn process_line(&mut self, from: usize, to: usize) -> Option<SseEvent> {
        let line = &self.buffer[from..to];
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match line.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        let data = String::from_utf8(data)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser.push(piece);
            while let Some(event) = parser.next_event() {
                events.push(event);
            }
        }
        events
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    #[test]
    fn parses_events_separated_by_blank_lines() {
        let events = parse_all(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(events, vec![data("{\"a\":1}"), data("[DONE]")]);
    }

    #[test]
    fn accepts_crlf_and_lone_cr_line_ends() {
        let events = parse_all(&[b"data: one\r\n\r\ndata: two\r\rdata: three\n\n"]);
        assert_eq!(events, vec![data("one"), data("two"), data("three")]);
    }

    #[test]
    fn joins_multi_line_data_and_keeps_the_event_type() {
        let events = parse_all(&[b"event: error\ndata: first\ndata:second\n\n"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: Some("error".to_owned()),
                data: "first\nsecond".to_owned(),
            }]
        );
    }

    #[test]
    fn ignores_comments_unknown_fields_and_empty_events() {
        let events = parse_all(&[b": keep-alive\n\nid: 7\nretry: 10\n\ndata: x\n\n"]);
        assert_eq!(events, vec![data("x")]);
    }

    #[test]
    fn reassembles_events_split_across_reads_at_every_byte() {
        let stream: &[u8] = b"data: {\"content\":\"h\xc3\xa9\"}\r\n\r\n: c\r\ndata: [DONE]\r\n\r\n";
        for split in 0..stream.len() {
            let (first, second) = stream.split_at(split);
            let events = parse_all(&[first, second]);
            assert_eq!(
                events,
                vec![data("{\"content\":\"h\u{e9}\"}"), data("[DONE]")],
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&bytes).len(), 2);
    }

    #[test]
    fn does_not_dispatch_an_unterminated_event() {
        let mut parser = SseParser::new();
        parser.push(b"data: partial\n");
        assert_eq!(parser.next_event(), None);
        parser.push(b"\n");
        assert_eq!(parser.next_event(), Some(data("partial")));
    }

    #[test]
    fn field_without_colon_is_a_field_with_empty_value() {
        let events = parse_all(&[b"data\n\n"]);
        assert_eq!(events, vec![data("")]);
    }
}
