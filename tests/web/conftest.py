"""Fixtures for the dashboard tests: servers loaded with generated Bedrock logs, and a real browser.

The browser is Debian's Chromium driven by Playwright (``.ci/run`` installs it); Playwright's own
browser downloads are never used. Screenshots of every page go to ``<pytest basetemp>/screenshots``
(or ``$DASHCAM_SCREENSHOTS``) so a person can look at them after a run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashcam.simulate.sample_logs import SampleSpec, generate_records, write_bedrock_layout

CHROMIUM = os.environ.get("DASHCAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RECORDS = 3000
HOURS = 6.0


@dataclass(frozen=True)
class LoadedData:
    """What was imported: the records' span (UTC, whole minutes) and how many."""

    start: datetime
    end: datetime
    records: int
    generated: tuple[dict, ...]  # the records as the generator made them, for independent answers

    @property
    def start_ms(self) -> int:
        """The span's start in epoch milliseconds."""
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        """The span's end in epoch milliseconds."""
        return int(self.end.timestamp() * 1000)

    def url_range(self) -> str:
        """The absolute range as the dashboard writes it in a URL."""
        return f"start={self.start:%Y-%m-%dT%H:%M:%SZ}&end={self.end:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> tuple[Path, LoadedData]:
    """Bedrock logs for the last six hours (ending at the current minute), written once per run."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    directory = tmp_path_factory.mktemp("sample-logs")
    spec = SampleSpec(records=RECORDS, start=start, hours=HOURS)
    summary = write_bedrock_layout(spec, directory)
    return directory, LoadedData(start, end, summary.records, tuple(generate_records(spec)))


def _load(running, sample_dir) -> LoadedData:
    directory, data = sample_dir
    summary = running.dashcam.import_logs([directory])
    assert summary.written == data.records, summary.problems[:3]
    return data


@pytest.fixture
def loaded(server, sample_dir) -> LoadedData:
    """The ``server`` fixture with the sample logs imported."""
    return _load(server, sample_dir)


@pytest.fixture
def secured_loaded(secured_server, sample_dir) -> LoadedData:
    """The ``secured_server`` fixture with the sample logs imported."""
    return _load(secured_server, sample_dir)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's) under Playwright, for the whole run."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="install the [test] extra for browser tests")
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        message = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser tab (own storage) at 1400x900 in New York time, closed after the test.

    A time zone other than UTC makes the tests check that times are shown in the browser's zone.
    Every request the page makes is recorded in ``page.requests_seen`` (the dashboard must not
    reach beyond its own server), and page errors fail the test.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="America/New_York",
                                  accept_downloads=True)
    tab = context.new_page()
    tab.requests_seen = []
    tab.errors_seen = []
    tab.on("request", lambda r: tab.requests_seen.append(r.url))
    tab.on("pageerror", lambda error: tab.errors_seen.append(str(error)))
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
    assert not tab.errors_seen, f"the page raised: {tab.errors_seen}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where page screenshots go."""
    directory = Path(os.environ.get("DASHCAM_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
