"""Hooks by which later parts (remittances, deposits, reports) add tables to exports.

Kept tiny so ``services`` does not import the 835 machinery for a plain payment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

_EXPORTERS: list[Callable[[Any], Iterator[tuple[str, pa.Table]]]] = []


def register_export(fn: Callable[[Any], Iterator[tuple[str, pa.Table]]]) -> None:
    if fn not in _EXPORTERS:
        _EXPORTERS.append(fn)


BUILTIN = ("recon.remit.reconcile",)
"""Modules that register exports when imported (remittances, exceptions, deposits)."""


def export_tables(recon: Any) -> Iterator[tuple[str, pa.Table]]:
    import importlib

    for module in BUILTIN:
        importlib.import_module(module)
    for fn in _EXPORTERS:
        yield from fn(recon)
