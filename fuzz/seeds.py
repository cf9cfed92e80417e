#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/) from the
providers' documented wire formats. Run it again after changing a target's
input layout; libFuzzer adds what it finds in its own corpus directory.

Input layouts (see crates/adapters/src/fuzzing.rs and crates/edge/src/fuzzing.rs):
- sse_stream, event_stream: 7 steering bytes (limit, three 16-bit cuts), then the stream;
- provider_answer: one choice byte (provider in bits 0-1: openai, anthropic,
  gemini, bedrock; bit 2 streamed; bit 3 structured tool), 7 steering bytes, then the body;
- edge_request: one choice byte (even chat, odd embeddings), then the body;
- config: the config file's text.
"""
import json
import pathlib
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"
STEER = bytes([200, 0, 7, 0, 40, 1, 3])  # roomy limit, cuts at 7, 40 and 259


# Inputs a fuzzer once crashed on (fuzz/artifacts/), kept by hand beside
# these seeds as regression tests; this script leaves them alone:
# - sse_stream/regression-capacity-left-by-an-earlier-piece: the property
#   test's memory bound assumed the buffer's capacity follows the latest
#   piece, but it keeps what a larger earlier piece gave it.


def write(target, name, data):
    folder = ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def sse(events):
    out = b""
    for event, data in events:
        if event:
            out += b"event: " + event.encode() + b"\n"
        out += b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n"
    return out


def aws_message(headers, payload):
    block = b""
    for name, value in headers:
        value = value.encode()
        block += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + block + payload
    return message + struct.pack(">I", zlib.crc32(message))


def aws_event(event_type, payload):
    return aws_message(
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload).encode(),
    )


# OpenAI Chat Completions
openai_whole = {
    "id": "chatcmpl-123", "object": "chat.completion", "created": 1677652288, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!",
                 "tool_calls": [{"id": "call_1", "type": "function",
                                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                 "logprobs": None, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
              "prompt_tokens_details": {"cached_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
}
chunk = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini"}
openai_stream = sse([
    (None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}),
    (None, {**chunk, "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]}),
    (None, {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                  "function": {"name": "get_weather", "arguments": "{\"ci"}}]}, "finish_reason": None}]}),
    (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    (None, {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}),
    (None, b"[DONE]"),
])
openai_error = {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}

# Anthropic Messages
anthropic_whole = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi!"},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
}
anthropic_stream = sse([
    ("message_start", {"type": "message_start", "message": {**anthropic_whole, "content": [], "stop_reason": None,
                                                            "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "tool_use", "id": "toolu_01", "name": "json_answer", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
])
anthropic_error_stream = sse([("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])

# Gemini generateContent
gemini_whole = {
    "candidates": [{"content": {"parts": [{"text": "Hello"},
                                           {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                                "role": "model"},
                    "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6,
                      "cachedContentTokenCount": 0, "thoughtsTokenCount": 0},
    "modelVersion": "gemini-2.0-flash", "responseId": "abc",
}
gemini_stream = sse([
    (None, {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
            "modelVersion": "gemini-2.0-flash"}),
    (None, {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}}),
])
gemini_blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}

# Bedrock Converse
bedrock_whole = {
    "output": {"message": {"role": "assistant", "content": [
        {"text": "Hello"},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
    "stopReason": "tool_use",
    "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
    "metrics": {"latencyMs": 100},
}
bedrock_stream = b"".join([
    aws_event("messageStart", {"role": "assistant"}),
    aws_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    aws_event("contentBlockStop", {"contentBlockIndex": 0}),
    aws_event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "json_answer"}}}),
    aws_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
    aws_event("contentBlockStop", {"contentBlockIndex": 1}),
    aws_event("messageStop", {"stopReason": "end_turn"}),
    aws_event("metadata", {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}, "metrics": {"latencyMs": 9}}),
])
bedrock_exception = aws_message(
    [(":exception-type", "throttlingException"), (":content-type", "application/json"), (":message-type", "exception")],
    b'{"message":"Too many requests"}',
)

whole = [openai_whole, anthropic_whole, gemini_whole, bedrock_whole]
streams = [openai_stream, anthropic_stream, gemini_stream, bedrock_stream]
for provider in range(4):
    body = json.dumps(whole[provider]).encode()
    write("provider_answer", f"{provider}-whole", bytes([provider]) + STEER + body)
    write("provider_answer", f"{provider}-whole-structured", bytes([provider | 8]) + STEER + body)
    write("provider_answer", f"{provider}-stream", bytes([provider | 4]) + STEER + streams[provider])
    write("provider_answer", f"{provider}-stream-structured", bytes([provider | 12]) + STEER + streams[provider])
write("provider_answer", "0-whole-error", bytes([0]) + STEER + json.dumps(openai_error).encode())
write("provider_answer", "1-stream-error", bytes([5]) + STEER + anthropic_error_stream)
write("provider_answer", "2-whole-blocked-error", bytes([2]) + STEER + json.dumps(gemini_blocked).encode())
write("provider_answer", "2-whole-array", bytes([2]) + STEER + json.dumps([gemini_whole, gemini_whole]).encode())
write("provider_answer", "3-stream-exception", bytes([7]) + STEER + bedrock_stream[:200] + bedrock_exception)

write("sse_stream", "openai", STEER + openai_stream)
write("sse_stream", "anthropic", STEER + anthropic_stream)
write("sse_stream", "fields", STEER + b": comment\r\nevent: e\rdata:a\r\ndata: b\n\nid: 1\nretry: 5\ndata\n\n")
write("sse_stream", "small-limit", bytes([0]) + STEER[1:] + b"data: " + b"x" * 64 + b"\n\n")
write("event_stream", "bedrock", STEER + bedrock_stream)
write("event_stream", "exception", STEER + bedrock_exception)
write("event_stream", "small-limit", bytes([4]) + STEER[1:] + bedrock_stream)

chat = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                                  {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
                     {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                      "function": {"name": "get_weather", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "temperature": 0.2, "max_tokens": 100, "n": 1, "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}}
write("edge_request", "chat", b"\x00" + json.dumps(chat).encode())
write("edge_request", "chat-minimal", b"\x00" + b'{"model":"m","messages":[{"role":"user","content":"hi"}]}')
write("edge_request", "embeddings", b"\x01" + json.dumps({"model": "text-embedding-3-small", "input": ["a", "b"],
                                                          "encoding_format": "base64", "dimensions": 8}).encode())
write("edge_request", "embeddings-tokens", b"\x01" + b'{"model":"e","input":[[1,2,3]]}')

example = (pathlib.Path(__file__).resolve().parent.parent / "config" / "switchyard.yaml")
if example.exists():
    write("config", "switchyard.yaml", example.read_bytes())
write("config", "sections.yaml", b"edge: {listen: 127.0.0.1:8080, request_timeout: 10m}\nrouter: {usage_events: false}\n")
