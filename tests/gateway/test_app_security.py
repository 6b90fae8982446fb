"""Who may call through the gateway, who the records say called, and what the upstream is sent.

With keys in the data directory, boto3 signs with a dashcam key (SigV4, verified against the
key's secret) and OpenAI clients send one as their API key; the record's ``identity.arn`` names
the key. The upstream never sees the caller's credentials: Bedrock calls arrive re-signed with the
gateway's own, OpenAI calls with the caller's key (forward) or the gateway's (substitute).
"""

from __future__ import annotations

import openai
import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from starlette.requests import Request
from starlette.responses import Response

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
GPT = "gpt-4o-mini"


def _converse(client, model: str = HAIKU):
    return client.converse(modelId=model, messages=[{"role": "user", "content": [{"text": "hi"}]}])


def test_boto3_signing_with_a_dashcam_key_is_verified_and_named_in_the_record(
        simulator, make_gateway, secured_server, bedrock_client, records):
    keys = secured_server.keys
    recorder_key = keys.create("ingest", description="gateway recorder")
    caller = keys.create("ingest", description="support bot")
    gateway = make_gateway(record_to=secured_server, record_key=recorder_key.bearer, keys=keys,
                           bedrock_upstream=simulator.url, openai_upstream="none")
    signed_by_key = bedrock_client(gateway.url, caller.key_id, caller.secret)
    assert _converse(signed_by_key)["output"]["message"]["content"]
    # An ARN's ':' and '/' are signed percent-encoded, as botocore sends them.
    assert _converse(signed_by_key, PROFILE_ARN)["stopReason"]

    with pytest.raises(ClientError) as wrong_secret:
        _converse(bedrock_client(gateway.url, caller.key_id, "not-the-secret"))
    assert wrong_secret.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as unknown:
        _converse(bedrock_client(gateway.url, "DKNOSUCHKEY", "x"))
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    reader = keys.create("read")
    with pytest.raises(ClientError) as forbidden:
        _converse(bedrock_client(gateway.url, reader.key_id, reader.secret))
    assert forbidden.value.response["Error"]["Code"] == "AccessDeniedException"

    rows = records(gateway, secured_server)
    assert [r["identity.arn"] for r in rows] == [f"arn:dashcam:iam::key/{caller.key_id}"] * 2
    assert simulator.stats()[HAIKU]["requests"] >= 1


def test_openai_clients_use_a_dashcam_key(simulator, make_gateway, secured_server, openai_client, records):
    keys = secured_server.keys
    recorder_key = keys.create("ingest")
    caller = keys.create("ingest")
    gateway = make_gateway(record_to=secured_server, record_key=recorder_key.bearer, keys=keys,
                           bedrock_upstream="none", openai_upstream=simulator.openai_url,
                           openai_key_mode="substitute", openai_api_key="sk-gateway")
    answer = openai_client(gateway.openai_url, api_key=caller.bearer).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway.openai_url, api_key="sk-not-a-dashcam-key").chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}])
    [row] = records(gateway, secured_server)
    assert row["identity.arn"] == f"arn:dashcam:iam::key/{caller.key_id}"


class _CapturingUpstream:
    """A provider that keeps every request it gets and answers with a fixed Converse / chat reply."""

    def __init__(self, serve) -> None:
        self.requests: list[dict] = []
        self.url = serve(self.keep)

    async def keep(self, request: Request) -> Response:
        self.requests.append({"path": request.scope["raw_path"].decode(), "headers": dict(request.headers),
                              "body": await request.body()})
        if request.url.path.startswith("/v1/"):
            body = {"id": "c1", "object": "chat.completion", "model": GPT, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        else:
            body = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
                    "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                    "metrics": {"latencyMs": 1}}
        return Response(orjson.dumps(body), media_type="application/json")


@pytest.fixture
def capturing_upstream(fake_upstream):
    return _CapturingUpstream(fake_upstream)


def test_bedrock_calls_are_re_signed_with_the_gateways_credentials(capturing_upstream, make_gateway,
                                                                    bedrock_client):
    from botocore.credentials import Credentials

    gateway = make_gateway(bedrock_upstream=capturing_upstream.url, openai_upstream="none", region="eu-west-1")
    client = bedrock_client(gateway.url, "AKIDCALLER", "caller-secret")
    client.converse(modelId=PROFILE_ARN, messages=[{"role": "user", "content": [{"text": "hi"}]}],
                    additionalModelRequestFields={"top_k": 5})
    [seen] = capturing_upstream.requests
    # The path arrives exactly as botocore encoded it, and the body unchanged.
    assert seen["path"] == "/model/" + PROFILE_ARN.replace(":", "%3A").replace("/", "%2F") + "/converse"
    assert orjson.loads(seen["body"])["additionalModelRequestFields"] == {"top_k": 5}
    authorization = seen["headers"]["authorization"]
    assert "Credential=AKIDGATEWAY/" in authorization and "/eu-west-1/bedrock/aws4_request" in authorization
    assert "AKIDCALLER" not in str(seen["headers"])
    # Recompute the signature independently, as the upstream would, with the gateway's secret.
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    check = AWSRequest(method="POST", url=f"{capturing_upstream.url}{seen['path']}", data=seen["body"],
                       headers={name: seen["headers"][name] for name in signed_names})
    check.context["timestamp"] = seen["headers"]["x-amz-date"]
    signer = SigV4Auth(Credentials("AKIDGATEWAY", "gateway-secret"), "bedrock", "eu-west-1")
    expected = signer.signature(signer.string_to_sign(check, signer.canonical_request(check)), check)
    assert authorization.endswith(f"Signature={expected}")


@pytest.mark.parametrize("mode", ["forward", "substitute"])
def test_openai_key_is_forwarded_or_substituted(mode, capturing_upstream, make_gateway, openai_client):
    settings = {"openai_api_key": "sk-gateway"} if mode == "substitute" else {}
    gateway = make_gateway(bedrock_upstream="none", openai_upstream=capturing_upstream.url + "/v1",
                           openai_key_mode=mode, **settings)
    client = openai_client(gateway.openai_url, api_key="sk-caller",
                           default_headers={"X-Dashcam-Key": "dk_x.y", "X-Dashcam-App": "bot"})
    assert client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}]).choices
    [seen] = capturing_upstream.requests
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == ("Bearer sk-gateway" if mode == "substitute" else "Bearer sk-caller")
    assert not any(name.startswith("x-dashcam") for name in seen["headers"])  # dashcam's own stay here


def test_open_mode_refuses_non_loopback_and_secured_metrics_need_a_reader(tmp_path, simulator, make_gateway,
                                                                           secured_server):
    import httpx

    from dashcam.errors import ConfigError
    from dashcam.gateway.config import load_config
    from dashcam.gateway.server import run_gateway

    with pytest.raises(ConfigError, match="no keys"):
        run_gateway(load_config(None, env={}, host="0.0.0.0", bedrock_upstream="none"), tmp_path / "empty")

    keys = secured_server.keys
    gateway = make_gateway(keys=keys, bedrock_upstream=simulator.url, openai_upstream="none")
    assert httpx.get(gateway.url + "/metrics").status_code == 200  # no key yet: open, as the server is
    ingest_only = keys.create("ingest")
    assert httpx.get(gateway.url + "/metrics").status_code == 401
    assert httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {ingest_only.bearer}"}) \
        .status_code == 403
    reader = keys.create("read")
    scraped = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {reader.bearer}"})
    assert scraped.status_code == 200 and "dashcam_gateway_requests" in scraped.text
