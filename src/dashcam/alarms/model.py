"""An alarm definition: PutMetricAlarm's members, checked, and the three kinds of alarm they make.

:func:`parse_definition` takes PutMetricAlarm's request members (the JSON boto3 sends, the JSON
``dashcam alarms put --file`` reads) and returns an :class:`AlarmDefinition`, or raises InputError
naming the member that is wrong. :meth:`AlarmDefinition.to_params` gives the members back, so a
stored definition is re-read through the same checks.

Three kinds, told apart by the members used:

- **static**: one metric (``MetricName``/``Namespace``/``Statistic`` xor ``ExtendedStatistic``/
  ``Dimensions``/``Period``) or metric math (``Metrics``, one entry with ``ReturnData``), compared
  with ``Threshold``.
- **anomaly**: ``Metrics`` holding a metric and an ``ANOMALY_DETECTION_BAND(m1, 2)`` expression
  that ``ThresholdMetricId`` names; compared with the band (the last three operators).
- **query** (a dashcam extension): ``Metrics`` holding one entry whose ``Expression`` is a Logs
  Insights query beginning with ``SOURCE`` (which names its log groups), with a ``Period``; the
  query runs once per period and must yield one number. No metric math function is called
  SOURCE, so the two never collide, and boto3 sends such an alarm unchanged.

dashcam evaluates alarms once a minute, so periods are multiples of 60 seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from dashcam.alarms.actions import parse_action
from dashcam.errors import InputError, QuerySyntaxError
from dashcam.query.parser import parse

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT_DATA)

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
STATIC_OPERATORS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
                    "LessThanOrEqualToThreshold")
BAND_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold",
                  "GreaterThanUpperThreshold")
OPERATORS = STATIC_OPERATORS + BAND_OPERATORS
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
LOW_SAMPLE_COUNT = ("evaluate", "ignore")

STATIC, ANOMALY, QUERY = "static", "anomaly", "query"
MAX_ACTIONS = 5
DAY_S = 86_400

_EXTENDED = re.compile(
    r"p(\d{1,2}(\.\d{1,10})?|100(\.0{1,10})?)"
    r"|(tm|tc|ts|wm)(\d{1,2}(\.\d{1,10})?|100)"
    r"|IQM"
    r"|(PR|TC|TM|TS|WM)\(\s*[\d.%]*\s*:\s*[\d.%]*\s*\)"
)
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")
_ID = re.compile(r"[a-z][A-Za-z0-9_]{0,254}")
_BAND = re.compile(r"\s*ANOMALY_DETECTION_BAND\(\s*([a-z][A-Za-z0-9_]*)\s*(?:,\s*([0-9]+(?:\.[0-9]+)?)\s*)?\)\s*",
                   re.IGNORECASE)
_SOURCE = re.compile(r"\s*SOURCE\b", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DEFAULT_BAND_WIDTH = 2.0


@dataclass(frozen=True)
class MetricSpec:
    """One metric and how to aggregate it per period (``MetricStat`` or the single-metric members)."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    period: int
    stat: str
    unit: str | None = None

    @property
    def percentile(self) -> float | None:
        """The percentile of a ``pNN`` statistic, else None."""
        found = _PERCENTILE.fullmatch(self.stat)
        return float(found.group(1)) if found else None


@dataclass(frozen=True)
class QuerySpec:
    """One entry of ``Metrics`` (a MetricDataQuery): a metric, or an expression over other entries."""

    id: str
    metric: MetricSpec | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True
    period: int | None = None

    @property
    def is_logs_query(self) -> bool:
        """True for dashcam's query-alarm entry: a Logs Insights query beginning with SOURCE."""
        return self.expression is not None and bool(_SOURCE.match(self.expression))


