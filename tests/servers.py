"""A local imitation of Sentinel Hub on 127.0.0.1: OAuth2 token endpoint, catalogue, Process API.

Real HTTP, standard library + GDAL: the token endpoint checks the client id/secret and hands
out bearer tokens that the test can expire; the catalogue (STAC search, POST paging through
``next`` links) needs a valid token; the Process API needs one too, parses the request's
bounds, size, time range and the bands named in the evalscript, and answers a float32
GeoTIFF generated in memory whose values are a known function of the pixel centre:

    value(band, day, x, y) = (1000 + 100 * band_index + 10 * day + 2 * col + 4 * row) * 1e-4
    col = (x - 400000) / 10 - 0.5,  row = (5100000 - y) / 10 - 0.5

(band_index in L1C_BANDS; day = days since 2023-06-01); CLM = 1 where col < 420 else 0,
CLP = 0.9 * CLM + 0.05; every band NaN where x > ``footprint_max_x`` (outside the data).
As the real services: the catalogue refuses an Accept header other than
``application/geo+json`` (its v1.0.0 migration notes), and the Process API answers HTTP 400 to
an output larger than 2500 px per side. Faults are injected as in ``tests.stac_faults`` (``server.faults``).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import date, datetime
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

import numpy as np
from osgeo import gdal, osr

from demo.stac_server import LoopbackServer
from lc_plugin.sources.sentinelhub import L1C_BANDS
from tests.stac_faults import Faults, FaultyHandler

X0, Y0 = 400000.0, 5100000.0
DAY0 = date(2023, 6, 1)
TOKEN_PATH = "/auth/realms/main/protocol/openid-connect/token"


def sh_value(band: str, day: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    col = (x - X0) / 10 - 0.5
    row = (Y0 - y) / 10 - 0.5
    if band == "CLM":
        return (col < 420).astype(np.float32)
    if band == "CLP":
        return (col < 420) * 0.9 + 0.05
    return (1000 + 100 * L1C_BANDS.index(band) + 10 * day + 2 * col + 4 * row) * 1e-4


class SentinelHubServer(LoopbackServer):
    """``with SentinelHubServer(items) as s: s.url``; ``items`` are STAC items (dicts)."""

    def __init__(
        self,
        items: list[dict],
        *,
        client_id: str = "test-client",
        client_secret: str = "s3cret-value-42",
        expires_in: int = 3600,
        page_size: int = 10,
        footprint_max_x: float = 1e12,
        token_uses: int | None = None,
    ) -> None:
        self.items = sorted(items, key=lambda i: (i["properties"]["datetime"], i["id"]))
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = expires_in
        self.page_size = page_size
        self.footprint_max_x = footprint_max_x
        self.token_uses = token_uses  # a token is forgotten after that many requests (server-side expiry)
        self.valid_tokens: set[str] = set()
        self._uses: dict[str, int] = {}
        self.tokens_issued = 0
        self.faults = Faults()
        self.requests: list[str] = []
        self.process_bodies: list[dict] = []
        self.seen_headers: list[str] = []
        self.url = ""
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def expire_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def render(self, body: dict) -> bytes:
        """The Process API answer: a float32 GeoTIFF of the evalscript's bands on the requested grid."""
        bounds = body["input"]["bounds"]
        minx, miny, maxx, maxy = bounds["bbox"]
        epsg = int(bounds["properties"]["crs"].rsplit("/", 1)[1])
        width, height = body["output"]["width"], body["output"]["height"]
        day = (date.fromisoformat(body["input"]["data"][0]["dataFilter"]["timeRange"]["from"][:10]) - DAY0).days
        bands = re.search(r"bands: \[([^\]]*)\]", body["evalscript"]).group(1)
        bands = [b.strip().strip('"') for b in bands.split(",") if b.strip().strip('"') != "dataMask"]
        rx, ry = (maxx - minx) / width, (maxy - miny) / height
        xx, yy = np.meshgrid(minx + rx * (np.arange(width) + 0.5), maxy - ry * (np.arange(height) + 0.5))
        mem = gdal.GetDriverByName("MEM").Create("", width, height, len(bands), gdal.GDT_Float32)
        mem.SetGeoTransform((minx, rx, 0, maxy, 0, -ry))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        mem.SetProjection(srs.ExportToWkt())
        outside = xx > self.footprint_max_x
        for i, band in enumerate(bands):
            values = np.asarray(sh_value(band, day, xx, yy), dtype=np.float32)
            values[outside] = np.nan
            mem.GetRasterBand(i + 1).WriteArray(values)
        name = f"/vsimem/sh_{uuid.uuid4().hex}.tif"
        gdal.Translate(name, mem, format="GTiff")
        f = gdal.VSIFOpenL(name, "rb")
        gdal.VSIFSeekL(f, 0, 2)
        size = gdal.VSIFTellL(f)
        gdal.VSIFSeekL(f, 0, 0)
        data = gdal.VSIFReadL(1, size, f)
        gdal.VSIFCloseL(f)
        gdal.Unlink(name)
        return bytes(data)


