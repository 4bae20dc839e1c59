"""The cases and the replay server themselves: every case names its source, is framed
the way its provider frames a stream, and goes out on the socket byte for byte."""

from __future__ import annotations

import http.client
import json

import pytest
from conformance.replay import Case, ReplayServer, Response, all_cases, load_case

CASES = all_cases()


def test_there_are_cases_for_both_providers() -> None:
    providers = {provider for provider, _ in CASES}
    assert providers == {"anthropic", "gemini"}
    assert len(CASES) >= 25


@pytest.mark.parametrize(("provider", "name"), CASES, ids=[f"{p}/{n}" for p, n in CASES])
def test_case_names_its_source_and_is_framed_like_its_provider(provider: str, name: str) -> None:
    case = load_case(provider, name)
    assert case.source["url"].startswith("https://")
    assert case.description
    for response in case.responses:
        streamed = any(k.lower() == "content-type" and "event-stream" in v for k, v in response.headers)
        if not streamed:
            if any(k.lower() == "content-type" and "json" in v for k, v in response.headers):
                json.loads(response.body)
            continue
        text = response.body.decode("utf-8")
        if provider == "anthropic":
            # Streaming Messages: every event has an `event:` name matching its data's `type`.
            assert "\r" not in text
            for block in text.split("\n\n"):
                if not block:
                    continue
                lines = block.split("\n")
                assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
                assert json.loads(lines[1][6:])["type"] == lines[0][7:], block
        else:
            # streamGenerateContent?alt=sse: `data:` lines only, CRLF line ends, one JSON object each.
            assert text.endswith("\r\n\r\n")
            for block in text.split("\r\n\r\n")[:-1]:
                assert block.startswith("data: ") and "\n" not in block, block
                json.loads(block[6:])


def _fetch(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/v1/messages?x=1", body=body, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    headers = {k.lower(): v for k, v in reply.getheaders()}
    conn.close()
    return reply.status, headers, data


@pytest.mark.parametrize("framing", ["close", "chunked", "length"])
def test_replay_sends_the_case_bytes_verbatim_and_records_the_request(framing: str) -> None:
    stream = load_case("gemini", "text_stream").responses[0]
    case = Case(name="verbatim", provider="gemini", source={"title": "t", "url": "https://x"}, description="d",
                responses=[Response(stream.status, stream.headers, stream.body, framing)])  # type: ignore[arg-type]
    with ReplayServer(case) as server:
        status, headers, data = _fetch(server.url, b'{"hello": 1}')
        status2, _, data2 = _fetch(server.url, b"{}")
        assert (status, data) == (200, stream.body)
        assert headers["content-type"] == "text/event-stream"
        assert ("transfer-encoding" in headers) == (framing == "chunked")
        assert status2 == 599 and b"no response #2" in data2
        first = server.requests[0]
        assert (first.method, first.path, first.query, first.json()) == ("POST", "/v1/messages", {"x": ["1"]},
                                                                         {"hello": 1})


def test_replay_renders_a_future_http_date() -> None:
    import email.utils
    import time

    case = load_case("anthropic", "http_429_retry_after_date")
    with ReplayServer(case) as server:
        _, headers, _ = _fetch(server.url, b"{}")
    when = email.utils.parsedate_to_datetime(headers["retry-after"]).timestamp()
    assert 3500 < when - time.time() <= 3601
