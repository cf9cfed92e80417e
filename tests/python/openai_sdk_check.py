"""Black-box check: the official openai SDK against a running Switchyard.

Reads SWITCHYARD_BASE_URL and SWITCHYARD_API_KEY; exits non-zero on failure.
"""

import os
import sys

import openai

client = openai.OpenAI(
    base_url=os.environ["SWITCHYARD_BASE_URL"],
    api_key=os.environ["SWITCHYARD_API_KEY"],
    max_retries=0,
    timeout=20,
)

completion = client.chat.completions.create(
    model="demo",
    messages=[{"role": "user", "content": "ping from the sdk"}],
)
text = completion.choices[0].message.content
assert "ping from the sdk" in text, text
assert completion.choices[0].finish_reason == "stop", completion
assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
print("non-streaming ok")

stream = client.chat.completions.create(
    model="demo",
    messages=[{"role": "user", "content": "stream this please"}],
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
streamed = "".join(pieces)
assert "stream this please" in streamed, streamed
assert len(pieces) > 3, pieces
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens > 0, usage
# Switchyard's cost rides along as extra fields the SDK keeps.
assert usage.model_extra["cost"] > 0, usage
assert usage.model_extra["cost_details"]["currency"] == "USD", usage
print("streaming ok")

raw = client.chat.completions.with_raw_response.create(
    model="demo",
    messages=[{"role": "user", "content": "what does this cost"}],
)
cost = raw.headers["x-switchyard-cost-usd"]
assert float(cost) > 0 and len(cost.split(".")[1]) == 9, cost
assert int(raw.headers["x-switchyard-prompt-tokens"]) == raw.parse().usage.prompt_tokens
print("cost headers ok")

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as error:
    assert error.status_code == 404
    print("not-found ok")
else:
    sys.exit("expected NotFoundError")

bad = openai.OpenAI(base_url=os.environ["SWITCHYARD_BASE_URL"], api_key="sk-wrong", max_retries=0)
try:
    bad.chat.completions.create(model="demo", messages=[{"role": "user", "content": "x"}])
except openai.AuthenticationError:
    print("auth ok")
else:
    sys.exit("expected AuthenticationError")
