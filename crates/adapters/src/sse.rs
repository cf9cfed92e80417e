//! An incremental parser for `text/event-stream` (server-sent events).
//!
//! Bytes are pushed as they arrive from the network, in pieces of any size;
//! complete events are pulled out one at a time. Follows the WHATWG event
//! stream rules that matter for LLM providers: lines end in `\n`, `\r\n` or
//! `\r` (also when split across reads), several `data:` lines join with `\n`,
//! lines starting with `:` are comments, one space after the colon is dropped,
//! and an empty line dispatches the event. `id` and `retry` are ignored.
//!
//! Memory and time are bounded: a line or an event larger than the parser's
//! limit is an error rather than a growing buffer, and every byte is scanned
//! for a line end once, however the stream is cut into pieces.

/// The media type of an event stream, as `content-type` names it.
pub const MEDIA_TYPE: &str = "text/event-stream";

/// Default largest line or event, in bytes (see [`SseParser::new`]).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Consumed bytes kept at the front of the buffer before it is compacted.
const COMPACT_AFTER_BYTES: usize = 4096;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default `message` type.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Why an event stream cannot be parsed further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line grew past the limit without a line end.
    #[error("an event-stream line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// An event's data grew past the limit before a blank line ended it.
    #[error("an event-stream event larger than {limit} bytes")]
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Parses an event stream pushed in arbitrary pieces.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes received but not yet consumed as complete lines.
    buffer: Vec<u8>,
    /// Where unconsumed bytes start in `buffer`.
    start: usize,
    /// Where the search for the next line end resumes: bytes between
    /// `start` and here are known to hold none.
    scanned: usize,
    /// The previous piece ended in `\r`: a leading `\n` belongs to that line end.
    skip_line_feed: bool,
    /// Data of the event being built, lines joined with `\n`.
    data: Vec<u8>,
    /// Whether a `data` field was seen for the event being built.
    has_data: bool,
    /// The event type of the event being built.
    event: Option<String>,
    /// Largest line, and largest event data, in bytes.
    max_event_bytes: usize,
    /// Bytes searched for a line end so far (tests check it stays linear).
    #[cfg(test)]
    searched: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// Creates an empty parser that refuses lines and events larger than
    /// `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            skip_line_feed: false,
            data: Vec::new(),
            has_data: false,
            event: None,
            max_event_bytes,
            #[cfg(test)]
            searched: 0,
        }
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.scanned = 0;
            self.start = 0;
        } else if self.start > COMPACT_AFTER_BYTES && self.start >= self.buffer.len() - self.start {
            // Compact once the consumed part outweighs the rest, so the
            // buffer does not grow with the stream and every byte is
            // moved a bounded number of times.
            self.buffer.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes of an event not yet dispatched are waiting: an
    /// unfinished line, or fields with no blank line after them.
    pub fn has_partial_event(&self) -> bool {
        self.start < self.buffer.len() || self.has_data || self.event.is_some()
    }

    /// Returns the next complete event, `Ok(None)` until more bytes arrive,
    /// or an error once a line or an event exceeds the limit (the stream
    /// cannot be parsed further).
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if self.skip_line_feed && self.start < self.buffer.len() {
                if self.buffer[self.start] == b'\n' {
                    self.start += 1;
                }
                self.skip_line_feed = false;
            }
            self.scanned = self.scanned.max(self.start);
            #[cfg(test)]
            {
                self.searched += self.buffer[self.scanned..]
                    .iter()
                    .position(|&byte| byte == b'\n' || byte == b'\r')
                    .map_or(self.buffer.len() - self.scanned, |offset| offset + 1);
            }
            let Some(offset) = self.buffer[self.scanned..]
                .iter()
                .position(|&byte| byte == b'\n' || byte == b'\r')
            else {
                self.scanned = self.buffer.len();
                if self.buffer.len() - self.start > self.max_event_bytes {
                    return Err(SseError::LineTooLong {
                        limit: self.max_event_bytes,
                    });
                }
                return Ok(None);
            };
            let end = self.scanned + offset;
            let terminator_length = match (self.buffer[end], self.buffer.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => {
                    self.skip_line_feed = true;
                    1
                }
                _ => 1,
            };
            let line_start = self.start;
            self.start = end + terminator_length;
            self.scanned = self.start;
            if let Some(event) = self.process_line(line_start, end)? {
                return Ok(Some(event));
            }
        }
    }

    /// Handles one line (without its terminator); returns an event when the
    /// line is blank and an event is pending.
    fn process_line(&mut self, from: usize, to: usize) -> Result<Option<SseEvent>, SseError> {
        let line = &self.buffer[from..to];
        if line.len() > self.max_event_bytes {
            return Err(SseError::LineTooLong {
                limit: self.max_event_bytes,
            });
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
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
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(None)
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

    /// Bytes the parser holds: its buffer and the event being built.
    #[cfg(any(test, fuzzing))]
    fn held_bytes(&self) -> usize {
        self.buffer.capacity() + self.data.capacity()
    }
}

/// Parses `pieces` with `limit`, returning the events dispatched and the
/// error that stopped the parser, if any; checks after every piece that the
/// parser holds a bounded number of bytes: bounded by the limit and the
/// largest piece so far (a buffer keeps the capacity an earlier, larger
/// piece gave it). Shared by the property tests and the fuzz target.
#[cfg(any(test, fuzzing))]
pub(crate) fn parse_pieces_bounded(
    pieces: &[&[u8]],
    limit: usize,
) -> (Vec<SseEvent>, Option<SseError>) {
    let mut largest_piece = 0;
    crate::http::decode_pieces(SseParser::new(limit), pieces, |parser, piece| {
        largest_piece = largest_piece.max(piece.len());
        // Consumed bytes awaiting compaction, one line or event up to the
        // limit, a piece; capacities may double.
        let bound = 2 * (COMPACT_AFTER_BYTES + limit + largest_piece) + 2 * limit;
        assert!(
            parser.held_bytes() <= bound,
            "{} > {bound}",
            parser.held_bytes()
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for piece in pieces {
            parser.push(piece);
            while let Some(event) = parser.next_event().expect("within the limits") {
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
        let mut parser = SseParser::default();
        parser.push(b"data: partial\n");
        assert_eq!(parser.next_event(), Ok(None));
        parser.push(b"\n");
        assert_eq!(parser.next_event(), Ok(Some(data("partial"))));
    }

    #[test]
    fn field_without_colon_is_a_field_with_empty_value() {
        let events = parse_all(&[b"data\n\n"]);
        assert_eq!(events, vec![data("")]);
    }

    #[test]
    fn an_unterminated_line_costs_at_most_the_limit() {
        const LIMIT: usize = 1024 * 1024;
        const PIECE: usize = 16 * 1024;
        let mut parser = SseParser::new(LIMIT);
        let piece = vec![b'x'; PIECE];
        parser.push(b"data: ");
        let mut pushed = 0;
        // Up to 100 MB of one line: the parser gives up near the limit.
        let error = loop {
            parser.push(&piece);
            pushed += PIECE;
            assert!(pushed <= 100 * 1024 * 1024, "never refused the line");
            assert!(
                parser.held_bytes() <= 2 * (LIMIT + PIECE),
                "buffered {}",
                parser.held_bytes()
            );
            match parser.next_event() {
                Ok(None) => {}
                Ok(Some(event)) => panic!("dispatched {} bytes", event.data.len()),
                Err(error) => break error,
            }
        };
        assert_eq!(error, SseError::LineTooLong { limit: LIMIT });
        assert!(pushed <= LIMIT + PIECE);
    }

    #[test]
    fn many_data_lines_without_a_blank_line_are_refused_at_the_limit() {
        const LIMIT: usize = 64 * 1024;
        let mut parser = SseParser::new(LIMIT);
        let line = [b"data: ".as_slice(), &[b'y'; 1000], b"\n"].concat();
        let mut result = Ok(None);
        for _ in 0..(2 * LIMIT / line.len()) {
            parser.push(&line);
            result = parser.next_event();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge { limit: LIMIT }));
    }

    #[test]
    fn a_line_end_is_searched_for_once_per_byte() {
        // A 4 MiB line in 16 KiB pieces, then many short events: each
        // next_event call resumes where the last stopped, so the bytes
        // searched equal the bytes received (a rescan from the line start
        // would search about 512 MiB).
        let mut parser = SseParser::default();
        let piece = vec![b'z'; 16 * 1024];
        let mut received = 0;
        let mut push = |parser: &mut SseParser, bytes: &[u8]| {
            parser.push(bytes);
            received += bytes.len();
        };
        push(&mut parser, b"data: ");
        for _ in 0..256 {
            push(&mut parser, &piece);
            assert_eq!(parser.next_event(), Ok(None));
        }
        push(&mut parser, b"\n\n");
        let event = parser
            .next_event()
            .expect("within the limit")
            .expect("an event");
        assert_eq!(event.data.len(), 256 * 16 * 1024);
        for _ in 0..10_000 {
            push(&mut parser, b"data: {}\n\n");
            assert!(parser.next_event().expect("within the limit").is_some());
        }
        assert_eq!(parser.next_event(), Ok(None));
        assert_eq!(parser.searched, received);
    }

    /// Event-stream-like bytes: mostly field names, colons, spaces, line
    /// ends and a few other bytes, so lines, fields and events all occur.
    fn stream_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let token = prop_oneof![
            Just(b"data:".to_vec()),
            Just(b"data: ".to_vec()),
            Just(b"event: e".to_vec()),
            Just(b": c".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..40),
        ];
        proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The fuzz target's property, bounded: any bytes, cut anywhere,
        /// parse as the whole does, never panic and hold a bounded buffer.
        #[test]
        fn any_stream_cut_anywhere_parses_like_the_whole(
            bytes in stream_bytes(),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..6),
        ) {
            let limit = 48;
            let whole = parse_pieces_bounded(&[&bytes], limit);
            let pieces = crate::cut::pieces(&bytes, &cuts);
            proptest::prop_assert_eq!(parse_pieces_bounded(&pieces, limit), whole);
        }
    }
}
