"""``unmask()`` in the query language: the compiler marks the column and selects each event's key,
refuses every use the engine could not honour, and the service swaps originals into the rows —
for admins only, audited — on both store engines."""

from __future__ import annotations

import orjson
import pytest
import sqlglot

from dashcam.audit import AuditLog, current_actor
from dashcam.errors import ForbiddenError, QuerySyntaxError
from dashcam.keys import Principal
from dashcam.protect.policy import Policy
from dashcam.query.compiler import CompiledQuery, OutputColumn, QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.unmask import events_of, original_value, swap_originals
from dashcam.service import Dashcam

MAIL, OTHER_MAIL = "kim.private@example.com", "lee@example.org"


def compiled(text: str, dialect: str = "duckdb") -> CompiledQuery:
    return compile_query(parse(text), QueryScope(), dialect)


def selected(query: CompiledQuery) -> list[str]:
    """The names of the columns the outermost SELECT returns (a pointer is built in a SELECT
    around the one that sorts and limits, so the raw keys also appear in inner ones)."""
    return [e.alias_or_name for e in sqlglot.parse_one(query.sql, read=query.dialect).expressions]


def record(i: int, mail: str) -> dict:
    return {"timestamp": f"2026-03-02T10:00:0{i}Z", "operation": "Converse", "modelId": "m", "requestId": f"r{i}",
            "identity": {"arn": f"arn:aws:iam::1:user/{mail}"}, "requestMetadata": {"user": mail},
            "input": {"inputTokenCount": i, "inputBodyJson": {"messages": [{"content": f"mail {mail} please"}]}}}


# ---------------------------------------------------------------------- compiler


@pytest.mark.parametrize("text,name,path,kind", [
    ("fields unmask(@message) as original", "original", (), "value"),
    ("fields unmask(@message)", "unmask(@message)", (), "value"),
    ("fields unmask(identity.arn)", "unmask(identity.arn)", ("identity", "arn"), "value"),
    ("fields unmask(input.inputBodyJson.messages.0.content) as c", "c",
     ("input", "inputBodyJson", "messages", "0", "content"), "json"),
    ("fields jsonParse(@message) as m | fields unmask(m.requestMetadata) as meta", "meta", ("requestMetadata",),
     "json"),
    ("fields identity.arn as who | display unmask(who) as whoever", "whoever", ("identity", "arn"), "value"),
    ("fields unmask(@@at) as a", "a", ("@at",), "json"),
])
def test_unmask_marks_its_column_with_the_path_in_the_original_message(text, name, path, kind):
    query = compiled(text)
    column = next(c for c in query.columns if c.name == name)
    assert (column.unmask, column.kind) == (path, kind)
    assert query.unmasks and len(query.hidden) == 2
    assert all(f'AS "{alias}"' in query.sql for alias in query.hidden)


def test_the_sql_returns_the_masked_value_and_each_events_key_after_the_result_columns():
    query = compiled("fields @timestamp, unmask(@message) as original | limit 3 | display original, @ptr")
    assert [c.name for c in query.columns] == ["original", "@ptr"]
    assert [c.unmask for c in query.columns] == [(), None]
    assert selected(query) == ["original", "@ptr", *query.hidden]


def test_queries_without_unmask_select_nothing_extra():
    for text in ("fields @message", "stats count(*) by modelId", "fields @ptr, identity.arn | limit 2"):
        query = compiled(text)
        assert not query.unmasks and query.hidden == ()
        assert selected(query) == [c.name for c in query.columns]


@pytest.mark.parametrize("text,says", [
    ("filter unmask(@message) like 'x'", "whole column of `fields`"),
    ("fields unmask(@message) as o | filter o like 'x'", "filter, sort and aggregate on the masked field"),
    ("fields unmask(@message) as o | sort o", "whole column"),
    ("fields unmask(@message) as o | dedup o", "whole column"),
    ("fields unmask(@message) as o | parse o 'a*b' as x", "whole column"),
    ("fields unmask(@message) as o | stats count(*) by o", "whole column"),
    ("stats count(*) by unmask(modelId)", "whole column"),
    ("fields strlen(unmask(@message)) as n", "whole column"),
    ("fields unmask(unmask(@message)) as n", "whole column"),
    ("fields unmask(@logStream)", "only @message and the fields of the event's message"),
    ("fields unmask(@timestamp)", "only @message"),
    ("fields unmask('text')", "only @message"),
    ("fields unmask(concat(modelId, 'x'))", "only @message"),
    ("stats count(*) as n by modelId | fields unmask(modelId)", "only @message"),
    ("fields unmask(@message, modelId)", "takes 1 argument"),
])
def test_uses_the_engine_could_not_honour_are_refused_with_the_reason(text, says):
    with pytest.raises(QuerySyntaxError) as caught:
        compiled(text)
    assert says in str(caught.value)


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse"])
def test_each_dialect_selects_the_same_columns(dialect):
    query = compiled("fields unmask(@message) as original, modelId", dialect)
    assert [(c.name, c.unmask) for c in query.columns] == [("original", ()), ("modelId", None)]
    assert len(query.hidden) == 2


# ---------------------------------------------------------------------- swapping, without an engine


def test_original_value_reads_the_path_as_the_masked_column_would_show_it():
    original = orjson.dumps(record(3, MAIL)).decode()
    assert original_value(original, (), "value") == original
    assert original_value(original, (), "json") == orjson.dumps(orjson.loads(original)).decode()
    assert original_value(original, ("identity", "arn"), "value") == f"arn:aws:iam::1:user/{MAIL}"
    assert original_value(original, ("userId",), "value") == MAIL  # derived from requestMetadata.user at ingest
    content = ("input", "inputBodyJson", "messages", "0", "content")
    assert original_value(original, content, "json") == f"mail {MAIL} please"
    assert original_value(original, ("requestMetadata",), "json") == orjson.dumps({"user": MAIL}).decode()
    assert original_value(original, ("input", "inputBodyJson", "messages", "5"), "json") is None
    assert original_value(original, ("nothing", "here"), "json") is None
    assert original_value("plain text, not JSON", ("a",), "json") is None


