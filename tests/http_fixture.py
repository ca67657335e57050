"""A local HTTP file server for offline download tests (pytest plugin: ``pytest_plugins = ["tests.http_fixture"]``).

Serves a folder on 127.0.0.1 with single-range ``Range`` support. Switches simulate faults: ``missing`` paths
answer 404, ``reset_after[path] = n`` cuts the connection after n body bytes (once), ``ignore_range`` answers 200
with the whole body, ``fail_status[path] = [503, ...]`` answers those statuses first. ``requests`` records
``(path, Range header)`` of every GET.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class FileServer:
    """State and switches of the running server."""

    root: Path
    base_url: str = ""
    missing: set[str] = field(default_factory=set)
    reset_after: dict[str, int] = field(default_factory=dict)
    fail_status: dict[str, list[int]] = field(default_factory=dict)
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, name: str) -> str:
        """URL of ``name`` (a path relative to the served folder)."""
        return f"{self.base_url}/{name}"

    def add(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``name``; returns its URL."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            name = unquote(urlsplit(self.path).path).lstrip("/")
            state.requests.append((name, self.headers.get("Range")))
            statuses = state.fail_status.get(name)
            if statuses:
                return self._status(statuses.pop(0))
            path = state.root / name
            if name in state.missing or not path.is_file():
                return self._status(404)
            self._send(name, path.read_bytes())

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, name: str, data: bytes) -> None:
            match = RANGE.match(self.headers.get("Range") or "")
            start, status = 0, 200
            if match and not state.ignore_range:
                start, status = int(match.group(1)), 206
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = state.reset_after.pop(name, None)
            if cut is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the client sees the body end early
            self.close_connection = True

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass

    return Handler


@pytest.fixture
def http_server(tmp_path):
    """A ``FileServer`` serving ``tmp_path / "served"`` for the duration of one test."""
    state = FileServer(tmp_path / "served")
    state.root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
