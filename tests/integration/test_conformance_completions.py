"""``POST /v1/completions`` (legacy) × every provider × {plain, stream, prompt lists, errors, failover}, with the
official OpenAI SDK against the wire-level fakes. Every provider is asked through chat completions."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes import Fault, Reply
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    CHAIN,
    MODELS,
    PROVIDERS,
    openai_client,
    sent,
    surface_fixtures,
    user_text,
)
from tests.integration.upstreams import Upstreams

running, upstreams, gateway = surface_fixtures("completions")


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai_client(gateway)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply(" jumps over the dog", prompt_tokens=4, completion_tokens=4)
    raw = client.completions.with_raw_response.create(
        model=MODELS[provider], prompt="The quick brown fox", max_tokens=20, stop=["."], temperature=0.2
    )
    completion = raw.parse()
    assert completion.object == "text_completion" and completion.model == MODELS[provider]
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [(0, " jumps over the dog", "stop")]
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        4,
        4,
    )
    assert raw.headers["x-ailb-provider"] == provider
    body = sent(upstreams, provider)[-1]
    assert user_text(provider, body) == "The quick brown fox"
    if provider == "openai":
        assert (body["max_completion_tokens"], body["stop"], body["temperature"]) == (20, ["."], 0.2)
    elif provider == "anthropic":
        assert (body["max_tokens"], body["stop_sequences"]) == (20, ["."])
    else:
        assert (body["options"]["num_predict"], body["options"]["stop"]) == (20, ["."])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_with_usage(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("a b c", prompt_tokens=3, completion_tokens=3)
    chunks = list(
        client.completions.create(
            model=MODELS[provider], prompt="x", stream=True, stream_options={"include_usage": True}, echo=True
        )
    )
    texts = [chunk.choices[0].text for chunk in chunks if chunk.choices]
    assert "".join(texts) == "xa b c" and texts[0].startswith("x")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 6
    assert len({chunk.id for chunk in chunks}) == 1


@pytest.mark.parametrize("provider", ["anthropic", "ollama"])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_list_of_prompts_and_n_choices(
    client: openai.OpenAI, upstreams: Upstreams, provider: str, streamed: bool
) -> None:
    upstreams[provider].fake.responder = lambda body: "re: " + user_text(provider, body)
    prompts = ["first", "second"]
    if streamed:
        pieces: dict[int, str] = {}
        for chunk in client.completions.create(model=MODELS[provider], prompt=prompts, n=2, stream=True, echo=True):
            for choice in chunk.choices:
                pieces[choice.index] = pieces.get(choice.index, "") + choice.text
        texts = [pieces[index] for index in sorted(pieces)]
    else:
        completion = client.completions.create(model=MODELS[provider], prompt=prompts, n=2, echo=True)
        assert [choice.index for choice in completion.choices] == [0, 1, 2, 3]
        texts = [choice.text for choice in completion.choices]
    assert texts == ["firstre: first", "firstre: first", "secondre: second", "secondre: second"]
    assert sorted(user_text(provider, body) for body in sent(upstreams, provider)) == [
        "first", "first", "second", "second"
    ]  # fmt: skip


def test_n_goes_to_openai_as_it_is(client: openai.OpenAI, upstreams: Upstreams) -> None:
    client.completions.create(model=MODELS["openai"], prompt="hi", n=3, seed=7)
    body = sent(upstreams, "openai")[-1]
    assert (body["n"], body["seed"]) == (3, 7)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "end of text"}, "suffix"),
        ({"logprobs": 2}, "logprobs"),
        ({"best_of": 3}, "best_of"),
        ({"session_id": "s1"}, "session_id"),
        ({"prompt": [[1, 2, 3]]}, "prompt"),
    ],
)
def test_what_cannot_be_translated_is_refused(client: openai.OpenAI, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=MODELS["openai"], prompt="hi", extra_body=extra)
    assert refused.value.body["param"] == param  # type: ignore[index]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_errors(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    fake = upstreams[provider].fake
    fake.fail_next(Fault.status(400, body=fake.error_body(400, "prompt is too long")))
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=MODELS[provider], prompt="hi")
    assert "prompt is too long" in refused.value.message
    fake.reply = "one two three four"
    fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as broken:
        for chunk in client.completions.create(model=MODELS[provider], prompt="hi", stream=True):
            seen.extend(choice.text for choice in chunk.choices)
    assert seen == ["one"] and broken.value.message == f"Deployment '{provider}' dropped the connection."


@pytest.mark.parametrize("streamed", [False, True])
def test_failover(client: openai.OpenAI, upstreams: Upstreams, streamed: bool) -> None:
    upstreams.openai.fail_next(Fault.status(500))
    upstreams.anthropic.reply = "from the second"
    if streamed:
        text = "".join(
            c.choices[0].text for c in client.completions.create(model=CHAIN, prompt="hi", stream=True) if c.choices
        )
    else:
        text = client.completions.create(model=CHAIN, prompt="hi").choices[0].text
    assert text == "from the second" and len(sent(upstreams, "openai")) == 1
