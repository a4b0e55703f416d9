"""Fixtures for the real-browser tests: one JupyterLab and one Chromium per session.

Why session scope for the server and browser: starting JupyterLab and Chromium
costs seconds on a 2-core CI box, while a fresh browser context per test is cheap
and keeps tests independent (cookies, local storage, open tabs).

Skip policy: a developer without Chromium/Playwright gets a clear *skip*; in CI
(``CI`` set to anything but ``""``/``0``/``false``) the same situation is a *failure*,
because a browser test that silently skips in CI proves nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# tests/ is not a package; make the harness importable as ``lab`` under any
# --import-mode (test modules do ``from lab import ...``).
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import lab as harness  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright


def _in_ci() -> bool:
    """True when running in CI, where missing browser pieces must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_pieces() -> list[str]:
    """What prevents the browser tests from running here (empty when nothing)."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the 'playwright' Python package (pip install playwright)")
    if not harness.chromium_available():
        missing.append(
            f"Chromium at {harness.CHROMIUM_PATH} (run .ci/system-packages.sh; "
            "never `playwright install`)"
        )
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("the 'jupyterlab' Python package")
    return missing


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser ``browser`` and put it in one xdist group.

    The marker lets ``-m "not browser"`` deselect them; the group means that with
    ``-n N --dist loadgroup`` one worker runs them all and starts JupyterLab and
    Chromium once, instead of every worker paying ~10 s for its own pair.

    ``tryfirst``: xdist reads the group in its own collection hook, and pytest gives
    no order between a conftest's hook and a plugin's unless asked; each browser
    module also sets ``pytestmark`` with the group, so either way the mark is there.
    Correctness never depends on the grouping: every test stands alone.
    """
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that used the fixture failed in setup or call."""
    node = request.node
    return any(
        getattr(getattr(node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


@pytest.fixture(scope="session")
def _browser_requirements() -> None:
    """Skip (locally) or fail (CI) once, with a reason naming what is missing."""
    missing = _missing_pieces()
    if not missing:
        return
    reason = "browser tests need " + "; ".join(missing)
    if _in_ci():
        pytest.fail(f"{reason} (CI is set: refusing to skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_server(
    _browser_requirements: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[harness.LabServer]:
    """A JupyterLab serving an empty tmp root; copy notebooks into ``lab_server.root``.

    The kernels inherit the server's environment plus ``PYTHONPATH`` pointing at
    this checkout. For per-test variables (``RECON_DB``, ``RECON_USER``) register a
    kernelspec with ``lab_server.add_kernelspec(name, env)`` and write/point the
    notebook at it. The server log is kept as ``test-artifacts/lab-server.log``.
    """
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    server = harness.start_lab(root, home=home)
    try:
        yield server
    finally:
        server.stop()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        server.save_log(f"lab-server-{worker}" if worker else "lab-server")


@pytest.fixture(scope="session")
def playwright_instance(_browser_requirements: None) -> Iterator[Playwright]:
    """The Playwright driver (sync API), started once."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium, shared by the session."""
    chromium = harness.launch_chromium(playwright_instance)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Browser, lab_server: harness.LabServer
) -> Iterator[Page]:
    """A fresh page (own browser context) per test.

    On failure it saves ``test-artifacts/FAILED-<test>.png``, the server log and
    the browser console, then shuts the test's kernels down so the next test
    starts from a quiet server.
    """
    pg = harness.new_lab_page(browser)
    console = harness.collect_console(pg)
    try:
        yield pg
    finally:
        if _failed(request):
            saved = harness.save_failure_artifacts(
                request.node.nodeid, page=pg, lab=lab_server, console=console
            )
            print("browser test artifacts:", *map(str, saved), sep="\n  ")
        pg.context.close()
        lab_server.shutdown_kernels()
