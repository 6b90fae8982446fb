"""``dashcam protect``, ``dashcam unmask`` and ``dashcam audit``: data protection on the command line.

These work on the data directory's own files (``protection.json``, ``originals.sqlite``,
``audit.jsonl``), not on the store, so they work while a server runs there: the server picks up
a changed policy with its next write. Whoever can run them can read the data directory, so the
command line acts as an admin, audited as ``local:<user>``. Registered by :mod:`dashcam.cli`
through :func:`make_protect_commands` (this module imports nothing from the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import orjson

from dashcam.audit import AuditLog
from dashcam.errors import ConfigError, InputError
from dashcam.protect.bodies import BodySwitches
from dashcam.protect.detectors import BUILTIN
from dashcam.protect.policy import DEFAULT_MASK, CustomPattern, Policy, PolicyBook
from dashcam.protect.vault import OriginalsVault
from dashcam.render import FORMATS, render


def _split_detectors(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _custom(values: tuple[str, ...]) -> tuple[CustomPattern, ...]:
    patterns = []
    for value in values:
        name, sep, regex = value.partition("=")
        if not sep:
            raise InputError(f"--custom {value!r}: write NAME=REGEX, e.g. EmployeeId=EMP-\\d{{6}}")
        patterns.append(CustomPattern(name, regex))
    return tuple(patterns)


def make_protect_commands(handle_errors: Callable[[Any], Any]) -> list[click.Command]:
    """The ``protect`` group and the ``unmask`` and ``audit`` commands, with the CLI's error handling."""

    @click.group("protect")
    def protect_group() -> None:
        """Mask sensitive data at ingest and switch off body logging, per log group."""

    @protect_group.command("set")
    @click.option("--log-group", required=True, help="Log group, or a glob such as '/aws/bedrock/*' or '*'.")
    @click.option("--detectors", default="", metavar="LIST",
                  help="Comma-separated built-ins: " + ", ".join(d.name for d in BUILTIN) + ".")
    @click.option("--custom", multiple=True, metavar="NAME=REGEX", help="A custom pattern to mask (repeatable).")
    @click.option("--mask", default=DEFAULT_MASK, show_default=True, help="Text that replaces what is found.")
    @click.option("--keep-original/--no-keep-original", default=False, show_default=True,
                  help="Keep the unmasked message encrypted, so admins may unmask it.")
    @click.option("--phone-region", default="US", show_default=True,
                  help="Country whose national phone numbers are recognised (international ones always are).")
    @click.option("--text/--no-text", "text", default=True, help="Keep request and response bodies.")
    @click.option("--image/--no-image", "image", default=True, help="Keep image payloads in bodies.")
    @click.option("--embedding/--no-embedding", "embedding", default=True, help="Keep embedding vectors.")
    @click.pass_obj
    def protect_set(obj: Any, log_group: str, detectors: str, custom: tuple[str, ...], mask: str,
                    keep_original: bool, phone_region: str, text: bool, image: bool, embedding: bool) -> None:
        """Set (replace) the policy of a log group; it applies to events ingested from now on."""
        policy = Policy(log_group, detectors=_split_detectors(detectors), custom=_custom(custom), mask=mask,
                        keep_original=keep_original, phone_region=phone_region.upper(),
                        bodies=BodySwitches(text, image, embedding))
        stored = PolicyBook(obj.data_dir()).put(policy)
        click.echo(f"policy set for {stored.log_group}", err=True)

    @protect_group.command("show")
    @click.option("--log-group", default=None, help="Only this log group's (pattern's) policy.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "cloudwatch"]), default="table",
                  show_default=True, help="cloudwatch: the policy document PutDataProtectionPolicy takes.")
    @click.pass_obj
    def protect_show(obj: Any, log_group: str | None, fmt: str) -> None:
        """Show policies."""
        book = PolicyBook(obj.data_dir())
        policies = [book.get(log_group)] if log_group else book.policies()
        if fmt == "json":
            click.echo(orjson.dumps([p.as_dict() for p in policies], option=orjson.OPT_INDENT_2).decode())
        elif fmt == "cloudwatch":
            for policy in policies:
                click.echo(orjson.dumps(orjson.loads(policy.to_cloudwatch()), option=orjson.OPT_INDENT_2).decode())
        else:
            rows = [{"log group": p.log_group, "detectors": ",".join(p.detectors + tuple(c.name for c in p.custom)),
                     "mask": p.mask, "keep original": p.keep_original,
                     "bodies off": ",".join(k for k, on in p.bodies.as_dict().items() if not on)} for p in policies]
            click.echo(render(["log group", "detectors", "mask", "keep original", "bodies off"], rows, "table"),
                       nl=False)

    @protect_group.command("remove")
    @click.option("--log-group", required=True)
    @click.pass_obj
    def protect_remove(obj: Any, log_group: str) -> None:
        """Remove a policy; events stored earlier stay masked (and unmaskable if originals were kept)."""
        PolicyBook(obj.data_dir()).remove(log_group)
        click.echo(f"policy removed for {log_group}", err=True)

    @protect_group.command("detectors")
    def protect_detectors() -> None:
        """List the built-in detectors."""
        rows = [{"name": d.name, "CloudWatch identifier": d.identifier, "finds": d.description} for d in BUILTIN]
        click.echo(render(["name", "CloudWatch identifier", "finds"], rows, "table"), nl=False)

    @protect_group.command("rotate-key")
    @click.pass_obj
    def protect_rotate_key(obj: Any) -> None:
        """Re-encrypt every kept original under a new unmask key and forget the old one."""
        from dashcam.client import find_server

        running = find_server(obj.data_dir())
        if running is not None:
            running.close()
            raise ConfigError("a dashcam server is running on this data directory; stop it before rotating the "
                              "unmask key (it may be encrypting with the old one)")
        vault = OriginalsVault(obj.data_dir())
        try:
            count = vault.rotate()
        except Exception as exc:
            AuditLog(obj.data_dir()).record("unmask-key.rotate", "", outcome="failed", details={"error": str(exc)})
            raise
        finally:
            vault.close()
        AuditLog(obj.data_dir()).record("unmask-key.rotate", "", details={"originals": count})
        click.echo(f"re-encrypted {count:,} originals under a new key", err=True)

    @click.command("unmask")
    @click.argument("ptrs", nargs=-1, required=True, metavar="PTR...")
    @click.pass_obj
    def unmask_command(obj: Any, ptrs: tuple[str, ...]) -> None:
        """Print the unmasked originals of events, by the @ptr a query returned (one JSON line each)."""
        from dashcam.query.compiler import parse_ptr

        wanted: dict[str, list[tuple[str, int]]] = {}
        for ptr in ptrs:
            try:
                group, event_id = parse_ptr(ptr)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            wanted.setdefault(group, []).append((ptr, event_id))
        vault, audit = OriginalsVault(obj.data_dir()), AuditLog(obj.data_dir())
        details: dict[str, Any] = {"events": len(ptrs), "ptrs": list(ptrs[:100])}
        lines = []
        try:
            for group, items in wanted.items():
                originals = vault.get(group, [event_id for _, event_id in items])
                lines += [{"ptr": ptr, "found": event_id in originals, "message": originals.get(event_id)}
                          for ptr, event_id in items]
        except Exception as exc:
            audit.record("unmask", ",".join(sorted(wanted)), outcome="failed", details={**details, "error": str(exc)})
            raise
        finally:
            vault.close()
        audit.record("unmask", ",".join(sorted(wanted)), details={**details, "found": sum(x["found"] for x in lines)})
        for line in lines:
            click.echo(orjson.dumps(line).decode())

    @click.command("audit")
    @click.option("--start", help="From this time: ISO-8601, epoch seconds, or relative (1h, 7d).")
    @click.option("--end", help="Up to this time.")
    @click.option("--action", help="Only this action (key.create) or prefix (key.).")
    @click.option("--actor", help="Only this actor (a key id, or local:<user>).")
    @click.option("--limit", type=click.IntRange(1), default=None, help="Only the newest N entries.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.option("--verify", is_flag=True, help="Check the log's hash chain instead (exit 2 if it was tampered with).")
    @click.pass_obj
    def audit_command(obj: Any, start: str | None, end: str | None, action: str | None, actor: str | None,
                      limit: int | None, fmt: str, verify: bool) -> None:
        """Show the audit log: every admin action (keys, policies, retention, unmask), oldest first."""
        from dashcam.timespec import format_ms, parse_time

        log = AuditLog(obj.data_dir())
        if verify:
            click.echo(f"audit log intact: {log.verify():,} entries", err=True)
            return
        entries = log.entries(start_ms=parse_time(start) if start else None, end_ms=parse_time(end) if end else None,
                              action=action, actor=actor, limit=limit)
        if fmt == "json":
            click.echo(orjson.dumps([e.as_dict() for e in entries], option=orjson.OPT_INDENT_2).decode())
            return
        columns = ["time", "actor", "action", "target", "outcome", "details"]
        rows = [{"time": format_ms(e.time_ms), "actor": e.actor, "action": e.action, "target": e.target,
                 "outcome": e.outcome, "details": orjson.dumps(e.details).decode() if e.details else None}
                for e in entries]
        click.echo(render(columns, rows, fmt), nl=False)

    commands: list[click.Command] = [protect_group, unmask_command, audit_command]
    for command in [unmask_command, audit_command, *protect_group.commands.values()]:
        command.callback = handle_errors(command.callback)
    return commands
