"""``dashcam demo [--quick] [--data DIR] [--port N]``: the story, played live (see :mod:`dashcam.demo`).

Kept beside :mod:`dashcam.cli`, which registers the command through :func:`make_demo_command`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from dashcam.query.library import CORE_QUESTIONS
from dashcam.render import render
from dashcam.service import Dashcam


stderr = Console(stderr=True, highlight=False)


def make_demo_command(handle_errors: Callable[[Any], Any]) -> click.Command:
    """The ``demo`` command, wrapped in the CLI's error handling."""

    @click.command("demo")
    @click.option("--quick", is_flag=True, help="A short version (about a minute) that exits at the end: for tests and CI.")
    @click.option("--data", "demo_data", type=click.Path(file_okay=False), default=None,
                  help="Keep the demo's data in DIR (default: a temporary directory removed at the end).")
    @click.option("--port", type=click.IntRange(0, 65535), default=4318, show_default=True,
                  help="The dashboard's port (another free port if it is taken; 0: any free port).")
    @click.pass_obj
    @handle_errors
    def demo_command(ctx: Any, quick: bool, demo_data: str | None, port: int) -> None:
        """Play the story live: 10, 50, then 100 users on a simulated Bedrock, recorded by dashcam.

        Starts a dashcam server, the model simulator and virtual users with real boto3 clients and
        capture on; prints the answers to the four core questions and the alarms that fired, then
        keeps the dashboard running until Ctrl-C (not with --quick).
        """
        import tempfile

        from dashcam import demo

        chosen = demo_data or ctx.data or demo.default_data_dir()
        with contextlib.ExitStack() as cleanup:
            data_dir = Path(chosen) if chosen else Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="dashcam-demo-")))
            with Dashcam.open(data_dir, store=ctx.store) as dashcam:
                def at_end(result: Any) -> None:
                    _print_demo_answers(dashcam, result, kept=bool(chosen))
                    if not quick:
                        _serve_until_interrupted(result.url)

                demo.run_demo(dashcam, quick=quick, port=port, on_start=_demo_started, on_progress=_DemoProgress(),
                              at_end=at_end)


    return demo_command


def _demo_started(url: str) -> None:
    stderr.print(f"[bold]dashcam demo[/]: dashboard at {url}  (the story plays first; it takes a few minutes)")


class _DemoProgress:
    """One line per stage on the terminal, rewritten as the stage goes on."""

    def __init__(self) -> None:
        self.stage = None
        self.shown = 0.0

    def __call__(self, stage: Any, report: Any, story_now: float) -> None:
        from dashcam.simulate.load import summary_line

        if stage is not self.stage:
            if self.stage is not None:
                stderr.print()
            self.stage = stage
            stderr.print(f"[bold]{stage.name}[/]")
        if time.monotonic() - self.shown >= (1.0 if stderr.is_terminal else 10.0):
            self.shown = time.monotonic()
            clock = datetime.fromtimestamp(story_now, tz=timezone.utc).strftime("%H:%M")
            stderr.print(f"  [{clock}] {summary_line(report)}", end="\r" if stderr.is_terminal else "\n")


def _print_demo_answers(dashcam: Dashcam, result: Any, *, kept: bool) -> None:
    out = Console(highlight=False, soft_wrap=True)
    stderr.print()
    captured = f"{result.captured:,} calls captured, {result.dropped:,} dropped"
    out.print(f"\n[bold]The story[/] ({captured})")
    for report in result.stages:
        from dashcam.simulate.load import summary_line

        out.print(f"  {summary_line(report)}")
    for number, saved in enumerate(CORE_QUESTIONS, start=1):
        answer = dashcam.query(saved.text)
        out.print(f"\n[bold]{number}. {saved.title}[/]  ({answer.seconds * 1000:.0f} ms)")
        out.print("   " + saved.text.replace("\n", "\n   "), style="dim")
        shown = answer.rows[:10]
        click.echo(render(answer.columns, shown, "table"), nl=False)
        if len(answer.rows) > len(shown):
            click.echo(f"... {len(answer.rows) - len(shown):,} more rows")
    out.print("\n[bold]Alarms that fired[/]")
    for when, name, reason in result.fired:
        out.print(f"  {when}  {name}: {reason}")
    if not result.fired:
        out.print("  none")
    if kept:
        out.print(f"\nThe data is kept: dashcam --data {result.data_dir} query 'stats count(*) by modelId'")


def _serve_until_interrupted(url: str) -> None:
    click.echo(f"\nThe dashboard is at {url} — press Ctrl-C to stop.", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping", err=True)
