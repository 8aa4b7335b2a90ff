"""A small but real STAC API + static file server (with HTTP Range) on 127.0.0.1.

Why: the Download step must be exercised over real HTTP, exactly as against Earth Search
(POST /search with paging, then GDAL /vsicurl/ range reads of COGs), by the tests and the
offline demo. Standard library only.

It imitates what real services do: ``fail_status`` answers every search with that HTTP status (a
service that is down); ``sas_tokens=True`` imitates Microsoft Planetary Computer: files are refused (403)
without a valid ``token`` query parameter, handed out by ``/api/sas/v1/token/<collection>``.
``drop_next=True`` imitates Planetary Computer's search when it omits the ``next`` link: every
page ends there, without ``numberMatched``. ``latency`` delays every file answer (a remote store's round trip, for the benchmark);
``GET /_stats`` answers the request count and body bytes sent so far.

Scene folder layout: ``collection.json`` (its ``id`` is the collection id), ``items/*.json``
(STAC Items whose asset hrefs are relative to the folder; they are rewritten to absolute URLs
on the fly) and any other files (COGs), served as they are.

Transient faults injected request by request (a status with Retry-After, a body cut short, a
dropped connection) are the tests' own: ``tests/stac_faults.py`` builds on these classes.
"""

from __future__ import annotations

import glob
import json
import os
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

_CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/collections",
]
_LANDING_LINKS = [("self", ""), ("root", ""), ("conformance", "conformance"), ("data", "collections"), ("search", "search")]
_TYPES = {".tif": "image/tiff", ".tiff": "image/tiff", ".json": "application/json"}
_OPS = {"lt": float.__lt__, "lte": float.__le__, "gt": float.__gt__, "gte": float.__ge__, "eq": float.__eq__}


def _time(text: str, end: bool = False) -> datetime | None:
    if text in ("", ".."):
        return None
    if len(text) == 10:  # a bare date covers the whole day
        text += "T23:59:59.999999" if end else "T00:00:00"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _matches(item: dict, collection: str, params: dict) -> bool:
    if params.get("collections") and item.get("collection", collection) not in params["collections"]:
        return False
    if params.get("ids") and item["id"] not in params["ids"]:
        return False
    bbox = params.get("bbox")
    if bbox:
        b = item.get("bbox") or [-180, -90, 180, 90]
        if b[0] > bbox[2] or b[2] < bbox[0] or b[1] > bbox[3] or b[3] < bbox[1]:
            return False
    if params.get("datetime"):
        start, _, end = str(params["datetime"]).partition("/")
        when = _time(item["properties"]["datetime"])
        lo, hi = _time(start), _time(end or start, end=True)
        if (lo and when < lo) or (hi and when > hi):
            return False
    for prop, ops in (params.get("query") or {}).items():
        value = item["properties"].get(prop)
        if value is None or not all(_OPS[op](float(value), float(ref)) for op, ref in ops.items()):
            return False
    return True


class LoopbackServer:
    """An HTTP server on 127.0.0.1 served by a daemon thread; ``with Server(...) as s: s.url``.

    Subclasses set ``handler``: a request handler class that reaches the server object as ``self.owner``.
    """

    handler: type[BaseHTTPRequestHandler]
    port = 0
    url = ""
    bytes_sent = 0  # body bytes answered
    _httpd: ThreadingHTTPServer | None = None

    def start(self):
        handler = type("Handler", (self.handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True).start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class StacServer(LoopbackServer):
    """``with StacServer(root) as s: s.url`` -> a STAC API root URL; ``s.requests`` logs requests."""

    def __init__(
        self,
        root: str,
        *,
        fail_status: int | None = None,
        page_size: int = 10,
        port: int = 0,
        sas_tokens: bool = False,
        latency: float = 0.0,
        drop_next: bool = False,
    ) -> None:
        self.root = os.path.abspath(root)
        self.fail_status = fail_status
        self.page_size = page_size
        self.port = port
        self.sas_tokens = sas_tokens
        self.latency = latency  # seconds added before every file answer (a remote store's round trip)
        self.drop_next = drop_next
        self.tokens: list[str] = []  # SAS tokens handed out and still valid
        self.requests: list[str] = []
        self.bytes_sent = 0  # body bytes answered (GET /_stats reports it with the request count)

    # ---------------------------------------------------------------- catalogue
    def collection(self) -> dict:
        with open(os.path.join(self.root, "collection.json"), encoding="utf-8") as f:
            coll = json.load(f)
        coll["links"] = [{"rel": "self", "href": f"{self.url}/collections/{coll['id']}"}, {"rel": "root", "href": self.url}]
        return coll

    def items(self) -> list[dict]:
        """All items, sorted by datetime then id, with absolute asset hrefs."""
        items = []
        for path in sorted(glob.glob(os.path.join(self.root, "items", "*.json"))):
            with open(path, encoding="utf-8") as f:
                item = json.load(f)
            for asset in item.get("assets", {}).values():
                if "://" not in asset["href"]:
                    asset["href"] = f"{self.url}/{asset['href'].lstrip('/')}"
            items.append(item)
        return sorted(items, key=lambda i: (i["properties"].get("datetime") or "", i["id"]))

    def search(self, params: dict, method: str) -> dict:
        coll_id = self.collection()["id"]
        found = [i for i in self.items() if _matches(i, coll_id, params)]
        limit = max(1, min(int(params.get("limit") or self.page_size), self.page_size))
        page = int(params.get("page") or 1)
        chunk = found[(page - 1) * limit : page * limit]
        links = [{"rel": "root", "href": self.url}]
        if self.drop_next:
            return {"type": "FeatureCollection", "features": chunk, "links": links}
        if page * limit < len(found):
            nxt = {**params, "page": page + 1, "token": f"page:{page + 1}"}
            if method == "POST":
                links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST", "body": nxt})
            else:
                q = urlencode({k: json.dumps(v) if k == "query" else _csv(v) for k, v in nxt.items() if k != "token"})
                links.append({"rel": "next", "href": f"{self.url}/search?{q}", "method": "GET"})
        return {
            "type": "FeatureCollection",
            "features": chunk,
            "links": links,
            "numberMatched": len(found),
            "numberReturned": len(chunk),
        }


def _csv(value: object) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


class LoopbackHandler(BaseHTTPRequestHandler):
    """Keep-alive JSON/bytes answers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: avoid 40 ms delayed-ACK stalls
    owner: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep stderr quiet
        pass

    def _start(self, status: int, length: int, ctype: str, headers: dict | None) -> None:
        """The status line and headers of an answer of ``length`` body bytes."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self._start(status, len(body), ctype, headers)
        if self.command != "HEAD":
            self.owner.bytes_sent += len(body)
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())


