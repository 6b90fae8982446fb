"""``dashcam`` on the command line: the contract in DESIGN.md, which other tools script against.

Results go to stdout; progress, summaries of long commands and errors go to stderr. Exit codes:
0 success, 1 a failure while running, 2 bad usage or a malformed query.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from dashcam.errors import ConfigError, DashcamError, InputError, QueryError, SourceError, StoreBusyError
from dashcam.query.library import CORE_QUESTIONS
from dashcam.render import FORMATS, render
from dashcam.service import DEFAULT_LOG_GROUP, DEFAULT_QUERY_LIMIT, Dashcam, ImportProgress, ImportSummary
from dashcam.timespec import parse_time

F = TypeVar("F", bound=Callable[..., Any])
stderr = Console(stderr=True, highlight=False)


class _Context:
    def __init__(self, data: str | None, store: str | None = None) -> None:
        self.data = data
        self.store = store

    def data_dir(self) -> Path:
        from dashcam.service import DEFAULT_DATA_DIR

        return Path(self.data or DEFAULT_DATA_DIR)

    def open(self) -> Any:
        """The data directory's store — or, while a server owns it, that server (see client.py)."""
        try:
            return Dashcam.open(self.data, store=self.store)
        except StoreBusyError:
            from dashcam.client import find_server

            remote = find_server(self.data_dir())
            if remote is None:
                raise
            return remote


