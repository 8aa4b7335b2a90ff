"""Faults injected request by request into the local test servers, as real services produce them.

Why in tests/: only the tests replay these (the demo and the benchmarks use ``demo.stac_server`` as
it is). ``server.faults.add(path_prefix, *actions)`` queues, per path prefix, an HTTP status with
or without Retry-After (``fail``), a dropped connection (``DROP``) or a pause (``faults.slow``);
``faults.truncate`` cuts the next successful answers short (full Content-Length announced, half
the body sent, connection closed). ``FaultyStacServer`` is ``demo.stac_server.StacServer`` with
them; ``FaultyHandler`` gives them to any ``LoopbackHandler`` (``tests/servers.py``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from urllib.parse import SplitResult

from demo.stac_server import LoopbackHandler, StacHandler, StacServer

TRUNCATE = ("truncate",)  # announce the full Content-Length, send half the body, close
DROP = ("drop",)  # close the connection without answering


def fail(status: int, retry_after: str | None = None) -> tuple:
    """A fault: answer ``status`` (with a Retry-After header when given)."""
    return ("status", status, retry_after)


class Faults:
    """Queued faults per path prefix; each matching request consumes the next one."""

    def __init__(self) -> None:
        self._rules: list[tuple[str, str | None, list[tuple]]] = []
        self._lock = threading.Lock()
        self.fired: list[str] = []

    def add(self, prefix: str, *actions: tuple, method: str | None = None) -> None:
        with self._lock:
            self._rules.append((prefix, method, list(actions)))

    def slow(self, prefix: str, seconds: float, times: int = 1000) -> None:
        """Delay the next ``times`` answers under ``prefix`` by ``seconds``."""
        self.add(prefix, *[("sleep", seconds)] * times)

    def clear(self) -> None:
        """Drop every queued fault (the server answers normally again)."""
        with self._lock:
            self._rules.clear()

    def truncate(self, prefix: str, times: int = 1) -> None:
        """Cut the next ``times`` successful answers under ``prefix`` short."""
        self.add("TRUNCATE:" + prefix, *[TRUNCATE] * times)

    def take(self, method: str, path: str) -> tuple | None:
        with self._lock:
            for prefix, meth, actions in self._rules:
                if actions and path.startswith(prefix) and (meth is None or meth == method):
                    self.fired.append(f"{method} {path} {actions[0][0]}")
                    return actions.pop(0)
        return None


class FaultyHandler(LoopbackHandler):
    """Answers cut short where the owner's ``faults`` say so; ``_fault`` carries out the other faults."""

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        faults: Faults = self.owner.faults  # the server of a faulty handler has them
        if status < 300 and self.command != "HEAD" and faults.take(self.command, "TRUNCATE:" + self.path.split("?")[0]):
            self._start(status, len(body), ctype, headers)  # announce the whole body, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._hang_up()
            return
        super()._send(status, body, ctype, headers)

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _fault(self, action: tuple | None) -> bool:
        """Carry out an injected fault; True when the request is answered (or dropped) by it."""
        if action is None:
            return False
        if action[0] == "status":
            headers = {"Retry-After": action[2]} if action[2] is not None else {}
            body = json.dumps({"code": "Injected", "description": f"injected HTTP {action[1]}"}).encode()
            self._send(action[1], body, headers=headers)
            return True
        if action[0] == "sleep":
            time.sleep(action[1])
            return False
        if action[0] == "drop":
            self._hang_up()
            return True
        return False  # "truncate" acts when the body is sent


class _FaultyStacHandler(FaultyHandler, StacHandler):
    owner: FaultyStacServer

    def _answer(self, url: SplitResult, path: str, body: bytes) -> None:
        if not self._fault(self.owner.faults.take(self.command, path)):
            super()._answer(url, path, body)


class FaultyStacServer(StacServer):
    """``demo.stac_server.StacServer`` with ``faults`` (see the module docstring)."""

    handler = _FaultyStacHandler

    def __init__(self, root: str, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.faults = Faults()
