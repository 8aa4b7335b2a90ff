"""HTTP with retries for the download sources: STAC searches, token endpoints, the Process API.

Why: a country-scale download makes tens of thousands of requests over hours; transient
failures (timeouts, dropped connections, 429 rate limits, 5xx, bodies cut short) must cost a
pause, not the run. Permanent failures (401/403, 404, bad requests) must fail at once with a
message that says what to fix, and never echo a secret.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3

from ..core.errors import ServiceError
from ..core.monitor import Monitor, ensure_monitor
from ..core.redaction import redact_text

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    The n-th retry waits ``min(max_delay, backoff * 2**n)`` seconds, or what the server's
    Retry-After asks (capped at ``max_retry_after``). ``deadline`` bounds a request and all its
    retries together: a server that accepts connections and never answers costs that long, not
    ``(retries + 1) * timeout``.
    """

    retries: int = 5
    backoff: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0
    timeout: float = 60.0
    deadline: float = 180.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.backoff * (2**attempt))


DEFAULT_POLICY = RetryPolicy()


class HttpError(ServiceError):
    """A request that failed for good; ``status`` is the last HTTP status (None: no answer)."""

    def __init__(self, message: str, argument: str | None = None, status: int | None = None) -> None:
        super().__init__(message, argument)
        self.status = status


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds asked by a Retry-After header (delta seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def sleep_or_cancel(seconds: float, monitor: Monitor | None) -> None:
    """Wait, checking for cancel every 0.1 s so a cancel during a backoff acts within a second."""
    end = time.monotonic() + seconds
    while True:
        if monitor is not None:
            monitor.check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (server error bodies may echo what we sent),
    and every URL in it redacted (passwords, tokens in query strings)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return redact_text(text)


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made at all (refused, unknown host), not when one broke."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError) or "NewConnectionError" in repr(exc)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).split(': ')[-1][:150]}"


class HttpClient:
    """A ``requests`` session with retries, truncation checks, secret redaction and cancel.

    ``name`` is the service as a user knows it ("the STAC API at https://..."), ``argument``
    the engine argument that chose it (the error's ``argument``); the name goes into error messages.
    """

    def __init__(
        self,
        name: str,
        argument: str | None,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        secrets: Callable[[], Iterable[str]] | None = None,
        user_agent: str = "lc-plugin (QGIS land cover)",
    ) -> None:
        self.name = redact_text(name)
        self.argument = argument
        self.policy = policy
        self._secrets = secrets or (lambda: ())
        self._local = threading.local()
        self._user_agent = user_agent
        self._answered: set[str] = set()
        self.attempts = 0  # requests sent, retries included (for benchmarks and tests)
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []

    @property
    def session(self) -> requests.Session:
        """One session per thread (requests sessions are not thread-safe)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self._user_agent
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close the sessions of every thread (their pooled connections)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def request(
        self,
        method: str,
        url: str,
        *,
        monitor: Monitor | None = None,
        on_status: Callable[[requests.Response], str | None] | None = None,
        retry_unauthorized: Callable[[requests.Response], bool] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        """Send a request, retrying transient failures; return a 2xx/3xx response with its full body.

        ``headers`` may be a function, called for every attempt (a refreshed token).
        ``on_status(resp)`` may return a message for a 4xx answer (e.g. which credential was
        refused); ``retry_unauthorized(resp)`` is called once on a 401 and, when it returns True
        (a token was refreshed), the request is sent again.
        """
        monitor = ensure_monitor(monitor)
        policy = self.policy
        timeout = float(kwargs.pop("timeout", policy.timeout))  # type: ignore[arg-type]
        give_up = time.monotonic() + policy.deadline
        headers = kwargs.pop("headers", None)
        host = urlsplit(url).netloc
        refreshed = False
        attempt = 0
        while True:
            monitor.check()
            with self._lock:
                self.attempts += 1
            wait: float | None = None
            problem = ""
            resp: requests.Response | None = None
            try:
                hdrs = headers() if callable(headers) else headers
                left = max(0.1, give_up - time.monotonic())
                resp = self.session.request(method, url, headers=hdrs, timeout=min(timeout, left), **kwargs)
                body = resp.content  # read it all now, inside the retry loop
            except requests.exceptions.Timeout as exc:
                problem = f"no answer within {min(timeout, left):.0f} s ({type(exc).__name__})"
            except requests.exceptions.ConnectionError as exc:
                if host not in self._answered and _never_connected(exc):
                    # Never reached: a wrong URL or a server that is down; say so now.
                    raise HttpError(
                        f"{self.name} could not be reached ({self.redact(_short(exc))}). " "Check the URL and the internet connection.", self.argument
                    ) from None
                problem = f"connection failed ({self.redact(_short(exc))})"
            except requests.exceptions.ChunkedEncodingError as exc:
                problem = f"the answer was cut short ({self.redact(_short(exc))})"
            except requests.exceptions.RequestException as exc:
                raise HttpError(f"{self.name}: request failed ({self.redact(_short(exc))}).", self.argument) from None
            else:
                self._answered.add(host)
                expected = resp.headers.get("Content-Length")
                encoded = resp.headers.get("Content-Encoding", "identity") not in ("", "identity")
                if expected is not None and not encoded and method != "HEAD" and expected.isdigit() and len(body) < int(expected):
                    problem = f"the answer was cut short ({len(body)} of {expected} bytes)"
                elif resp.status_code == 401 and retry_unauthorized is not None and not refreshed and retry_unauthorized(resp):
                    refreshed = True
                    continue
                elif resp.status_code in RETRY_STATUSES:
                    problem = f"HTTP {resp.status_code}"
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                    if wait is not None:
                        wait = min(wait, policy.max_retry_after)
                elif resp.status_code >= 400:
                    message = on_status(resp) if on_status is not None else None
                    if not message:
                        message = f"{self.name} answered HTTP {resp.status_code} to {method} {url}: {resp.text[:200]}"
                    raise HttpError(self.redact(message), self.argument, resp.status_code)
                else:
                    return resp
            delay = policy.delay(attempt) if wait is None else wait
            out_of_time = time.monotonic() + delay >= give_up
            if attempt >= policy.retries or out_of_time:
                status = resp.status_code if resp is not None and problem.startswith("HTTP") else None
                detail = ""
                if status is not None and resp is not None:
                    detail = ": " + self.redact(resp.text[:200])
                if problem.startswith("no answer"):
                    lead = f"{self.name} could not be reached: {problem}"
                else:
                    lead = f"{self.name} failed: {problem}{detail}"
                within = f" within the overall deadline of {policy.deadline:g} s" if out_of_time else ""
                raise HttpError(f"{lead}, after {attempt + 1} attempts{within}. Try again later.", self.argument, status)
            monitor.info(f"{self.name}: {problem}; retry {attempt + 1}/{policy.retries} in {delay:.1f} s")
            sleep_or_cancel(delay, monitor)
            attempt += 1

    def get_json(self, url: str, *, monitor: Monitor | None = None) -> object:
        resp = self.request("GET", url, monitor=monitor)
        return self._json(resp, url)

    def _json(self, resp: requests.Response, url: str) -> object:
        try:
            return resp.json()
        except ValueError:
            raise HttpError(self.redact(f"{self.name} did not answer {url} with JSON: {resp.text[:200]}"), self.argument) from None
