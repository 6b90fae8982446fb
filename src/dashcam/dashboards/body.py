"""A CloudWatch dashboard body: parsed, validated and expanded as PutDashboard does.

A ``DashboardBody`` is JSON text (CloudWatch's "Dashboard Body Structure and Syntax"): a
``widgets`` array (0 to 500) of objects with ``type``, a place on a 24-column grid (``x``, ``y``,
``width``, ``height``) and type-specific ``properties``, plus the dashboard's own ``start``,
``end`` and ``periodOverride``.

:func:`check_body` answers what PutDashboard answers: *errors* (the body cannot be stored: not a
JSON object, a wrong type or range, a metric row that cannot be read) and *warnings* (stored, but
some of it will not show data here: widget types dashcam does not draw, namespaces other than
``AWS/Bedrock``, unknown metric names, queries that do not parse). Each message has a
``DataPath`` (a JSON pointer into the body, e.g. ``/widgets/0/properties/metrics/1``) and a
``Message``, as ``DashboardValidationMessages`` have. The structure is checked with a JSON
Schema (:data:`BODY_SCHEMA`); what a schema cannot say (metric rows, time ranges, ids) is
checked here.

Unknown widget types and unknown properties are kept: a dashboard exported from AWS is stored
exactly as given (the text itself is what is stored and returned) and its other widgets render.

Metric rows use CloudWatch's compact form ``[Namespace, MetricName, DimName, DimValue, ...,
{rendering options}]``. ``"."`` repeats the item at the same position of the previous metric
row; ``"..."`` stands for as many items of the previous row as are needed to give the row the
previous row's length (items before it keep their places from the front, items after it from
the back: ``["...", "model-b"]`` is the previous metric for another model). A row that is only
``{"expression": ..., "id": ...}`` is metric math.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from dashcam.errors import ConfigError, InputError, QueryError
from dashcam.metrics.definitions import METRICS, NAMESPACE
from dashcam.metrics.expressions import QUERY_ID
from dashcam.timespec import parse_time

MAX_WIDGETS = 500
GRID_COLUMNS = 24
MAX_BODY_CHARS = 1_000_000  # far above any real dashboard; keeps one request from filling the database
DRAWN_TYPES = ("metric", "text", "log", "alarm")
METRIC_VIEWS = ("timeSeries", "singleValue", "gauge", "bar", "pie", "table")
LOG_VIEWS = ("table", "timeSeries", "bar", "pie")
PERIOD_OVERRIDES = ("auto", "inherit")
DEFAULT_PERIOD = 300  # CloudWatch's default for a metric widget
DEFAULT_STAT = "Average"
DEFAULT_START = "-PT3H"  # the console's default time range
SUB_MINUTE_PERIODS = (1, 5, 10, 30)  # high-resolution periods CloudWatch accepts
NOT_JSON = "The field DashboardBody must be a valid JSON object"

_NUMBER = {"type": "number"}
_AXIS = {"type": "object", "properties": {
    "min": _NUMBER, "max": _NUMBER, "label": {"type": "string"}, "showUnits": {"type": "boolean"}}}
_SIDE = {"enum": ["left", "right"]}
_HORIZONTAL = {"type": "object", "required": ["value"], "properties": {
    "value": _NUMBER, "label": {"type": "string"}, "color": {"type": "string"},
    "fill": {"enum": ["above", "below", "between"]}, "visible": {"type": "boolean"}, "yAxis": _SIDE}}
_VERTICAL = {"type": "object", "required": ["value"], "properties": {
    "value": {"type": "string"}, "label": {"type": "string"}, "color": {"type": "string"},
    "fill": {"enum": ["before", "after"]}, "visible": {"type": "boolean"}}}


def _band(annotation: dict) -> dict:
    # An annotation is one line, or a band: two of them in an array.
    return {"anyOf": [annotation, {"type": "array", "minItems": 2, "maxItems": 2, "items": annotation}]}


_METRIC_PROPERTIES = {
    "type": "object",
    "properties": {
        "metrics": {"type": "array", "maxItems": 500, "items": {"type": "array", "minItems": 1}},
        "view": {"enum": list(METRIC_VIEWS)},
        "stat": {"type": "string", "minLength": 1},
        "period": {"type": "integer", "minimum": 1},
        "region": {"type": "string"},
        "accountId": {"type": "string"},
        "title": {"type": "string"},
        "stacked": {"type": "boolean"},
        "liveData": {"type": "boolean"},
        "sparkline": {"type": "boolean"},
        "trend": {"type": "boolean"},
        "setPeriodToTimeRange": {"type": "boolean"},
        "singleValueFullPrecision": {"type": "boolean"},
        "start": {"type": "string"},
        "end": {"type": "string"},
        "timezone": {"type": "string"},
        "yAxis": {"type": "object", "properties": {"left": _AXIS, "right": _AXIS}},
        "legend": {"type": "object", "properties": {"position": {"enum": ["right", "bottom", "hidden"]}}},
        "annotations": {"type": "object", "properties": {
            "horizontal": {"type": "array", "items": _band(_HORIZONTAL)},
            "vertical": {"type": "array", "items": _band(_VERTICAL)},
            "alarms": {"type": "array", "items": {"type": "string"}}}},
    },
    # A graph of an alarm's metric names the alarm instead of metrics.
    "if": {"required": ["annotations"], "properties": {"annotations": {"required": ["alarms"]}}},
    "else": {"required": ["metrics"]},
}
_LOG_PROPERTIES = {"type": "object", "required": ["query"], "properties": {
    "query": {"type": "string", "minLength": 1, "maxLength": 10_000},
    "view": {"enum": list(LOG_VIEWS)},
    "region": {"type": "string"},
    "title": {"type": "string"},
    "stacked": {"type": "boolean"}}}
_TEXT_PROPERTIES = {"type": "object", "required": ["markdown"], "properties": {
    "markdown": {"type": "string"},
    "background": {"enum": ["solid", "transparent"]}}}
_ALARM_PROPERTIES = {"type": "object", "required": ["alarms"], "properties": {
    "alarms": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1}},
    "title": {"type": "string"},
    "sortBy": {"enum": ["default", "stateUpdatedTimestamp", "timestamp"]},
    "states": {"type": "array", "items": {"enum": ["ALARM", "INSUFFICIENT_DATA", "OK"]}}}}


def _when(kind: str, properties: dict) -> dict:
    return {"if": {"required": ["type"], "properties": {"type": {"const": kind}}},
            "then": {"properties": {"properties": properties}}}


BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["widgets"],
    "properties": {
        "widgets": {"type": "array", "maxItems": MAX_WIDGETS, "items": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"type": "string", "minLength": 1},
                "x": {"type": "integer", "minimum": 0, "maximum": GRID_COLUMNS - 1},
                "y": {"type": "integer", "minimum": 0},
                "width": {"type": "integer", "minimum": 1, "maximum": GRID_COLUMNS},
                "height": {"type": "integer", "minimum": 1, "maximum": 1000},
                "properties": {"type": "object"},
            },
            "allOf": [_when("metric", _METRIC_PROPERTIES), _when("log", _LOG_PROPERTIES),
                      _when("text", _TEXT_PROPERTIES), _when("alarm", _ALARM_PROPERTIES)],
        }},
        "start": {"type": "string", "minLength": 1},
        "end": {"type": "string", "minLength": 1},
        "periodOverride": {"enum": list(PERIOD_OVERRIDES)},
        "variables": {"type": "array"},
    },
}
_VALIDATOR = Draft202012Validator(BODY_SCHEMA)
_DURATION = TypeAdapter(timedelta)
_DATETIME = TypeAdapter(datetime)
_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "label": (str,), "stat": (str,), "period": (int,), "visible": (bool,), "color": (str,),
    "region": (str,), "accountId": (str,), "expression": (str,), "yAxis": (str,)}


@dataclass(frozen=True)
class ValidationMessage:
    """One DashboardValidationMessage: where (a JSON pointer into the body) and what; ``error``
    messages stop the body from being stored, the others are warnings."""

    data_path: str
    message: str
    error: bool = True

    def to_aws(self) -> dict[str, str]:
        """The message in PutDashboard's shape."""
        return {"DataPath": self.data_path, "Message": self.message}


