"""Planetary Computer asset signing: its blob storage reads only URLs that carry a SAS token.

Why a class: the token belongs to a collection and expires (``msft:expiry``); the reads of many
threads share one, renewed before it runs out or when storage refuses it.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from urllib.parse import quote

from ..core.monitor import Monitor
from ..io.http import DEFAULT_POLICY, HttpClient, HttpError, RetryPolicy

PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"


class PlanetaryComputerSigner:
    """Appends a Planetary Computer SAS token to asset hrefs; one token per collection, renewed
    before it expires (``msft:expiry``) or when storage refuses it."""

    def __init__(self, collection: str, token_url: str = PC_TOKEN_URL, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.collection = collection
        self.token_url = token_url.rstrip("/")
        self._client = HttpClient(f"The Planetary Computer token endpoint {self.token_url}", "preset", policy=policy, secrets=lambda: [self._token or ""])
        self._token: str | None = None
        self._expiry = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def token(self, monitor: Monitor | None = None) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expiry - 300:
                answer = self._client.get_json(f"{self.token_url}/{quote(self.collection)}", monitor=monitor)
                data = answer if isinstance(answer, dict) else {}
                token = data.get("token")
                if not token:
                    raise HttpError(f"{self._client.name} answered without a token.", "preset")
                self._token = str(token).lstrip("?")
                self.fetches += 1
                expiry = data.get("msft:expiry")
                try:
                    when = datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
                    self._expiry = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
                except ValueError:
                    self._expiry = time.time() + 600
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def sign(self, href: str, monitor: Monitor | None = None) -> str:
        if not href.startswith(("http://", "https://")):
            return href
        return href + ("&" if "?" in href else "?") + self.token(monitor)

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []

    def close(self) -> None:
        """Release the token endpoint's connections."""
        self._client.close()
