"""Fuzzing the OTLP/HTTP receiver: random bytes, random JSON and mutations of valid requests (the
seeds in tests/fuzz-corpus/otlp-*) are answered 200 or 400 — never 5xx — and the server keeps
serving valid exports afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parents[1] / "fuzz-corpus"
PROTOBUF_SEEDS = sorted((CORPUS / "otlp-protobuf").iterdir())
JSON_SEEDS = sorted((CORPUS / "otlp-json").iterdir())
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PB, JS = "application/x-protobuf", "application/json"


def endpoint(seed: Path) -> str:
    """The signal a seed file is for, from its name (``logs-*`` or ``traces-*``)."""
    return "/v1/logs" if seed.name.startswith("logs-") else "/v1/traces"


def dump(value) -> bytes:
    """JSON bytes; the standard library writes integers of any size (as senders may)."""
    return json.dumps(value).encode()


@st.composite
def mutated_bytes(draw, seeds: list[Path]) -> tuple[str, bytes]:
    """A seed with a few byte-level edits: flips, truncation, insertions, deletions, repeats."""
    seed = draw(st.sampled_from(seeds))
    data = bytearray(seed.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]))
        if edit == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 32))]
    return endpoint(seed), bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


def _replace(node, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


@st.composite
def mutated_json(draw, seeds: list[Path]) -> tuple[str, bytes]:
    """A seed document with one to three subtrees replaced by random JSON (wrong types, nulls,
    huge numbers, nested junk) — the shapes a buggy exporter sends."""
    seed = draw(st.sampled_from(seeds))
    doc = orjson.loads(seed.read_bytes())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        doc = _replace(doc, path, draw(JSON_VALUES))
    return endpoint(seed), dump(doc)


def _post(client: httpx.Client, path: str, body: bytes, content_type: str, encoding: str = "") -> httpx.Response:
    headers = {"content-type": content_type, **({"content-encoding": encoding} if encoding else {})}
    return client.post(path, content=body, headers=headers)


def _still_serving(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    for seed in PROTOBUF_SEEDS:
        assert _post(client, endpoint(seed), seed.read_bytes(), PB).status_code == 200


@pytest.mark.parametrize("seed", PROTOBUF_SEEDS + JSON_SEEDS, ids=lambda p: p.name)
def test_every_corpus_seed_is_accepted(server, seed):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = _post(client, endpoint(seed), seed.read_bytes(), PB if seed.suffix == ".pb" else JS)
        assert response.status_code == 200, response.content


def test_protobuf_fuzz_never_fails_the_server(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        @SETTINGS
        @given(st.one_of(st.tuples(st.sampled_from(["/v1/traces", "/v1/logs"]), st.binary(max_size=300)),
                         mutated_bytes(PROTOBUF_SEEDS)),
               st.sampled_from(["", "", "gzip", "deflate"]))
        def one(request, encoding):
            path, body = request
            response = _post(client, path, body, PB, encoding)
            assert response.status_code in (200, 400), (response.status_code, response.content[:300])

        one()
        _still_serving(client)


def test_json_fuzz_never_fails_the_server(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        @SETTINGS
        @given(st.one_of(
            mutated_json(JSON_SEEDS),
            mutated_bytes(JSON_SEEDS),
            st.tuples(st.sampled_from(["/v1/traces", "/v1/logs"]), JSON_VALUES.map(dump)),
            st.tuples(st.sampled_from(["/v1/traces", "/v1/logs"]), st.text(max_size=200).map(str.encode))))
        def one(request):
            path, body = request
            response = _post(client, path, body, JS)
            assert response.status_code in (200, 400), (response.status_code, response.content[:300])

        one()
        _still_serving(client)
