"""The upstreams: building the forwarded request, signing it, sending it, filtering headers.

Bedrock requests are re-signed with SigV4 (service ``bedrock``, the configured region) using the
gateway's own credentials from the standard AWS chain (environment, shared config and credential
files, SSO, container and instance roles — whatever boto3 would use), refreshed as the chain
refreshes them. The path is forwarded exactly as the caller encoded it (model ids carry ``:`` and,
in ARNs, ``/``), and the signature is computed over that same path, as botocore does.

OpenAI requests go to the configured base URL with the caller's ``Authorization`` (mode
``forward``) or the gateway's own key in its place (mode ``substitute``).

The HTTP client is aiohttp's: on the hot path it costs about a tenth of the CPU time per call of
httpx's async client (measured on this project's 2-core machine: ~0.12 ms against ~1.2 ms), which
is most of what the gateway adds. Its types and exceptions stay in this module: callers get an
:class:`UpstreamResponse` or an :class:`UpstreamFailure`. Responses are asked for uncompressed
(``Accept-Encoding: identity``) and passed through byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, NamedTuple

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from dashcam.errors import ConfigError
from dashcam.gateway.config import KEY_SUBSTITUTE, GatewayConfig

SIGNING_NAME = "bedrock"  # bedrock-runtime's signing name in botocore's service model
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"

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


class UpstreamRequest(NamedTuple):
    """A request ready to send: it can be sent again as it is (retries)."""

    method: str
    url: str  # already percent-encoded, sent exactly as it is
    headers: dict[str, str]
    body: bytes


class UpstreamFailure(NamedTuple):
    """The upstream gave no answer: ``kind`` is ``unreachable`` or ``timeout``."""

    kind: str
    detail: str


class UpstreamResponse:
    """An upstream's answer whose head has arrived; read the body whole or chunk by chunk, once."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers  # case-insensitive
        self.broken: str | None = None   # why the body stopped short, if it did

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """The headers to hand to the caller, as the server sends them."""
        return [(name.lower(), value) for name, value in self._response.raw_headers
                if name.decode("latin-1").lower() not in _DROPPED_RESPONSE]

    async def read(self) -> bytes | None:
        """The whole body, or None (and :attr:`broken` says why) when it stopped short."""
        try:
            return await self._response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; ends early (and :attr:`broken` says why) when the upstream breaks off."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.broken = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Give the connection back (or drop it, when the body was not read to its end)."""
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


class Upstreams:
    """One connection pool to both upstreams, and the signer for Bedrock."""

    def __init__(self, config: GatewayConfig, *, credentials: Any = None) -> None:
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
        self._timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout,
                                              sock_read=config.read_timeout or None)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the event loop that serves the gateway.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30), timeout=self._timeout,
                auto_decompress=False, skip_auto_headers=("User-Agent",))
        return self._session

    def bedrock_request(self, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> UpstreamRequest:
        """The caller's Bedrock call, to the upstream, signed with the gateway's credentials."""
        url = f"{self.bedrock_url}{raw_path}" + (f"?{query}" if query else "")
        signed = AWSRequest(method="POST", url=url, data=body, headers=headers)
        frozen = self.credentials.get_frozen_credentials()  # refreshed by the chain when it expires
        SigV4Auth(Credentials(frozen.access_key, frozen.secret_key, frozen.token), SIGNING_NAME,
                  self.region).add_auth(signed)
        return UpstreamRequest("POST", url, dict(signed.headers.items()), body)

    def openai_request(self, method: str, rest: str, query: str, headers: dict[str, str], body: bytes,
                       authorization: str | None) -> UpstreamRequest:
        """The caller's OpenAI call (``rest`` is the path after ``/v1``), to the upstream."""
        url = f"{self.openai_url}{rest}" + (f"?{query}" if query else "")
        if self.config.key_mode == KEY_SUBSTITUTE:
            headers["authorization"] = f"Bearer {self.config.openai_api_key}"
        elif authorization:
            headers["authorization"] = authorization
        return UpstreamRequest(method, url, headers, body)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse | UpstreamFailure:
        """Send and return once the response head has arrived (the body is read by the caller), or
        say why no answer came."""
        try:
            response = await self._client().request(
                request.method, URL(request.url, encoded=True), data=request.body or None,
                headers=request.headers, allow_redirects=False)
        except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError, asyncio.TimeoutError) as exc:
            return UpstreamFailure(TIMEOUT, f"{type(exc).__name__}: {exc or 'no answer in time'}")
        except aiohttp.ClientError as exc:
            return UpstreamFailure(UNREACHABLE, f"{type(exc).__name__}: {exc}")
        return UpstreamResponse(response)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