@dataclass(frozen=True)
class AlarmDefinition:
    """A validated alarm. ``kind``, ``period``, ``watched_id`` and the band members are derived."""

    name: str
    evaluation_periods: int
    comparison_operator: str
    kind: str
    period: int
    description: str | None = None
    actions_enabled: bool = True
    ok_actions: tuple[str, ...] = ()
    alarm_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    metric: MetricSpec | None = None
    metrics: tuple[QuerySpec, ...] = ()
    datapoints_to_alarm: int | None = None
    threshold: float | None = None
    threshold_metric_id: str | None = None
    treat_missing_data: str = "missing"
    evaluate_low_sample_count_percentile: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    watched_id: str | None = None  # the Metrics entry compared with the threshold or band
    band_width: float | None = None
    band_metric_id: str | None = None  # the entry ANOMALY_DETECTION_BAND is learned from

    @property
    def m(self) -> int:
        """M of "M out of N": DatapointsToAlarm, EvaluationPeriods when not given."""
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def statistic_label(self) -> str | None:
        """The statistic of a single-metric alarm (for reason data), else None."""
        return self.metric.stat if self.metric else None

    @property
    def query_text(self) -> str | None:
        """A query alarm's Logs Insights text."""
        entry = self.entry(self.watched_id) if self.kind == QUERY else None
        return entry.expression if entry else None

    def entry(self, entry_id: str | None) -> QuerySpec | None:
        """The Metrics entry with this id."""
        return next((q for q in self.metrics if q.id == entry_id), None)

    def actions_for(self, state: str) -> tuple[str, ...]:
        """The actions run when the alarm enters ``state``."""
        return {OK: self.ok_actions, ALARM: self.alarm_actions,
                INSUFFICIENT_DATA: self.insufficient_data_actions}[state]

    def all_actions(self) -> tuple[str, ...]:
        """Every action of every state."""
        return self.ok_actions + self.alarm_actions + self.insufficient_data_actions

    def to_params(self) -> dict[str, Any]:
        """The PutMetricAlarm members that define this alarm (what :func:`parse_definition` reads)."""
        params: dict[str, Any] = {"AlarmName": self.name}
        if self.description is not None:
            params["AlarmDescription"] = self.description
        params["ActionsEnabled"] = self.actions_enabled
        params["OKActions"] = list(self.ok_actions)
        params["AlarmActions"] = list(self.alarm_actions)
        params["InsufficientDataActions"] = list(self.insufficient_data_actions)
        params.update(self.metric_members())
        params["EvaluationPeriods"] = self.evaluation_periods
        if self.datapoints_to_alarm is not None:
            params["DatapointsToAlarm"] = self.datapoints_to_alarm
        if self.threshold is not None:
            params["Threshold"] = self.threshold
        if self.threshold_metric_id is not None:
            params["ThresholdMetricId"] = self.threshold_metric_id
        params["ComparisonOperator"] = self.comparison_operator
        params["TreatMissingData"] = self.treat_missing_data
        if self.evaluate_low_sample_count_percentile is not None:
            params["EvaluateLowSampleCountPercentile"] = self.evaluate_low_sample_count_percentile
        if self.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        return params

    def metric_members(self) -> dict[str, Any]:
        """What the alarm watches, as MetricAlarm members (single metric, or ``Metrics``)."""
        if self.metric is not None:
            spec = self.metric
            members: dict[str, Any] = {"MetricName": spec.metric_name, "Namespace": spec.namespace}
            members["Statistic" if spec.stat in STATISTICS else "ExtendedStatistic"] = spec.stat
            members["Dimensions"] = [{"Name": n, "Value": v} for n, v in spec.dimensions]
            members["Period"] = spec.period
            if spec.unit is not None:
                members["Unit"] = spec.unit
            return members
        return {"Metrics": [_query_members(q) for q in self.metrics]}


def _query_members(query: QuerySpec) -> dict[str, Any]:
    members: dict[str, Any] = {"Id": query.id}
    if query.metric is not None:
        spec = query.metric
        stat: dict[str, Any] = {
            "Metric": {"Namespace": spec.namespace, "MetricName": spec.metric_name,
                       "Dimensions": [{"Name": n, "Value": v} for n, v in spec.dimensions]},
            "Period": spec.period, "Stat": spec.stat,
        }
        if spec.unit is not None:
            stat["Unit"] = spec.unit
        members["MetricStat"] = stat
    if query.expression is not None:
        members["Expression"] = query.expression
    if query.label is not None:
        members["Label"] = query.label
    members["ReturnData"] = query.return_data
    if query.period is not None:
        members["Period"] = query.period
    return members


# ---------------------------------------------------------------------- parsing


