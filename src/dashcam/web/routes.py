"""The web dashboard's routes: the page shell, its static files, the charting library, saved queries,
Markdown for text widgets and the example dashboards.

The dashboard is a small single-page app without a build step: every page path answers the same
HTML shell, and the browser draws the page from ``/api/v1`` data. Everything is served from this
process and from installed packages (the charts are plotly.js from the ``plotly`` wheel), so the
dashboard works with no internet connection. The shell and assets need no key; the data does, and
the page asks for one when the API answers 401.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from dashcam import __version__
from dashcam.api.auth import current_principal
from dashcam.errors import InputError, NotFoundError
from dashcam.keys import Principal
from dashcam.web.saved_queries import saved_queries

MAX_MARKDOWN_CHARS = 100_000

router = APIRouter(tags=["web"])

# Page paths the browser may load directly (a shared link, a reload); the app routes between them.
PAGES = ("/", "/models", "/query", "/invocation", "/alarms", "/alarm", "/dashboards", "/dashboard", "/settings")
PLOTLY_FILE = "plotly.min.js"

_STATIC = StaticFiles(packages=[("dashcam.web", "static")])
# plotly ships its browser bundle as package data; only that one file is served from it.
_PLOTLY = StaticFiles(packages=[("plotly", "package_data")])


@lru_cache(maxsize=1)
def _shell() -> str:
    """The page shell with asset URLs versioned, so a new dashcam never runs stale scripts."""
    text = (resources.files("dashcam.web") / "index.html").read_text(encoding="utf-8")
    return text.replace("{{version}}", f"{__version__}-{plotly_version()}")


@lru_cache(maxsize=1)
def plotly_version() -> str:
    """The version of the installed plotly package, whose plotly.js the charts use."""
    from importlib.metadata import version

    return version("plotly")


def _page() -> HTMLResponse:
    return HTMLResponse(_shell(), headers={"Cache-Control": "no-cache"})


for _path in PAGES:
    router.add_api_route(_path, _page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)


@router.api_route("/static/vendor/plotly.min.js", methods=["GET", "HEAD"], include_in_schema=False)
async def plotly_js(request: Request) -> Response:
    """plotly.js, from the installed ``plotly`` package."""
    response = await _PLOTLY.get_response(PLOTLY_FILE, request.scope)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static_file(path: str, request: Request) -> Response:
    """The dashboard's own scripts and styles (revalidated on every load: they are small)."""
    if path.startswith("vendor/"):
        raise NotFoundError(f"no static file {path!r}")
    try:
        response = await _STATIC.get_response(path, request.scope)
    except HTTPException as exc:  # Starlette's answer for a missing file: dashcam's error shape instead
        if exc.status_code == 404:
            raise NotFoundError(f"no static file {path!r}") from None
        raise
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/api/v1/saved-queries", summary="Saved Logs Insights queries the Query page offers")
def list_saved_queries(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The four core questions, then common Bedrock analyses: ``{key, title, text, group}`` each."""
    principal.require("read")
    return {"data": saved_queries()}


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with tables and strikethrough; raw HTML is escaped, never passed through, and
    # markdown-it refuses javascript:/vbscript:/data: links, so the HTML is safe to insert.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """A text widget's Markdown as HTML safe to insert into the page."""
    return _markdown().render(text)


@router.post("/api/v1/markdown", summary="Render a text widget's Markdown as safe HTML")
def markdown_html(body: dict[str, Any] = Body(..., examples=[{"markdown": "# Title\nSome *text*"}]),
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """``{"markdown": text}`` -> ``{"html": ...}`` (CommonMark and tables; raw HTML is escaped)."""
    principal.require("read")
    text = body.get("markdown")
    if not isinstance(text, str):
        raise InputError('send {"markdown": "text"}')
    if len(text) > MAX_MARKDOWN_CHARS:
        raise InputError(f"the markdown is longer than {MAX_MARKDOWN_CHARS:,} characters")
    return {"data": {"html": render_markdown(text)}}


@router.get("/api/v1/dashboard-examples", summary="The example dashboards shipped with dashcam")
def dashboard_examples(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """``{name, body}`` each: CloudWatch dashboard bodies a new dashboard may start from."""
    from dashcam.dashboards.repository import example_body, example_names

    principal.require("read")
    return {"data": [{"name": name, "body": example_body(name)} for name in example_names()]}


@router.get("/api/v1/metric-definitions", summary="The metrics dashcam serves (AWS/Bedrock), for pickers")
def metric_definitions(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """``{name, unit, description, origin}`` for every metric, in the metric table's order."""
    from dashcam.metrics.definitions import METRICS

    principal.require("read")
    return {"data": [{"name": m.name, "unit": m.unit, "description": m.description, "origin": m.origin}
                     for m in METRICS.values()]}
