"""The web dashboard served by ``dashcam serve`` at ``/``: Overview, Models, Query and Invocation pages.

:mod:`dashcam.web.routes` serves the page shell and assets; the pages are drawn in the browser
from the native JSON API (``/api/v1``), so the dashboard shows exactly what the API answers.
"""
