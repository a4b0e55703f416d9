"""A real PostgreSQL server for the tests: the one .ci/run started, or one started here.

``RECON_TEST_PG`` (set by .ci/run) is a libpq URI of a server the tests may create
databases on. Without it, a server is started from the machine's PostgreSQL binaries
(``initdb`` on PATH or under /usr/lib/postgresql) in a temporary folder, listening on
a Unix socket only, and stopped at the end of the session. Each test gets a database
of its own, dropped after it.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, newest PostgreSQL first; None when there is none."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return Path(folder)
    return None


def _as_server_user() -> list[str]:
    """initdb refuses to run as root: run it as the ``postgres`` account then."""
    if os.getuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root and there is no postgres account to run the server as") from exc
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def started(bin_dir: Path) -> Iterator[str]:
    """A throw-away server; yields its admin URI."""
    folder = Path(tempfile.mkdtemp(prefix="recon-pg-"))
    prefix = _as_server_user()
    if prefix:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    user = "postgres" if prefix else pwd.getpwuid(os.getuid()).pw_name
    run = {"check": True, "capture_output": True, "text": True, "cwd": "/"}  # the postgres account may not enter ours
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8"],
                   **run)  # type: ignore[call-overload]  # fmt: skip
    options = f"-k {folder} -c listen_addresses='' -c fsync=off -c max_connections=200"
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "start"], **run)  # type: ignore[call-overload]  # fmt: skip
    try:
        yield f"postgresql://{user}@/postgres?host={folder}"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, cwd="/")  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def with_database(admin_uri: str, name: str) -> str:
    """``admin_uri`` pointing at database ``name`` instead."""
    head, _, query = admin_uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


_templates: dict[str, str] = {}


def _template(admin_uri: str) -> str:
    """A database with recon's schema already migrated, copied for each test (once per process and server).

    Why: applying the migrations costs a test more than copying a database does.
    """
    if admin_uri not in _templates:
        import psycopg

        from recon.store.pg import PgLedger

        name = f"recon_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(admin_uri, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        ledger = PgLedger(with_database(admin_uri, name))
        try:
            ledger.migrate()
        finally:
            ledger.close()
        _templates[admin_uri] = name
        atexit.register(_drop, admin_uri, name)
    return _templates[admin_uri]


def _drop(admin_uri: str, name: str) -> None:
    import psycopg

    with contextlib.suppress(Exception), psycopg.connect(admin_uri, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(admin_uri: str) -> Iterator[str]:
    """A new database on the server with recon's schema and no rows (dropped afterwards); yields its URI."""
    import psycopg

    name = f"recon_{uuid.uuid4().hex[:12]}"
    template = _template(admin_uri)
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield with_database(admin_uri, name)
    finally:
        with psycopg.connect(admin_uri, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
