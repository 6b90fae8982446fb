"""Who is calling: bearer keys for the native API and OTLP, SigV4 for the AWS-compatible APIs.

With no active key in the data directory the server runs open (``dashcam serve`` refuses a
non-loopback address then), and every request acts as an anonymous admin. Once a key exists,
every request needs credentials. The server's own local credential (``server.json`` in the data
directory, for the CLI's "talk to the running server" path) is an admin bearer token that lives as
long as the server.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from fastapi import Request

from dashcam.api.bodies import read_capped
from dashcam.audit import ACTOR
from dashcam.errors import AuthError
from dashcam.keys import KeyRing, Principal

ANONYMOUS_ADMIN = Principal("anonymous", "admin", "*")
LOCAL_KEY_ID = "local-cli"

_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<akid>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/(?P<service>[^/\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


class Authenticator:
    """Turns a request's credentials into a :class:`Principal` (or raises AuthError)."""

    def __init__(self, keys: KeyRing, *, local_token: str | None = None) -> None:
        self.keys = keys
        self.local_token = local_token

    async def principal(self, request: Request) -> Principal:
        """The principal of ``request``; needs the body for SigV4, so it is async."""
        header = request.headers.get("authorization", "")
        if header.startswith("AWS4-HMAC-SHA256"):
            return self._sigv4(request, header, await read_capped(request))
        if header.lower().startswith("bearer "):
            token = header[7:].strip()
            if self.local_token and hmac.compare_digest(token, self.local_token):
                return Principal(LOCAL_KEY_ID, "admin", "*")
            return self.keys.authenticate_bearer(token)
        if not self.keys.active():
            return ANONYMOUS_ADMIN
        raise AuthError("this server requires a key: send 'Authorization: Bearer dk_...' or sign with SigV4")

    def _sigv4(self, request: Request, header: str, body: bytes | bytearray) -> Principal:
        match = _SIGV4.match(header)
        if not match:
            raise AuthError("the Authorization header is not a well-formed AWS SigV4 signature")
        if not self.keys.active():
            return ANONYMOUS_ADMIN  # open server: any signature is accepted, as with no keys at all
        secret, principal = self.keys.aws_secret(match["akid"])
        # botocore costs a server ~19 MB resident: loaded on the first signed request, not at start.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signed = match["headers"].split(";")
        amz_date = request.headers.get("x-amz-date", "")
        if not amz_date.startswith(match["date"]):
            raise AuthError("X-Amz-Date does not match the signature's credential date")
        url = str(request.url)
        parts = urlsplit(url)
        aws_request = AWSRequest(
            method=request.method,
            url=f"{parts.scheme}://{request.headers.get('host', parts.netloc)}{parts.path}"
            + (f"?{parts.query}" if parts.query else ""),
            data=body,
            headers={name: request.headers.get(name, "") for name in signed},
        )
        aws_request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(match["akid"], secret), match["service"], match["region"])
        expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                    aws_request)
        if not hmac.compare_digest(expected, match["signature"]):
            raise AuthError("the request signature we calculated does not match the signature you provided")
        return principal


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the calling principal (an open server's anonymous admin without keys)."""
    authenticator: Authenticator | None = getattr(request.app.state, "auth", None)
    principal = ANONYMOUS_ADMIN if authenticator is None else await authenticator.principal(request)
    ACTOR.set(principal.key_id)  # admin actions in this request are audited as this key
    return principal
