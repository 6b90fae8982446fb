"""When the upstream throttles, fails, is down or answers nonsense — and when the gateway says no.

Each case is checked the way an application meets it: through the real boto3 and OpenAI clients,
with the exception class, error code and status they report, and in the records and metrics.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from botocore.exceptions import ClientError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dashcam.simulate.eventstream import event_message
from dashcam.simulate.models import DEFAULT_MODELS
from dashcam.simulate.server import start_simulator

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
GPT = "gpt-4o-mini"


def _converse(client, text: str = "hi", model: str = HAIKU):
    return client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": text}]}])


def _chat(client, text: str = "hi", model: str = GPT):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])


def _metric(gateway, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with ``labels`` on the gateway's /metrics (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(httpx.get(gateway.url + "/metrics").text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_upstream_down_is_a_retryable_service_error_for_both_clients(
        closed_port_url, make_gateway, server, bedrock_client, openai_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=closed_port_url, openai_upstream=closed_port_url + "/v1")
    with pytest.raises(ClientError) as bedrock:
        _converse(bedrock_client(gateway.url))
    assert bedrock.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert bedrock.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert closed_port_url in bedrock.value.response["Error"]["Message"]
    with pytest.raises(openai.InternalServerError) as chat:
        _chat(openai_client(gateway.openai_url))
    assert chat.value.status_code == 503 and chat.value.body["code"] == "upstream_unavailable"

    rows = records(gateway, server)
    assert [(r["errorCode"], r["status"]) for r in rows] == [("ServiceUnavailableException", "503"),
                                                            ("upstream_unavailable", "503")]
    assert _metric(gateway, "dashcam_gateway_upstream_failures_total", kind="unreachable") == 2


def _broken(kind: str):
    """A provider that answers every call in one broken way."""

    async def answer(request: Request) -> Response:
        if kind == "html":
            return Response("<html><body>502 Bad Gateway</body></html>", status_code=200, media_type="text/html")
        if kind == "bare-500":
            return Response("upstream exploded", status_code=500, media_type="text/plain")
        if kind == "json-for-stream":
            return Response(b"{}", media_type="application/json")

        async def cut_short():
            if request.url.path.startswith("/v1/"):
                yield b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,' \
                      b'"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
            else:
                yield event_message("messageStart", json.dumps({"role": "assistant"}).encode())
            raise RuntimeError("the upstream died half-way")  # uvicorn cuts the connection

        media_type = "text/event-stream" if request.url.path.startswith("/v1/") \
            else "application/vnd.amazon.eventstream"
        return StreamingResponse(cut_short(), media_type=media_type)

    return answer


@pytest.mark.parametrize("kind, operation", [("html", "Converse"), ("bare-500", "Converse"),
                                             ("json-for-stream", "ConverseStream")])
def test_malformed_bedrock_answers_are_reported_as_bad_gateway(kind, operation, fake_upstream, make_gateway,
                                                               server, bedrock_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=fake_upstream(_broken(kind)), openai_upstream="none")
    client = bedrock_client(gateway.url)
    args = {"modelId": HAIKU, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    with pytest.raises(ClientError) as failure:
        client.converse(**args) if operation == "Converse" else client.converse_stream(**args)
    assert failure.value.response["Error"]["Code"] == "InternalServerException"
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert "upstream answered" in failure.value.response["Error"]["Message"]
    [row] = records(gateway, server)
    assert (row["errorCode"], row["status"]) == ("InternalServerException", "502")


@pytest.mark.parametrize("kind", ["html", "bare-500"])
def test_malformed_openai_answers_are_reported_as_bad_gateway(kind, fake_upstream, make_gateway, openai_client):
    gateway = make_gateway(bedrock_upstream="none", openai_upstream=fake_upstream(_broken(kind)) + "/v1")
    with pytest.raises(openai.InternalServerError) as failure:
        _chat(openai_client(gateway.openai_url))
    assert failure.value.status_code == 502 and failure.value.body["code"] == "bad_upstream_response"
    assert "upstream answered" in failure.value.body["message"]


def test_a_stream_the_upstream_cuts_short_is_cut_for_the_caller_too(fake_upstream, make_gateway, server,
                                                                    bedrock_client, openai_client, records):
    upstream = fake_upstream(_broken("cut-short"))
    gateway = make_gateway(record_to=server, bedrock_upstream=upstream, openai_upstream=upstream + "/v1")
    events = []
    with pytest.raises(Exception) as bedrock:  # botocore raises its stream-reading error
        for event in bedrock_client(gateway.url).converse_stream(
                modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "hi"}]}])["stream"]:
            events.append(event)
    assert events == [{"messageStart": {"role": "assistant"}}]  # what arrived was passed on
    assert not isinstance(bedrock.value, (AssertionError, ClientError))
    with pytest.raises(httpx.RemoteProtocolError):  # what the OpenAI client raises when OpenAI cuts a stream
        list(openai_client(gateway.openai_url).chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}], stream=True))
    rows = records(gateway, server)
    assert [r["errorCode"] for r in rows] == ["UpstreamStreamBroken"] * 2
    assert all("broke off" in r["errorMessage"] for r in rows)


def test_upstream_throttles_are_retried_until_the_attempts_run_out(simulator, make_gateway, server,
                                                                   bedrock_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=simulator.url, openai_upstream="none",
                           max_attempts=3, retry_deadline=10)
    before = simulator.stats().get(NOVA, {}).get("throttled", 0)
    with pytest.raises(ClientError) as throttled:
        _converse(bedrock_client(gateway.url), "always #simulate:ThrottlingException", NOVA)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert simulator.stats()[NOVA]["throttled"] - before == 3

    rows = records(gateway, server)
    assert [r["requestMetadata.attempt"] for r in rows] == ["1", "2", "3"]
    assert {r["requestMetadata.gatewayAttempts"] for r in rows} == {"3"}
    assert len({r["requestMetadata.invocationId"] for r in rows}) == 1
    assert [r["throttled"] for r in rows] == [1, 1, 1]
    assert all(float(r["requestMetadata.gatewayWaitMs"]) > 0 for r in rows[1:])  # each retry backed off first
    assert _metric(gateway, "dashcam_gateway_upstream_retries_total", model=NOVA) == 2
    assert _metric(gateway, "dashcam_gateway_upstream_throttles_total", model=NOVA) == 3


def test_a_retried_throttle_succeeds_once_the_upstream_window_frees(make_gateway, server, bedrock_client,
                                                                    openai_client, records):
    # One request per (simulated) minute, a minute lasting one real second: the second call is
    # throttled upstream, and the gateway's retries get it through once the window has moved on.
    models = [m.with_quota(requests_per_minute=1) if m.model_id in (NOVA, GPT) else m for m in DEFAULT_MODELS]
    with start_simulator(seed=5, speed=60, models=models) as tight:
        gateway = make_gateway(record_to=server, bedrock_upstream=tight.url, openai_upstream=tight.openai_url,
                               max_attempts=30, retry_deadline=20)
        bedrock, chat = bedrock_client(gateway.url), openai_client(gateway.openai_url)
        answers = [_converse(bedrock, "first", NOVA), _converse(bedrock, "second", NOVA),
                   _chat(chat, "first"), _chat(chat, "second")]
        stats = tight.stats()
    assert all(answers)
    assert stats[NOVA]["succeeded"] == 2 and stats[NOVA]["throttled"] >= 1
    assert stats[GPT]["succeeded"] == 2 and stats[GPT]["throttled"] >= 1
    rows = records(gateway, server)
    finals = [r for r in rows if r["requestMetadata.attempt"] == r["requestMetadata.gatewayAttempts"]]
    assert [r["errorCode"] for r in finals] == [None] * 4
    assert sum(r["throttled"] for r in rows) == stats[NOVA]["throttled"] + stats[GPT]["throttled"]


def test_a_wait_longer_than_allowed_is_answered_429_with_retry_after(simulator, make_gateway, server,
                                                                      bedrock_client, openai_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=simulator.url, openai_upstream=simulator.openai_url,
                           limits={HAIKU: "2:", GPT: "2:"}, max_queue_wait=0.5)
    before = simulator.stats().get(HAIKU, {}).get("requests", 0)
    bedrock, chat = bedrock_client(gateway.url), openai_client(gateway.openai_url)
    _converse(bedrock)  # the bucket holds one request; the next would wait half a minute
    with pytest.raises(ClientError) as shaped:
        _converse(bedrock)
    error = shaped.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ThrottlingException", 429)
    assert 1 <= int(error["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) <= 60
    assert simulator.stats()[HAIKU]["requests"] - before == 1  # the refused call never reached the upstream

    _chat(chat)
    with pytest.raises(openai.RateLimitError) as limited:
        _chat(chat)
    assert limited.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60

    rows = records(gateway, server)
    assert [(r["errorCode"], r["throttled"], r["requestMetadata.gatewayShaped"]) for r in rows] == [
        (None, 0, None), ("ThrottlingException", 1, "1"), (None, 0, None), ("rate_limit_exceeded", 1, "1")]
    assert _metric(gateway, "dashcam_gateway_shaped_throttles_total", model=HAIKU, reason="rate") == 1