@dataclass(frozen=True)
class MetricRow:
    """One entry of a metric widget's ``metrics``, shorthand expanded: a metric, or an expression."""

    position: int
    namespace: str | None
    metric_name: str | None
    dimensions: tuple[tuple[str, str], ...]
    options: dict[str, Any]

    @property
    def expression(self) -> str | None:
        """The metric-math (or SEARCH) expression of an expression row."""
        return self.options.get("expression")

    @property
    def id(self) -> str | None:
        """The row's id, when the body gives one."""
        return self.options.get("id")

    @property
    def visible(self) -> bool:
        """False for rows that only feed expressions (``"visible": false``)."""
        return self.options.get("visible", True) is not False


@dataclass(frozen=True)
class Widget:
    """One widget: its type, place and properties as given, and its metric rows expanded."""

    index: int
    type: str
    x: int | None
    y: int | None
    width: int
    height: int
    properties: dict[str, Any]
    metrics: tuple[MetricRow, ...] = ()

    @property
    def drawn(self) -> bool:
        """Whether dashcam draws this type of widget."""
        return self.type in DRAWN_TYPES

    @property
    def title(self) -> str | None:
        """The widget's title, when it has one."""
        title = self.properties.get("title")
        return title if isinstance(title, str) else None

    @property
    def view(self) -> str | None:
        """How the widget is drawn: ``timeSeries`` by default for metrics, ``table`` for logs."""
        default = {"metric": "timeSeries", "log": "table"}.get(self.type)
        return self.properties.get("view", default)


