"""The dashboard's routes over real HTTP: page shell, static files, plotly.js, saved queries."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import httpx
import plotly
import pytest

from dashcam.web.routes import PAGES
from dashcam.web.saved_queries import saved_queries


@pytest.mark.parametrize("path", PAGES)
def test_every_page_path_answers_the_shell(server, path):
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<main id="page"' in response.text
    assert "{{version}}" not in response.text


def test_the_shell_loads_only_local_assets(server):
    html = httpx.get(f"{server.url}/").text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    for asset in ("/static/app.css", "/static/app.js", "/static/vendor/plotly.min.js"):
        assert asset in html


def test_plotly_is_served_from_the_installed_package(server):
    response = httpx.get(f"{server.url}/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert response.content == shipped.read_bytes()


def test_static_files_are_the_package_files(server):
    static = resources.files("dashcam.web") / "static"
    names = [entry.name for entry in static.iterdir() if entry.name.endswith((".js", ".css"))]
    assert {"app.js", "app.css", "overview.js", "query.js"} <= set(names)
    for name in names:
        response = httpx.get(f"{server.url}/static/{name}")
        assert response.status_code == 200, name
        assert response.content == (static / name).read_bytes()
        assert response.headers["cache-control"] == "no-cache"
    etag = httpx.get(f"{server.url}/static/app.js").headers["etag"]
    assert httpx.get(f"{server.url}/static/app.js", headers={"if-none-match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["nope.js", "../routes.py", "%2e%2e/routes.py", "vendor/plotly.min.js.map",
                                  "vendor/../../saved_queries.py"])
def test_nothing_else_is_served(server, path):
    response = httpx.get(f"{server.url}/static/{path}")
    assert response.status_code == 404
    assert "def " not in response.text


def test_saved_queries_are_listed(server):
    response = httpx.get(f"{server.url}/api/v1/saved-queries")
    assert response.json() == {"data": saved_queries()}


def test_pages_are_open_but_data_needs_a_key(secured_server):
    key = secured_server.keys.create("read")
    assert httpx.get(f"{secured_server.url}/").status_code == 200
    assert httpx.get(f"{secured_server.url}/static/app.js").status_code == 200
    assert httpx.get(f"{secured_server.url}/api/v1/saved-queries").status_code == 401
    answer = httpx.get(f"{secured_server.url}/api/v1/saved-queries", headers={"authorization": f"Bearer {key.bearer}"})
    assert answer.status_code == 200 and len(answer.json()["data"]) == len(saved_queries())


def test_markdown_is_rendered_with_html_escaped_and_unsafe_links_refused(server):
    text = "# Team **notes**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)"
    html = httpx.post(f"{server.url}/api/v1/markdown", json={"markdown": text}).json()["data"]["html"]
    assert "<h1>Team <strong>notes</strong></h1>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html and '<a href="https://example.com">ok</a>' in html
    assert httpx.post(f"{server.url}/api/v1/markdown", json={"text": "x"}).status_code == 400


def test_example_dashboards_and_metric_definitions_are_listed(server):
    from dashcam.dashboards.repository import example_body, example_names
    from dashcam.metrics.definitions import METRICS

    examples = httpx.get(f"{server.url}/api/v1/dashboard-examples").json()["data"]
    assert [(e["name"], e["body"]) for e in examples] == [(n, example_body(n)) for n in example_names()]
    definitions = httpx.get(f"{server.url}/api/v1/metric-definitions").json()["data"]
    assert [(d["name"], d["unit"]) for d in definitions] == [(m.name, m.unit) for m in METRICS.values()]


def test_markdown_and_examples_need_a_key_on_a_secured_server(secured_server):
    secured_server.keys.create("read")
    assert httpx.post(f"{secured_server.url}/api/v1/markdown", json={"markdown": "x"}).status_code == 401
    assert httpx.get(f"{secured_server.url}/api/v1/dashboard-examples").status_code == 401
    assert httpx.get(f"{secured_server.url}/api/v1/metric-definitions").status_code == 401
