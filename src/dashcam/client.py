"""The other way into a data directory: through the server that owns it.

DuckDB lets one process open a database file for writing. While ``dashcam serve`` runs on a data
directory, the other commands (``query``, ``import``) find its address and a local admin token in
``server.json`` there and do their work over its HTTP API instead of failing on the file lock.
:class:`RemoteDashcam` offers the part of :class:`~dashcam.service.Dashcam` they use.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from dashcam.errors import (
    AuthError,
    DashcamError,
    ForbiddenError,
    InputError,
    NotFoundError,
    QueryError,
    QuerySyntaxError,
    StoreError,
)
from dashcam.service import (
    BEDROCK_LOG_STREAM,
    DEFAULT_LOG_GROUP,
    DEFAULT_QUERY_LIMIT,
    ImportProgress,
    ImportSummary,
    QueryResult,
)
from dashcam.sources.bedrock_logs import Problem, find_log_objects, read_bedrock_logs

SERVER_FILE = "server.json"
_ERRORS: dict[str, type[DashcamError]] = {
    "QuerySyntaxError": QueryError, "QueryExecutionError": QueryError, "QueryError": QueryError,
    "InputError": InputError, "ValidationError": InputError, "AuthError": AuthError,
    "ForbiddenError": ForbiddenError, "NotFoundError": NotFoundError,
}


def find_server(data_dir: str | Path) -> "RemoteDashcam | None":
    """A client for the server announced in ``data_dir``, if one is running there."""
    path = Path(data_dir) / SERVER_FILE
    try:
        announced = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    remote = RemoteDashcam(announced["url"], announced["token"])
    try:
        remote.http.get("/healthz", timeout=2).raise_for_status()
    except httpx.HTTPError:
        remote.close()
        return None  # a stale file from a server that died without cleaning up
    return remote


class RemoteDashcam:
    """Query and import through a running dashcam server."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def __enter__(self) -> "RemoteDashcam":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(
        self,
        text: str,
        *,
        log_groups: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
        principal: object = None,
    ) -> QueryResult:
        """Run a Logs Insights query on the server. ``principal`` is accepted for the same call as
        :meth:`Dashcam.query` and not sent: the server acts for the local token, an admin."""
        started = time.perf_counter()
        body = {"query": text, "logGroups": list(log_groups) if log_groups else None, "limit": limit,
                "start": start_ms, "end": end_ms}
        data = self._call("POST", "/api/v1/query", json={k: v for k, v in body.items() if v is not None})
        return QueryResult(data["columns"], data["rows"], "(run by the server)", time.perf_counter() - started)

    def import_logs(
        self,
        locations: Sequence[str | Path],
        *,
        log_group: str = DEFAULT_LOG_GROUP,
        progress: ImportProgress | None = None,
        s3_client: Any = None,
    ) -> ImportSummary:
        """Read Bedrock log files here and send their records to the server in NDJSON batches."""
        started = time.perf_counter()
        progress = progress or ImportProgress()
        objects = find_log_objects(locations, s3_client=s3_client)
        progress.start(len(objects), sum(o.size for o in objects))
        summary = ImportSummary(files=len(objects))
        for run in read_bedrock_logs(objects, problems=summary.problems, progress=progress.advance,
                                     s3_client=s3_client):
            data = self._call("POST", "/api/v1/records",
                              params={"logGroup": log_group, "logStream": BEDROCK_LOG_STREAM},
                              content=run.lines.joined(),
                              headers={"content-type": "application/x-ndjson"})
            summary.written += data["written"]
            summary.duplicates += data["duplicates"]
            summary.problems.extend(Problem(run.location, run.first_line + r["index"], r["reason"])
                                    for r in data["rejected"])
        summary.problems.sort(key=lambda p: (p.location, p.line))
        summary.records = summary.written + summary.duplicates
        summary.seconds = time.perf_counter() - started
        return summary

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreError(f"the dashcam server at {self.url} did not answer: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise StoreError(f"the dashcam server answered {response.status_code} without JSON") from None
        if response.is_success:
            return body["data"]
        error = body.get("error", {})
        if error.get("code") == "QuerySyntaxError" and "line" in error:
            detail = error["message"].split(": ", 1)[-1]
            raise QuerySyntaxError(detail, line=error["line"], column=error["column"])
        raise _ERRORS.get(error.get("code", ""), StoreError)(error.get("message", response.text))
