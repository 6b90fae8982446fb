"""Fuzzing the CloudWatch Logs API: every operation, with random members, members of the wrong
type and mutated valid requests (the seeds in tests/fuzz-corpus/cwlogs-requests), gets an AWS
error in AWS's shape with a 4xx status — never a 5xx — or succeeds; the server keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashcam.api.cwlogs import CONTENT_TYPE, OPERATIONS, TARGET_PREFIX

CORPUS = Path(__file__).resolve().parents[1] / "fuzz-corpus" / "cwlogs-requests"
SEEDS = [orjson.loads(path.read_bytes()) for path in sorted(CORPUS.iterdir())]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8)


def dump(value) -> bytes:
    """JSON bytes; the standard library writes integers of any size (as senders may)."""
    return json.dumps(value).encode()


@st.composite
def requests(draw) -> tuple[str, bytes]:
    """(operation, body): members named by the operation's shape with random values, a seed with
    members replaced or removed, or a body that is not a JSON object at all."""
    kind = draw(st.sampled_from(["shape", "seed", "junk"]))
    if kind == "seed":
        seed = draw(st.sampled_from(SEEDS))
        body = dict(seed["body"])
        for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=2)):
            if draw(st.booleans()):
                body[name] = draw(JSON_VALUES)
            else:
                body.pop(name, None)
        return seed["target"], dump(body)
    operation = draw(st.sampled_from(sorted(OPERATIONS)))
    if kind == "junk":
        return operation, draw(st.one_of(st.binary(max_size=60), JSON_VALUES.map(dump)))
    shape = OPERATIONS[operation][0]
    names = draw(st.lists(st.sampled_from(sorted(shape)), max_size=len(shape), unique=True)) if shape else []
    return operation, dump({name: draw(JSON_VALUES) for name in names})


def _call(client: httpx.Client, operation: str, body: bytes) -> httpx.Response:
    return client.post("/", content=body, headers={"content-type": CONTENT_TYPE,
                                                    "x-amz-target": TARGET_PREFIX + operation})


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s["target"])
def test_every_corpus_seed_is_answered_without_a_server_error(server, seed):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _call(client, "CreateLogGroup", orjson.dumps({"logGroupName": "/fuzz"}))
        _call(client, "CreateLogStream", orjson.dumps({"logGroupName": "/fuzz", "logStreamName": "s"}))
        response = _call(client, seed["target"], orjson.dumps(seed["body"]))
        assert response.status_code == 200, response.content


def test_random_requests_get_aws_4xx_errors_never_5xx(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _call(client, "CreateLogGroup", orjson.dumps({"logGroupName": "/fuzz"}))

        @SETTINGS
        @given(requests())
        def one(request):
            operation, body = request
            response = _call(client, operation, body)
            assert response.status_code < 500, (operation, body, response.content[:300])
            if response.status_code >= 400:
                error = response.json()
                assert error["__type"] and error["message"], error

        one()
        assert _call(client, "DescribeLogGroups", b"{}").status_code == 200


@pytest.mark.parametrize("member", ["logGroupNames", "logGroupIdentifiers"])
def test_a_group_list_member_of_another_type_is_a_4xx_error(server, member):
    # Found by the fuzzer: authorization reads the group lists before validation refuses them.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = _call(client, "StartQuery", dump({member: -441660, "queryString": "fields @message",
                                                     "startTime": 0, "endTime": 1}))
    assert 400 <= response.status_code < 500 and response.json()["__type"], response.content
    assert member in response.json()["message"]
