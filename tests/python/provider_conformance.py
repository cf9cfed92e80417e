"""Conformance: the openai SDK gets the same answers from every provider.

For each model (one per provider family behind Switchyard, each played by a
fake speaking that provider's wire format) this checks a plain completion, a
streamed one with usage, a tool call and a streamed tool call. Prints
`<model>: ok` per model; exits non-zero on the first difference.
"""

import json
import os

import openai

client = openai.OpenAI(
    base_url=os.environ["SWITCHYARD_BASE_URL"],
    api_key=os.environ["SWITCHYARD_API_KEY"],
    max_retries=0,
    timeout=30,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello there"},
]
WEATHER = [{"role": "user", "content": "What is the weather in Boston?"}]


def check(model):
    completion = client.chat.completions.create(model=model, messages=HELLO, max_tokens=50)
    choice = completion.choices[0]
    assert choice.message.content == "Echo: hello there", (model, choice)
    assert choice.finish_reason == "stop", (model, choice.finish_reason)
    usage = completion.usage
    assert usage.prompt_tokens == 5 and usage.completion_tokens == 3, (model, usage)
    assert usage.total_tokens == 8, (model, usage)

    stream = client.chat.completions.create(
        model=model, messages=HELLO, max_tokens=50, stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage, roles = [], None, None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for streamed in chunk.choices:
            if streamed.delta.role:
                roles.append(streamed.delta.role)
            if streamed.delta.content:
                pieces.append(streamed.delta.content)
            if streamed.finish_reason:
                finish = streamed.finish_reason
    assert "".join(pieces) == "Echo: hello there", (model, pieces)
    assert roles[:1] == ["assistant"], (model, roles)
    assert finish == "stop", (model, finish)
    assert usage is not None and usage.total_tokens == 8, (model, usage)

    completion = client.chat.completions.create(
        model=model, messages=WEATHER, tools=TOOLS, max_tokens=50
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", (model, choice)
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather", (model, call)
    assert json.loads(call.function.arguments) == {"location": "Boston, MA"}, (model, call)
    assert call.id, (model, call)

    stream = client.chat.completions.create(
        model=model, messages=WEATHER, tools=TOOLS, max_tokens=50, stream=True
    )
    calls, finish = {}, None
    for chunk in stream:
        for streamed in chunk.choices:
            for delta in streamed.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                if delta.id:
                    entry["id"] = delta.id
                if delta.function and delta.function.name:
                    entry["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    entry["arguments"] += delta.function.arguments
            if streamed.finish_reason:
                finish = streamed.finish_reason
    assert finish == "tool_calls", (model, finish)
    assert list(calls) == [0], (model, calls)
    assert calls[0]["id"] and calls[0]["name"] == "get_weather", (model, calls)
    assert json.loads(calls[0]["arguments"]) == {"location": "Boston, MA"}, (model, calls)

    # The tool result goes back in OpenAI's shape and the model answers.
    followup = WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 22 C"},
        {"role": "user", "content": "thanks"},
    ]
    completion = client.chat.completions.create(model=model, messages=followup, tools=TOOLS, max_tokens=50)
    assert completion.choices[0].message.content == "Echo: thanks", (model, completion)
    print(f"{model}: ok", flush=True)


def provider_failure_mid_stream_is_raised_by_the_sdk():
    """The test arms the OpenAI fake to drop its first stream after 3 events."""
    stream = client.chat.completions.create(model="openai-model", messages=HELLO, stream=True)
    received = []
    try:
        for chunk in stream:
            received.extend(choice.delta.content or "" for choice in chunk.choices)
    except openai.APIError as error:
        assert received, "some chunks arrived before the failure"
        assert "Echo: hello there" != "".join(received), received
        print(f"mid-stream error ok: {type(error).__name__}", flush=True)
    else:
        raise AssertionError(f"the stream ended without an error: {received}")


provider_failure_mid_stream_is_raised_by_the_sdk()
for model in ["openai-model", "anthropic-model", "gemini-model", "bedrock-model"]:
    check(model)
