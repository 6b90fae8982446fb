"""Custom dashboards, stored as CloudWatch dashboard bodies, so dashboards move between AWS and dashcam.

- :mod:`~dashcam.dashboards.body`: parse and validate a ``DashboardBody`` (CloudWatch's "Dashboard
  Body Structure and Syntax") into widgets, with PutDashboard's validation messages; the compact
  ``metrics`` rows (``"."`` and ``"..."`` shorthand, expression rows) expanded.
- :mod:`~dashcam.dashboards.repository`: dashboards in ``dashboards.sqlite`` in the data directory.
- :mod:`~dashcam.dashboards.search`: CloudWatch's ``SEARCH(...)`` metric expressions, matched
  against the metrics that have data.
- :mod:`~dashcam.dashboards.resolve`: one widget turned into data any renderer can draw (series,
  latest values, query columns and rows), through data callables the caller injects.
"""
