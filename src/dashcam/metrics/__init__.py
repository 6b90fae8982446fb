"""Metrics: CloudWatch-style time series computed from the stored invocation records.

:mod:`~dashcam.metrics.definitions` is the table of metrics and dimensions,
:mod:`~dashcam.metrics.statistics` parses and compiles statistics (``Sum``, ``p99``, ``TM(10%:90%)``),
:mod:`~dashcam.metrics.engine` answers ``GetMetricData``-shaped requests in as few SQL scans as
possible, and :mod:`~dashcam.metrics.expressions` evaluates metric math between query ids.
"""
