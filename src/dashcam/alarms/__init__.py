"""Alarms with CloudWatch semantics: definitions, a pure evaluator, persistence, actions, a scheduler.

- :mod:`~dashcam.alarms.model`: an alarm definition (PutMetricAlarm's members) and its validation.
- :mod:`~dashcam.alarms.evaluate`: ``evaluate(definition, datapoints, previous_state, now)``, pure.
- :mod:`~dashcam.alarms.fetch`: the datapoints an alarm watches, through injected data callables.
- :mod:`~dashcam.alarms.repository`: definitions, states and history in ``alarms.sqlite``.
- :mod:`~dashcam.alarms.actions`: webhook, Slack and local-command actions, delivered with retries.
- :mod:`~dashcam.alarms.manager`: the operations (put, delete, set state, describe, history).
- :mod:`~dashcam.alarms.scheduler`: evaluates every alarm once a minute on a background thread.
"""
