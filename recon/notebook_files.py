"""The project's notebooks as files: one normal form, so running them leaves ``git status`` clean.

Why: JupyterLab saves a notebook whenever it autosaves, with the outputs of the run,
execution counts, the kernel's ``language_info`` (its Python version differs from one
machine to the next) and sometimes widget state or cell flags (``scrolled``,
``execution``). Committed as is, every run would show the notebooks as modified and
could carry a client's name from an output into git.

The normal form is the one Jupyter writes (nbformat 4.5, keys sorted, one-space
indent, lines split, a final newline) with outputs empty, ``execution_count`` null,
the standard ``python3`` kernelspec, ``language_info`` as JupyterLab writes it less
its machine-specific ``version``, and no cell metadata but ``tags``. Three things
apply it, all through :func:`normalise`:

- ``recon lab`` sets :func:`pre_save_hook` on JupyterLab, so a save of a notebook in
  ``notebooks/`` writes the very bytes that are committed;
- the git filter the README sets up (``recon-notebook``, run as
  ``python recon/notebook_files.py``) cleans a notebook saved by any other Jupyter;
- ``tests/test_notebook_files.py`` checks the committed notebooks are in the form.

Standard library only: the git filter runs it without the package's dependencies.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
"""What JupyterLab writes from an ipykernel's kernel_info, less ``version`` (the machine's Python)."""

KEPT_CELL_METADATA = ("tags",)
"""Cell metadata that is the author's (nbval and readers use tags); the rest is the session's."""


def normalise(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of notebook ``nb`` (nbformat 4 as a dict) in the committed normal form."""
    out = copy.deepcopy(nb)
    out["nbformat"], out["nbformat_minor"] = 4, 5
    out["metadata"] = {"kernelspec": dict(KERNELSPEC), "language_info": copy.deepcopy(LANGUAGE_INFO)}
    for cell in out.get("cells", []):
        meta = cell.get("metadata") or {}
        cell["metadata"] = {k: meta[k] for k in KEPT_CELL_METADATA if k in meta}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    return out


def dumps(nb: dict[str, Any]) -> str:
    """The text Jupyter writes for ``nb`` (nbformat's JSON writer: sorted, indent 1, lines split)."""
    out = copy.deepcopy(nb)
    for cell in out.get("cells", []):
        if isinstance(cell.get("source"), str):
            cell["source"] = cell["source"].splitlines(keepends=True)
    text = json.dumps(out, sort_keys=True, indent=1, ensure_ascii=False, separators=(",", ": "))
    return text if text.endswith("\n") else text + "\n"


def normal_text(text: str) -> str:
    """The committed form of a notebook's file text."""
    return dumps(normalise(json.loads(text)))


def is_project_notebook(api_path: str) -> bool:
    """Whether a server path is one of the project's notebooks: ``notebooks/*.ipynb`` under the root.

    ``recon lab`` roots JupyterLab at the checkout, so the tracked notebooks are there.
    """
    parts = api_path.strip("/").split("/")
    return len(parts) == 2 and parts[0] == "notebooks" and parts[1].endswith(".ipynb")


def pre_save_hook(model: dict[str, Any], path: str = "", **_kw: Any) -> None:
    """JupyterLab's ``ContentsManager.pre_save_hook``: a project notebook is saved in normal form.

    Only ``notebooks/*.ipynb`` (relative to the server's root) are touched; an analyst's
    own notebooks elsewhere keep their outputs. The browser keeps showing the outputs of
    the run; the file on disk stays as committed.
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    if is_project_notebook(path):
        model["content"] = normalise(model["content"])


def main(argv: list[str] | None = None) -> int:
    """Git clean filter: notebook text on stdin, normal form on stdout (unchanged when unreadable)."""
    del argv
    text = sys.stdin.buffer.read().decode("utf-8")
    try:
        cleaned = normal_text(text)
    except (ValueError, TypeError, AttributeError):
        cleaned = text  # not a notebook we understand: git keeps it as it is
    sys.stdout.buffer.write(cleaned.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
