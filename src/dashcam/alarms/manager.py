"""The alarm operations every interface calls: put, delete, describe, history, set state, actions.

:class:`AlarmManager` joins the repository (where alarms live) and the action dispatcher (what
runs when one changes state). The CloudWatch-compatible API, the native API, the CLI and the
scheduler all go through it, so a state change is recorded and acted on the same way whoever
caused it.

dashcam has no AWS account or region: ARNs and messages use :data:`ACCOUNT_ID` and the region
the caller names (``us-east-1`` by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from dashcam.alarms.actions import ActionDispatcher, ActionSettings, AttemptRecord
from dashcam.alarms.evaluate import Evaluation, iso_timestamp
from dashcam.alarms.model import STATES, STATISTICS, AlarmDefinition, parse_definition
from dashcam.alarms.repository import AlarmRepository, HistoryItem, StoredAlarm
from dashcam.errors import InputError

ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"


def alarm_arn(name: str, region: str = DEFAULT_REGION, account: str = ACCOUNT_ID) -> str:
    """``arn:aws:cloudwatch:<region>:<account>:alarm:<name>``."""
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


class AlarmManager:
    """Alarms of one data directory, with their actions."""

    def __init__(self, repository: AlarmRepository, dispatcher: ActionDispatcher | None = None, *,
                 region: str = DEFAULT_REGION, clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.region = region
        self.clock = clock
        self.dispatcher = dispatcher or ActionDispatcher(ActionSettings(repository.path.parent), self.record_attempt)

    @classmethod
    def open(cls, data_dir: str | Path, **options: Any) -> "AlarmManager":
        """The alarms in ``data_dir`` (``alarms.sqlite``); actions find secrets and programs there too."""
        return cls(AlarmRepository.in_directory(data_dir), **options)

    def close(self) -> None:
        """Stop delivering actions (waiting retries are recorded as abandoned) and close the database."""
        self.dispatcher.close()
        self.repository.close()

    def __enter__(self) -> "AlarmManager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ definitions

    def put(self, params: dict[str, Any]) -> StoredAlarm:
        """Create or update an alarm from PutMetricAlarm's members (InputError naming what is wrong)."""
        definition = parse_definition(params)
        stored, _ = self.repository.put(definition, self._now_ms())
        return stored

    def delete(self, names: Sequence[str]) -> None:
        """Delete the named alarms, all or none (NotFoundError naming the missing)."""
        if not names:
            raise InputError("name at least one alarm to delete")
        self.repository.delete(names, self._now_ms())

    def describe(self, *, names: Sequence[str] | None = None, prefix: str | None = None,
                 state: str | None = None, action_prefix: str | None = None) -> list[StoredAlarm]:
        """Alarms in name order, narrowed as DescribeAlarms narrows them."""
        if state is not None and state not in STATES:
            raise InputError(f"state {state!r} is not one of {', '.join(STATES)}")
        alarms = self.repository.list(names=names, prefix=prefix, state=state)
        if action_prefix:
            alarms = [a for a in alarms if any(x.startswith(action_prefix) for x in a.definition.all_actions())]
        return alarms

    def get(self, name: str) -> StoredAlarm:
        """One alarm (NotFoundError when it does not exist)."""
        return self.repository.require(name)

    def history(self, name: str | None = None, **filters: Any) -> list[HistoryItem]:
        """History items (see :meth:`AlarmRepository.history` for the filters)."""
        return self.repository.history(name=name, **filters)

    def set_actions_enabled(self, names: Sequence[str], enabled: bool) -> None:
        """EnableAlarmActions / DisableAlarmActions."""
        self.repository.set_actions_enabled(names, enabled, self._now_ms())

    # ------------------------------------------------------------------ state

    def set_state(self, name: str, state: str, reason: str, reason_data: str | None = None) -> StoredAlarm:
        """SetAlarmState: move the alarm now; its actions run if the state changed. The next
        evaluation moves it back if its data disagree."""
        if state not in STATES:
            raise InputError(f"StateValue {state!r} is not one of {', '.join(STATES)}")
        if len(reason) > 1023:
            raise InputError("StateReason may be at most 1023 characters")
        if reason_data is not None:
            if len(reason_data) > 4000:
                raise InputError("StateReasonData may be at most 4000 characters")
            try:
                orjson.loads(reason_data)
            except orjson.JSONDecodeError:
                raise InputError("StateReasonData must be JSON") from None
        self.repository.require(name)
        changed = self.repository.change_state(name, state, reason, reason_data, self._now_ms())
        if changed is None:
            return self.repository.require(name)
        after, old = changed
        if old.value != state:
            self._act(after, old.value)
        return after

    def apply(self, alarm: StoredAlarm, evaluation: Evaluation) -> bool:
        """Record an evaluation that changed the state and run the new state's actions.

        The change applies only if the alarm is still the version evaluated and still in the state
        the evaluation started from; returns whether it applied. Unchanged evaluations go to
        :meth:`note_unchanged` instead.
        """
        if not evaluation.changed:
            return False
        changed = self.repository.change_state(
            alarm.name, evaluation.state, evaluation.reason, evaluation.reason_data, evaluation.evaluated_at_ms,
            expect_version=alarm.version, expect_state=evaluation.previous_state, value=evaluation.value)
        if changed is None:
            return False
        after, old = changed
        self._act(after, old.value)
        return True

    def note_unchanged(self, evaluations: Sequence[tuple[StoredAlarm, Evaluation]]) -> None:
        """Remember when each alarm was last evaluated and what it saw, in one write."""
        self.repository.note_evaluations([(a.name, e.evaluated_at_ms, e.value) for a, e in evaluations])

    def _act(self, alarm: StoredAlarm, old_state: str) -> None:
        definition = alarm.definition
        actions = definition.actions_for(alarm.state.value)
        if definition.actions_enabled and actions:
            self.dispatcher.dispatch(self.message(alarm, old_state), actions)

    def record_attempt(self, attempt: AttemptRecord) -> None:
        """Write one action attempt as an ``Action`` history item (the dispatcher's recorder)."""
        outcome = attempt.outcome
        summary = (f"Successfully executed action {attempt.action}" if outcome.succeeded
                   else f"Failed to execute action {attempt.action}")
        data: dict[str, Any] = {
            "actionState": "Succeeded" if outcome.succeeded else "Failed",
            "stateUpdateTimestamp": attempt.message.get("StateChangeTimeMs"),
            "notificationResource": attempt.action,
            "attempt": attempt.attempt,
            "willRetry": attempt.will_retry,
            "detail" if outcome.succeeded else "error": outcome.detail,
        }
        self.repository.add_history(HistoryItem(attempt.alarm_name, attempt.timestamp_ms, "Action", summary,
                                                orjson.dumps(data).decode()))

    # ------------------------------------------------------------------ shapes

    def message(self, alarm: StoredAlarm, old_state: str) -> dict[str, Any]:
        """The state-change message actions deliver: the SNS message CloudWatch publishes, plus
        ``NewStateReasonData`` (parsed) and ``StateChangeTimeMs``."""
        definition, state = alarm.definition, alarm.state
        try:
            reason_data = orjson.loads(state.reason_data) if state.reason_data else None
        except orjson.JSONDecodeError:
            reason_data = state.reason_data
        return {
            "AlarmName": definition.name,
            "AlarmDescription": definition.description,
            "AWSAccountId": ACCOUNT_ID,
            "AlarmConfigurationUpdatedTimestamp": iso_timestamp(alarm.configuration_updated_ms),
            "NewStateValue": state.value,
            "NewStateReason": state.reason,
            "NewStateReasonData": reason_data,
            "StateChangeTime": iso_timestamp(state.updated_ms),
            "StateChangeTimeMs": state.updated_ms,
            "Region": self.region,
            "AlarmArn": alarm_arn(definition.name, self.region),
            "OldStateValue": old_state,
            "OKActions": list(definition.ok_actions),
            "AlarmActions": list(definition.alarm_actions),
            "InsufficientDataActions": list(definition.insufficient_data_actions),
            "Trigger": trigger(definition),
        }


def trigger(definition: AlarmDefinition) -> dict[str, Any]:
    """The ``Trigger`` part of CloudWatch's alarm message."""
    common: dict[str, Any] = {
        "Period": definition.period,
        "EvaluationPeriods": definition.evaluation_periods,
        "DatapointsToAlarm": definition.m,
        "ComparisonOperator": definition.comparison_operator,
        "TreatMissingData": definition.treat_missing_data,
        "EvaluateLowSampleCountPercentile": definition.evaluate_low_sample_count_percentile or "",
    }
    if definition.threshold is not None:
        common["Threshold"] = definition.threshold
    if definition.threshold_metric_id is not None:
        common["ThresholdMetricId"] = definition.threshold_metric_id
    spec = definition.metric
    if spec is None:
        return {**definition.metric_members(), **common}
    extended = spec.stat not in STATISTICS
    return {
        "MetricName": spec.metric_name,
        "Namespace": spec.namespace,
        "StatisticType": "ExtendedStatistic" if extended else "Statistic",
        "Statistic" if not extended else "ExtendedStatistic": spec.stat if extended else spec.stat.upper(),
        "Unit": spec.unit,
        "Dimensions": [{"value": v, "name": n} for n, v in spec.dimensions],
        **common,
    }
