"""The upstreams: building the forwarded request, signing it, sending it, filtering headers.

Bedrock requests are re-signed with SigV4 (service ``bedrock``, the configured region) using the
gateway's own credentials from the standard AWS chain (environment, shared config and credential
files, SSO, container and instance roles — whatever boto3 would use), refreshed as the chain
refreshes them. The path is forwarded exactly as the caller encoded it (model ids carry ``:`` and,
in ARNs, ``/``), and the signature is computed over that same path, as botocore does.

OpenAI requests go to the configured base URL with the caller's ``Authorization`` (mode
``forward``) or the gateway's own key in its place (mode ``substitute``).

Responses are asked for uncompressed (``Accept-Encoding: identity``) so streamed bytes can be
passed through as they arrive and read for the record without decompressing twice.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dashcam.errors import ConfigError
from dashcam.gateway.config import KEY_SUBSTITUTE, GatewayConfig

SIGNING_NAME = "bedrock"  # bedrock-runtime's signing name in botocore's service model

# Headers that belong to one connection (RFC 9110 §7.6.1), or that the gateway sets itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "proxy-connection",
})
_DROPPED_REQUEST = HOP_BY_HOP | {
    "host", "content-length", "accept-encoding", "expect", "authorization", "x-amz-date", "x-amz-security-token",
    "x-amz-content-sha256", "x-dashcam-key", "x-dashcam-app", "x-dashcam-user", "x-dashcam-session",
}
_DROPPED_RESPONSE = HOP_BY_HOP | {"content-length", "server", "date"}
_DROPPED_RESPONSE_DECODED = _DROPPED_RESPONSE | {"content-encoding"}


def aws_credentials() -> object | None:
    """The gateway's AWS credentials from the standard chain, or None when it finds none."""
    import botocore.session

    return botocore.session.get_session().get_credentials()


def aws_region() -> str | None:
    """The region the AWS configuration names (``AWS_REGION``, ``AWS_DEFAULT_REGION``, profile)."""
    import botocore.session

    return botocore.session.get_session().get_config_variable("region")


def forwarded_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The caller's headers worth passing on (lower-case names), without the connection's, the
    caller's credentials, and dashcam's own."""
    headers = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key not in _DROPPED_REQUEST:
            headers[key] = value.decode("latin-1")
    headers["accept-encoding"] = "identity"
    return headers


def response_headers(raw: Iterable[tuple[bytes, bytes]], *, decoded: bool) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers to hand to the caller (``decoded``: the body was
    decompressed, so its ``Content-Encoding`` no longer applies)."""
    dropped = _DROPPED_RESPONSE_DECODED if decoded else _DROPPED_RESPONSE
    return [(name.lower(), value) for name, value in raw if name.decode("latin-1").lower() not in dropped]


class Upstreams:
    """One connection pool to both upstreams, and the signer for Bedrock."""

    def __init__(self, config: GatewayConfig, *, credentials: object | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.bedrock_url = config.bedrock_url
        self.openai_url = config.openai_url
        self.region = config.signing_region
        self.credentials = credentials
        if self.bedrock_url is not None and credentials is None:
            raise ConfigError(
                "no AWS credentials were found for re-signing Bedrock requests (the standard chain: "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws, an instance or container role); "
                "set some, or pass --bedrock-upstream none to serve only the OpenAI API")
        self.http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=512, keepalive_expiry=30),
            follow_redirects=False,
        )

    def bedrock_request(self, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> httpx.Request:
        """The caller's Bedrock call, to the upstream, signed with the gateway's credentials."""
        url = f"{self.bedrock_url}{raw_path}" + (f"?{query}" if query else "")
        signed = AWSRequest(method="POST", url=url, data=body, headers=headers)
        frozen = self.credentials.get_frozen_credentials()  # refreshed by the chain when it expires
        SigV4Auth(Credentials(frozen.access_key, frozen.secret_key, frozen.token), SIGNING_NAME,
                  self.region).add_auth(signed)
        return self.http.build_request("POST", url, content=body, headers=dict(signed.headers.items()))

    def openai_request(self, method: str, rest: str, query: str, headers: dict[str, str], body: bytes,
                       authorization: str | None) -> httpx.Request:
        """The caller's OpenAI call (``rest`` is the path after ``/v1``), to the upstream."""
        url = f"{self.openai_url}{rest}" + (f"?{query}" if query else "")
        if self.config.key_mode == KEY_SUBSTITUTE:
            headers["authorization"] = f"Bearer {self.config.openai_api_key}"
        elif authorization:
            headers["authorization"] = authorization
        return self.http.build_request(method, url, content=body or None, headers=headers)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send and return once the response head has arrived; the body is read by the caller."""
        return await self.http.send(request, stream=True)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.http.aclose()