def parse_definition(params: dict[str, Any]) -> AlarmDefinition:
    """A definition from PutMetricAlarm's members; InputError naming what is wrong."""
    if not isinstance(params, dict):
        raise InputError("an alarm definition must be a JSON object of PutMetricAlarm members")
    name = _string(params, "AlarmName", required=True, high=255)
    if _CONTROL.search(name):
        raise InputError("AlarmName must not contain control characters")
    description = _string(params, "AlarmDescription", high=1024)
    actions_enabled = _boolean(params, "ActionsEnabled", default=True)
    actions = {key: _actions(params, key) for key in ("OKActions", "AlarmActions", "InsufficientDataActions")}

    single = [key for key in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions",
                              "Period", "Unit") if params.get(key) is not None]
    metrics_given = params.get("Metrics") is not None
    if single and metrics_given:
        raise InputError(f"give either Metrics or the single-metric members, not both ({', '.join(single)} "
                         "were given with Metrics)")
    if not single and not metrics_given:
        raise InputError("say what the alarm watches: MetricName, Namespace, Statistic and Period, "
                         "or Metrics")

    evaluation_periods = _integer(params, "EvaluationPeriods", required=True, low=1)
    datapoints_to_alarm = _integer(params, "DatapointsToAlarm", low=1)
    if datapoints_to_alarm is not None and datapoints_to_alarm > evaluation_periods:
        raise InputError(f"DatapointsToAlarm ({datapoints_to_alarm}) must not be greater than "
                         f"EvaluationPeriods ({evaluation_periods})")
    operator = _choice(params, "ComparisonOperator", OPERATORS, required=True)
    threshold = _number(params, "Threshold")
    threshold_metric_id = _string(params, "ThresholdMetricId", high=255)
    treat_missing = _choice(params, "TreatMissingData", TREAT_MISSING) or "missing"
    low_sample = _choice(params, "EvaluateLowSampleCountPercentile", LOW_SAMPLE_COUNT)
    tags = _tags(params)

    common = dict(
        name=name, description=description, actions_enabled=actions_enabled,
        ok_actions=actions["OKActions"], alarm_actions=actions["AlarmActions"],
        insufficient_data_actions=actions["InsufficientDataActions"],
        evaluation_periods=evaluation_periods, datapoints_to_alarm=datapoints_to_alarm,
        comparison_operator=operator, threshold=threshold, threshold_metric_id=threshold_metric_id,
        treat_missing_data=treat_missing, evaluate_low_sample_count_percentile=low_sample, tags=tags,
    )
    if single:
        definition = _single_metric(params, common)
    else:
        definition = _metrics(params, common)
    limit = 7 * DAY_S if definition.period >= 3600 else DAY_S
    if definition.period * evaluation_periods > limit:
        raise InputError(f"Period ({definition.period}) x EvaluationPeriods ({evaluation_periods}) must not "
                         f"exceed {limit} seconds ({limit // DAY_S} day{'s' if limit > DAY_S else ''})")
    return definition


def _single_metric(params: dict[str, Any], common: dict[str, Any]) -> AlarmDefinition:
    metric_name = _string(params, "MetricName", required=True, high=255)
    namespace = _string(params, "Namespace", required=True, high=255)
    statistic = _choice(params, "Statistic", STATISTICS)
    extended = _string(params, "ExtendedStatistic")
    if (statistic is None) == (extended is None):
        raise InputError("give exactly one of Statistic and ExtendedStatistic")
    if extended is not None and not _EXTENDED.fullmatch(extended):
        raise InputError(f"ExtendedStatistic {extended!r} is not a statistic CloudWatch knows "
                         "(p99, p99.9, tm90, IQM, TM(10%:90%), ...)")
    period = _period(params, "Period", required=True)
    if common["threshold"] is None:
        raise InputError("Threshold is required for an alarm on one metric")
    if common["threshold_metric_id"] is not None:
        raise InputError("ThresholdMetricId needs Metrics holding the ANOMALY_DETECTION_BAND it names")
    _static_operator(common["comparison_operator"])
    spec = MetricSpec(namespace, metric_name, _dimensions(params.get("Dimensions"), "Dimensions"), period,
                      statistic or extended, _string(params, "Unit"))
    return AlarmDefinition(metric=spec, kind=STATIC, period=period, **common)


