"""A small harness that drives JupyterLab in Debian's Chromium through Playwright.

Why a harness: billing analysts use recon through ipywidgets/anywidget forms in
JupyterLab, and only a real browser proves that those widgets render and react to
clicks and typing. Everything here is about making that reproducible and cheap:

* the server runs with throwaway config/data/runtime/settings directories, so a
  developer's ``~/.jupyter`` cannot change what the test sees, while the
  labextensions installed in ``sys.prefix`` (ipywidgets', anywidget's) still load;
* network chatter (news, update checks, extension manager, announcements) is off;
* the notebook renders every cell (no virtual scrolling) so DOM queries and
  Playwright locators see all outputs;
* every wait has a timeout whose message says what did not happen and what the
  notebook looked like at that moment.

Playwright is imported lazily so that ``conftest.py`` can decide to skip (outside
CI) before anything here needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

#: Debian's Chromium; ``playwright install`` cannot download a browser here.
CHROMIUM_PATH = Path(os.environ.get("RECON_CHROMIUM", "/usr/bin/chromium"))

#: Flags known to work for headless Chromium in containers (root, small /dev/shm,
#: no GPU, no network beyond the lab server).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
)

#: Lab front-end plugins switched off: ones that phone home or pop toasts over the
#: notebook, and ones whose server side is off (their probes 404 in the console).
DISABLED_LAB_PLUGINS: tuple[str, ...] = (
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlab/extensionmanager-extension",
    "@jupyterlab/lsp-extension",  # and the two plugins that require it:
    "@jupyterlab/fileeditor-extension:language-server",
    "@jupyterlab/notebook-extension:language-server",
    "@jupyterlab/terminal-extension",
)

#: User settings written into the throwaway settings dir.
LAB_USER_SETTINGS: dict[str, dict[str, Any]] = {
    # Render every cell: with windowing, off-screen cells are not in the DOM, so
    # "[*]" prompts and widget outputs below the fold would be invisible to queries.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STDERR_MIME = "application/vnd.jupyter.stderr"


class LabTimeoutError(AssertionError):
    """Something the harness waited for did not happen in time.

    An ``AssertionError`` so pytest reports it as a test failure with the message
    (which names the missing event and the notebook state) rather than a crash.
    """


# --------------------------------------------------------------------------- server


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sanitize(name: str) -> str:
    """Turn a test name or node id into a safe file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "artifact"