class StacHandler(LoopbackHandler):
    """The STAC API's routes: landing page, conformance, collections, search, token endpoint, files."""

    owner: StacServer

    def _route(self) -> None:
        srv = self.owner
        srv.requests.append(f"{self.command} {self.path} {self.headers.get('Range', '')}".rstrip())
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "POST" else b""
            self._answer(url, path, body)
        except (ValueError, KeyError, TypeError) as exc:
            self._json({"code": "BadRequest", "description": str(exc)}, 400)

    def _answer(self, url: SplitResult, path: str, body: bytes) -> None:
        """Answer one request (its body already read, so a subclass may answer instead)."""
        srv = self.owner
        if path.startswith("/api/sas/v1/token/"):
            token = f"st=2023&sig={len(srv.tokens) + 1}x{os.urandom(4).hex()}"
            srv.tokens.append(token)
            expiry = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            return self._json({"token": token, "msft:expiry": expiry.replace(expiry[:4], str(int(expiry[:4]) + 1), 1)})
        if srv.sas_tokens and path.startswith("/cogs/"):
            token = url.query
            if token not in srv.tokens:
                return self._json({"code": "AuthenticationFailed", "description": "Server failed to authenticate"}, 403)
        if path == "/search":
            if srv.fail_status:
                # Retry-After: 0 lets a client that honours it retry at once, so it fails fast.
                return self._send(
                    srv.fail_status, json.dumps({"code": "Failure", "description": "simulated server failure"}).encode(), headers={"Retry-After": "0"}
                )
            if self.command == "POST":
                params = json.loads(body or b"{}")
            else:
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                for key in ("collections", "ids"):
                    if key in params:
                        params[key] = params[key].split(",")
                if "bbox" in params:
                    params["bbox"] = [float(v) for v in params["bbox"].split(",")]
                if "query" in params:
                    params["query"] = json.loads(params["query"])
            return self._json(srv.search(params, self.command))
        if self.command == "POST":
            return self._json({"code": "NotFound", "description": f"POST {path} not supported"}, 405)
        if path == "/":
            return self._json(
                {
                    "type": "Catalog",
                    "id": "lc-plugin-local",
                    "stac_version": "1.0.0",
                    "description": "Local STAC API",
                    "conformsTo": _CONFORMANCE,
                    "links": [{"rel": r, "href": f"{srv.url}/{p}"} for r, p in _LANDING_LINKS],
                }
            )
        if path == "/_stats":
            return self._json({"requests": len(srv.requests) - 1, "bytes_sent": srv.bytes_sent})
        if path == "/conformance":
            return self._json({"conformsTo": _CONFORMANCE})
        if path == "/collections":
            return self._json({"collections": [srv.collection()], "links": []})
        if path.startswith("/collections/"):
            coll = srv.collection()
            if path == f"/collections/{coll['id']}":
                return self._json(coll)
        self._file(path)

    def _file(self, path: str) -> None:
        if self.owner.latency:
            time.sleep(self.owner.latency)
        full = os.path.realpath(os.path.join(self.owner.root, path.lstrip("/")))
        if not full.startswith(self.owner.root + os.sep) or not os.path.isfile(full):
            return self._json({"code": "NotFound", "description": f"{path} not found"}, 404)
        size = os.path.getsize(full)
        rng = self.headers.get("Range")
        start, end, status, headers = 0, size - 1, 200, {"Accept-Ranges": "bytes"}
        if rng:
            # Several ranges are coalesced into one (RFC 7233 allows it).
            spans = re.findall(r"(\d*)-(\d*)", rng.partition("=")[2]) if rng.startswith("bytes=") else []
            bounds = [(size - int(b), size - 1) if not a else (int(a), int(b) if b else size - 1) for a, b in spans if a or b]
            bounds = [(a, min(b, size - 1)) for a, b in bounds]
            if not bounds or min(a for a, _ in bounds) >= size or any(a > b for a, b in bounds):
                return self._send(416, b"", headers={"Content-Range": f"bytes */{size}"})
            start, end, status = max(0, min(a for a, _ in bounds)), max(b for _, b in bounds), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with open(full, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        ctype = _TYPES.get(os.path.splitext(full)[1], "application/octet-stream")
        self._send(status, body, ctype, headers)

    do_GET = do_POST = do_HEAD = _route


StacServer.handler = StacHandler
