"""Keys and roles: issuing, listing, revoking, bearer and SigV4 verification, role limits."""

from __future__ import annotations

import asyncio
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.requests import Request

from dashcam.api.auth import ANONYMOUS_ADMIN, Authenticator
from dashcam.errors import AuthError, ConfigError, ForbiddenError, NotFoundError
from dashcam.keys import KeyRing, Principal


def _resolve(coroutine):
    """Run a coroutine on a fresh loop in its own thread: a browser test's loop may own this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_key_authenticates_as_its_role_until_revoked(tmp_path):
    ring = KeyRing(tmp_path)
    issued = ring.create("ingest", log_groups="/aws/*", description="collector")
    principal = ring.authenticate_bearer(issued.bearer)
    assert principal == Principal(issued.key_id, "ingest", "/aws/*")
    ring.revoke(issued.key_id)
    with pytest.raises(AuthError, match="revoked"):
        ring.authenticate_bearer(issued.bearer)
    assert [(k.key_id, k.revoked_ms is not None) for k in ring.list()] == [(issued.key_id, True)]


def test_wrong_or_malformed_tokens_are_refused(tmp_path):
    ring = KeyRing(tmp_path)
    issued = ring.create("read")
    for token in (issued.bearer[:-1] + ("x" if issued.bearer[-1] != "x" else "y"), "dk_NOPE.secret", "abc", ""):
        with pytest.raises(AuthError):
            ring.authenticate_bearer(token)


def test_secrets_are_stored_hashed_and_encrypted_never_in_clear(tmp_path):
    ring = KeyRing(tmp_path)
    issued = ring.create("admin")
    stored = (tmp_path / "keys.json").read_text()
    assert issued.secret not in stored
    for name in ("keys.json", "keys.secret"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert ring.aws_secret(issued.key_id)[0] == issued.secret  # what SigV4 verification needs


def test_roles_cannot_exceed_their_rights():
    ingest, read, admin = (Principal("k", role, "/aws/*") for role in ("ingest", "read", "admin"))
    assert ingest.may("ingest", "/aws/x") and not ingest.may("read", "/aws/x")
    assert read.may("read", "/aws/x") and not read.may("ingest", "/aws/x")
    assert admin.may("admin") and admin.may("read", "/aws/y") and not admin.may("read", "/other")
    with pytest.raises(ForbiddenError, match="may not read on log group '/other'"):
        read.require("read", "/other")


def test_bad_roles_patterns_and_ids_are_clear_errors(tmp_path):
    ring = KeyRing(tmp_path)
    with pytest.raises(ConfigError, match="role 'owner'"):
        ring.create("owner")
    with pytest.raises(ConfigError, match="pattern is empty"):
        ring.create("read", log_groups="")
    with pytest.raises(NotFoundError):
        ring.revoke("DKNOPE")


def _request(method: str, url: str, headers: dict[str, str], body: bytes) -> Request:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scope = {
        "type": "http", "method": method, "path": parts.path, "query_string": parts.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "scheme": parts.scheme, "server": (parts.hostname, parts.port), "root_path": "",
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _signed(access_key: str, secret: str, body: bytes) -> Request:
    url = "http://127.0.0.1:4318/"
    aws = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"})
    SigV4Auth(Credentials(access_key, secret), "logs", "us-east-1").add_auth(aws)
    return _request("POST", url, {**dict(aws.headers.items()), "host": "127.0.0.1:4318"}, body)


def test_sigv4_signatures_made_with_an_issued_pair_verify(tmp_path):
    ring = KeyRing(tmp_path)
    issued = ring.create("read", log_groups="*")
    auth = Authenticator(ring)
    principal = _resolve(auth.principal(_signed(issued.key_id, issued.secret, b"{}")))
    assert principal.key_id == issued.key_id and principal.role == "read"
    with pytest.raises(AuthError, match="signature"):
        _resolve(auth.principal(_signed(issued.key_id, "wrong-secret", b"{}")))
    with pytest.raises(AuthError, match="unknown key"):
        _resolve(auth.principal(_signed("AKIAEXAMPLE", issued.secret, b"{}")))


def test_with_no_keys_the_server_is_open_and_with_keys_it_is_not(tmp_path):
    ring = KeyRing(tmp_path)
    auth = Authenticator(ring)
    anonymous = _request("GET", "http://127.0.0.1:4318/api/v1/log-groups", {}, b"")
    assert _resolve(auth.principal(anonymous)) == ANONYMOUS_ADMIN
    ring.create("read")
    with pytest.raises(AuthError, match="requires a key"):
        _resolve(auth.principal(_request("GET", "http://127.0.0.1:4318/api/v1/log-groups", {}, b"")))


def test_the_servers_local_token_is_an_admin(tmp_path):
    ring = KeyRing(tmp_path)
    ring.create("read")
    auth = Authenticator(ring, local_token="local-secret")
    request = _request("GET", "http://127.0.0.1:4318/", {"authorization": "Bearer local-secret"}, b"")
    assert _resolve(auth.principal(request)).role == "admin"


def test_the_keys_commands(tmp_path):
    from click.testing import CliRunner

    from dashcam.cli import main

    data = str(tmp_path / "data")
    created = CliRunner().invoke(main, ["--data", data, "keys", "create", "--role", "ingest", "--log-group", "/a/*"])
    assert created.exit_code == 0, created.output
    token = next(line.split()[-1] for line in created.output.splitlines() if line.startswith("bearer token:"))
    key_id = next(line.split()[-1] for line in created.output.splitlines() if line.startswith("key id:"))
    assert KeyRing(data).authenticate_bearer(token).role == "ingest"
    listed = CliRunner().invoke(main, ["--data", data, "keys", "list"])
    assert key_id in listed.output and "/a/*" in listed.output and token.split(".")[1] not in listed.output
    assert CliRunner().invoke(main, ["--data", data, "keys", "revoke", key_id]).exit_code == 0
    assert CliRunner().invoke(main, ["--data", data, "keys", "revoke", "DKNOPE"]).exit_code == 1
    bad = CliRunner().invoke(main, ["--data", data, "keys", "create", "--role", "owner"])
    assert bad.exit_code == 2