def test_swap_replaces_only_rows_whose_event_has_an_original():
    query = CompiledQuery("", (OutputColumn("original", "value", ()), OutputColumn("modelId", "value")), "duckdb",
                          hidden=("_g", "_e"))
    raw = [("masked 1", "m", "/a", 1), ("masked 2", "m", "/a", 2), ("masked 3", "m", "/b", 1)]
    rows = [{"original": r[0], "modelId": r[1]} for r in raw]
    assert events_of(query, raw) == {"/a": [1, 2], "/b": [1]}
    assert swap_originals(query, raw, rows, {("/a", 2): "secret 2", ("/b", 1): "secret 3"}) == 2
    assert rows == [{"original": "masked 1", "modelId": "m"}, {"original": "secret 2", "modelId": "m"},
                    {"original": "secret 3", "modelId": "m"}]


# ---------------------------------------------------------------------- the service, on both engines


@pytest.fixture
def protected(store_of, tmp_path):
    """A protected Dashcam over the test's engine: /keep keeps originals, /drop masks without
    keeping them, /open has no policy."""
    dashcam = Dashcam(store_of(), tmp_path / "data").protected()
    dashcam.protection.policies.put(Policy("/keep", detectors=("email",), keep_original=True))
    dashcam.protection.policies.put(Policy("/drop", detectors=("email",)))
    written = {"/keep": [record(1, MAIL), record(2, OTHER_MAIL)], "/drop": [record(3, MAIL)],
               "/open": [record(4, MAIL)]}
    for group, records in written.items():
        dashcam.store.write_records(group, "s", [dict(r) for r in records], source="api")
    return dashcam


ADMIN = Principal("DKADMIN", "admin")
QUERY = ("fields requestId, unmask(@message) as original, unmask(identity.arn) as arn, unmask(userId) as user, "
         "@message | sort requestId")


def test_an_admin_gets_the_originals_where_they_were_kept_and_masked_values_elsewhere(protected):
    rows = protected.query(QUERY, principal=ADMIN).rows
    by_id = {row["requestId"]: row for row in rows}
    for request_id, mail in (("r1", MAIL), ("r2", OTHER_MAIL)):
        row = by_id[request_id]
        assert orjson.loads(row["original"]) == record(int(request_id[1]), mail)
        assert (row["arn"], row["user"]) == (f"arn:aws:iam::1:user/{mail}", mail)
        assert mail not in row["@message"]  # the column the query did not unmask stays as stored
    masked = by_id["r3"]  # /drop: masked, nothing kept
    assert MAIL not in masked["original"] and masked["original"] == masked["@message"] and masked["user"] == "****"
    assert MAIL in by_id["r4"]["original"]  # /open was never masked

    [entry] = AuditLog(protected.data_dir).entries(action="unmask")
    assert (entry.actor, entry.outcome, entry.target) == ("DKADMIN", "ok", "/drop,/keep,/open")
    assert entry.details["events"] == 4 and entry.details["found"] == 2 and entry.details["query"] == QUERY


def test_readers_and_unknown_callers_are_refused_before_the_query_runs(protected):
    for principal, says in ((Principal("DKREAD", "read"), "key DKREAD has role read"),
                            (Principal("DKIN", "ingest"), "has role ingest"),
                            (None, "no key (principal) acts")):
        with pytest.raises(ForbiddenError) as caught:
            protected.query(QUERY, principal=principal)
        assert "unmask needs the admin role" in str(caught.value) and says in str(caught.value)
    entries = AuditLog(protected.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome) for e in entries] == [("DKREAD", "denied"), ("DKIN", "denied"),
                                                       (current_actor(), "denied")]
    # Without unmask() nothing changes for readers.
    assert len(protected.query("fields @message", principal=Principal("DKREAD", "read")).rows) == 4


def test_an_admin_of_some_groups_may_not_unmask_rows_of_others(protected):
    team = Principal("DKTEAM", "admin", "/keep")
    assert len(protected.query(QUERY, log_groups=["/keep"], principal=team).rows) == 2
    with pytest.raises(ForbiddenError, match="on log group '/drop'"):
        protected.query(QUERY, log_groups=["/keep", "/drop"], principal=team)
    with pytest.raises(ForbiddenError, match="on log group '/drop'"):
        protected.query(QUERY, principal=team)  # all groups: refused once the rows show where they come from
    outcomes = [(e.outcome, e.target) for e in AuditLog(protected.data_dir).entries(action="unmask")]
    assert outcomes == [("ok", "/keep"), ("denied", "/drop,/keep"), ("denied", "/drop,/keep,/open")]


def test_unmask_survives_nesting_and_shows_each_rows_own_original(protected):
    text = ("filter @log = '/keep' | fields unmask(@message) as o, requestId | sort requestId desc | limit 1"
            " | display o, @ptr")
    [row] = protected.query(text, principal=ADMIN).rows
    assert orjson.loads(row["o"]) == record(2, OTHER_MAIL) and row["@ptr"].startswith("/keep:")
    empty = protected.query("filter requestId = 'none' | fields unmask(@message)", principal=ADMIN).rows
    assert empty == []
    assert AuditLog(protected.data_dir).entries(action="unmask")[-1].details["events"] == 0
