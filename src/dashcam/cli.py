"""``dashcam`` on the command line: the contract in DESIGN.md, which other tools script against.

Results go to stdout; progress, summaries of long commands and errors go to stderr. Exit codes:
0 success, 1 a failure while running, 2 bad usage or a malformed query.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from dashcam.cli_store import make_store_command, store_key_file_option
from dashcam.errors import ConfigError, DashcamError, InputError, QueryError, SourceError, StoreBusyError
from dashcam.render import FORMATS, render
from dashcam.service import (
    DEFAULT_LOG_GROUP, DEFAULT_QUERY_LIMIT, Dashcam, ImportProgress, ImportSummary, local_admin,
)
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
@store_key_file_option  # --store-key-file (dashcam.cli_store)
@click.version_option(package_name="dashcam")
@click.pass_context
def main(ctx: click.Context, data: str | None, store: str | None) -> None:
    """dashcam: observability for generative-AI applications."""
    ctx.obj = _Context(data, store)
    from dashcam.metrics.quota import use_directory  # quotas.json of this data directory (read when used)

    use_directory(ctx.obj.data_dir())


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
        # The command line reads the data directory, originals included: it acts as an admin for
        # unmask(), audited as local:<user>, as `dashcam unmask` is.
        result = dashcam.query(query_text, log_groups=log_groups or None, start_ms=start_ms, end_ms=end_ms,
                               limit=limit, principal=local_admin())
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


# ---------------------------------------------------------------------- advise


@main.command("advise")
@click.option("--start", help="Start time: ISO-8601, epoch seconds, or relative (1h, 7d). Default: all data.")
@click.option("--end", help="End time, same forms as --start. Default: all data.")
@click.option("--log-group", "log_groups", multiple=True, help="Log group (repeatable; default all).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
@_handle_errors
def advise_command(ctx: _Context, start: str | None, end: str | None, log_groups: tuple[str, ...], fmt: str) -> None:
    """Recommendations with their numbers: token waste, prompt caching, throttling, cheaper/faster models."""
    import orjson

    start_ms = parse_time(start) if start else None
    end_ms = parse_time(end) if end else None
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise ConfigError("--start is after --end")
    with ctx.open() as dashcam:
        if hasattr(dashcam, "store"):
            from dashcam.advise import advise

            body = advise(dashcam.store, start_ms=start_ms, end_ms=end_ms, log_groups=log_groups or None).to_dict()
        else:  # a server owns the data directory: ask it
            body = _remote_advice(dashcam, start_ms, end_ms, log_groups)
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(_advice_text(body), nl=False)


def _remote_advice(remote: Any, start_ms: int | None, end_ms: int | None, log_groups: tuple[str, ...]) -> dict:
    """``GET /api/v1/advice`` on the running server that owns the data directory."""
    params: dict[str, Any] = {"logGroup": list(log_groups)} if log_groups else {}
    params.update({k: v for k, v in (("start", start_ms), ("end", end_ms)) if v is not None})
    response = remote.http.get("/api/v1/advice", params=params)
    body = response.json()
    if not response.is_success:
        raise DashcamError(body.get("error", {}).get("message", response.text))
    return body["data"]


def _advice_text(body: dict) -> str:
    """Recommendations for people: title, numbers, action, and the query that shows the evidence."""
    recs = body["recommendations"]
    if not recs:
        return "No recommendations: nothing in this data crossed the thresholds.\n"
    lines = []
    for number, rec in enumerate(recs, start=1):
        lines.append(f"{number}. [{rec['kind']}] {rec['title']}")
        for key, value in rec["numbers"].items():
            if isinstance(value, list):
                lines.append(f"     {key}:")
                lines += [f"       - {', '.join(f'{k}={v}' for k, v in item.items()) if isinstance(item, dict) else item}"
                          for item in value]
            else:
                lines.append(f"     {key}: {value}")
        if rec["estimatedSavingsUsd"] is not None:
            lines.append(f"     estimated saving: ${rec['estimatedSavingsUsd']:,.2f}")
        lines.append(f"   -> {rec['action']}")
        lines += [f"   assumes: {text}" for text in rec["assumptions"]]
        lines.append(f"   evidence (a query): {rec['query']}")
        lines.append("")
    return "\n".join(lines)


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

    from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout

    spec_args: dict[str, Any] = {"records": records, "seed": seed, "hours": hours}
    if start:
        spec_args["start"] = datetime.fromtimestamp(parse_time(start) / 1000, tz=timezone.utc)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  console=stderr, transient=True) as progress:
        task = progress.add_task("generating records", total=records)
        return write_bedrock_layout(SampleSpec(**spec_args), out_dir, progress=lambda n: progress.advance(task, n))


@main.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=4319, show_default=True, help="Port.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed + same requests = same answers.")
@click.option("--speed", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Time compression: 20 makes latencies and quota windows 20x shorter (reported latencies "
                   "stay uncompressed).")
@click.option("--quota", "quotas", multiple=True, metavar="MODEL=RPM,TPM,CONC",
              help="Change a model's quotas (repeatable; an empty field keeps the default).")
@_handle_errors
def simulate_command(host: str, port: int, seed: int, speed: float, quotas: tuple[str, ...]) -> None:
    """Serve a Bedrock-compatible (and OpenAI-compatible) model simulator with quotas."""
    from dashcam.simulate.server import run_simulator, with_quotas

    models = with_quotas(quotas)
    click.echo(f"dashcam simulator on http://{host}:{port} (Bedrock endpoint_url; OpenAI base_url "
               f"http://{host}:{port}/v1), seed {seed}, speed x{speed:g}", err=True)
    run_simulator(seed=seed, speed=speed, host=host, port=port, models=models)


# ---------------------------------------------------------------------- gateway


@main.command("gateway")
@click.option("--host", default=None, help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default 4320].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Settings file (.toml or .json); flags and environment variables win over it.")
@click.option("--bedrock-upstream", metavar="URL", default=None,
              help="Bedrock runtime endpoint to forward to [default: the region's; 'none' turns Bedrock off].")
@click.option("--openai-upstream", metavar="URL", default=None,
              help="OpenAI-compatible base URL, with /v1 [default https://api.openai.com/v1; 'none' turns it off].")
@click.option("--region", default=None, help="Region Bedrock requests are signed for [default: AWS config].")
@click.option("--openai-key-mode", type=click.Choice(["forward", "substitute"]), default=None,
              help="forward the caller's OpenAI key, or substitute the gateway's "
                   "($DASHCAM_GATEWAY_OPENAI_KEY) [default: substitute when that is set].")
@click.option("--limit", "limits", multiple=True, metavar="MODEL=RPM:TPM[:CONC]",
              help="Shape a model's traffic just under its quotas (repeatable; an empty field is no limit).")
@click.option("--max-wait", "max_queue_wait", type=float, default=None,
              help="Longest wait for a model's limits before answering 429 [default 5 s].")
@click.option("--retry-deadline", type=float, default=None,
              help="Seconds within which upstream throttles are retried [default 10; 0 never].")
@click.option("--dashcam-url", metavar="URL", default=None,
              help="dashcam server to record to [env DASHCAM_URL; default: the data directory].")
@click.pass_obj
@_handle_errors
def gateway_command(ctx: _Context, config_file: str | None, limits: tuple[str, ...], **flags: Any) -> None:
    """Forward Bedrock runtime and OpenAI calls to their upstreams, record each, shape traffic."""
    from dashcam.gateway.config import load_config, parse_limit_flag
    from dashcam.gateway.server import run_gateway

    config = load_config(config_file, extra_limits=dict(parse_limit_flag(text) for text in limits), **flags)
    click.echo(f"dashcam gateway on http://{config.host}:{config.port}: Bedrock endpoint_url "
               f"-> {config.bedrock_url or 'off'}; OpenAI base_url http://{config.host}:{config.port}/v1 "
               f"-> {config.openai_url or 'off'}; records to {config.dashcam_url or ctx.data_dir()}", err=True)
    run_gateway(config, ctx.data_dir(), store=ctx.store)


# ---------------------------------------------------------------------- metrics


@main.command("metrics")
@click.option("--metric", "metric_names", multiple=True, metavar="NAME",
              help="Metric (repeatable; default Invocations): see --list, or docs/metrics.md.")
@click.option("--stat", default=None, help="Statistic: Sum, Average, SampleCount, Minimum, Maximum, p99, p99.9, IQM, "
              "TM(10%:90%), ... Default: Sum for counts and cost, Average for the others.")
@click.option("--period", type=int, default=60, show_default=True, help="Seconds per datapoint, a multiple of 60.")
@click.option("--model", default=None, help="Only this model (the ModelId dimension).")
@click.option("--dimension", "dimensions", multiple=True, metavar="NAME=VALUE",
              help="Only records with this dimension value (repeatable, combined with AND): Operation, Caller, App, "
                   "UserId or a requestMetadata key. With --list, NAME alone lists that dimension's values.")
@click.option("--start", help="Start time: ISO-8601, epoch seconds, or relative (1h, 7d). Default: all data.")
@click.option("--end", help="End time, same forms as --start. Default: all data.")
@click.option("--log-group", "log_groups", multiple=True, help="Log group (repeatable; default all).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--list", "list_only", is_flag=True, help="List the metrics and dimension values that have data.")
@click.pass_obj
@_handle_errors
def metrics_command(ctx: _Context, metric_names: tuple[str, ...], stat: str | None, period: int, model: str | None,
                    dimensions: tuple[str, ...], start: str | None, end: str | None, log_groups: tuple[str, ...],
                    fmt: str, list_only: bool) -> None:
    """CloudWatch-style metrics (AWS/Bedrock) per period: one column per metric."""
    pairs = [(d.split("=", 1)[0], d.split("=", 1)[1] if "=" in d else None) for d in dimensions]
    if model:
        pairs.append(("ModelId", model))
    with ctx.open() as dashcam:
        if list_only:
            rows = _metric_list(dashcam, metric_names, pairs, log_groups)
            click.echo(render(["metric", "unit", "dimensions"], rows, fmt), nl=False)
            return
        missing = [name for name, value in pairs if value is None]
        if missing:
            raise ConfigError(f"--dimension {missing[0]} needs a value (NAME=VALUE) unless --list is given")
        columns, rows = _metric_rows(dashcam, metric_names or ("Invocations",), stat, period, pairs, start, end,
                                     log_groups)
    click.echo(render(columns, rows, fmt), nl=False)


def _metric_list(dashcam: Any, names: tuple[str, ...], pairs: list, log_groups: tuple[str, ...]) -> list[dict]:
    """``--list`` rows: metric, unit, dimensions as ``Name=Value, ...``."""
    found: list[dict] = []
    for name in names or (None,):
        if hasattr(dashcam, "store"):
            from dashcam.metrics.definitions import METRICS

            listed = [{"metricName": m, "unit": METRICS[m].unit, "dimensions": [{"name": n, "value": v} for n, v in d]}
                      for m, d in dashcam.list_metrics(name, pairs, log_groups=log_groups or None)]
        else:  # a server owns the data directory: ask it
            params: dict[str, Any] = {"dimension": [n if v is None else f"{n}={v}" for n, v in pairs]}
            if name:
                params["metricName"] = name
            listed = _remote_call(dashcam, "GET", "/api/v1/metrics/list", params=params)
        found += [{"metric": m["metricName"], "unit": m["unit"],
                   "dimensions": ", ".join(f"{d['name']}={d['value']}" for d in m["dimensions"])} for m in listed]
    return found


def _metric_rows(dashcam: Any, names: tuple[str, ...], stat: str | None, period: int, pairs: list,
                 start: str | None, end: str | None, log_groups: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    """One row per period with a column per metric (labelled ``<metric> <stat>``)."""
    from dashcam.metrics.definitions import get_metric
    from dashcam.metrics.engine import MetricQuery, MetricStat
    from dashcam.timespec import format_ms

    queries = []
    for i, name in enumerate(names):
        chosen = stat or ("Sum" if get_metric(name).unit in ("Count", "None") else "Average")
        queries.append(MetricQuery(f"m{i}", MetricStat(name, period, chosen, tuple(pairs)), label=f"{name} {chosen}"))
    if hasattr(dashcam, "store"):
        span = dashcam.metric_time_range(log_groups or None) if not (start and end) else None
        start_ms = parse_time(start) if start else (span[0] if span else 0)
        end_ms = parse_time(end) if end else (span[1] + 1 if span else start_ms + 1)
        results = [{"label": r.label, "timestamps": r.timestamps, "values": r.values}
                   for r in dashcam.metric_data(queries, start_ms, end_ms, log_groups=log_groups or None)]
    else:  # a server owns the data directory: ask it
        body = {"queries": [{"id": q.id, "label": q.label, "metricStat": {
            "metricName": q.metric_stat.metric_name, "period": period, "stat": q.metric_stat.stat,
            "dimensions": [list(p) for p in pairs]}} for q in queries],
            "start": start or "0", "end": end or "now", "logGroups": list(log_groups) or None}
        results = _remote_call(dashcam, "POST", "/api/v1/metrics", json=body)["results"]
    by_time: dict[int, dict[str, Any]] = {}
    for result in results:
        for t, v in zip(result["timestamps"], result["values"]):
            by_time.setdefault(t, {})[result["label"]] = v
    columns = ["timestamp"] + [r["label"] for r in results]
    return columns, [{"timestamp": format_ms(t), **values} for t, values in sorted(by_time.items())]


def _remote_call(remote: Any, method: str, path: str, **kwargs: Any) -> Any:
    """A native API call on the running server that owns the data directory."""
    response = remote.http.request(method, path, **kwargs)
    body = response.json()
    if not response.is_success:
        message = body.get("error", {}).get("message", response.text)
        raise (InputError if response.status_code == 400 else DashcamError)(message)
    return body["data"]


# ---------------------------------------------------------------------- dashboards


@main.group("dashboards")
def dashboards_group() -> None:
    """Custom dashboards, kept as CloudWatch dashboard bodies (the JSON PutDashboard takes)."""


def _dashboards(ctx: _Context) -> Any:
    # Dashboards live in the data directory's dashboards.sqlite, readable while a server runs.
    from dashcam.dashboards.repository import DashboardRepository

    return DashboardRepository.in_directory(ctx.data_dir())


@dashboards_group.command("list")
@click.option("--prefix", default="", help="Only dashboards whose names start with this.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
@_handle_errors
def dashboards_list(ctx: _Context, prefix: str, fmt: str) -> None:
    """List dashboards: name, when last modified, size in bytes."""
    from dashcam.timespec import format_ms

    rows = [{"name": d.name, "last modified": format_ms(d.last_modified_ms), "size": d.size}
            for d in _dashboards(ctx).list(prefix)]
    click.echo(render(["name", "last modified", "size"], rows, fmt), nl=False)


@dashboards_group.command("get")
@click.argument("name")
@click.pass_obj
@_handle_errors
def dashboards_get(ctx: _Context, name: str) -> None:
    """Print a dashboard's body, exactly as it was put."""
    click.echo(_dashboards(ctx).require(name).body)