def _handle_errors(func: F) -> F:
    """Turn dashcam errors into a one-line message on stderr and the contract's exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SourceError as exc:  # an unreadable path or bucket: a failure while running
            click.echo(f"dashcam: error: {exc}", err=True)
            sys.exit(1)
        except (QueryError, ConfigError, InputError) as exc:
            click.echo(f"dashcam: error: {exc}", err=True)
            sys.exit(2)
        except DashcamError as exc:
            click.echo(f"dashcam: error: {exc}", err=True)
            sys.exit(1)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", metavar="DIR", envvar="DASHCAM_DATA", default=None,
              help="Data directory of the embedded store [env DASHCAM_DATA; default ./dashcam-data].")
@click.option("--store", metavar="URL", envvar="DASHCAM_STORE", default=None,
              help="Another store instead of DuckDB in the data directory: clickhouse://user:pass@host:8123/db "
                   "or chdb:///path/to/dir [env DASHCAM_STORE].")
@click.version_option(package_name="dashcam")
@click.pass_context
def main(ctx: click.Context, data: str | None, store: str | None) -> None:
    """dashcam: observability for generative-AI applications."""
    ctx.obj = _Context(data, store)


# ---------------------------------------------------------------------- serve


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=4318, show_default=True, help="Port (OTLP/HTTP's by default).")
@click.pass_obj
@_handle_errors
def serve_command(ctx: _Context, host: str, port: int) -> None:
    """Serve the HTTP API, OTLP/HTTP and the CloudWatch Logs API on one port."""
    from dashcam.server import serve

    from dashcam.server import is_loopback

    if not is_loopback(host):
        from dashcam.keys import KeyRing

        if not KeyRing(ctx.data_dir()).active():  # checked before the store is opened
            raise ConfigError(f"refusing to serve on {host} with no keys: create one with "
                              "'dashcam keys create --role admin', or serve on 127.0.0.1")
    serve(Dashcam.open(ctx.data, store=ctx.store), ctx.data_dir(), host=host, port=port)


# ---------------------------------------------------------------------- keys


@main.group("keys")
def keys_group() -> None:
    """Create, list and revoke the keys that let clients in."""


def _key_ring(ctx: _Context) -> Any:
    from dashcam.keys import KeyRing

    return KeyRing(ctx.data_dir())


@keys_group.command("create")
@click.option("--role", type=click.Choice(["ingest", "read", "admin"]), required=True)
@click.option("--log-group", "log_groups", default="*", show_default=True,
              help="Log groups the key may touch (a glob such as '/aws/bedrock/*').")
@click.option("--description", default="", help="What the key is for.")
@click.pass_obj
@_handle_errors
def keys_create(ctx: _Context, role: str, log_groups: str, description: str) -> None:
    """Issue a key. Its secret is printed once, here, and never again."""
    issued = _key_ring(ctx).create(role, log_groups=log_groups, description=description)
    click.echo(f"key id:            {issued.key_id}")
    click.echo(f"role:              {issued.role} (log groups: {issued.log_groups})")
    click.echo(f"bearer token:      {issued.bearer}")
    click.echo(f"AWS access key id: {issued.key_id}")
    click.echo(f"AWS secret key:    {issued.secret}")


@keys_group.command("list")
@click.pass_obj
@_handle_errors
def keys_list(ctx: _Context) -> None:
    """List keys (never their secrets)."""
    from dashcam.timespec import format_ms

    rows = [{"id": k.key_id, "role": k.role, "log groups": k.log_groups, "created": format_ms(k.created_ms),
             "revoked": format_ms(k.revoked_ms) if k.revoked_ms else None, "description": k.description}
            for k in _key_ring(ctx).list()]
    click.echo(render(["id", "role", "log groups", "created", "revoked", "description"], rows, "table"), nl=False)


@keys_group.command("revoke")
@click.argument("key_id")
@click.pass_obj
@_handle_errors
def keys_revoke(ctx: _Context, key_id: str) -> None:
    """Revoke a key: it stops working at once."""
    _key_ring(ctx).revoke(key_id)
    click.echo(f"revoked {key_id}", err=True)


# ---------------------------------------------------------------------- import


class _BarProgress(ImportProgress):
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def start(self, files: int, total_bytes: int) -> None:
        self.task = self.progress.add_task(f"importing {files} file{'s' if files != 1 else ''}", total=total_bytes)

    def advance(self, bytes_read: int) -> None:
        self.progress.advance(self.task, bytes_read)


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                    console=stderr, transient=True)


@main.command("import")
@click.option("--log-group", default=DEFAULT_LOG_GROUP, show_default=True, help="Log group to import into.")
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_S3_URI...")
@click.pass_obj
@_handle_errors
def import_command(ctx: _Context, log_group: str, paths: tuple[str, ...]) -> None:
    """Import Bedrock model invocation logs: .json/.jsonl/.json.gz files, folders, s3:// prefixes."""
    with ctx.open() as dashcam, _bar() as progress:
        summary = dashcam.import_logs(paths, log_group=log_group, progress=_BarProgress(progress))
    _print_import_summary(summary, log_group)


def _print_import_summary(summary: ImportSummary, log_group: str) -> None:
    if summary.files == 0:
        click.echo("dashcam: warning: no .json, .jsonl, .json.gz or .jsonl.gz files found there", err=True)
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"imported {summary.written:,} new records into {log_group} from {summary.files:,} "
        f"file{'s' if summary.files != 1 else ''} in {summary.seconds:.1f}s ({rate:,.0f} records/s); "
        f"{summary.duplicates:,} already stored; {summary.skipped:,} malformed line"
        f"{'s' if summary.skipped != 1 else ''} skipped",
        err=True,
    )
    for problem in summary.problems[:50]:
        click.echo(f"  skipped {problem}", err=True)
    if summary.skipped > 50:
        click.echo(f"  ... and {summary.skipped - 50:,} more", err=True)


# ---------------------------------------------------------------------- query


@main.command("query")
@click.option("--log-group", "log_groups", multiple=True, help="Log group to query (repeatable; default all).")
@click.option("--start", help="Start time: ISO-8601, epoch seconds, or relative (1h, 7d). Default: all data.")
@click.option("--end", help="End time, same forms as --start. Default: now / all data.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=DEFAULT_QUERY_LIMIT, show_default=True,
              help="Most rows to return.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--show-sql", is_flag=True, help="Print the compiled SQL to stderr.")