@dataclass
class LabServer:
    """A running ``jupyter lab`` process and the throwaway directories it uses."""

    root: Path
    port: int
    token: str
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8888``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime_dir(self) -> Path:
        """Where kernel connection files live (used to find stray kernels)."""
        return self.home / "runtime"

    @property
    def data_dir(self) -> Path:
        """The throwaway ``JUPYTER_DATA_DIR`` (extra kernelspecs go here)."""
        return self.home / "data"

    def notebook_url(self, path: str, *, workspace: str | None = None) -> str:
        """URL that opens ``path`` (relative to root) in a fresh, empty workspace.

        A fresh workspace per page stops JupyterLab from restoring the tabs (and
        starting the kernels) of notebooks opened earlier in the session.
        """
        ws = workspace or f"t{secrets.token_hex(4)}"
        quoted = urllib.request.quote(path)
        return f"{self.url}/lab/workspaces/{ws}/tree/{quoted}?token={self.token}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the Jupyter server REST API; returns the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def kernels(self) -> list[dict[str, Any]]:
        """Kernels the server is running."""
        return list(self.api("GET", "/api/kernels"))

    def add_kernelspec(
        self, name: str, env: Mapping[str, str], display_name: str | None = None
    ) -> str:
        """Register a Python kernelspec whose kernels get ``env`` on top of the server's.

        Why: the server is shared by the whole test session, but tests need kernels
        with different ``RECON_USER``/``RECON_DB``. A kernelspec's ``env`` gives a
        per-notebook environment without restarting JupyterLab; point a notebook at
        it with :func:`set_notebook_kernel` (or ``write_notebook(kernel_name=...)``).
        """
        if not re.fullmatch(r"[a-z0-9._-]+", name):
            raise ValueError(f"kernelspec name must match [a-z0-9._-]+: {name!r}")
        spec_dir = self.data_dir / "kernels" / name
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name or f"Python 3 ({name})",
            "language": "python",
            "env": dict(env),
            "metadata": {"debugger": False},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        return name

    def log_text(self) -> str:
        """The server log so far (stdout and stderr interleaved)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the server log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def save_log(self, name: str = "lab-server") -> Path:
        """Copy the server log to ``test-artifacts/<name>.log``."""
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        dest = ARTIFACTS_DIR / f"{_sanitize(name)}.log"
        dest.write_text(self.log_text())
        return dest

    def shutdown_kernels(self, timeout: float = 15) -> None:
        """Ask the server to shut every kernel down (polite; see :meth:`stop`)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(OSError, urllib.error.URLError):
            for kernel in self.kernels():
                with contextlib.suppress(OSError, urllib.error.URLError):
                    self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the server and any kernel it started; leaves nothing running.

        Kernels are launched with ``start_new_session=True`` by jupyter_client, so
        killing the server's process group does not reach them: shut them down
        through the API first, then SIGTERM (then SIGKILL) the server's group, then
        kill any process still holding one of our connection files.
        """
        self.shutdown_kernels()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while pids := _pids_mentioning(str(self.runtime_dir)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"kernel processes {pids} survived SIGKILL")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)


def _pids_mentioning(needle: str) -> list[int]:
    """Pids whose command line contains ``needle`` (Linux /proc; empty elsewhere)."""
    pids: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in cmdline and state != "Z":  # zombies are dead, just not reaped
            pids.append(int(entry.name))
    return pids


def _write_lab_config(home: Path) -> None:
    """Populate the throwaway config dir: server config, page config, user settings."""
    config_dir = home / "config"
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": dict.fromkeys(DISABLED_LAB_PLUGINS, True)})
    )
    server_config = {
        "ServerApp": {
            # Server extensions the tests don't use cost start-up imports on a
            # 2-core box (jupyter_lsp also scans for language servers).
            "jpserver_extensions": {
                "jupyter_lsp": False,
                "jupyter_server_terminals": False,
                "notebook_shim": False,
            },
            "terminals_enabled": False,
        },
    }
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(server_config))
    settings_dir = home / "settings"
    for plugin, values in LAB_USER_SETTINGS.items():
        target = settings_dir / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def start_lab(
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    timeout: float = 60,
    add_repo_to_pythonpath: bool = True,
) -> LabServer:
    """Start ``jupyter lab`` serving ``root`` on 127.0.0.1 and wait until it answers.

    ``env`` is added to the server's environment, which every kernel inherits
    (e.g. ``{"RECON_DB": ..., "RECON_USER": ...}``); for per-notebook values use
    :meth:`LabServer.add_kernelspec`. With ``add_repo_to_pythonpath`` the kernels
    import ``recon`` from this checkout, i.e. the code under test, even when the
    package is not installed.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    home = Path(home) if home else Path(tempfile.mkdtemp(prefix="recon-lab-"))
    for sub in ("config", "data", "runtime", "ipython", "settings", "workspaces"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    _write_lab_config(home)

    server_env = dict(os.environ)
    server_env.update(
        {
            # Only the *user* dirs are replaced: sys.prefix/share/jupyter (where
            # ipywidgets and anywidget put their labextensions) stays on the path.
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if add_repo_to_pythonpath:
        parts = [str(REPO_ROOT), *filter(None, server_env.get("PYTHONPATH", "").split(os.pathsep))]
        server_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    server_env.update(env or {})

    token = secrets.token_hex(16)
    log_path = home / "lab-server.log"
    last_error = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        port = free_port()
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
        ]  # fmt: skip
        log = log_path.open("ab")
        process = subprocess.Popen(
            cmd,
            cwd=root,
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() can kill it all
        )
        log.close()
        lab = LabServer(root, port, token, home, log_path, process, server_env)
        try:
            _wait_for_status(lab, timeout)
            return lab
        except LabTimeoutError as exc:
            last_error = str(exc)
            lab.stop()
            if "already in use" not in lab.log_text():
                raise
    raise LabTimeoutError(f"jupyter lab never came up after 3 port attempts:\n{last_error}")


def _wait_for_status(lab: LabServer, timeout: float) -> None:
    """Poll ``/api/status`` until the server answers, fail fast if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise LabTimeoutError(
                f"jupyter lab exited with code {lab.process.returncode} before /api/status "
                f"answered.\n--- server log ---\n{lab.log_tail()}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            lab.api("GET", "/api/status", timeout=2)
            return
        time.sleep(0.2)
    raise LabTimeoutError(
        f"jupyter lab did not answer /api/status on port {lab.port} within {timeout:.0f}s."
        f"\n--- server log ---\n{lab.log_tail()}"
    )


@contextlib.contextmanager
def running_lab(root: Path, **kwargs: Any) -> Iterator[LabServer]:
    """Context manager around :func:`start_lab` that always stops the server."""
    lab = start_lab(root, **kwargs)
    try:
        yield lab
    finally:
        lab.stop()


# ------------------------------------------------------------------------ notebooks


def write_notebook(
    path: Path, cells: Sequence[str | tuple[str, str]], *, kernel_name: str = "python3"
) -> Path:
    """Write a notebook; each cell is code, or ``("markdown", text)``/``("code", src)``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    for cell in cells:
        kind, source = ("code", cell) if isinstance(cell, str) else cell
        maker = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(maker(source))
    _set_kernelspec(nb, kernel_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def set_notebook_kernel(path: Path, kernel_name: str) -> None:
    """Point an existing notebook's metadata at ``kernel_name`` (see add_kernelspec)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    _set_kernelspec(nb, kernel_name)
    nbformat.write(nb, str(path))


def _set_kernelspec(nb: Any, kernel_name: str) -> None:
    """A kernelspec in the metadata means Lab starts it without a 'Select Kernel' dialog."""
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    nb.metadata.setdefault("language_info", {"name": "python"})


# -------------------------------------------------------------------------- browser


def launch_chromium(playwright: Playwright, *, headless: bool = True) -> Browser:
    """Launch Debian's Chromium (never a Playwright-downloaded one)."""
    if not CHROMIUM_PATH.exists():
        raise FileNotFoundError(
            f"{CHROMIUM_PATH} not found: run .ci/system-packages.sh (Debian package 'chromium')"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH),
        headless=headless,
        args=list(CHROMIUM_ARGS),
        timeout=60_000,
    )


def new_lab_page(browser: Browser, *, width: int = 1400, height: int = 1000) -> Page:
    """A page in a fresh context, big enough that the forms fit in a screenshot."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    return context.new_page()


def collect_console(page: Page) -> list[str]:
    """Record browser console warnings/errors and page errors into the returned list.

    Widget front-end failures (a missing model class, an ``_esm`` that throws)
    show up only here, so the list is saved next to the failure screenshot.
    """
    messages: list[str] = []

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            messages.append(f"console.{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
    return messages


def screenshot(page: Page, name: str, *, locator: Locator | None = None) -> Path:
    """Save ``test-artifacts/<name>.png`` (the viewport, or just ``locator``)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    path = ARTIFACTS_DIR / f"{_sanitize(name)}.png"
    if locator is not None:
        locator.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    return path


# JS: find the NotebookPanel whose document path is `path` (null if not open yet).
_FIND_PANEL = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
}
"""

_STATE_JS = f"""
(path) => {{
  const app = window.jupyterapp;
  const dialog = document.querySelector('.jp-Dialog');
  const base = {{ app: !!app, dialog: dialog ? dialog.innerText.slice(0, 300) : null }};
  const panel = ({_FIND_PANEL})(path);
  if (!panel) return {{ ...base, panel: false }};
  const sc = panel.sessionContext;
  const kernel = sc.session ? sc.session.kernel : null;
  const prompts = Array.from(panel.node.querySelectorAll('.jp-InputPrompt'))
    .map(n => n.textContent.trim());
  const run = (window.__reconRuns || {{}})[path] || null;
  return {{
    ...base,
    panel: true,
    panelId: panel.id,
    contextReady: panel.context.isReady,
    sessionReady: sc.isReady,
    kernel: kernel ? kernel.status : null,
    kernelName: kernel ? kernel.name : null,
    connection: kernel ? kernel.connectionStatus : null,
    cells: panel.content.widgets.length,
    busyCells: prompts.filter(p => p.includes('*')).length,
    run: run ? {{ done: run.done, result: run.result, error: run.error }} : null,
  }};
}}
"""

# JS: select cell `index` (or none) and run `command` on the panel, without awaiting:
# page.evaluate has no timeout, so completion is tracked in window.__reconRuns.
_EXECUTE_JS = f"""
({{ path, command, index }}) => {{
  const app = window.jupyterapp;
  const panel = ({_FIND_PANEL})(path);
  if (!panel) throw new Error('notebook ' + path + ' is not open');
  app.shell.activateById(panel.id);
  if (index !== null) {{
    panel.content.activeCellIndex = index;
    panel.content.deselectAll();
  }}
  window.__reconRuns = window.__reconRuns || {{}};
  const run = {{ done: false, result: null, error: null }};
  window.__reconRuns[path] = run;
  app.commands.execute(command).then(
    r => {{ run.done = true; run.result = (r === undefined ? null : r); }},
    e => {{ run.done = true; run.error = String(e); }});
}}
"""

_CELL_SOURCES_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL})(path);
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) out.push(cells.get(i).sharedModel.getSource());
  return out;
}}
"""

_CELL_OUTPUTS_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL})(path);
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {{
    const c = cells.get(i);
    out.push(c.type === 'code' ? c.outputs.toJSON() : []);
  }}
  return out;
}}
"""

_DOM_PROBLEMS_JS = f"""
({{ path, stderrMime }}) => {{
  const panel = ({_FIND_PANEL})(path);
  const problems = [];
  const stderr = panel.node.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="' + stderrMime + '"]');
  for (const n of stderr) problems.push('stderr/error output: ' + n.innerText.slice(0, 2000));
  for (const n of panel.node.querySelectorAll('.jp-OutputArea-output')) {{
    const t = n.innerText || '';
    if (t.includes('Error displaying widget') || t.includes('Failed to load model class')
        || t.includes('Error rendering')) {{
      problems.push('widget failed to render: ' + t.slice(0, 500));
    }}
  }}
  return problems;
}}
"""

_WIDGETS_RENDERED_JS = f"""
({{ path, widgetMime }}) => {{
  const panel = ({_FIND_PANEL})(path);
  const cells = panel.content.model.cells;
  let expected = 0;
  for (let i = 0; i < cells.length; i++) {{
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    for (const o of c.outputs.toJSON()) {{
      if (o.data && o.data[widgetMime]) expected++;
    }}
  }}
  // The widget renderer is a Lumino panel *without* a data-mime-type attribute
  // holding the view as a child (.jupyter-widgets for ipywidgets, a bare
  // .lm-Widget for anywidget); a text/plain fallback has data-mime-type set.
  const outputs = Array.from(panel.node.querySelectorAll('.jp-OutputArea-output'));
  const rendered = outputs.filter(
    n => !n.hasAttribute('data-mime-type') && n.querySelector(':scope > .lm-Widget')).length;
  const fallback = outputs.filter(n => n.getAttribute('data-mime-type') === 'text/plain').length;
  return {{ expected, rendered, textFallbacks: fallback }};
}}
"""

# JS: how many pixels of the notebook are hidden by its own scroll container.
_OVERFLOW_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL})(path);
  const node = panel.content.node;
  const scroller = node.querySelector('.jp-WindowedPanel-outer') || node;
  return Math.max(0, scroller.scrollHeight - scroller.clientHeight);
}}
"""