def _metrics(params: dict[str, Any], common: dict[str, Any]) -> AlarmDefinition:
    raw = params["Metrics"]
    if not isinstance(raw, list) or not raw:
        raise InputError("Metrics must be a non-empty list of MetricDataQuery objects")
    if len(raw) > 20:
        raise InputError(f"Metrics holds {len(raw)} entries; an alarm may use at most 20")
    queries = tuple(_query(item, f"Metrics.{i + 1}") for i, item in enumerate(raw))
    ids = [q.id for q in queries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"Metrics Ids must be unique; repeated: {', '.join(duplicates)}")

    band_id = common["threshold_metric_id"]
    if band_id is not None and band_id not in ids:
        raise InputError(f"ThresholdMetricId {band_id!r} names no entry of Metrics (ids: {', '.join(ids)})")
    returned = [q for q in queries if q.return_data and q.id != band_id]
    if len(returned) != 1:
        raise InputError(f"exactly one entry of Metrics (besides the ThresholdMetricId band) must have "
                         f"ReturnData true; {len(returned)} do ({', '.join(q.id for q in returned) or 'none'})")
    watched = returned[0]
    logs_queries = [q for q in queries if q.is_logs_query]
    if logs_queries:
        return _query_alarm(queries, watched, common)

    periods = {q.metric.period for q in queries if q.metric is not None}
    if not periods:
        raise InputError("Metrics needs at least one entry with a MetricStat")
    if len(periods) > 1:
        raise InputError(f"every MetricStat of an alarm must have the same Period; found {sorted(periods)}")
    period = periods.pop()
    known = set(ids)
    for query in queries:
        if query.expression is not None and query.id != band_id:
            if len(query.expression) > 2048:
                raise InputError(f"{query.id}: a metric math Expression may be at most 2048 characters")
            if _BAND.fullmatch(query.expression):
                raise InputError(f"{query.id}: an ANOMALY_DETECTION_BAND expression must be the one "
                                 "ThresholdMetricId names")

    if band_id is None:
        if common["threshold"] is None:
            raise InputError("Threshold is required unless ThresholdMetricId names an ANOMALY_DETECTION_BAND")
        _static_operator(common["comparison_operator"])
        return AlarmDefinition(metrics=queries, kind=STATIC, period=period, watched_id=watched.id, **common)

    band = next(q for q in queries if q.id == band_id)
    found = _BAND.fullmatch(band.expression or "")
    if not found:
        raise InputError(f"ThresholdMetricId {band_id!r} must name an ANOMALY_DETECTION_BAND(id, width) "
                         f"expression, not {band.expression or 'a metric'!r}")
    band_of, width = found.group(1), float(found.group(2) or DEFAULT_BAND_WIDTH)
    if band_of not in known or band_of == band_id:
        raise InputError(f"ANOMALY_DETECTION_BAND refers to {band_of!r}, which is not another entry of Metrics")
    if band_of != watched.id:
        raise InputError(f"ANOMALY_DETECTION_BAND must be learned from the entry the alarm watches "
                         f"({watched.id!r}), not {band_of!r}")
    if not 0 < width <= 100:
        raise InputError(f"the band width {width:g} must be above 0 and at most 100 standard deviations")
    if common["threshold"] is not None:
        raise InputError("give Threshold or ThresholdMetricId, not both")
    if common["comparison_operator"] not in BAND_OPERATORS:
        raise InputError(f"an anomaly detection alarm compares with its band: ComparisonOperator must be one "
                         f"of {', '.join(BAND_OPERATORS)}")
    return AlarmDefinition(metrics=queries, kind=ANOMALY, period=period, watched_id=watched.id,
                           band_width=width, band_metric_id=band_of, **common)


def _query_alarm(queries: tuple[QuerySpec, ...], watched: QuerySpec, common: dict[str, Any]) -> AlarmDefinition:
    if len(queries) != 1 or not watched.is_logs_query:
        raise InputError("a query alarm's Metrics holds exactly one entry: the Logs Insights query "
                         "(beginning with SOURCE); it cannot be combined with metrics or metric math")
    if watched.period is None:
        raise InputError(f"{watched.id}: a query alarm needs Period (seconds, a multiple of 60) on its entry")
    if common["threshold_metric_id"] is not None:
        raise InputError("an anomaly band is not available for query alarms; give a Threshold")
    if common["threshold"] is None:
        raise InputError("Threshold is required for a query alarm")
    _static_operator(common["comparison_operator"])
    try:
        parse(watched.expression or "")
    except QuerySyntaxError as exc:
        raise InputError(f"{watched.id}: the Logs Insights query does not parse: {exc}") from None
    return AlarmDefinition(metrics=queries, kind=QUERY, period=watched.period, watched_id=watched.id, **common)


def _query(item: Any, where: str) -> QuerySpec:
    if not isinstance(item, dict):
        raise InputError(f"{where} must be a MetricDataQuery object")
    query_id = _string(item, "Id", required=True, where=where)
    if not _ID.fullmatch(query_id):
        raise InputError(f"{where}.Id {query_id!r} must start with a lowercase letter and hold only "
                         "letters, digits and underscores")
    stat, expression = item.get("MetricStat"), _string(item, "Expression", high=10_000, where=where)
    if (stat is None) == (expression is None):
        raise InputError(f"{where} ({query_id}) needs exactly one of MetricStat and Expression")
    spec = None
    if stat is not None:
        spec = _metric_stat(stat, f"{where}.MetricStat")
    return QuerySpec(id=query_id, metric=spec, expression=expression, label=_string(item, "Label", where=where),
                     return_data=_boolean(item, "ReturnData", default=True, where=where),
                     period=_period(item, "Period", where=where))


