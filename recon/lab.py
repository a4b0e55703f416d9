"""``recon lab``: JupyterLab on the project's notebooks, as a child that stops when recon stops.

Why a child in its own process group, not ``exec``: a service manager, a terminal
multiplexer or a test stops ``recon lab`` with SIGTERM (or the analyst with Ctrl+C);
JupyterLab and the kernels it started must stop with it. recon forwards the signal
as SIGTERM to the group (JupyterLab then shuts its kernels down, without the
interactive "Shutdown this Jupyter server (y/[n])?" that a Ctrl+C would ask), waits,
and ends whatever is left: the group, then any kernel (kernels run in sessions of
their own, so they are found as JupyterLab's descendants before it stops).

Options after ``--`` go to JupyterLab unchanged (``recon lab -- --port=8899``);
``--allow-root`` is added when recon runs as root (containers), where JupyterLab
otherwise refuses to start. Saves of the project's notebooks go through
:func:`recon.notebook_files.pre_save_hook`, so running them leaves ``git status`` clean.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from recon.errors import LabNotInstalled
from recon.procs import running

INSTALL_HINT = 'pip install -e ".[notebooks]"'
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_SECONDS = 15.0
"""How long JupyterLab gets to shut its kernels down before it is killed."""


def require_jupyterlab() -> None:
    """Refuse with the install to run when the notebook extras are missing."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise LabNotInstalled(
            f"JupyterLab is not installed: run {INSTALL_HINT} in the project folder, then recon lab again"
        ) from None


def lab_command(
    root: Path,
    start: str = ".",
    *,
    no_browser: bool = False,
    extra: Sequence[str] = (),
    as_root: bool | None = None,
) -> list[str]:
    """The JupyterLab command line: rooted at ``root``, opening ``start``, ``extra`` passed through."""
    extra = [a for a in extra]
    if extra[:1] == ["--"]:
        extra = extra[1:]
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--FileContentsManager.pre_save_hook=recon.notebook_files.pre_save_hook",
    ]
    if start != ".":
        cmd.append(f"--LabApp.default_url=/lab/tree/{start}")
    if no_browser:
        cmd.append("--no-browser")
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root and "--allow-root" not in extra:
        cmd.append("--allow-root")
    return [*cmd, *extra]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere), children before grandchildren."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def _end(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], seconds: float) -> list[int]:
    """The pids still running after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    left = [p for p in pids if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if running(p)]
    return left


def run_lab(cmd: Sequence[str], grace: float = GRACE_SECONDS) -> int:
    """Run JupyterLab as a child in its own process group; a stop signal stops it and its kernels."""
    child = subprocess.Popen(list(cmd), start_new_session=True)
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        while child.poll() is None and not stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
        if stopping:
            stop_tree(child, grace)
            return 128 + stopping[0]
        return child.returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_tree(child: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to JupyterLab's group; after ``grace`` seconds SIGKILL to whatever of it is left."""
    below = descendants(child.pid)  # kernels live in sessions of their own: found now, ended below
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    left = _wait_gone(below, 0 if not below else min(grace, 5.0))
    _end(left, signal.SIGTERM)
    left = _wait_gone(left, min(grace, 5.0))
    _end(left, signal.SIGKILL)


# ------------------------------------------------------------------ recon app
APP_SOURCE = """\
from recon.ui.analyst_app import analyst_app

analyst_app()"""
"""The app page's one cell; Voilà runs it and shows its widget, never the code."""


def require_voila() -> None:
    """Refuse with the install to run when Voilà is missing."""
    try:
        import voila  # noqa: F401
    except ImportError:
        raise LabNotInstalled(
            f"Voilà (the app server) is not installed: run {INSTALL_HINT} in the project folder, then recon app again"
        ) from None


def write_app_notebook(folder: Path) -> Path:
    """The page Voilà serves: one code cell showing :func:`recon.ui.analyst_app.analyst_app`."""
    from recon.notebook_files import dumps, normalise

    nb = {
        "cells": [
            {"cell_type": "code", "id": "recon-app", "metadata": {}, "source": APP_SOURCE,
             "outputs": [], "execution_count": None},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recon-app.ipynb"
    path.write_text(dumps(normalise(nb)), encoding="utf-8")
    return path


def app_command(notebook: Path, *, no_browser: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The Voilà command line serving ``notebook`` (code hidden), ``extra`` passed through."""
    extra = list(extra)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    cmd = [sys.executable, "-m", "voila", str(notebook), "--strip_sources=True"]
    if no_browser:
        cmd.append("--no-browser")
    return [*cmd, *extra]


def launch_app(*, no_browser: bool = False, extra: Sequence[str] = ()) -> int:
    """``recon app``: the workbench as a web page (Voilà), stopped with recon like ``recon lab``."""
    import tempfile

    require_voila()
    with tempfile.TemporaryDirectory(prefix="recon-app-") as folder:
        return run_lab(app_command(write_app_notebook(Path(folder)), no_browser=no_browser, extra=extra))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recon.lab app [--no-browser] [-- VOILA-OPTIONS]``: the app until ``recon app`` wraps it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m recon.lab", description="recon's web pages")
    sub = parser.add_subparsers(dest="page", required=True)
    p = sub.add_parser("app", help="the workbench, ERA batch and reports as a web page (Voila)")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("voila_args", nargs=argparse.REMAINDER, metavar="-- VOILA-OPTIONS")
    args = parser.parse_args(argv)
    try:
        return launch_app(no_browser=args.no_browser, extra=args.voila_args)
    except LabNotInstalled as exc:
        print(f"recon: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
