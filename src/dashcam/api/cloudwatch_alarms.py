"""CloudWatch alarm operations (JSON 1.0, ``GraniteServiceVersion20100801.*``) over dashcam's alarms.

:data:`OPERATIONS` (name -> (member shapes, handler)) is merged by the CloudWatch router
(:mod:`dashcam.api.cloudwatch`); :data:`NEEDS` says which operations change something and need
the ``admin`` role (the others need ``read``); a key limited to some log groups may not use
alarms at all, since they are evaluated over every group (:func:`check_unrestricted`). Handlers take the router's context (anything
with ``dashcam`` and ``region``) and the request members, and return the response members.

Errors are raised under the names of CloudWatch's error shapes (``InvalidParameterValueException``,
``ResourceNotFound``, ``InvalidNextToken``, ``InvalidFormatFault``,
``InvalidParameterCombinationException``); the router adds the query-protocol code botocore
reports (``InvalidParameterValue``, ``InvalidFormat``, ...).

Timestamps go out as epoch seconds. Members the shapes cannot express (the ``Threshold`` double,
``StartDate``/``EndDate`` timestamps) are checked by the handlers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Protocol

from dashcam.alarms.manager import alarm_arn
from dashcam.alarms.model import OPERATORS, STATES, STATISTICS, TREAT_MISSING
from dashcam.alarms.repository import HISTORY_TYPES, StoredAlarm
from dashcam.api.awsjson import AwsError, Member, decode_token, encode_token
from dashcam.errors import ConfigError, ForbiddenError, InputError, NotFoundError
from dashcam.service import Dashcam
from dashcam.timespec import parse_time


class AlarmContext(Protocol):
    """What a handler needs of the router's context."""

    dashcam: Dashcam
    region: str


Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]

NEEDS = {"PutMetricAlarm": "admin", "DeleteAlarms": "admin", "SetAlarmState": "admin",
         "EnableAlarmActions": "admin", "DisableAlarmActions": "admin"}

NAME = Member("string", low=1, high=255)
NAMES = Member("list", high=100, items=NAME)
ACTIONS = Member("list", high=5, items=Member("string", low=1, high=1024))
DIMENSIONS = Member("list", high=30, items=Member("structure", fields={
    "Name": Member("string", True, 1, 255), "Value": Member("string", True, 1, 1024)}))
METRIC_STAT = Member("structure", fields={
    "Metric": Member("structure", True, fields={"Namespace": Member("string", low=1, high=255),
                                                 "MetricName": Member("string", low=1, high=255),
                                                 "Dimensions": DIMENSIONS}),
    "Period": Member("long", True, low=1),
    "Stat": Member("string", True),
    "Unit": Member("string"),
})
METRIC_DATA_QUERY = Member("structure", fields={
    "Id": Member("string", True, 1, 255),
    "MetricStat": METRIC_STAT,
    "Expression": Member("string", low=1, high=10_000),  # 2048 for metric math; query alarms may be longer
    "Label": Member("string"),
    "ReturnData": Member("boolean"),
    "Period": Member("long", low=1),
    "AccountId": Member("string", low=1, high=255),
})
TOKEN = Member("string")


def check_unrestricted(principal: Any) -> None:
    """Alarms are evaluated over every log group, so a key limited to some groups may neither read
    them (their states and reasons tell about other groups) nor change them."""
    if principal is not None and principal.log_groups != "*":
        raise ForbiddenError(f"key {principal.key_id} is limited to log groups {principal.log_groups!r}; alarms "
                             "are evaluated over every log group, so they need a key for all of them")


