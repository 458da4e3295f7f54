"""Fetching a feed or an article page over HTTP, politely and within bounds: a User-Agent naming
the project, conditional GET (ETag / Last-Modified), a deadline for the whole fetch (not only
between bytes), a size limit enforced while streaming, and redirects followed up to a limit, a loop
named as one. Every failure is a ``FetchError`` with one line that says what happened.

httpx does the HTTP; redirects are followed here, one hop at a time, only to name a loop by its
URLs and to tell a permanent move (the feed's address should change) from a temporary one."""

from __future__ import annotations

import functools
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

USER_AGENT = "stdnews/0.1 (standards-news assistant; feed reader)"
FEED_TYPES = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9"
PAGE_TYPES = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


class FetchError(Exception):
    """A fetch that gave nothing usable; ``str`` is the one line to show. ``retry_after`` (s): the
    server asked us to wait (429/503 with Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Fetched:
    """What a GET brought back: 304 (``not_modified``, no body) or 200 with its body."""

    url: str  # where the body came from, after redirects
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    moved_to: str | None = None  # a permanent redirect (301/308) from the URL asked for: the new address

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def fetch(url: str, *, timeout: float, max_bytes: int, max_redirects: int = 5, etag: str | None = None,
          last_modified: str | None = None, accept: str = FEED_TYPES) -> Fetched:
    """GET ``url`` (conditionally, when ``etag`` / ``last_modified`` are given); raises ``FetchError``."""
    import httpx

    headers = {"User-Agent": USER_AGENT, "Accept": accept, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + timeout
    seen = [url]
    moved_to: str | None = None
    permanent = True
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False,
                      verify=_tls()) as client:
        while True:
            _check_scheme(seen[-1])
            try:
                with client.stream("GET", seen[-1], headers=headers) as resp:
                    if resp.is_redirect and resp.next_request is not None:
                        target = str(resp.next_request.url)
                        permanent = permanent and resp.status_code in (301, 308)
                        if target in seen:
                            raise FetchError("redirects in a loop (" + " -> ".join([*seen[seen.index(target):],
                                                                                  target]) + ")")
                        if len(seen) > max_redirects:
                            raise FetchError(f"redirected more than {max_redirects} times (last to {target})")
                        seen.append(target)
                        moved_to = target if permanent else None
                        continue
                    if resp.status_code == 304:
                        return Fetched(seen[-1], 304, headers=dict(resp.headers), moved_to=moved_to)
                    if resp.status_code >= 400:
                        raise FetchError(f"answered HTTP {resp.status_code} {resp.reason_phrase}".rstrip(),
                                         _retry_after(resp.headers.get("retry-after")))
                    body = _read(resp, max_bytes, deadline, timeout)
                    return Fetched(seen[-1], resp.status_code, body, dict(resp.headers), moved_to)
            except httpx.TimeoutException:
                raise FetchError(f"did not answer within {timeout:g} s (timed out)") from None
            except httpx.ConnectError as exc:
                raise FetchError(f"cannot connect ({_reason(exc)})") from None
            except httpx.DecodingError:
                raise FetchError("sent a body that does not decompress (broken gzip/deflate)") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"HTTP failed ({type(exc).__name__}: {_reason(exc)})") from None


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: loading the system's CA certificates took 34 ms a fetch, most of a
    poll of a feed that answers 304."""
    return ssl.create_default_context()


def _read(resp: object, max_bytes: int, deadline: float, timeout: float) -> bytes:
    """The body, refused as soon as it passes ``max_bytes`` (declared or streamed) or the deadline."""
    limit = f"{max_bytes / 2**20:g} MiB"
    declared = resp.headers.get("content-length", "")  # type: ignore[attr-defined]
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"is too large ({int(declared) / 2**20:.0f} MiB declared; the limit is {limit})")
    parts: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():  # type: ignore[attr-defined]
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"is too large (sent more than {limit}; the limit is {limit}); nothing read from it")
        if time.monotonic() > deadline:
            raise FetchError(f"did not finish sending within {timeout:g} s (timed out)")
        parts.append(chunk)
    return b"".join(parts)


def _check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{url!r} is not an http(s) URL")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    for known in ("Connection refused", "Name or service not known", "No route to host", "Network is unreachable",
                  "Temporary failure in name resolution"):
        if known.lower() in text.lower():
            return known.lower()
    return " ".join(text.split())[:120]
