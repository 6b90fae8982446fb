"""Answers the gateway gives itself, in the shape each provider's clients understand.

Bedrock (REST-JSON): the HTTP status, an ``x-amzn-ErrorType`` header naming the error (botocore's
ClientError code comes from it), ``x-amzn-RequestId``, and ``{"message": ...}``. OpenAI: the
status and ``{"error": {"message", "type", "param", "code"}}`` (the ``openai`` client picks its
exception class from the status: 401 AuthenticationError, 429 RateLimitError, 5xx
InternalServerError). Throttles carry ``Retry-After`` (and ``retry-after-ms``, which the OpenAI
client prefers) so clients back off for as long as the gateway asks.

What each failure becomes, and why it is faithful:

=================== ====== ============================== ==========================================
gateway's situation status Bedrock ``x-amzn-ErrorType``   OpenAI ``error.type`` / ``error.code``
=================== ====== ============================== ==========================================
limits: wait too long 429  ThrottlingException            ``requests`` / ``rate_limit_exceeded``
upstream unreachable  503  ServiceUnavailableException    ``server_error`` / ``upstream_unavailable``
upstream silent       504  ModelTimeoutException          ``server_error`` / ``upstream_timeout``
malformed answer      502  InternalServerException        ``server_error`` / ``bad_upstream_response``
no or bad key         403 / 401  UnrecognizedClient... /  ``invalid_request_error`` / ``invalid_api_key``
                           InvalidSignatureException
key may not call      403  AccessDeniedException          ``invalid_request_error`` / ``permission_denied``
unknown path          404  UnknownOperationException      ``invalid_request_error`` / ``unknown_url``
=================== ====== ============================== ==========================================

Both clients treat 429, 502, 503 and 504 as retryable, as they would the provider's own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from starlette.responses import Response

from dashcam.gateway.shaping import retry_after_header

BEDROCK = "bedrock"
OPENAI = "openai"


@dataclass(frozen=True)
class Fault:
    """One kind of answer the gateway gives itself, per API."""

    status: int
    bedrock_code: str
    openai_type: str
    openai_code: str
    openai_status: int | None = None  # when OpenAI answers it with another status


THROTTLED = Fault(429, "ThrottlingException", "requests", "rate_limit_exceeded")
UNAVAILABLE = Fault(503, "ServiceUnavailableException", "server_error", "upstream_unavailable")
TIMED_OUT = Fault(504, "ModelTimeoutException", "server_error", "upstream_timeout")
BAD_UPSTREAM = Fault(502, "InternalServerException", "server_error", "bad_upstream_response")
NO_KEY = Fault(403, "MissingAuthenticationTokenException", "invalid_request_error", "invalid_api_key", 401)
BAD_KEY = Fault(403, "UnrecognizedClientException", "invalid_request_error", "invalid_api_key", 401)
BAD_SIGNATURE = Fault(403, "InvalidSignatureException", "invalid_request_error", "invalid_api_key", 401)
FORBIDDEN = Fault(403, "AccessDeniedException", "invalid_request_error", "permission_denied")
NOT_FOUND = Fault(404, "UnknownOperationException", "invalid_request_error", "unknown_url")


def bedrock_request_id() -> str:
    """A request id in Bedrock's form (a UUID)."""
    return str(uuid.uuid4())


def openai_request_id() -> str:
    """A request id in OpenAI's form."""
    return "req_" + uuid.uuid4().hex


def reply(api: str, fault: Fault, message: str, *, retry_after: float | None = None) -> Response:
    """The provider-shaped answer for ``fault`` with ``message`` (and ``Retry-After`` when given)."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = retry_after_header(retry_after)
        headers["retry-after-ms"] = str(max(1, round(retry_after * 1000)))
    if api == BEDROCK:
        headers["x-amzn-RequestId"] = bedrock_request_id()
        headers["x-amzn-ErrorType"] = fault.bedrock_code
        body = {"message": message}
        status = fault.status
    else:
        headers["x-request-id"] = openai_request_id()
        body = {"error": {"message": message, "type": fault.openai_type, "param": None, "code": fault.openai_code}}
        status = fault.openai_status or fault.status
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_code_of(api: str, fault: Fault) -> str:
    """The error code a record of ``fault`` carries (what the caller's client reports)."""
    return fault.bedrock_code if api == BEDROCK else fault.openai_code