@dataclass
class DashboardBody:
    """A parsed body: the document as given, its widgets, its time range and its warnings."""

    document: dict[str, Any]
    widgets: list[Widget]
    warnings: list[ValidationMessage] = field(default_factory=list)

    @property
    def start(self) -> str | None:
        """The dashboard's start (``-PT3H`` or an ISO-8601 time), when it sets one."""
        return self.document.get("start")

    @property
    def end(self) -> str | None:
        """The dashboard's end, when it sets one."""
        return self.document.get("end")

    @property
    def period_override(self) -> str:
        """``auto`` (periods grow to fit long time ranges) or ``inherit`` (each widget's period is kept)."""
        return self.document.get("periodOverride", "auto")


@dataclass
class BodyCheck:
    """What :func:`check_body` found: the text, its body (None when it has errors), errors, warnings."""

    text: str
    body: DashboardBody | None
    errors: list[ValidationMessage]
    warnings: list[ValidationMessage]

    @property
    def messages(self) -> list[ValidationMessage]:
        """Errors, then warnings."""
        return self.errors + self.warnings

    def require(self) -> DashboardBody:
        """The body; InputError listing every error when there are any."""
        if self.body is None:
            raise InputError("the dashboard body is not valid: " + "; ".join(
                f"{m.data_path or '/'}: {m.message}" for m in self.errors))
        return self.body


# ---------------------------------------------------------------------- entry points


def check_body(text: str) -> BodyCheck:
    """Parse and validate a DashboardBody as PutDashboard does (see the module docstring)."""
    if not isinstance(text, str):
        return BodyCheck("", None, [ValidationMessage("", NOT_JSON)], [])
    if len(text) > MAX_BODY_CHARS:
        return BodyCheck(text, None, [ValidationMessage("", f"The dashboard body may have at most "
                                                            f"{MAX_BODY_CHARS:,} characters")], [])
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return BodyCheck(text, None, [ValidationMessage("", NOT_JSON)], [])
    if not isinstance(document, dict):
        return BodyCheck(text, None, [ValidationMessage("", NOT_JSON)], [])
    errors = _schema_errors(document)
    if any(m.data_path in ("", "/widgets") for m in errors):
        return BodyCheck(text, None, errors, [])
    # Widgets the schema passed are checked further, so one answer lists every problem.
    broken = {int(m.data_path.split("/")[2]) for m in errors if m.data_path.startswith("/widgets/")}
    warnings: list[ValidationMessage] = []
    if not any(m.data_path in ("/start", "/end") for m in errors):
        errors.extend(_time_range_errors(document))
    widgets = []
    for index, raw in enumerate(document["widgets"]):
        if index in broken:
            continue
        widget, widget_errors, widget_warnings = _widget(raw, index, f"/widgets/{index}")
        errors.extend(widget_errors)
        warnings.extend(widget_warnings)
        widgets.append(widget)
    if errors:
        return BodyCheck(text, None, errors, warnings)
    return BodyCheck(text, DashboardBody(document, widgets, warnings), [], warnings)


