"""Pieces of the AWS JSON protocol (``awsJson1_1``) that AWS-compatible endpoints share.

- :class:`AwsError`: an error as AWS sends it, ``{"__type": code, "message": ...}`` with a status.
- :class:`Member` and :func:`validate`: request members checked as AWS's service models declare
  them (required, type, length, range, pattern, enum). A wrong JSON type is a
  ``SerializationException``; a value outside a constraint is reported in AWS's own wording
  (``1 validation error detected: Value ... at 'x' failed to satisfy constraint: ...``) under
  the code the service uses for it.
- :func:`encode_token` / :func:`decode_token`: opaque pagination tokens.
- :func:`region_of`: the region a SigV4 ``Authorization`` header was signed for.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

class AwsError(Exception):
    """An error response: ``code`` becomes ``__type``; ``extra`` members are added to the body."""

    def __init__(self, code: str, message: str, *, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"__type": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Member:
    """One request member as an AWS service model declares it.

    ``kind`` is ``string``, ``long`` (any JSON integer), ``boolean``, ``list``, ``map`` or
    ``structure``; ``low``/``high`` bound a string's or list's length or a number's value;
    ``items`` is the shape of list elements, ``fields`` the members of a structure.
    """

    kind: str
    required: bool = False
    low: int | None = None
    high: int | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    items: "Member | None" = None
    fields: dict[str, "Member"] = field(default_factory=dict)


_KINDS = {
    "string": (str,),
    "long": (int,),
    "boolean": (bool,),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
}


def validate(params: Any, shape: dict[str, Member], *, code: str = "InvalidParameterException") -> dict[str, Any]:
    """``params`` checked against ``shape``; raises AwsError (``code`` for constraint violations).

    Members the shape does not name are ignored, as AWS ignores them.
    """
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "the request body must be a JSON object")
    problems: list[str] = []
    _check_fields(params, shape, "", problems)
    if problems:
        count = len(problems)
        raise AwsError(code, f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}")
    return params


def _check_fields(params: dict, shape: dict[str, Member], prefix: str, problems: list[str]) -> None:
    for name, member in shape.items():
        where = f"{prefix}{name}"
        value = params.get(name)
        if value is None:
            if member.required:
                problems.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
            continue
        _check(value, member, where, problems)


def _check(value: Any, member: Member, where: str, problems: list[str]) -> None:
    types = _KINDS[member.kind]
    if not isinstance(value, types) or (member.kind == "long" and isinstance(value, bool)):
        raise AwsError("SerializationException",
                       f"'{where}' must be a {member.kind}, got {type(value).__name__} {_shown(value)}")
    shown = _shown(value)
    if member.kind in ("string", "list", "map"):
        size = len(value)
        if member.low is not None and size < member.low:
            problems.append(f"Value {shown} at '{where}' failed to satisfy constraint: "
                            f"Member must have length greater than or equal to {member.low}")
        if member.high is not None and size > member.high:
            problems.append(f"Value {shown} at '{where}' failed to satisfy constraint: "
                            f"Member must have length less than or equal to {member.high}")
    if member.kind == "long":
        if member.low is not None and value < member.low:
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                            f"Member must have value greater than or equal to {member.low}")
        if member.high is not None and value > member.high:
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                            f"Member must have value less than or equal to {member.high}")
    if member.pattern is not None and isinstance(value, str) and not re.fullmatch(member.pattern, value):
        problems.append(f"Value {shown} at '{where}' failed to satisfy constraint: "
                        f"Member must satisfy regular expression pattern: {member.pattern}")
    if member.enum is not None and value not in member.enum:
        allowed = ", ".join(str(v) for v in member.enum)
        problems.append(f"Value {shown} at '{where}' failed to satisfy constraint: "
                        f"Member must satisfy enum value set: [{allowed}]")
    if member.kind == "list" and member.items is not None:
        for i, item in enumerate(value):
            if item is None:
                problems.append(f"Value null at '{where}.{i + 1}' failed to satisfy constraint: "
                                "Member must not be null")
            else:
                _check(item, member.items, f"{where}.{i + 1}", problems)
    if member.kind == "structure":
        _check_fields(value, member.fields, f"{where}.", problems)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value if len(value) <= 64 else value[:61] + '...'}'"
    if isinstance(value, (list, dict)):
        return f"of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"'{value}'"


def encode_token(kind: str, state: Any) -> str:
    """An opaque pagination token carrying ``state`` for a listing of ``kind``."""
    return base64.urlsafe_b64encode(orjson.dumps([kind, state])).decode().rstrip("=")


def decode_token(token: str, kind: str) -> Any:
    """The state in a token made by :func:`encode_token` for ``kind``; InvalidParameterException if not."""
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(decoded, list) and len(decoded) == 2 and decoded[0] == kind:
            return decoded[1]
    except (ValueError, orjson.JSONDecodeError):
        pass
    raise AwsError("InvalidParameterException", "The specified nextToken is not valid.")


_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")


def region_of(authorization: str | None, default: str = "us-east-1") -> str:
    """The region in a SigV4 ``Authorization`` header's credential scope, else ``default``."""
    found = _CREDENTIAL.search(authorization or "")
    return found.group(1) if found else default


async def read_members(request: Any) -> dict[str, Any]:
    """A request's JSON body as its members (``{}`` for an empty body); AwsError
    ``SerializationException`` for a body that is not one JSON object."""
    from dashcam.api.native import read_body  # the body limits and gzip handling every API shares
    from dashcam.errors import InputError

    try:
        raw = await read_body(request)
    except InputError as exc:
        raise AwsError("SerializationException", str(exc)) from None
    if not raw.strip():
        return {}
    try:
        params = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AwsError("SerializationException", f"The request body is not valid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object")
    return params


def call_handler(handler: Any, ctx: Any, params: dict[str, Any], codes: tuple[tuple[type, str, int], ...], *,
                 internal_code: str, log: Any) -> dict[str, Any]:
    """Call an operation's handler, turning the errors it lets through into AWS ones by ``codes``
    ((exception class, AWS code, status), most specific first); anything else is ``internal_code``
    with status 500, logged. Every failure reaches the client in AWS's shape."""
    try:
        return handler(ctx, params)
    except AwsError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated below, or logged and answered with a 500
        for kind, code, status in codes:
            if isinstance(exc, kind):
                raise AwsError(code, str(exc), status=status) from None
        log.exception("AWS API request failed")
        raise AwsError(internal_code, f"dashcam failed to handle the request: {type(exc).__name__}",
                       status=500) from None
