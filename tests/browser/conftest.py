"""Fixtures for the browser tests: one sidecar, one Home Assistant and one Chromium per session.

Run with Home Assistant's pytest plugin off (`scripts/test browser` does): these tests talk to
real processes over loopback, which that plugin's socket guard and cleanup checks forbid.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from playwright.sync_api import Browser, sync_playwright

from tests.integration.sidecar_process import SidecarProcess

from .harness import (
    ARTIFACTS,
    Dashboard,
    HomeAssistantProcess,
    dashboard_page,
    launch_chromium,
    reset_artifacts,
)

HOME_KEY = pytest.StashKey[HomeAssistantProcess]()
SIDECAR_KEY = pytest.StashKey[SidecarProcess]()
DASHBOARDS_KEY = pytest.StashKey[list[Dashboard]]()
# Random weights score everything around 0.1: the threshold scripts/develop uses for them.
RANDOM_MODEL_THRESHOLD = 0.05

OBSERVATIONS_KEY = pytest.StashKey[list[str]]()

OpenDashboard = Callable[[str, dict[str, int]], Dashboard]


@pytest.fixture(scope="session")
def session_dir() -> Generator[Path]:
    """Private folder for the session's Home Assistant config and camera root.

    Not pytest's tmp_path_factory: other pytest runs on the machine prune its folders, and
    this one lives as long as the session's Home Assistant.
    """
    path = Path(tempfile.mkdtemp(prefix="secmon-browser-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def camera_root(session_dir: Path) -> Path:
    """The camera root secmon watches, with one camera ("Front Door") from the start."""
    root = session_dir / "cameras"
    (root / "Front Door").mkdir(parents=True)
    return root


@pytest.fixture(scope="session")
def sidecar(pytestconfig: pytest.Config) -> Generator[SidecarProcess]:
    """`python -m sidecar --detector random:tiny` on a free loopback port, its tiny enrichment
    models given time enough that a busy machine skips none (the dialog shows their caption)."""
    process = SidecarProcess(extra_args=("--enrich-batch-time-s", "500"))
    pytestconfig.stash[SIDECAR_KEY] = process
    try:
        process.start()
        yield process
    finally:
        process.stop()
        shutil.rmtree(process.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def home(
    request: pytest.FixtureRequest, session_dir: Path, camera_root: Path
) -> Generator[HomeAssistantProcess]:
    """`hass -c` with secmon added through its config flow, onboarded, with a long-lived token."""
    if request.config.pluginmanager.has_plugin("homeassistant"):
        pytest.fail("run the browser tests with -p no:homeassistant (scripts/test browser does)")
    reset_artifacts()
    process = HomeAssistantProcess(session_dir, camera_root)
    request.config.stash[HOME_KEY] = process
    try:
        process.start()  # Home Assistant boots while the sidecar loads and warms its models
        sidecar: SidecarProcess = request.getfixturevalue("sidecar")
        process.set_up(sidecar.address, detection_threshold=RANDOM_MODEL_THRESHOLD)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Generator[Browser]:
    """Headless Debian chromium driven by Playwright."""
    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def open_dashboard(
    request: pytest.FixtureRequest, browser: Browser, home: HomeAssistantProcess
) -> Iterator[OpenDashboard]:
    """Opens logged-in pages at a given viewport; `open_dashboard("phone", PHONE)`."""
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.originalname.removeprefix("test_"))
    with ExitStack() as stack:

        def make(label: str, viewport: dict[str, int]) -> Dashboard:
            dashboard = stack.enter_context(
                dashboard_page(browser, home, f"{test_name}-{label}", viewport)
            )
            request.node.stash.setdefault(DASHBOARDS_KEY, []).append(dashboard)
            return dashboard

        yield make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure: a screenshot of every open page, and the logs of every process, in the report."""
    report = yield
    if not report.failed:
        return report
    for dashboard in item.stash.get(DASHBOARDS_KEY, []):
        try:
            path = dashboard.screenshot(f"FAILED-{report.when}")
            report.sections.append((f"screenshot {dashboard.name}", str(path)))
        except Exception as err:  # the page may be gone; the report matters more
            report.sections.append((f"screenshot {dashboard.name}", f"not taken: {err}"))
        if messages := dashboard.console + dashboard.failed_requests:
            report.sections.append((f"browser console {dashboard.name}", "\n".join(messages[-50:])))
    if (home := item.config.stash.get(HOME_KEY, None)) is not None:
        report.sections.append(("home assistant", home.logs()))
    if (sidecar := item.config.stash.get(SIDECAR_KEY, None)) is not None:
        report.sections.append(("sidecar", sidecar.log()))
    return report


@pytest.fixture
def observe(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Note something a person would find wrong that the test does not fail on.

    The notes are printed after the run ("browser observations") and kept in the artifacts.
    """
    notes = request.config.stash.setdefault(OBSERVATIONS_KEY, [])

    def note(text: str) -> None:
        notes.append(f"{request.node.name}: {text}")

    return note


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Print the observations the tests noted, and save them next to the screenshots."""
    notes = terminalreporter.config.stash.get(OBSERVATIONS_KEY, [])
    if not notes:
        return
    terminalreporter.section("browser observations (what a person would find wrong)")
    for line in notes:
        terminalreporter.write_line(line)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "observations.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
