"""STAC API item search: POST /search with the patch's bbox, dates and cloud filter, through every page.

Why its own module: paging is where real catalogues differ (POST or GET ``next`` links, merged
bodies, Planetary Computer's full pages without a ``next`` link); the STAC source, Sentinel Hub's
catalogue and the OLCI search all go through this one loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

import requests

from ..core.errors import ServiceError
from ..core.monitor import Monitor, ensure_monitor
from ..core.redaction import join_url
from ..io.http import DEFAULT_POLICY, HttpClient, RetryPolicy
from .base import cloud_cover

DEFAULT_STAC_URL = "https://earth-search.aws.element84.com/v1"
_PAGE_LIMIT = 100
_MAX_PAGES = 1000


def stac_client(stac_url: str, policy: RetryPolicy) -> HttpClient:
    """The HTTP client of a STAC API; its failures name the ``stac_url`` argument."""
    return HttpClient(f"The STAC API at {stac_url}", "stac_url", policy=policy)


def _on_status(stac_url: str, method: str, url: str) -> Callable[[requests.Response], str]:
    def message(resp: requests.Response) -> str:
        hint = ""
        if resp.status_code in (404, 405):
            hint = f" Is it the root URL of a STAC API (e.g. {DEFAULT_STAC_URL})?"
        elif resp.status_code in (401, 403):
            hint = " This STAC API needs credentials this plugin does not send; use a preset or an open API."
        return f"The STAC API at {stac_url} answered HTTP {resp.status_code} to {method} {url}: {resp.text[:200]}{hint}"

    return message


def search_items(
    stac_url: str,
    collection: str,
    bbox_wgs84: tuple[float, float, float, float],
    start: date,
    end: date,
    max_cloud: float | None,
    *,
    timeout: float | None = None,
    monitor: Monitor | None = None,
    client: HttpClient | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
    retry_unauthorized: Callable[..., bool] | None = None,
    cql2: bool = False,
    accept: str = "application/geo+json, application/json",
) -> list[dict]:
    """All items of ``collection`` over the bbox between the dates (inclusive) with cloud cover <= max
    (``max_cloud`` None: no cloud filter, for collections whose items carry no ``eo:cloud_cover``).

    Follows the ``next`` links (POST with body, or GET) until the result is exhausted. A full
    page without a ``next`` link (Planetary Computer omits it at times, which would end the
    search silently at one page) is said in the log and the date range searched again in
    halves, down to single days. ``cql2`` sends the cloud filter as CQL2 (Sentinel Hub's
    catalogue) instead of the query extension; ``headers`` may be a function (a bearer token
    that can be refreshed by ``retry_unauthorized``); ``accept`` is the Accept header.
    """
    monitor = ensure_monitor(monitor)
    if timeout is not None:
        policy = RetryPolicy(**{**policy.__dict__, "timeout": timeout})
    own_client = client is None
    client = client or stac_client(stac_url, policy)

    def pages(first: date, last: date) -> tuple[list[dict], bool]:
        body: dict = {
            "collections": [collection],
            "bbox": [float(v) for v in bbox_wgs84],
            "datetime": f"{first.isoformat()}T00:00:00Z/{last.isoformat()}T23:59:59Z",
            "limit": _PAGE_LIMIT,
        }
        if max_cloud is not None and cql2:
            body.update({"filter": f"eo:cloud_cover <= {max_cloud:g}", "filter-lang": "cql2-text"})
        elif max_cloud is not None:
            body["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
        request = {"Accept": accept}
        return _follow_pages(client, stac_url, body, lambda: {**request, **(headers() if callable(headers) else (headers or {}))}, monitor, retry_unauthorized)

    def split(first: date, last: date) -> list[dict]:
        items, truncated = pages(first, last)
        if not truncated:
            return items
        if first >= last:
            raise ServiceError(
                f"The STAC API at {stac_url} answered a full page of {len(items)} items for {first} without a link to the next "
                "page, so not all items of that day can be listed; choose a smaller area or another STAC API.",
                client.argument,
            )
        mid = first + (last - first) // 2
        monitor.info(
            f"The STAC API at {stac_url} answered a full page of {len(items)} items for {first}..{last} without a 'next' link "
            f"(the search would end there silently): searching {first}..{mid} and {mid + timedelta(days=1)}..{last} separately."
        )
        return split(first, mid) + split(mid + timedelta(days=1), last)

    try:
        found = {item.get("id"): item for item in split(start, end)}
    finally:
        if own_client:
            client.close()
    # Servers without the query extension ignore the cloud filter: apply it here too.
    return [item for item in found.values() if max_cloud is None or cloud_cover(item) <= max_cloud]


def _follow_pages(
    client: HttpClient,
    stac_url: str,
    body: dict,
    headers: Callable[[], dict[str, str]],
    monitor: Monitor,
    retry_unauthorized: Callable[..., bool] | None,
) -> tuple[list[dict], bool]:
    """The items of one search through all its ``next`` links, and whether the last page looked cut
    short: as many items as the limit asked, no ``next`` link, and no ``numberMatched`` saying that was all."""
    url, method = join_url(stac_url, "search"), "POST"
    found: dict[str, dict] = {}
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        monitor.check()
        resp = client.request(
            method,
            url,
            json=body if method == "POST" else None,
            headers=headers,
            monitor=monitor,
            on_status=_on_status(stac_url, method, url),
            retry_unauthorized=retry_unauthorized,
        )
        try:
            page = resp.json()
        except ValueError:
            page = None
        if not isinstance(page, dict) or not isinstance(page.get("features"), list):
            raise ServiceError(f"{url} did not answer with a STAC item list; is {stac_url} the root URL of a STAC API?", client.argument)
        for item in page["features"]:
            found.setdefault(item.get("id"), item)
        nxt = next((link for link in page.get("links") or [] if link.get("rel") == "next"), None)
        if nxt is None or not nxt.get("href"):
            matched = page.get("numberMatched", (page.get("context") or {}).get("matched"))
            full = len(page["features"]) == _PAGE_LIMIT  # more than asked: a server that does not page at all
            return list(found.values()), full and not (isinstance(matched, int) and matched <= len(found))
        if not page["features"]:
            break
        method = str(nxt.get("method") or "GET").upper()
        url = nxt["href"]
        if method == "POST":
            new_body = nxt.get("body")
            body = {**body, **(new_body or {})} if nxt.get("merge") else (new_body if new_body is not None else body)
        key = json.dumps([method, url, body if method == "POST" else None], sort_keys=True, default=str)
        if key in seen:  # a server that keeps answering the same page
            break
        seen.add(key)
    return list(found.values()), False
