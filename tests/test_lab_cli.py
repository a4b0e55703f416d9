"""``recon lab``: the install hint, options passed through, root, and a stop that stops everything.

The last test starts the real JupyterLab through ``python -m recon.cli lab`` (as root
here, so ``--allow-root`` is exercised), starts a kernel through its REST API, sends
SIGTERM to recon and checks that JupyterLab and the kernel are gone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from recon.cli import build_parser, main
from recon.cli import main as recon_cli
from recon.lab import INSTALL_HINT, descendants, lab_command

ROOT = Path(__file__).resolve().parent.parent


def test_without_the_notebook_extras_it_says_which_install_to_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jupyterlab", None)  # import jupyterlab fails, as when not installed
    assert main(["lab", "--no-browser"]) == 1
    err = capsys.readouterr().err.strip()
    assert INSTALL_HINT in err and "JupyterLab is not installed" in err
    assert "\n" not in err and "No module named" not in err


def test_options_after_a_double_dash_go_to_jupyterlab() -> None:
    args = build_parser().parse_args(["lab", "--no-browser", "--", "--port=8899", "--ServerApp.token=t"])
    cmd = lab_command(ROOT, "notebooks", no_browser=args.no_browser, extra=args.jupyter_args, as_root=False)
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert cmd[-2:] == ["--port=8899", "--ServerApp.token=t"]
    assert "--" not in cmd and "--no-browser" in cmd and "--allow-root" not in cmd
    assert "--LabApp.default_url=/lab/tree/notebooks" in cmd
    assert "--FileContentsManager.pre_save_hook=recon.notebook_files.pre_save_hook" in cmd


def test_root_gets_allow_root_once() -> None:
    assert lab_command(ROOT, as_root=True).count("--allow-root") == 1
    assert lab_command(ROOT, extra=["--", "--allow-root"], as_root=True).count("--allow-root") == 1
    assert "--allow-root" not in lab_command(ROOT, as_root=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(port: int, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": "token recon-test", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _wait(predicate: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the kernel through /proc")
def test_sigterm_stops_jupyterlab_and_its_kernels(tmp_path: Path) -> None:
    pytest.importorskip("jupyterlab")
    pytest.importorskip("ipykernel")
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "RECON_DB": str(tmp_path / "recon.duckdb"),
    }
    log_file = (tmp_path / "lab.log").open("wb")
    lab = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", "lab", "--no-browser", "--", f"--port={port}",
         "--ServerApp.port_retries=0", "--ServerApp.token=recon-test", "--ServerApp.ip=127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    try:
        _wait(lambda: _api(port, "/api/status") is not None, "JupyterLab to answer")
        _api(port, "/api/kernels", "POST")

        def kernel_started() -> bool:
            return any(b"ipykernel" in Path(f"/proc/{p}/cmdline").read_bytes() for p in descendants(lab.pid))

        _wait(kernel_started, "the kernel process")
        below = descendants(lab.pid)
        os.kill(lab.pid, signal.SIGTERM)
        assert lab.wait(timeout=120) == 128 + signal.SIGTERM
        _wait(lambda: not any(_running(p) for p in below), "JupyterLab and the kernel to stop", 30)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        log_file.close()
    log = (tmp_path / "lab.log").read_text(errors="replace")
    assert "Use --allow-root" not in log


def test_the_app_page_is_one_hidden_cell_in_normal_form(tmp_path: Path) -> None:
    from recon.lab import APP_SOURCE, app_command, write_app_notebook
    from recon.notebook_files import normal_text

    path = write_app_notebook(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text == normal_text(text)
    assert "".join(json.loads(text)["cells"][0]["source"]) == APP_SOURCE
    cmd = app_command(path, no_browser=True, extra=["--", "--port=8867"])
    assert cmd[:4] == [sys.executable, "-m", "voila", str(path)]
    assert "--strip_sources=True" in cmd and cmd[-1] == "--port=8867" and "--" not in cmd


def test_without_voila_the_app_says_which_install_to_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recon.lab import main as lab_main

    monkeypatch.setitem(sys.modules, "voila", None)
    assert lab_main(["app", "--no-browser"]) == 1
    assert INSTALL_HINT in capsys.readouterr().err
    assert recon_cli(["app", "--no-browser"]) == 1
    assert INSTALL_HINT in capsys.readouterr().err


def test_recon_app_passes_options_after_a_double_dash_to_voila() -> None:
    from recon.cli import build_parser

    args = build_parser().parse_args(["app", "--db", "x.duckdb", "--no-browser", "--", "--port=8867"])
    assert (args.command, args.db, args.no_browser, args.voila_args) == ("app", "x.duckdb", True, ["--", "--port=8867"])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the kernel through /proc")
def test_the_app_serves_the_workbench_and_stops_with_sigterm(db: Path, tmp_path: Path) -> None:
    """Voila renders the page (the AnalystApp widget, no code); SIGTERM stops Voila and its kernel."""
    pytest.importorskip("voila")
    port = _free_port()
    env = {**os.environ, "RECON_USER": "ana", "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env.pop("RECON_DB", None)  # recon app --db names the ledger
    log_file = (tmp_path / "app.log").open("wb")
    app = subprocess.Popen(
        [sys.executable, "-m", "recon.cli", "app", "--db", str(db), "--no-browser", "--", f"--port={port}",
         "--Voila.ip=127.0.0.1"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        page: list[str] = []

        def rendered() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=240) as response:
                page.append(response.read().decode("utf-8", "replace"))
            return True

        _wait(rendered, "Voila to render the app")
        html = page[-1]
        assert "application/vnd.jupyter.widget-view+json" in html and "AnalystApp(" in html
        assert "from recon.ui.analyst_app" not in html  # the page shows no code
        below = descendants(app.pid)
        os.kill(app.pid, signal.SIGTERM)
        assert app.wait(timeout=120) == 128 + signal.SIGTERM
        _wait(lambda: not any(_running(p) for p in below), "Voila and the kernel to stop", 30)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        log_file.close()