def _aws_errors(handler: Handler) -> Handler:
    """Check the caller may see alarms at all, and report the dashcam errors a handler lets through
    in CloudWatch's words."""

    @functools.wraps(handler)
    def wrapper(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            check_unrestricted(getattr(ctx, "principal", None))
        except ForbiddenError as exc:
            raise AwsError("AccessDeniedException", str(exc), status=403) from None
        try:
            return handler(ctx, params)
        except NotFoundError as exc:
            raise AwsError("ResourceNotFound", str(exc), status=404) from None
        except InputError as exc:
            raise AwsError("InvalidParameterValueException", str(exc)) from None

    return wrapper


def _seconds(epoch_ms: int | None) -> float | None:
    return None if epoch_ms is None else epoch_ms / 1000


def _region(ctx: Any) -> str:
    return getattr(ctx, "region", None) or "us-east-1"


def metric_alarm(alarm: StoredAlarm, region: str) -> dict[str, Any]:
    """An alarm in DescribeAlarms' ``MetricAlarm`` shape."""
    definition, state = alarm.definition, alarm.state
    body: dict[str, Any] = {"AlarmName": definition.name, "AlarmArn": alarm_arn(definition.name, region)}
    if definition.description is not None:
        body["AlarmDescription"] = definition.description
    body.update({
        "AlarmConfigurationUpdatedTimestamp": _seconds(alarm.configuration_updated_ms),
        "ActionsEnabled": definition.actions_enabled,
        "OKActions": list(definition.ok_actions),
        "AlarmActions": list(definition.alarm_actions),
        "InsufficientDataActions": list(definition.insufficient_data_actions),
        "StateValue": state.value,
        "StateReason": state.reason,
    })
    if state.reason_data:
        body["StateReasonData"] = state.reason_data
    body["StateUpdatedTimestamp"] = _seconds(state.updated_ms)
    body.update(definition.metric_members())
    body["EvaluationPeriods"] = definition.evaluation_periods
    if definition.datapoints_to_alarm is not None:
        body["DatapointsToAlarm"] = definition.datapoints_to_alarm
    if definition.threshold is not None:
        body["Threshold"] = definition.threshold
    if definition.threshold_metric_id is not None:
        body["ThresholdMetricId"] = definition.threshold_metric_id
    body["ComparisonOperator"] = definition.comparison_operator
    body["TreatMissingData"] = definition.treat_missing_data
    if definition.evaluate_low_sample_count_percentile is not None:
        body["EvaluateLowSampleCountPercentile"] = definition.evaluate_low_sample_count_percentile
    body["StateTransitionedTimestamp"] = _seconds(state.transitioned_ms)
    return body


# ---------------------------------------------------------------------- PutMetricAlarm

PUT_METRIC_ALARM = {
    "AlarmName": Member("string", True, 1, 255),
    "AlarmDescription": Member("string", high=1024),
    "ActionsEnabled": Member("boolean"),
    "OKActions": ACTIONS,
    "AlarmActions": ACTIONS,
    "InsufficientDataActions": ACTIONS,
    "MetricName": Member("string", low=1, high=255),
    "Namespace": Member("string", low=1, high=255),
    "Statistic": Member("string", enum=STATISTICS),
    "ExtendedStatistic": Member("string"),
    "Dimensions": DIMENSIONS,
    "Period": Member("long", low=1),
    "Unit": Member("string"),
    "EvaluationPeriods": Member("long", True, low=1),
    "DatapointsToAlarm": Member("long", low=1),
    "ComparisonOperator": Member("string", True, enum=OPERATORS),
    "TreatMissingData": Member("string", high=255, enum=TREAT_MISSING),
    "EvaluateLowSampleCountPercentile": Member("string", high=255),
    "Metrics": Member("list", items=METRIC_DATA_QUERY),
    "Tags": Member("list", items=Member("structure", fields={
        "Key": Member("string", True, 1, 128), "Value": Member("string", True, 0, 256)})),
    "ThresholdMetricId": Member("string", low=1, high=255),
}


@_aws_errors
def put_metric_alarm(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Create or replace an alarm (see :mod:`dashcam.alarms.model` for the three kinds)."""
    ctx.dashcam.alarms.put(params)
    return {}


# ---------------------------------------------------------------------- DescribeAlarms

DESCRIBE_ALARMS = {
    "AlarmNames": NAMES,
    "AlarmNamePrefix": NAME,
    "AlarmTypes": Member("list", items=Member("string", enum=("CompositeAlarm", "MetricAlarm"))),
    "ChildrenOfAlarmName": NAME,
    "ParentsOfAlarmName": NAME,
    "StateValue": Member("string", enum=STATES),
    "ActionPrefix": Member("string", low=1, high=1024),
    "MaxRecords": Member("long", low=1, high=100),
    "NextToken": TOKEN,
}


def _after(params: dict[str, Any], kind: str) -> Any:
    token = params.get("NextToken")
    if token is None:
        return None
    try:
        return decode_token(token, kind)
    except AwsError:
        raise AwsError("InvalidNextToken", "The specified NextToken is not valid.") from None


@_aws_errors
def describe_alarms(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Alarms in name order, filtered and paged as CloudWatch does; there are no composite alarms."""
    if params.get("AlarmNames") and params.get("AlarmNamePrefix"):
        raise AwsError("InvalidParameterCombinationException", "AlarmNames and AlarmNamePrefix cannot be used together.")
    types = params.get("AlarmTypes")
    related = params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
    if (types is not None and "MetricAlarm" not in types) or related:
        return {"MetricAlarms": [], "CompositeAlarms": []}
    after = _after(params, "DescribeAlarms")
    alarms = ctx.dashcam.alarms.describe(names=params.get("AlarmNames"), prefix=params.get("AlarmNamePrefix"),
                                         state=params.get("StateValue"), action_prefix=params.get("ActionPrefix"))
    if after is not None:
        alarms = [a for a in alarms if a.name > after]
    size = params.get("MaxRecords") or 50
    page = alarms[:size]
    body: dict[str, Any] = {"MetricAlarms": [metric_alarm(a, _region(ctx)) for a in page], "CompositeAlarms": []}
    if len(alarms) > size:
        body["NextToken"] = encode_token("DescribeAlarms", page[-1].name)
    return body


# ---------------------------------------------------------------------- DescribeAlarmsForMetric

DESCRIBE_ALARMS_FOR_METRIC = {
    "MetricName": Member("string", True, 1, 255),
    "Namespace": Member("string", True, 1, 255),
    "Statistic": Member("string", enum=STATISTICS),
    "ExtendedStatistic": Member("string"),
    "Dimensions": DIMENSIONS,
    "Period": Member("long", low=1),
    "Unit": Member("string"),
}


@_aws_errors
def describe_alarms_for_metric(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Alarms watching a metric (alone or inside Metrics), narrowed by the members given."""
    dimensions = params.get("Dimensions")
    wanted_dimensions = (tuple(sorted((d["Name"], d["Value"]) for d in dimensions))
                         if dimensions is not None else None)
    stat = params.get("Statistic") or params.get("ExtendedStatistic")

    def matches(spec: Any) -> bool:
        return (spec.metric_name == params["MetricName"] and spec.namespace == params["Namespace"]
                and (stat is None or spec.stat == stat)
                and (params.get("Period") is None or spec.period == params["Period"])
                and (params.get("Unit") is None or spec.unit == params["Unit"])
                and (wanted_dimensions is None or spec.dimensions == wanted_dimensions))

    found = []
    for alarm in ctx.dashcam.alarms.describe():
        specs = [alarm.definition.metric] if alarm.definition.metric else [
            q.metric for q in alarm.definition.metrics if q.metric is not None]
        if any(matches(spec) for spec in specs):
            found.append(metric_alarm(alarm, _region(ctx)))
    return {"MetricAlarms": found}


# ---------------------------------------------------------------------- DescribeAlarmHistory

DESCRIBE_ALARM_HISTORY = {
    "AlarmName": NAME,
    "AlarmContributorId": Member("string", low=1, high=1024),
    "AlarmTypes": Member("list", items=Member("string", enum=("CompositeAlarm", "MetricAlarm"))),
    "HistoryItemType": Member("string", enum=(*HISTORY_TYPES, "AlarmContributorStateUpdate",
                                              "AlarmContributorAction")),
    "MaxRecords": Member("long", low=1, high=100),
    "NextToken": TOKEN,
    "ScanBy": Member("string", enum=("TimestampDescending", "TimestampAscending")),
}


def _timestamp(params: dict[str, Any], key: str) -> int | None:
    """A request timestamp (epoch seconds as boto3 sends it, or ISO-8601 text) in epoch ms."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(value * 1000)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ConfigError:
            pass
    raise AwsError("InvalidParameterValueException", f"{key} {value!r} is not a timestamp")


@_aws_errors
def describe_alarm_history(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """History items, newest first (``ScanBy``), kept 30 days, also for deleted alarms."""
    types = params.get("AlarmTypes")
    kind = params.get("HistoryItemType")
    if (types is not None and "MetricAlarm" not in types) or (kind or "").startswith("AlarmContributor"):
        return {"AlarmHistoryItems": []}
    start, end = _timestamp(params, "StartDate"), _timestamp(params, "EndDate")
    offset = _after(params, "DescribeAlarmHistory") or 0
    if not isinstance(offset, int) or offset < 0:
        raise AwsError("InvalidNextToken", "The specified NextToken is not valid.")
    size = params.get("MaxRecords") or 100
    items = ctx.dashcam.alarms.history(params.get("AlarmName"), item_type=kind, start_ms=start,
                                       end_ms=end + 1 if end is not None else None,
                                       ascending=params.get("ScanBy") == "TimestampAscending",
                                       offset=offset, limit=size + 1)
    body: dict[str, Any] = {"AlarmHistoryItems": [
        {"AlarmName": item.alarm_name, "AlarmType": "MetricAlarm", "Timestamp": _seconds(item.timestamp_ms),
         "HistoryItemType": item.item_type, "HistorySummary": item.summary, "HistoryData": item.data}
        for item in items[:size]]}
    if len(items) > size:
        body["NextToken"] = encode_token("DescribeAlarmHistory", offset + size)
    return body


# ---------------------------------------------------------------------- changes

DELETE_ALARMS = {"AlarmNames": Member("list", True, high=100, items=NAME)}


@_aws_errors
def delete_alarms(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete alarms, all or none; their history stays."""
    ctx.dashcam.alarms.delete(params["AlarmNames"])
    return {}


SET_ALARM_STATE = {
    "AlarmName": Member("string", True, 1, 255),
    "StateValue": Member("string", True, enum=STATES),
    "StateReason": Member("string", True, 0, 1023),
    "StateReasonData": Member("string", low=0, high=4000),
}


def set_alarm_state(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Move an alarm now (its actions run if the state changed); the next evaluation may move it back."""
    try:
        check_unrestricted(getattr(ctx, "principal", None))
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc), status=403) from None
    try:
        ctx.dashcam.alarms.set_state(params["AlarmName"], params["StateValue"], params["StateReason"],
                                     params.get("StateReasonData"))
    except NotFoundError as exc:
        raise AwsError("ResourceNotFound", str(exc), status=404) from None
    except InputError as exc:
        raise AwsError("InvalidFormatFault", str(exc)) from None
    return {}


ALARM_NAMES = {"AlarmNames": Member("list", True, high=100, items=NAME)}


@_aws_errors
def enable_alarm_actions(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Turn the actions of the named alarms on."""
    ctx.dashcam.alarms.set_actions_enabled(params["AlarmNames"], True)
    return {}


@_aws_errors
def disable_alarm_actions(ctx: AlarmContext, params: dict[str, Any]) -> dict[str, Any]:
    """Turn the actions of the named alarms off (state changes are still recorded)."""
    ctx.dashcam.alarms.set_actions_enabled(params["AlarmNames"], False)
    return {}


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "PutMetricAlarm": (PUT_METRIC_ALARM, put_metric_alarm),
    "DescribeAlarms": (DESCRIBE_ALARMS, describe_alarms),
    "DescribeAlarmsForMetric": (DESCRIBE_ALARMS_FOR_METRIC, describe_alarms_for_metric),
    "DescribeAlarmHistory": (DESCRIBE_ALARM_HISTORY, describe_alarm_history),
    "DeleteAlarms": (DELETE_ALARMS, delete_alarms),
    "SetAlarmState": (SET_ALARM_STATE, set_alarm_state),
    "EnableAlarmActions": (ALARM_NAMES, enable_alarm_actions),
    "DisableAlarmActions": (ALARM_NAMES, disable_alarm_actions),
}