def _matches(item: dict, body: dict) -> bool:
    if body.get("collections") and item.get("collection") not in body["collections"]:
        return False
    b, q = item["bbox"], body.get("bbox")
    if q and (b[0] > q[2] or b[2] < q[0] or b[1] > q[3] or b[3] < q[1]):
        return False
    lo, _, hi = body["datetime"].partition("/")
    when = item["properties"]["datetime"]
    if when < lo or when > hi:
        return False
    m = re.fullmatch(r"eo:cloud_cover <= ([\d.]+)", body.get("filter") or "eo:cloud_cover <= 100")
    return m is not None and float(item["properties"]["eo:cloud_cover"]) <= float(m.group(1))


class _Handler(FaultyHandler):
    owner: SentinelHubServer

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        with self.owner._lock:
            ok = auth.startswith("Bearer ") and auth[7:] in self.owner.valid_tokens
            if ok and self.owner.token_uses is not None:
                uses = self.owner._uses[auth[7:]] = self.owner._uses.get(auth[7:], 0) + 1
                if uses >= self.owner.token_uses:
                    self.owner.valid_tokens.discard(auth[7:])
        if not ok:
            self._json({"error": {"status": 401, "reason": "Unauthorized", "message": "token expired or invalid"}}, 401)
        return ok

    def do_POST(self) -> None:  # noqa: N802
        srv = self.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv.requests.append(f"POST {self.path}")
        srv.seen_headers.append(json.dumps(dict(self.headers)))
        action = srv.faults.take("POST", self.path)
        if action is not None and action[0] == "status":
            return self._send(action[1], b'{"error": "injected"}', headers={"Retry-After": action[2]} if action[2] else {})
        if action is not None and action[0] == "drop":
            self.close_connection = True
            return None
        if self.path == TOKEN_PATH:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_secret")) != (srv.client_id, srv.client_secret):
                return self._json({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
            token = f"tok-{uuid.uuid4().hex}"
            with srv._lock:
                srv.valid_tokens.add(token)
                srv.tokens_issued += 1
            return self._json({"access_token": token, "expires_in": srv.expires_in, "token_type": "Bearer"})
        if not self._authorized():
            return None
        body = json.loads(raw or b"{}")
        if self.path == "/api/v1/catalog/1.0.0/search":
            if self.headers.get("Accept", "application/geo+json") not in ("application/geo+json", "*/*"):
                return self._json({"error": {"status": 406, "reason": "Not Acceptable", "message": "use application/geo+json"}}, 406)
            found = [i for i in srv.items if _matches(i, body)]
            offset = int(body.get("next") or 0)
            limit = min(int(body.get("limit") or srv.page_size), srv.page_size)
            links = []
            if offset + limit < len(found):
                links.append({"rel": "next", "href": f"{srv.url}/api/v1/catalog/1.0.0/search", "method": "POST", "body": {**body, "next": offset + limit}})
            return self._json(
                {
                    "type": "FeatureCollection",
                    "features": found[offset : offset + limit],
                    "links": links,
                    "context": {"returned": len(found[offset : offset + limit])},
                }
            )
        if self.path == "/api/v1/process":
            srv.process_bodies.append(body)
            size = (body["output"]["width"], body["output"]["height"])
            if max(size) > 2500:
                message = f"Output size {size[0]}x{size[1]} exceeds the limit of 2500x2500 pixels."
                return self._json({"error": {"status": 400, "reason": "Bad Request", "message": message, "code": "RENDERER_EXCEPTION"}}, 400)
            return self._send(200, srv.render(body), "image/tiff")
        return self._json({"error": "not found"}, 404)


def sh_item(item_id: str, when: str, cloud: float, bbox: list[float], baseline: str = "05.09") -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "sentinel-2-l1c",
        "bbox": bbox,
        "geometry": None,
        "properties": {"datetime": when, "eo:cloud_cover": cloud, "s2:processing_baseline": baseline},
        "assets": {},
        "links": [],
    }


def iso(day: date) -> str:
    return datetime(day.year, day.month, day.day, 10, 0, 0).isoformat() + "Z"


SentinelHubServer.handler = _Handler
