"""A small but real STAC API + static file server (with HTTP Range) on 127.0.0.1.

Why: the Download step must be exercised over real HTTP, exactly as against Earth Search
(POST /search with paging, then GDAL /vsicurl/ range reads of COGs), by the tests and the
offline demo. Standard library only.

Scene folder layout: ``collection.json`` (its ``id`` is the collection id), ``items/*.json``
(STAC Items whose asset hrefs are relative to the folder; they are rewritten to absolute URLs
on the fly) and any other files (COGs), served as they are.
"""

from __future__ import annotations

import glob
import json
import os
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

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


class StacServer:
    """``with StacServer(root) as s: s.url`` -> a STAC API root URL; ``s.requests`` logs requests."""

    def __init__(self, root: str, *, fail_status: int | None = None, page_size: int = 10) -> None:
        self.root = os.path.abspath(root)
        self.fail_status = fail_status
        self.page_size = page_size
        self.requests: list[str] = []
        self.url = ""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StacServer:
        handler = type("Handler", (_Handler,), {"server_obj": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="stac-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        if page * limit < len(found):
            nxt = {**params, "page": page + 1, "token": f"page:{page + 1}"}
            if method == "POST":
                links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST", "body": nxt})
            else:
                q = urlencode({k: json.dumps(v) if k == "query" else _csv(v) for k, v in nxt.items() if k != "token"})
                links.append({"rel": "next", "href": f"{self.url}/search?{q}", "method": "GET"})
        return {
            "type": "FeatureCollection", "features": chunk, "links": links,
            "numberMatched": len(found), "numberReturned": len(chunk),
        }


def _csv(value: object) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes: avoid 40 ms delayed-ACK stalls
    server_obj: StacServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep stderr quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _route(self) -> None:
        srv = self.server_obj
        srv.requests.append(f"{self.command} {self.path} {self.headers.get('Range', '')}".rstrip())
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        try:
            if path == "/search":
                if srv.fail_status:
                    return self._json({"code": "Failure", "description": "simulated server failure"}, srv.fail_status)
                if self.command == "POST":
                    params = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
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
                return self._json({
                    "type": "Catalog", "id": "lc-plugin-local", "stac_version": "1.0.0", "description": "Local STAC API",
                    "conformsTo": _CONFORMANCE,
                    "links": [{"rel": r, "href": f"{srv.url}/{p}"} for r, p in _LANDING_LINKS],
                })
            if path == "/conformance":
                return self._json({"conformsTo": _CONFORMANCE})
            if path == "/collections":
                return self._json({"collections": [srv.collection()], "links": []})
            if path.startswith("/collections/"):
                coll = srv.collection()
                if path == f"/collections/{coll['id']}":
                    return self._json(coll)
            self._file(path)
        except (ValueError, KeyError, TypeError) as exc:
            self._json({"code": "BadRequest", "description": str(exc)}, 400)

    def _file(self, path: str) -> None:
        full = os.path.realpath(os.path.join(self.server_obj.root, path.lstrip("/")))
        if not full.startswith(self.server_obj.root + os.sep) or not os.path.isfile(full):
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