def _metric_stat(stat: Any, where: str) -> MetricSpec:
    if not isinstance(stat, dict):
        raise InputError(f"{where} must be an object with Metric, Period and Stat")
    metric = stat.get("Metric")
    if not isinstance(metric, dict):
        raise InputError(f"{where}.Metric is required: an object with Namespace, MetricName, Dimensions")
    name = _string(metric, "MetricName", required=True, high=255, where=f"{where}.Metric")
    namespace = _string(metric, "Namespace", required=True, high=255, where=f"{where}.Metric")
    statistic = _string(stat, "Stat", required=True, where=where)
    if statistic not in STATISTICS and not _EXTENDED.fullmatch(statistic):
        raise InputError(f"{where}.Stat {statistic!r} is not a statistic CloudWatch knows "
                         f"({', '.join(STATISTICS)}, p99, IQM, TM(10%:90%), ...)")
    return MetricSpec(namespace, name, _dimensions(metric.get("Dimensions"), f"{where}.Metric.Dimensions"),
                      _period(stat, "Period", required=True, where=where), statistic,
                      _string(stat, "Unit", where=where))


def _static_operator(operator: str) -> None:
    if operator not in STATIC_OPERATORS:
        raise InputError(f"ComparisonOperator {operator} is only for anomaly detection alarms "
                         "(Metrics with an ANOMALY_DETECTION_BAND named by ThresholdMetricId)")


# ---------------------------------------------------------------------- members


def _label(where: str | None, key: str) -> str:
    return f"{where}.{key}" if where else key


def _string(params: dict, key: str, *, required: bool = False, high: int | None = None,
            where: str | None = None) -> str | None:
    value = params.get(key)
    label = _label(where, key)
    if value is None:
        if required:
            raise InputError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise InputError(f"{label} must be a string, not {type(value).__name__}")
    if required and not value:
        raise InputError(f"{label} must not be empty")
    if high is not None and len(value) > high:
        raise InputError(f"{label} is {len(value)} characters long; at most {high} are allowed")
    return value


def _choice(params: dict, key: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
    value = _string(params, key, required=required)
    if value is not None and value not in allowed:
        raise InputError(f"{key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _boolean(params: dict, key: str, *, default: bool, where: str | None = None) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{_label(where, key)} must be true or false")
    return value


def _integer(params: dict, key: str, *, required: bool = False, low: int | None = None,
             where: str | None = None) -> int | None:
    value = params.get(key)
    label = _label(where, key)
    if value is None:
        if required:
            raise InputError(f"{label} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{label} must be a whole number, not {value!r}")
    if low is not None and value < low:
        raise InputError(f"{label} must be at least {low}, not {value}")
    return value


def _number(params: dict, key: str) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{key} must be a finite number, not {value!r}")
    return float(value)


def _period(params: dict, key: str, *, required: bool = False, where: str | None = None) -> int | None:
    period = _integer(params, key, required=required, low=1, where=where)
    if period is not None and period % 60:
        raise InputError(f"{_label(where, key)} {period} is not a multiple of 60: dashcam evaluates alarms "
                         "once a minute, so periods are whole minutes (60, 300, 3600, ...)")
    return period


def _dimensions(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 30:
        raise InputError(f"{where} must be a list of at most 30 {{Name, Value}} objects")
    pairs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InputError(f"{where}.{i + 1} must be a {{Name, Value}} object")
        pairs.append((_string(item, "Name", required=True, high=255, where=f"{where}.{i + 1}"),
                      _string(item, "Value", required=True, high=1024, where=f"{where}.{i + 1}")))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise InputError(f"{where} names a dimension twice")
    return tuple(sorted(pairs))


def _actions(params: dict, key: str) -> tuple[str, ...]:
    value = params.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise InputError(f"{key} must be a list of action strings")
    if len(value) > MAX_ACTIONS:
        raise InputError(f"{key} holds {len(value)} actions; at most {MAX_ACTIONS} are allowed")
    for action in value:
        if len(action) > 1024:
            raise InputError(f"{key}: an action may be at most 1024 characters")
        try:
            parse_action(action)
        except InputError as exc:
            raise InputError(f"{key}: {exc}") from None
    return tuple(dict.fromkeys(value))


def _tags(params: dict) -> tuple[tuple[str, str], ...]:
    value = params.get("Tags")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 50:
        raise InputError("Tags must be a list of at most 50 {Key, Value} objects")
    tags = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InputError(f"Tags.{i + 1} must be a {{Key, Value}} object")
        tags.append((_string(item, "Key", required=True, high=128, where=f"Tags.{i + 1}"),
                     _string(item, "Value", high=256, where=f"Tags.{i + 1}") or ""))
    return tuple(tags)