def parse_body(text: str) -> DashboardBody:
    """The body of ``text``; InputError listing the errors when it is not valid."""
    return check_body(text).require()


def parse_widget(raw: Any, index: int = 0) -> Widget:
    """One widget object on its own (a widget being edited, not yet saved); InputError when invalid."""
    check = check_body(orjson.dumps({"widgets": [raw]}).decode())
    if check.body is None:
        raise InputError("the widget is not valid: " + "; ".join(
            f"{m.data_path.replace('/widgets/0', '', 1) or '/'}: {m.message}" for m in check.errors))
    widget = check.body.widgets[0]
    return Widget(index, widget.type, widget.x, widget.y, widget.width, widget.height, widget.properties,
                  widget.metrics)


def parse_time_point(text: str, *, now_ms: int) -> int:
    """Epoch ms of a dashboard time: a duration before now as CloudWatch writes it (``-PT3H``,
    ``-P7D``; the sign is optional), an ISO-8601 time (UTC unless it has an offset), or one of
    dashcam's own forms (``now``, ``3h``, epoch seconds or milliseconds). InputError otherwise."""
    value = text.strip() if isinstance(text, str) else ""
    if value.lstrip("+-").startswith("P"):
        try:
            duration = _DURATION.validate_python(value)
        except ValidationError:
            raise InputError(f"{text!r} is not an ISO-8601 duration such as -PT3H or -P7D") from None
        return now_ms - abs(duration) // timedelta(milliseconds=1)
    if re.match(r"\d{4}-\d{2}-\d{2}", value):
        try:
            moment = _DATETIME.validate_python(value)
        except ValidationError:
            raise InputError(f"{text!r} is not an ISO-8601 time such as 2026-03-02T09:00:00.000Z") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    try:
        return parse_time(value, now_ms=now_ms)
    except ConfigError:
        raise InputError(f"{text!r} is not a time: use -PT3H (3 hours before now), -P7D, or an ISO-8601 time "
                         "such as 2026-03-02T09:00:00.000Z") from None


def is_query_id(value: object) -> bool:
    """Whether ``value`` may be a metric-math id (a lowercase letter, then letters, digits, ``_``)."""
    return isinstance(value, str) and QUERY_ID.fullmatch(value) is not None


# ---------------------------------------------------------------------- structure


def _pointer(path: Any) -> str:
    return "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in path)


def _schema_errors(document: dict[str, Any]) -> list[ValidationMessage]:
    found = []
    for error in _VALIDATOR.iter_errors(document):
        if error.validator in ("if", "allOf"):  # their sub-errors are reported on their own
            continue
        message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        found.append(ValidationMessage(_pointer(error.absolute_path), message))
    return sorted(set(found), key=lambda m: (m.data_path, m.message))


def _time_range_errors(document: dict[str, Any]) -> list[ValidationMessage]:
    errors = []
    points = {}
    for name in ("start", "end"):
        if name in document:
            try:
                points[name] = parse_time_point(document[name], now_ms=0)
            except InputError as exc:
                errors.append(ValidationMessage(f"/{name}", str(exc)))
    if "end" in document and "start" not in document:
        errors.append(ValidationMessage("/end", "end needs start: give the dashboard a start time too"))
    relative = any(str(document.get(n, "")).lstrip("+-").startswith("P") for n in points)
    if len(points) == 2 and not relative and points["start"] >= points["end"]:
        errors.append(ValidationMessage("/start", "start must be before end"))
    return errors


