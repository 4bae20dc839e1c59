"""The emulator speaks and demands what the Gemini API does.

Driven through the real google-genai SDK where it shows the shape, and raw HTTP
where the SDK would hide it (where a signature sits, exact error bodies).
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
from urllib.parse import urlsplit

import pytest
from google import genai
from google.genai import errors, types
from providers.provider_helpers import API_KEY

from duologue.daemon.emulator import Emulator, Reply, ToolCall

FLASH = "gemini-3.8-flash"
TOOLS = [{"functionDeclarations": [{"name": "update_tasks", "description": "d", "parameters": {"type": "object"}}]}]


@pytest.fixture
async def gemini(emu: Emulator):
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=emu.url))
    yield client
    await client.aio.aclose()


def raw(emu: Emulator, model: str, body: dict, *, stream: bool = False) -> tuple[int, object]:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    conn = http.client.HTTPConnection(urlsplit(emu.url).netloc, timeout=10)
    conn.request("POST", f"/v1beta/models/{model}:{method}", json.dumps(body),
                 {"x-goog-api-key": API_KEY, "content-type": "application/json"})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if stream and response.status == 200:
        return 200, [json.loads(line[6:]) for line in text.split("\r\n") if line.startswith("data: ")]
    return response.status, json.loads(text)


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


def calls_reply() -> Reply:
    return Reply(tool_calls=[ToolCall("update_tasks", {"n": 1}, id="c1"), ToolCall("update_tasks", {"n": 2}, id="c2")])


def tool_history(emu: Emulator, model: str = FLASH) -> list[dict]:
    """A plan request, the model's parallel calls (as returned), and their responses."""
    emu.script("gemini", calls_reply())
    status, answer = raw(emu, model, {"contents": [user("plan it")], "tools": TOOLS})
    assert status == 200
    parts = answer["candidates"][0]["content"]["parts"]
    responses = [{"functionResponse": {"name": "update_tasks", "id": p["functionCall"]["id"], "response": {}}}
                 for p in parts]
    return [user("plan it"), {"role": "model", "parts": parts}, {"role": "user", "parts": responses}]


def test_gemini_3_signs_the_first_of_parallel_calls_only(emu):
    parts = tool_history(emu)[1]["parts"]
    assert [("thoughtSignature" in p) for p in parts] == [True, False]
    assert base64.b64decode(parts[0]["thoughtSignature"])


def test_gemini_3_signs_the_last_text_part_of_a_streamed_answer(emu):
    status, chunks = raw(emu, FLASH, {"contents": [user("hello there")]}, stream=True)
    parts = [p for chunk in chunks for p in chunk["candidates"][0]["content"]["parts"]]
    assert status == 200 and [("thoughtSignature" in p) for p in parts] == [False] * (len(parts) - 1) + [True]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_2_5_returns_no_signatures_but_bills_thoughts(emu):
    emu.script("gemini", calls_reply())
    _, answer = raw(emu, "gemini-2.5-flash", {"contents": [user("plan")], "tools": TOOLS})
    assert not any("thoughtSignature" in p for p in answer["candidates"][0]["content"]["parts"])
    assert answer["usageMetadata"]["thoughtsTokenCount"] > 0


def test_replayed_call_without_its_signature_is_refused_with_googles_wording(emu):
    history = tool_history(emu)
    ok, _ = raw(emu, FLASH, {"contents": history, "tools": TOOLS})
    del history[1]["parts"][0]["thoughtSignature"]
    status, answer = raw(emu, FLASH, {"contents": history, "tools": TOOLS})
    assert ok == 200 and status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["message"] == (
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
        "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
        "function call `default_api:update_tasks` , position 2. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


def test_only_the_current_turn_is_validated(emu):
    history = tool_history(emu)
    del history[1]["parts"][0]["thoughtSignature"]
    history += [{"role": "model", "parts": [{"text": "Saved."}]}, user("next question")]
    status, _ = raw(emu, FLASH, {"contents": history, "tools": TOOLS})
    assert status == 200


@pytest.mark.parametrize("token", ["skip_thought_signature_validator", "context_engineering_is_the_way_to_go",
                                   base64.urlsafe_b64encode(b"skip_thought_signature_validator").decode()])
def test_documented_placeholders_stand_in_for_a_signature(emu, token):
    history = tool_history(emu)
    history[1]["parts"][0]["thoughtSignature"] = token
    assert raw(emu, FLASH, {"contents": history, "tools": TOOLS})[0] == 200


def test_snake_case_signature_and_urlsafe_base64_are_accepted(emu):
    history = tool_history(emu)
    part = history[1]["parts"][0]
    token = part.pop("thoughtSignature")
    part["thought_signature"] = base64.urlsafe_b64encode(base64.b64decode(token)).decode()
    assert raw(emu, FLASH, {"contents": history, "tools": TOOLS})[0] == 200


def test_forged_moved_or_foreign_signatures_are_refused(emu):
    history = tool_history(emu)
    forged = copy.deepcopy(history)
    forged[1]["parts"][0]["thoughtSignature"] = base64.b64encode(b"x" * 60).decode()
    moved = copy.deepcopy(history)
    moved[1]["parts"][0]["functionCall"]["args"] = {"n": 99}
    not_b64 = copy.deepcopy(history)
    not_b64[1]["parts"][0]["thoughtSignature"] = "not base64!"
    for contents in (forged, moved):
        status, answer = raw(emu, FLASH, {"contents": contents, "tools": TOOLS})
        assert status == 400 and "thought signature" in answer["error"]["message"]
    status, answer = raw(emu, FLASH, {"contents": not_b64, "tools": TOOLS})
    assert status == 400 and "Base64 decoding failed" in answer["error"]["message"]
    status, answer = raw(emu, "gemini-3.1-pro-preview", {"contents": history, "tools": TOOLS})
    assert status == 400 and "another model" in answer["error"]["message"]


def test_a_signature_inside_function_call_is_an_unknown_field(emu):
    history = tool_history(emu)
    part = history[1]["parts"][0]
    part["functionCall"]["thoughtSignature"] = part.pop("thoughtSignature")
    status, answer = raw(emu, FLASH, {"contents": history, "tools": TOOLS})
    assert status == 400 and 'Unknown name "thoughtSignature"' in answer["error"]["message"]


async def test_sdk_round_trip_keeps_the_signature_and_a_dropped_one_fails(gemini):
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
        name="update_tasks", description="d", parameters_json_schema={"type": "object"})])])
    contents = [types.Content(role="user", parts=[types.Part(text="Please plan it")])]
    first = await gemini.aio.models.generate_content(model=FLASH, contents=contents, config=config)
    call = first.candidates[0].content.parts[-1]
    assert call.function_call.name == "update_tasks" and call.thought_signature
    contents += [first.candidates[0].content, types.Content(role="user", parts=[types.Part(
        function_response=types.FunctionResponse(name="update_tasks", id=call.function_call.id, response={}))])]
    second = await gemini.aio.models.generate_content(model=FLASH, contents=contents, config=config)
    assert "received the result of update_tasks" in second.text
    call.thought_signature = None
    with pytest.raises(errors.ClientError) as refused:
        await gemini.aio.models.generate_content(model=FLASH, contents=contents, config=config)
    assert refused.value.code == 400 and "missing a thought_signature" in refused.value.message


