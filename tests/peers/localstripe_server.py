"""Run localstripe (a stateful fake Stripe server; GPL-3.0, test-only) on loopback.

localstripe's own CLI binds every interface and shares ``/tmp/localstripe.pickle``
between all its instances. Here it binds 127.0.0.1 only, on the given port (0: a
free one, announced on stdout as ``listening on http://127.0.0.1:PORT``), and its
store lives in memory unless ``--state-file`` names a file: two test runs (or xdist
workers) then never read or clobber each other's state, and an unwritable
``/tmp/localstripe.pickle`` left by another user cannot crash the server.

    python -m tests.peers.localstripe_server --port 0

The package never imports this module or localstripe.
"""

from __future__ import annotations

import argparse
import pickle
import socket
import sys
from pathlib import Path


def _redirect_store(state_file: Path | None) -> None:
    """Point localstripe's persistence at our file, or keep its store in memory only."""
    from localstripe import resources

    def dump_to_disk(store: dict[str, object]) -> None:
        if state_file is not None:
            tmp = state_file.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                pickle.dump(dict(store), fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(state_file)

    resources.Store.dump_to_disk = dump_to_disk  # type: ignore[method-assign,assignment]
    if state_file is not None and state_file.exists():
        with state_file.open("rb") as fh:
            resources.store.update(pickle.load(fh))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)

    _redirect_store(args.state_file)
    from aiohttp import web
    from localstripe.server import app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"localstripe listening on http://127.0.0.1:{port}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main(sys.argv[1:])