def _widget(raw: dict[str, Any], index: int, path: str) -> tuple[Widget, list[ValidationMessage],
                                                                   list[ValidationMessage]]:
    errors: list[ValidationMessage] = []
    warnings: list[ValidationMessage] = []
    kind, properties = raw["type"], raw["properties"]
    rows: tuple[MetricRow, ...] = ()
    if kind == "metric":
        rows, row_errors, row_warnings = expand_metrics(properties.get("metrics", []), f"{path}/properties/metrics")
        errors.extend(row_errors)
        warnings.extend(row_warnings)
        if "period" in properties:
            errors.extend(_period_errors(properties["period"], f"{path}/properties/period", warnings))
    elif kind == "log":
        warnings.extend(_query_warnings(properties["query"], f"{path}/properties/query"))
    elif kind not in DRAWN_TYPES:
        warnings.append(ValidationMessage(f"{path}/type", f"dashcam does not draw {kind!r} widgets; the widget is "
                                                          "kept as it is and shown as unsupported", False))
    widget = Widget(index, kind, raw.get("x"), raw.get("y"), raw.get("width", 6), raw.get("height", 6), properties,
                    rows)
    return widget, errors, warnings


def _period_errors(period: Any, path: str, warnings: list[ValidationMessage]) -> list[ValidationMessage]:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        return [ValidationMessage(path, f"{period!r} is not a period: use seconds, 60 or a multiple of 60")]
    if period in SUB_MINUTE_PERIODS:
        warnings.append(ValidationMessage(path, f"dashcam's metrics have one-minute resolution; the period {period} "
                                                "is drawn as 60", False))
        return []
    if period % 60:
        return [ValidationMessage(path, f"the period {period} is not valid: use 1, 5, 10, 30 or a multiple of 60")]
    return []


def _query_warnings(query: str, path: str) -> list[ValidationMessage]:
    from dashcam.query.parser import parse  # the parser grammar loads on first use

    _, text = split_sources(query)
    try:
        parse(text)
    except QueryError as exc:
        return [ValidationMessage(path, f"the query does not parse: {exc}", False)]
    return []


# ---------------------------------------------------------------------- metric rows


def expand_metrics(rows: list[Any], path: str) -> tuple[tuple[MetricRow, ...], list[ValidationMessage],
                                                        list[ValidationMessage]]:
    """A ``metrics`` array's rows with ``"."`` and ``"..."`` expanded, plus errors and warnings
    (paths under ``path``)."""
    errors: list[ValidationMessage] = []
    warnings: list[ValidationMessage] = []
    expanded: list[MetricRow] = []
    previous: list[str] | None = None
    ids: set[str] = set()
    for position, row in enumerate(rows):
        where = f"{path}/{position}"
        items = list(row)
        options: dict[str, Any] = items.pop() if items and isinstance(items[-1], dict) else {}
        problems = _option_problems(options, f"{where}/{len(items)}")
        if any(isinstance(item, dict) for item in items):
            problems.append(ValidationMessage(where, "the rendering-properties object must be the row's last item"))
        elif not items:
            if "expression" not in options:
                problems.append(ValidationMessage(where, "a row needs a namespace and a metric name, or an "
                                                         "{\"expression\": ...} object"))
        elif "expression" in options:
            problems.append(ValidationMessage(where, "an expression row has no namespace or metric name; give the "
                                                     "expression alone: [{\"expression\": ..., \"id\": ...}]"))
        else:
            items, shorthand = _expand_shorthand(items, previous, where)
            problems.extend(shorthand)
        if not problems and items:
            problems.extend(_metric_problems(items, where))
        row_id = options.get("id")
        if isinstance(row_id, str):
            if row_id in ids:
                problems.append(ValidationMessage(f"{where}/{len(items)}/id", f"the id {row_id!r} is used twice"))
            ids.add(row_id)
        if problems:
            errors.extend(problems)
            continue
        if items:
            previous = items
            dimensions = tuple(zip(items[2::2], items[3::2]))
            expanded.append(MetricRow(position, items[0], items[1], dimensions, options))
            warnings.extend(_metric_warnings(items, where))
        else:
            expanded.append(MetricRow(position, None, None, (), options))
    return tuple(expanded), errors, warnings


