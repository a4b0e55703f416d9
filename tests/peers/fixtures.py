"""Peer fixtures shared by every test directory: real protocol peers on loopback.

Each peer runs as a subprocess on a free 127.0.0.1 port and prints ``... listening
on http://127.0.0.1:PORT`` once bound; the fixture reads that line (no port is
guessed or raced for), waits until the peer answers, and stops it after the
session. Per-test fixtures clear the peer's state.

Use from a ``conftest.py``::

    from tests.peers.fixtures import *  # noqa: F403  (fixtures by name)

(pytest no longer accepts ``pytest_plugins`` outside the root conftest; importing
the fixture functions registers them for that directory.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recon.processors.settings import Secret, StripeSettings, VantageSettings
from recon.processors.stripe import StripeProcessor
from recon.processors.vantage import VantageProcessor
from tests.peers import authnet_server

ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "authnet_url",
    "localstripe_url",
    "post_json",
    "stripe_processor",
    "stripe_settings",
    "vantage_processor",
    "vantage_settings",
]
STRIPE_SECRET = "sk_test_recon_localstripe"
STRIPE_PUBLISHABLE = "pk_test_recon_localstripe"


def _start(module: str, name: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on " in line:
            return proc, line.rsplit("listening on ", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{name} did not start: {proc.stdout.read()}")


def _wait_until_answers(url: str, method: str = "GET") -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    proc, url = _start("tests.peers.localstripe_server", "localstripe")
    try:
        _wait_until_answers(url + "/_config/data", method="DELETE")
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def authnet_url() -> Iterator[str]:
    proc, url = _start("tests.peers.authnet_server", "Authorize.Net test double")
    try:
        _wait_until_answers(url + "/v1/Accept.js")
        yield url
    finally:
        _stop(proc)


@pytest.fixture()
def stripe_settings(localstripe_url: str) -> StripeSettings:
    urllib.request.urlopen(
        urllib.request.Request(localstripe_url + "/_config/data", method="DELETE"), timeout=5
    ).close()
    return StripeSettings(
        secret_key=Secret(STRIPE_SECRET),
        publishable_key=STRIPE_PUBLISHABLE,
        api_base=localstripe_url,
        js_url=localstripe_url + "/js.stripe.com/v3/",
        timeout=10,
    )


@pytest.fixture()
def stripe_processor(stripe_settings: StripeSettings) -> StripeProcessor:
    return StripeProcessor(stripe_settings)


@pytest.fixture()
def vantage_settings(authnet_url: str) -> VantageSettings:
    urllib.request.urlopen(urllib.request.Request(authnet_url + "/_test/data", method="DELETE"), timeout=5).close()
    return VantageSettings(
        api_login_id=authnet_server.LOGIN,
        transaction_key=Secret(authnet_server.TRANSACTION_KEY),
        client_key=authnet_server.CLIENT_KEY,
        api_url=authnet_url + "/xml/v1/request.api",
        accept_js_url=authnet_url + "/v1/Accept.js",
        duplicate_window=28800,
        timeout=10,
    )


@pytest.fixture()
def vantage_processor(vantage_settings: VantageSettings) -> VantageProcessor:
    return VantageProcessor(vantage_settings)


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Talk to the Authorize.Net double directly (what Accept.js does in the browser)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw: bytes = resp.read()
    return dict(json.loads(raw.decode("utf-8-sig")))