_SCROLL_TOP_JS = f"""
(path) => {{
  const node = ({_FIND_PANEL})(path).content.node;
  (node.querySelector('.jp-WindowedPanel-outer') || node).scrollTop = 0;
}}
"""


class LabNotebook:
    """One notebook open in a JupyterLab page, with waits that explain themselves."""

    def __init__(self, page: Page, lab: LabServer, path: str) -> None:
        self.page = page
        self.lab = lab
        self.path = path

    # -- opening and state

    @classmethod
    def open(cls, page: Page, lab: LabServer, path: str, *, timeout: float = 90) -> LabNotebook:
        """Open ``path`` (relative to the lab root), wait for its kernel to be idle."""
        if not (lab.root / path).exists():
            raise FileNotFoundError(f"{path} is not under the lab root {lab.root}")
        nb = cls(page, lab, path)
        page.goto(lab.notebook_url(path), wait_until="domcontentloaded", timeout=timeout * 1000)
        nb._wait(
            lambda s: bool(s.get("panel")) and bool(s.get("contextReady")),
            f"notebook {path} to open in JupyterLab (is the app exposed? a dialog up?)",
            timeout,
        )
        nb.wait_for_kernel_idle(timeout=timeout)
        return nb

    def state(self) -> dict[str, Any]:
        """A snapshot: kernel status, running cells, open dialog, last command."""
        try:
            return dict(self.page.evaluate(_STATE_JS, self.path))
        except Exception as exc:  # page navigating or crashed: report, keep polling
            return {"error": str(exc)[:300]}

    def _wait(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float,
        *,
        stable_for: float = 0.0,
    ) -> dict[str, Any]:
        """Poll :meth:`state` until ``predicate`` holds (for ``stable_for`` seconds)."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        state: dict[str, Any] = {}
        while True:
            state = self.state()
            now = time.monotonic()
            if predicate(state):
                since = since if since is not None else now
                if now - since >= stable_for:
                    return state
            else:
                since = None
            if now > deadline:
                raise LabTimeoutError(
                    f"Timed out after {timeout:.0f}s waiting for {what}.\n"
                    f"Notebook state: {json.dumps(state)}\n"
                    f"--- lab server log (tail) ---\n{self.lab.log_tail(25)}"
                )
            self.page.wait_for_timeout(100)

    def wait_for_kernel_idle(self, timeout: float = 60) -> None:
        """Wait until the kernel is started, connected and idle (stable for 0.3 s)."""
        self._wait(
            lambda s: (
                s.get("sessionReady") is True
                and s.get("kernel") == "idle"
                and s.get("connection") == "connected"
            ),
            f"the kernel of {self.path} to be idle",
            timeout,
            stable_for=0.3,
        )

    # -- running

    def _execute(self, command: str, index: int | None, timeout: float, what: str) -> bool:
        self.wait_for_kernel_idle(timeout=timeout)
        self.page.evaluate(_EXECUTE_JS, {"path": self.path, "command": command, "index": index})
        state = self._wait(
            lambda s: (
                bool(s.get("run") and s["run"]["done"])
                and s.get("kernel") == "idle"
                and s.get("busyCells") == 0
            ),
            what,
            timeout,
            stable_for=0.2,
        )
        run = state["run"]
        if run["error"]:
            raise AssertionError(f"{command} failed in the browser: {run['error']}")
        return run["result"] is not False

    def run_all(self, timeout: float = 180) -> bool:
        """Run every cell (``notebook:run-all-cells``) and wait until all finished.

        Returns False when Lab stopped at a cell that raised; use
        :meth:`output_errors` for the details.
        """
        return self._execute(
            "notebook:run-all-cells", None, timeout, f"all cells of {self.path} to finish"
        )

    def run_cell(self, index: int, timeout: float = 60) -> bool:
        """Re-run one cell (``notebook:run-cell``) and wait until it finished."""
        return self._execute("notebook:run-cell", index, timeout, f"cell {index} to finish")

    def cell_index(self, needle: str) -> int:
        """Index of the first cell whose source contains ``needle``."""
        sources: list[str] = self.page.evaluate(_CELL_SOURCES_JS, self.path)
        for i, src in enumerate(sources):
            if needle in src:
                return i
        raise AssertionError(f"no cell of {self.path} contains {needle!r}")

    # -- looking at results

    def cell(self, index: int) -> Locator:
        """Playwright locator of the cell at ``index`` (all cells are in the DOM)."""
        panel_id = self.state()["panelId"]
        return self.page.locator(f'[id="{panel_id}"] .jp-Notebook .jp-Cell').nth(index)

    @property
    def panel(self) -> Locator:
        """Locator of the whole notebook panel; scope widget queries to it."""
        return self.page.locator(f'[id="{self.state()["panelId"]}"]')

    def cell_outputs(self, index: int) -> list[dict[str, Any]]:
        """nbformat outputs of cell ``index`` as the front end holds them."""
        outputs: list[list[dict[str, Any]]] = self.page.evaluate(_CELL_OUTPUTS_JS, self.path)
        return outputs[index]

    def cell_stdout(self, index: int) -> str:
        """Concatenated stdout stream text of cell ``index``."""
        return "".join(
            "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
            for o in self.cell_outputs(index)
            if o.get("output_type") == "stream" and o.get("name") == "stdout"
        )

    def wait_for_widgets(self, timeout: float = 30) -> int:
        """Wait until every widget output in the model is rendered as a widget.

        If the ipywidgets labextension did not load, Lab falls back to the
        text/plain repr (``IntSlider(value=0)``) and the counts never match:
        that is the failure this wait is for. Returns the number of widgets.
        """
        deadline = time.monotonic() + timeout
        args = {"path": self.path, "widgetMime": WIDGET_MIME}
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.page.evaluate(_WIDGETS_RENDERED_JS, args)
            if counts["rendered"] >= counts["expected"]:
                return counts["expected"]
            self.page.wait_for_timeout(100)
        raise LabTimeoutError(
            f"Timed out after {timeout:.0f}s waiting for widget outputs of {self.path} to "
            f"render: {counts}. Is @jupyter-widgets/jupyterlab-manager (or anywidget) "
            f"listed by `jupyter labextension list`?"
        )

    def output_errors(self) -> list[str]:
        """Tracebacks, stderr streams and widget render failures, model and DOM."""
        problems: list[str] = []
        outputs: list[list[dict[str, Any]]] = self.page.evaluate(_CELL_OUTPUTS_JS, self.path)
        for i, cell_outputs in enumerate(outputs):
            for o in cell_outputs:
                if o.get("output_type") == "error":
                    problems.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}")
                elif o.get("output_type") == "stream" and o.get("name") == "stderr":
                    text = "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                    problems.append(f"cell {i}: stderr: {text.strip()[:2000]}")
        dom = self.page.evaluate(
            _DOM_PROBLEMS_JS,
            {"path": self.path, "stderrMime": STDERR_MIME},
        )
        # Model problems are more precise (cell index); DOM adds render failures and
        # stderr the model may not show (e.g. output cleared but still displayed).
        if not problems:
            problems.extend(dom)
        else:
            problems.extend(p for p in dom if p.startswith("widget failed"))
        return problems

    def assert_no_output_errors(self) -> None:
        """Fail with every error/stderr output listed."""
        problems = self.output_errors()
        assert not problems, f"{self.path} produced error output:\n" + "\n".join(problems)

    def screenshot(self, name: str, *, full: bool = False, locator: Locator | None = None) -> Path:
        """Save ``test-artifacts/<name>.png``.

        With ``full`` the viewport is grown to the notebook's height for the shot,
        so a reviewer sees every cell and form, not just the part scrolled into
        view (JupyterLab scrolls inside the panel, so ``full_page`` cannot do it).
        """
        if not full:
            return screenshot(self.page, name, locator=locator)
        size = self.page.viewport_size or {"width": 1400, "height": 1000}
        extra = self.page.evaluate(_OVERFLOW_JS, self.path)
        height = min(size["height"] + int(extra), 8000)
        self.page.set_viewport_size({"width": size["width"], "height": height})
        try:
            self.page.wait_for_timeout(300)  # let Lumino re-layout
            self.page.evaluate(_SCROLL_TOP_JS, self.path)
            return screenshot(self.page, name, locator=locator)
        finally:
            self.page.set_viewport_size(size)


def save_failure_artifacts(
    name: str,
    *,
    page: Page | None = None,
    lab: LabServer | None = None,
    console: Sequence[str] = (),
) -> list[Path]:
    """Save what a failed browser test leaves behind: screenshot, server log, console."""
    saved: list[Path] = []
    base = f"FAILED-{_sanitize(name)}"
    if page is not None and not page.is_closed():
        with contextlib.suppress(Exception):  # the page may have crashed
            saved.append(screenshot(page, base))
    if lab is not None:
        saved.append(lab.save_log(f"{base}-lab-server"))
    if console:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        path = ARTIFACTS_DIR / f"{base}-console.log"
        path.write_text("\n".join(console) + "\n")
        saved.append(path)
    return saved


def chromium_available() -> bool:
    """True when Debian's Chromium is installed where the harness looks for it."""
    return CHROMIUM_PATH.exists() and shutil.which(str(CHROMIUM_PATH)) is not None