@click.argument("query_text", metavar="QUERY")
@click.pass_obj
@_handle_errors
def query_command(ctx: _Context, log_groups: tuple[str, ...], start: str | None, end: str | None,
                  limit: int, fmt: str, show_sql: bool, query_text: str) -> None:
    """Run a CloudWatch Logs Insights QUERY ('-' reads it from stdin)."""
    if query_text == "-":
        query_text = sys.stdin.read()
    start_ms = parse_time(start) if start else None
    end_ms = parse_time(end) if end else None
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise ConfigError("--start is after --end")
    with ctx.open() as dashcam:
        result = dashcam.query(query_text, log_groups=log_groups or None, start_ms=start_ms, end_ms=end_ms,
                               limit=limit)
    if show_sql:
        click.echo(result.sql, err=True)
    click.echo(render(result.columns, result.rows, fmt), nl=False)


# ---------------------------------------------------------------------- cost


_COST_KEYS = {"model": "modelId", "caller": "identity.arn", "app": "app"}


@main.command("cost")
@click.option("--by", "by", type=click.Choice(sorted(_COST_KEYS)), default="model", show_default=True)
@click.option("--start", help="Start time: ISO-8601, epoch seconds, or relative (1h, 7d). Default: all data.")
@click.option("--end", help="End time, same forms as --start.")
@click.option("--log-group", "log_groups", multiple=True, help="Log group (repeatable; default all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
@_handle_errors
def cost_command(ctx: _Context, by: str, start: str | None, end: str | None, log_groups: tuple[str, ...],
                 fmt: str) -> None:
    """Dollars spent by model, caller or app; calls of unpriced models are counted, never $0."""
    key = _COST_KEYS[by]
    text = (f"stats sum(costUsd) as costUsd, count(*) as calls, sum(input.inputTokenCount) as inputTokens,"
            f" sum(output.outputTokenCount) as outputTokens,"
            f" sum(not ispresent(costUsd)) as unpricedCalls by {key} as {by} | sort costUsd desc")
    with ctx.open() as dashcam:
        result = dashcam.query(text, log_groups=log_groups or None, start_ms=parse_time(start) if start else None,
                               end_ms=parse_time(end) if end else None)
    click.echo(render(result.columns, result.rows, fmt), nl=False)
    unpriced = sum(row["unpricedCalls"] or 0 for row in result.rows)
    if unpriced:
        click.echo(f"dashcam: {unpriced:,} calls have no price (see 'dashcam prices --unpriced')", err=True)


@main.command("prices")
@click.option("--unpriced", is_flag=True, help="List the stored models that have no price instead.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
@_handle_errors
def prices_command(ctx: _Context, unpriced: bool, fmt: str) -> None:
    """Show the price catalog in use (shipped + prices.json in the data directory)."""
    if unpriced:
        text = ("filter not ispresent(costUsd) and (ispresent(input.inputTokenCount)"
                " or ispresent(output.outputTokenCount)) | stats count(*) as calls by modelId | sort calls desc")
        with ctx.open() as dashcam:
            result = dashcam.query(text)
        click.echo(render(result.columns, result.rows, fmt), nl=False)
        return
    from dashcam.service import use_prices
    from dashcam.timespec import format_ms

    catalog = use_prices(ctx.data_dir())
    rows = [{"model": p.model, "input": p.input, "output": p.output, "cacheRead": p.cache_read,
             "cacheWrite": p.cache_write, "effective": format_ms(p.effective_ms)[:10] if p.effective_ms else None,
             "source": "catalog " + catalog.version.split("+")[0] if p.source == "catalog" else p.source}
            for p in catalog.prices()]
    click.echo(render(list(rows[0]) if rows else [], rows, fmt), nl=False)


@main.command("reprice")
@click.option("--start", help="Reprice events from this time (default: all).")
@click.option("--end", help="... up to this time.")
@click.pass_obj
@_handle_errors
def reprice_command(ctx: _Context, start: str | None, end: str | None) -> None:
    """Recompute stored events' costUsd with the prices in use now (after editing prices.json)."""
    with Dashcam.open(ctx.data, store=ctx.store) as dashcam:
        count = dashcam.store.reprice(parse_time(start) if start else None, parse_time(end) if end else None)
    click.echo(f"repriced {count:,} events", err=True)


# ---------------------------------------------------------------------- sample data and demo


@main.command("sample")
@click.option("--records", type=click.IntRange(1), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--hours", type=click.FloatRange(min=0.01), default=6.0, show_default=True,
              help="How much time the records span.")
@click.option("--start", help="Time of the first record (ISO-8601); default 2026-03-02T09:00:00Z.")
@click.argument("out_dir", default="dashcam-sample", metavar="[OUT_DIR]")
@_handle_errors
def sample_command(records: int, seed: int, hours: float, start: str | None, out_dir: str) -> None:
    """Write realistic Bedrock invocation logs (gzip JSON Lines in Bedrock's S3 layout) to OUT_DIR."""
    summary = _write_sample(Path(out_dir), records=records, seed=seed, hours=hours, start=start)
    click.echo(f"wrote {summary.records:,} records in {summary.files:,} files under {summary.root}", err=True)


def _write_sample(out_dir: Path, *, records: int, seed: int = 7, hours: float = 6.0, start: str | None = None) -> Any:
    from datetime import datetime, timezone

    from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout

    spec_args: dict[str, Any] = {"records": records, "seed": seed, "hours": hours}
    if start:
        spec_args["start"] = datetime.fromtimestamp(parse_time(start) / 1000, tz=timezone.utc)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  console=stderr, transient=True) as progress:
        task = progress.add_task("generating records", total=records)
        return write_bedrock_layout(SampleSpec(**spec_args), out_dir, progress=lambda n: progress.advance(task, n))


@main.command("demo")
@click.option("--records", type=click.IntRange(1), default=50_000, show_default=True,
              help="How many sample records to generate.")
@click.pass_obj
@_handle_errors
def demo_command(ctx: _Context, records: int) -> None:
    """Generate sample Bedrock logs, import them, and answer the four core questions."""
    out = Console(highlight=False, soft_wrap=True)
    with Dashcam.open(ctx.data, store=ctx.store) as dashcam:
        # A DuckDB store's directory; for other stores (--store) the data directory.
        data_dir = Path(dashcam.store.path).parent if hasattr(dashcam.store, "path") else ctx.data_dir()
        sample_dir = data_dir / "sample-logs"
        out.print(f"[bold]1. Generating {records:,} Bedrock invocation log records[/] -> {sample_dir}")
        summary = _write_sample(sample_dir, records=records)
        out.print(f"   {summary.records:,} records in {summary.files} gzip files, Bedrock's S3 layout")
        out.print("[bold]2. Importing them[/] (dashcam import)")
        with _bar() as progress:
            imported = dashcam.import_logs([sample_dir], progress=_BarProgress(progress))
        _print_import_summary(imported, DEFAULT_LOG_GROUP)
        for number, saved in enumerate(CORE_QUESTIONS, start=3):
            result = dashcam.query(saved.text)
            out.print(f"\n[bold]{number}. {saved.title}[/]  ({result.seconds * 1000:.0f} ms)")
            out.print("   " + saved.text.replace("\n", "\n   "), style="dim")
            shown = result.rows[:15]
            click.echo(render(result.columns, shown, "table"), nl=False)
            if len(result.rows) > len(shown):
                click.echo(f"... {len(result.rows) - len(shown):,} more rows (dashcam query shows them all)")
    out.print(f"\nTry your own: dashcam --data {data_dir} query 'stats count(*) by modelId'")


from dashcam.cli_migrate import make_migrate_command  # noqa: E402  (defined in its own module)

main.add_command(make_migrate_command(_handle_errors, stderr))


if __name__ == "__main__":  # pragma: no cover
    main()
