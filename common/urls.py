"""URLs as they may appear in logs and errors: without the credentials they may carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` with any user:password@ replaced by ``***@`` (and a query string dropped, since
    API keys travel there too); the URL itself if it cannot be parsed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    # Not parts.hostname/port: a bad port would raise, and the place is worth showing then.
    netloc = "***@" + parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