def _option_problems(options: dict[str, Any], where: str) -> list[ValidationMessage]:
    problems = []
    for key, kinds in _OPTION_TYPES.items():
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            problems.append(ValidationMessage(f"{where}/{key}", f"{value!r} is not of type "
                                                                f"{'boolean' if bool in kinds else kinds[0].__name__}"))
    if isinstance(options.get("id"), str) and not is_query_id(options["id"]):
        problems.append(ValidationMessage(f"{where}/id", f"the id {options['id']!r} is not valid: start with a "
                                                         "lowercase letter, then letters, digits and underscores"))
    if isinstance(options.get("yAxis"), str) and options["yAxis"] not in ("left", "right"):
        problems.append(ValidationMessage(f"{where}/yAxis", f"{options['yAxis']!r} is not one of 'left', 'right'"))
    if isinstance(options.get("period"), int) and not isinstance(options["period"], bool):
        problems.extend(_period_errors(options["period"], f"{where}/period", []))
    return problems


def _expand_shorthand(items: list[Any], previous: list[str] | None,
                      where: str) -> tuple[list[Any], list[ValidationMessage]]:
    uses = [i for i, item in enumerate(items) if item in (".", "...")]
    if not uses:
        return items, []
    if previous is None:
        return items, [ValidationMessage(f"{where}/{uses[0]}", f"{items[uses[0]]!r} repeats the previous metric, "
                                                                "but there is none before this row")]
    spreads = [i for i, item in enumerate(items) if item == "..."]
    if len(spreads) > 1:
        return items, [ValidationMessage(f"{where}/{spreads[1]}", "a row may use '...' once")]
    if spreads:
        at = spreads[0]
        before, after = items[:at], items[at + 1:]
        items = before + previous[len(before):max(len(previous) - len(after), len(before))] + after
    expanded = []
    for position, item in enumerate(items):
        if item == ".":
            if position >= len(previous):
                return items, [ValidationMessage(f"{where}/{position}", "'.' repeats the previous metric's item at "
                                                                        "this position, but it has none")]
            item = previous[position]
        expanded.append(item)
    return expanded, []


def _metric_problems(items: list[Any], where: str) -> list[ValidationMessage]:
    problems = [ValidationMessage(f"{where}/{i}", f"{item!r} is not of type 'string'")
                for i, item in enumerate(items) if not isinstance(item, str)]
    if problems:
        return problems
    if len(items) < 2:
        return [ValidationMessage(where, "a metric row needs a namespace and a metric name")]
    if len(items) % 2:
        return [ValidationMessage(f"{where}/{len(items) - 1}", f"the dimension {items[-1]!r} has no value")]
    names = items[2::2]
    if len(set(names)) < len(names):
        return [ValidationMessage(where, "a dimension is named twice")]
    return []


def _metric_warnings(items: list[str], where: str) -> list[ValidationMessage]:
    namespace, name = items[0], items[1]
    if namespace != NAMESPACE:
        return [ValidationMessage(f"{where}/0", f"dashcam serves the {NAMESPACE} metrics only; {namespace!r} "
                                                "will show no data", False)]
    if name not in METRICS:
        return [ValidationMessage(f"{where}/1", f"{NAMESPACE} has no metric {name!r} in dashcam "
                                                f"(known: {', '.join(sorted(METRICS))})", False)]
    return []


# ---------------------------------------------------------------------- log queries

_SOURCE = re.compile(r"""\s*SOURCE\s+(?P<names>(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
                     r"""(?:\s*,\s*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))*)\s*\|""", re.IGNORECASE | re.DOTALL)
_QUOTED = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)\"""", re.DOTALL)


@functools.lru_cache(maxsize=256)
def split_sources(query: str) -> tuple[tuple[str, ...], str]:
    """A log widget's query split into the log groups of its leading ``SOURCE '<group>' |``
    commands (as dashboards write them, one per group) and the Logs Insights text after them.
    Other forms of SOURCE (``logGroups(namePrefix: ...)``) are left in the text."""
    groups: list[str] = []
    rest = query
    while True:
        match = _SOURCE.match(rest)
        if match is None:
            break
        for single, double in _QUOTED.findall(match["names"]):
            groups.append(re.sub(r"\\(.)", r"\1", single or double))
        rest = rest[match.end():]
    return tuple(dict.fromkeys(groups)), rest.strip() if groups else query
