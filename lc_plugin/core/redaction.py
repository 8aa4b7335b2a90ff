"""Keep secrets out of everything a person or a file will see, and join URLs without losing them.

Why one helper: a STAC URL may carry a password (``https://user:pw@host/``) or a token in its
query (``?token=…``, a signed URL's ``sig=`` / ``X-Amz-Signature=``). The URL itself must reach
the server intact, but every message, log line, metadata tag and report gets the redacted
form, so the same function is applied wherever text leaves the engine.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Query keys whose values are credentials (case-insensitive, matched anywhere in the key).
_SECRET_KEY = re.compile(r"token|key|sig|secret|pass|pwd|auth|credential|session|security|jwt|bearer|code", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# A query fragment outside a full URL (e.g. "url: /search?token=…" in a requests error).
_QUERY_PAIR = re.compile(r"(?<=[?&])([^=&\s'\"<>]+)=([^&\s'\"<>]*)")


def _mask_pair(match: re.Match) -> str:
    key, value = match.group(1), match.group(2)
    return f"{key}={MASK}" if value and _SECRET_KEY.search(key) else match.group(0)


def redact_url(url: str) -> str:
    """``url`` with its password (user:password@) and secret query values replaced by ``***``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _QUERY_PAIR.sub(_mask_pair, url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = _QUERY_PAIR.sub(_mask_pair, "?" + parts.query)[1:] if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted, and secret ``?key=value`` pairs outside URLs masked."""
    if not text:
        return text
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return _QUERY_PAIR.sub(_mask_pair, text)


def has_redaction(url: str) -> bool:
    """True for a URL whose secrets were masked (e.g. read back from a saved parameters file)."""
    return MASK in (url or "")


def join_url(base: str, path: str) -> str:
    """``base`` + ``/path``, keeping base's query string: ``https://h/?token=x`` + ``search`` →
    ``https://h/search?token=x`` (plain string concatenation would put the path inside the token)."""
    parts = urlsplit(base)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, parts.query, parts.fragment))