@dashboards_group.command("put")
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--example", metavar="EXAMPLE",
              help="Put a dashboard shipped with dashcam instead of FILE: bedrock-overview, bedrock-logs-insights.")
@click.pass_obj
@_handle_errors
def dashboards_put(ctx: _Context, name: str, file: str | None, example: str | None) -> None:
    """Create or replace dashboard NAME from FILE, a CloudWatch dashboard body ('-' reads stdin)."""
    from dashcam.dashboards.repository import example_body

    if (file is None) == (example is None):
        raise ConfigError("give the body as FILE or as --example EXAMPLE (one of them)")
    if example is not None:
        text = example_body(example)
    else:
        try:
            with click.open_file(file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read {file}: {exc}") from None
    stored, warnings = _dashboards(ctx).put(name, text)
    for warning in warnings:
        click.echo(f"warning: {warning.data_path}: {warning.message}", err=True)
    click.echo(f"saved dashboard {stored.name} ({stored.size:,} bytes)", err=True)


@dashboards_group.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
@_handle_errors
def dashboards_delete(ctx: _Context, names: tuple[str, ...]) -> None:
    """Delete dashboards: all of them, or none if any does not exist."""
    _dashboards(ctx).delete(names)
    click.echo(f"deleted {', '.join(names)}", err=True)


from dashcam.cli_demo import make_demo_command  # noqa: E402  (the live story: server, simulator, users)

main.add_command(make_demo_command(_handle_errors))

from dashcam.cli_migrate import make_migrate_command  # noqa: E402  (defined in its own module)

main.add_command(make_migrate_command(_handle_errors, stderr))

from dashcam.cli_protect import make_protect_commands  # noqa: E402  (protect, unmask, audit)

for _command in make_protect_commands(_handle_errors):
    main.add_command(_command)

from dashcam.cli_alarms import make_alarms_command  # noqa: E402  (alarms list|history|put|delete)

main.add_command(make_alarms_command(_handle_errors))

from dashcam.cli_quotas import make_quotas_command  # noqa: E402  (quotas list|set|remove)

main.add_command(make_quotas_command(_handle_errors))

from dashcam.cli_archive import make_archive_command  # noqa: E402  (archive status|run|configure)

main.add_command(make_archive_command(_handle_errors))

main.add_command(make_store_command(_handle_errors))  # store encrypt | rotate-key (cli_store)


if __name__ == "__main__":  # pragma: no cover
    main()
