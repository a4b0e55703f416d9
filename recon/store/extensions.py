"""DuckDB extensions from their PyPI wheels, loaded by path: nothing is downloaded at run time."""

from __future__ import annotations

import glob
import importlib
import os

import duckdb

from recon.errors import LedgerError


def from_wheel(package: str, needed_for: str) -> str:
    """The ``.duckdb_extension`` file that ``package`` (e.g. ``duckdb-extension-httpfs``) ships for this DuckDB.

    ``needed_for`` names what cannot work without it, for the analyst's message.
    """
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise LedgerError(f"{needed_for} needs the {package} package; reinstall recon") from exc
    base = os.path.dirname(module.__file__ or "")
    found = glob.glob(os.path.join(base, "extensions", f"v{duckdb.__version__}", "*.duckdb_extension"))
    if not found:
        raise LedgerError(
            f"No {package.rsplit('-', 1)[-1]} extension for DuckDB {duckdb.__version__} in {base}; "
            f"install the {package} version matching duckdb"
        )
    return found[0]
