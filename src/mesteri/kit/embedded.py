"""An embedded PostgreSQL server for development and tests.

A real server (from the ``pgserver`` package's bundled binaries) in a data directory,
reached through a Unix socket, started when no ``MESTERI_DATABASE_URL`` is configured.
No root, no system install.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# pgserver picks a runtime dir from XDG; give it a private one when the environment has none.
os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/mesteri-runtime-{os.getuid()}")  # noqa: S108
Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return its URL, creating the database if needed."""
        import pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.pgdata, cleanup_mode="stop"
        )
        uri: str = self._server.get_uri()
        return uri

    def url(self, database: str) -> str:
        assert self._server is not None, "start() first"
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
