"""Versioned schema migrations, applied the same way to a DuckDB file and to PostgreSQL.

Each ``recon/store/NN_name.sql`` is one migration, version ``NN``. A migration is
idempotent (``IF NOT EXISTS``), so a ledger made by any earlier recon can be brought
up to date by applying what it lacks. The ledger records what it has in
``schema_migrations`` (version, name, checksum, when); ``meta``'s ``schema`` row holds
the digest of all of them, so opening an up-to-date ledger costs one query and
writes nothing.

A view is written in DuckDB's dialect (``arg_max``, ``any_value``, ...). On DuckDB it
is stored in the file; on PostgreSQL, where DuckDB does the querying (see
:mod:`recon.store.pg`), each session creates it as a temporary DuckDB view over the
server's tables. Every other statement runs on the engine itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

_FILE = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")
_VIEW = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\b", re.IGNORECASE)

BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The statements in order (schema files keep string literals free of ``--`` and ``;``)."""
        lines = [line.split("--", 1)[0] for line in self.text.splitlines()]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]

    def tables_and_sequences(self) -> list[str]:
        """What the engine itself runs (everything but views)."""
        return [s for s in self.statements() if not is_view(s)]

    def views(self) -> list[str]:
        return [s for s in self.statements() if is_view(s)]


def is_view(statement: str) -> bool:
    return bool(_VIEW.match(statement))


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with recon, in version order."""
    found = []
    for entry in resources.files("recon.store").iterdir():
        matched = _FILE.match(entry.name)
        if matched:
            found.append(Migration(int(matched.group(1)), matched.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):  # pragma: no cover - a packaging mistake
        raise RuntimeError(f"two schema migrations share a version: {versions}")
    return tuple(found)


def digest(found: Iterable[Migration] | None = None) -> str:
    """One hash of every migration's text: what an up-to-date ledger's ``meta`` says."""
    return hashlib.sha256("\0".join(m.text for m in (found or migrations())).encode()).hexdigest()


def pending(recorded: dict[int, str]) -> list[Migration]:
    """The migrations a ledger lacks, or holds in another text (``recorded``: version -> checksum)."""
    return [m for m in migrations() if recorded.get(m.version) != m.checksum]


def temporary_view(statement: str) -> str:
    """A view statement as a DuckDB session's temporary view (a PostgreSQL ledger's sessions)."""
    return _VIEW.sub("CREATE OR REPLACE TEMP VIEW", statement, count=1)
