"""dashcam's one exception tree.

Third-party errors (DuckDB, boto3, lark, ...) are translated into these at the adapter that
calls the library, so callers above the adapters only ever catch dashcam errors::

    DashcamError                     root: anything dashcam raises on purpose
    ├── ConfigError                  a setting or command-line value is wrong
    ├── AuthError                    credentials missing, unknown, revoked or wrong (401)
    ├── ForbiddenError               good credentials, but the role does not allow it (403)
    ├── InputError                   outside data is malformed (records, files, requests)
    │   └── SourceError              a path, file or bucket cannot be read
    ├── QueryError                   a Logs Insights query cannot be answered
    │   ├── QuerySyntaxError         the text does not parse (line, column, expected)
    │   ├── QueryExecutionError      it parsed but the engine rejected it at run time
    │   └── QueryStoppedError        it was stopped while running (StopQuery, or its time ran out)
    ├── OverloadedError              too much is waiting to be written: retry later (503)
    └── StoreError                   the store failed
        ├── StoreBusyError           another process holds the data directory
        ├── StoreFullError           the disk is full: nothing was written; retry later (503)
        ├── NotFoundError            a named log group (or other resource) does not exist
        └── AlreadyExistsError       a resource to be created exists already
"""

from __future__ import annotations


class DashcamError(Exception):
    """Root of every error dashcam raises on purpose."""


class ConfigError(DashcamError):
    """A setting or command-line value is invalid."""


class AuthError(DashcamError):
    """A request's credentials are missing, unknown, revoked or wrong."""


class ForbiddenError(DashcamError):
    """The credentials are good, but their role or log-group pattern does not allow the action."""


class InputError(DashcamError):
    """Data from outside (a record, a file, a request) is malformed."""


class TooLargeError(InputError):
    """A request body is over its size limit (HTTP 413)."""


class SourceError(InputError):
    """A path, file, or S3 location cannot be read."""


class QueryError(DashcamError):
    """A Logs Insights query cannot be answered."""


class QuerySyntaxError(QueryError):
    """The query text does not parse; carries the 1-based line and column and what was expected."""

    def __init__(self, message: str, *, line: int, column: int, expected: tuple[str, ...] = ()):
        self.line = line
        self.column = column
        self.expected = expected
        self.detail = message
        super().__init__(f"line {line}, column {column}: {message}")


class QueryExecutionError(QueryError):
    """The query parsed, but the engine rejected it while running (bad regex, bad cast, ...)."""


class QueryStoppedError(QueryError):
    """A running query was interrupted on purpose (stopped, or past its time limit)."""


class OverloadedError(DashcamError):
    """Writes are backed up; the caller should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(DashcamError):
    """The store failed to read or write."""


class StoreBusyError(StoreError):
    """Another process holds the data directory open for writing."""


class StoreFullError(StoreError):
    """The disk holding the store is full: nothing of the write was stored; retry once space is freed."""

    retry_after = 30


class NotFoundError(StoreError):
    """A named log group, stream or other resource does not exist."""


class AlreadyExistsError(StoreError):
    """A log group, stream or other resource to be created exists already."""
