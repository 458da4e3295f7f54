"""Reading a fetched feed with feedparser: RSS 0.9x/1.0/2.0 and Atom, entry HTML sanitised (no
scripts, event handlers or styles). What is not a feed is a ``FetchError`` with one line (an HTML page
says which feed it names, malformed XML says where); what feedparser read despite a fault (an
encoding declared wrongly, an HTML entity XML does not define) comes back with a note."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urljoin

from index.fetch import Fetched, FetchError


def parse_feed(got: Fetched) -> tuple[Any, list[str]]:
    """feedparser's reading of a fetched body, or ``FetchError`` when it is not a feed; notes for what
    it read despite a fault (an encoding declared wrongly, an HTML entity XML does not know)."""
    import feedparser

    if not got.body.strip():
        raise FetchError("sent an empty body, not a feed")
    # a stream, never the bytes themselves: feedparser opens a body that names a local file, and reads that
    parsed = feedparser.parse(io.BytesIO(got.body), response_headers={
        "content-type": got.headers.get("content-type", ""), "content-location": got.url})
    notes: list[str] = []
    exc = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        found = _feed_link(got)
        if b"<html" in got.body[:2048].lower() or "html" in got.headers.get("content-type", ""):
            raise FetchError("sent an HTML page, not a feed" + (f"; the page names a feed at {found}: add that"
                                                                 " instead" if found else ""))
        raise FetchError(f"sent something that is not an RSS or Atom feed ({_brief(exc)})")
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        notes.append(f"{got.url}: {exc}; its text was read as {parsed.get('encoding')}")
    elif exc is not None and type(exc).__name__ == "SAXParseException":
        if "undefined entity" not in str(exc):
            raise FetchError(f"sent malformed XML ({_brief(exc)}); nothing read from it this time")
        notes.append(f"{got.url}: uses an entity XML does not define ({_brief(exc)}); read it as HTML does")
    return parsed, notes


def _feed_link(got: Fetched) -> str | None:
    """The feed an HTML page names in its ``<link rel="alternate">``."""
    import warnings

    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    for quiet in (MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning):  # advice for programmers, on stderr
        warnings.filterwarnings("ignore", category=quiet)
    soup = BeautifulSoup(got.body[:1_000_000], "lxml")
    for link in soup.find_all("link", href=True):
        kind = str(link.get("type", "")).lower()
        if "alternate" in link.get("rel", []) and ("rss" in kind or "atom" in kind):
            return urljoin(got.url, str(link["href"]))
    return None


def _brief(exc: BaseException | None) -> str:
    if exc is None:
        return "no feed elements"
    if type(exc).__name__ == "SAXParseException":
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"  # type: ignore[attr-defined]
    return " ".join(str(exc).split())[:120] or type(exc).__name__