async def test_thought_summaries_only_when_asked_and_thoughts_always_billed(gemini):
    plain = await gemini.aio.models.generate_content(model=FLASH, contents="hi")
    asked = await gemini.aio.models.generate_content(
        model=FLASH, contents="hi", config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True)))
    assert not any(p.thought for p in plain.candidates[0].content.parts)
    assert asked.candidates[0].content.parts[0].thought and asked.candidates[0].content.parts[0].text
    usage = plain.usage_metadata
    assert usage.thoughts_token_count > 0
    spent = usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    assert usage.total_token_count == spent


async def test_blocked_prompt_has_prompt_feedback_and_no_candidates(emu, gemini):
    emu.script("gemini", Reply(block_reason="SAFETY"), Reply(block_reason="PROHIBITED_CONTENT"))
    blocked = await gemini.aio.models.generate_content(model=FLASH, contents="x")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY and not blocked.candidates
    chunks = [c async for c in await gemini.aio.models.generate_content_stream(model=FLASH, contents="x")]
    assert len(chunks) == 1 and chunks[0].prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_malformed_function_call_is_a_candidate_without_content(emu):
    emu.script("gemini", Reply(finish_reason="MALFORMED_FUNCTION_CALL"))
    status, chunks = raw(emu, FLASH, {"contents": [user("x")], "tools": TOOLS}, stream=True)
    assert status == 200 and len(chunks) == 1
    candidate = chunks[0]["candidates"][0]
    assert candidate["finishReason"] == "MALFORMED_FUNCTION_CALL" and "content" not in candidate


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
def test_policy_endings_arrive_after_partial_text(emu, reason):
    emu.script("gemini", Reply(text="Here is the start of", finish_reason=reason))
    _, chunks = raw(emu, FLASH, {"contents": [user("x")]}, stream=True)
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks[:-1]]
    last = chunks[-1]["candidates"][0]
    assert "".join(texts) == "Here is the start of" and last["finishReason"] == reason and "content" not in last
    assert ("safetyRatings" in last) == (reason == "SAFETY")


def test_outcomes_outside_googles_enums_cannot_be_scripted(emu):
    with pytest.raises(ValueError):
        Reply(finish_reason="REFUSED")
    with pytest.raises(ValueError):
        Reply(block_reason="NOPE")
    with pytest.raises(ValueError):
        emu.script("gemini", Reply(refusal=("cyber", "no")))
    with pytest.raises(ValueError):
        emu.script("anthropic", Reply(block_reason="SAFETY"))


async def test_unknown_and_retired_models_get_googles_not_found(gemini):
    for model in ("gemini-9-ultra", "gemini-3-pro-preview"):
        with pytest.raises(errors.ClientError) as missing:
            await gemini.aio.models.generate_content(model=model, contents="hi")
        assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"
        assert missing.value.message.startswith(f"models/{model} is not found for API version v1")


async def test_models_endpoint_lists_through_the_sdk(gemini):
    models = [m async for m in await gemini.aio.models.list(config={"page_size": 3})]
    names = [m.name for m in models]
    assert "models/gemini-3.8-flash" in names and "models/gemini-3-pro-preview" not in names and len(names) > 3
    flash = await gemini.aio.models.get(model=FLASH)
    assert flash.thinking and flash.input_token_limit == 1_048_576 and "generateContent" in flash.supported_actions


def test_quota_429_carries_retry_info_and_quota_failure(emu):
    from duologue.daemon.emulator import Failure

    emu.script("gemini", Failure(status=429, retry_delay="34.4s"))
    status, answer = raw(emu, FLASH, {"contents": [user("x")]})
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in answer["error"]["details"]}
    assert status == 429 and answer["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert details["RetryInfo"]["retryDelay"] == "34.4s"
    assert details["QuotaFailure"]["violations"][0]["quotaDimensions"]["model"] == FLASH
    assert "Please retry in 34.4s." in answer["error"]["message"]
