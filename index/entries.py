"""One feed entry as one bulletin: its identity (id/guid, else link + title), a fingerprint that
changes when its content does, its catalog entry (title, publisher, date, url) and its text as a
small HTML file. feedparser has already removed scripts, event handlers and styles from the
entry's HTML; where the entry carries only a summary, the linked page's main text (trafilatura:
no navigation, scripts or boilerplate) is used when it says more."""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from index.load import strip_controls

FUTURE_SLACK_S = 86400  # time zones: an entry dated up to a day ahead is taken as dated
SLUG_MAX = 60


@dataclass
class Bulletin:
    """What one entry becomes: the HTML to write, its catalog entry, and notes for the user."""

    key: str  # the entry's identity within its feed
    fingerprint: str
    slug: str  # file name stem, chosen once when the entry is first seen
    html: str
    catalog: dict[str, str]
    notes: list[str] = field(default_factory=list)


def entry_key(entry: Any) -> str:
    """id/guid, else link + title: the same entry on every poll, even when its text changes."""
    if entry.get("id"):
        return f"id:{entry['id']}"
    return "lt:" + hashlib.sha256(f"{entry.get('link', '')}\n{entry.get('title', '')}".encode()).hexdigest()[:24]


def entry_fingerprint(entry: Any) -> str:
    """Changes when what the entry says changes (title, link, text, its updated date)."""
    parts = [entry.get("title", ""), entry.get("link", ""), entry.get("summary", ""),
             *(c.get("value", "") for c in entry.get("content", [])), entry.get("updated", "")]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()


def to_bulletin(entry: Any, publisher: str, slug: str | None,
                fetch_page: Callable[[str], str | None], now: float | None = None) -> Bulletin:
    """The bulletin of ``entry``; ``slug`` is the one it already has (None: a new entry, one is made).
    ``fetch_page(url)`` returns the main text of a page as HTML, or None when it cannot be read."""
    now = time.time() if now is None else now
    notes: list[str] = []
    title = _plain(entry.get("title", ""))
    label = title or entry.get("link") or entry_key(entry)
    date = _date(entry, now, notes, label)
    body = _content(entry)
    if not body:
        summary = entry.get("summary", "")
        link = entry.get("link", "")
        page = fetch_page(link) if link else None
        if page and len(_text(page)) > len(_text(summary)):
            body = page
        else:
            body = summary
            if link and page is None:
                notes.append(f"entry {label!r}: its page {link} could not be read; kept its summary")
    if not title:
        notes.append(f"entry {label!r} has no title; titled by its first line")
    if not _text(body) and not title:
        notes.append(f"entry {label!r} has no text")
    catalog = {"title": title, "publisher": publisher, "date": date or "", "url": entry.get("link", "")}
    catalog = {k: v for k, v in catalog.items() if v}
    heading = f"<h1>{escape(title)}</h1>\n" if title and not _text(body).startswith(title) else ""
    html = (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{escape(title or label)}</title></head>\n'
            f"<body><article>\n{heading}{body.strip()}\n</article></body></html>\n")
    return Bulletin(entry_key(entry), entry_fingerprint(entry), slug or make_slug(title or label, date), html,
                    catalog, notes)


def make_slug(text: str, date: str | None) -> str:
    """A file name stem: the date, then the title's words in lower case, accents dropped (letters of
    any script are kept), anything else a hyphen."""
    import unicodedata

    bare = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    words = re.sub(r"[\W_]+", "-", bare).strip("-")[:SLUG_MAX].rstrip("-") or "entry"
    return f"{date}-{words}" if date else words


def page_main_html(html: str | bytes) -> str | None:
    """The main text of an article page as simple HTML (trafilatura), None when it finds none."""
    import trafilatura

    out = trafilatura.extract(html, output_format="html", include_comments=False, include_tables=True,
                              include_links=False, include_images=False)
    if not out:
        return None
    m = re.search(r"<body>(.*)</body>", out, flags=re.S)
    return (m.group(1) if m else out).strip() or None


def _content(entry: Any) -> str:
    """The entry's full text (Atom content, RSS content:encoded), HTML as feedparser sanitised it."""
    parts = []
    for c in entry.get("content", []):
        value = c.get("value", "")
        parts.append(value if "html" in c.get("type", "") else f"<pre>{escape(value)}</pre>" if value else "")
    return "\n".join(p for p in parts if _text(p))


def _date(entry: Any, now: float, notes: list[str], label: str) -> str | None:
    """The entry's date (published, else updated), YYYY-MM-DD; a date in the future gives way to the
    day it was first seen (it cannot be later than that), and no date stays none (not guessed)."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        notes.append(f"entry {label!r} has no date; catalogued without one")
        return None
    stamp = calendar.timegm(parsed)
    if stamp > now + FUTURE_SLACK_S:
        seen = time.strftime("%Y-%m-%d", time.gmtime(now))
        notes.append(f"entry {label!r} is dated {time.strftime('%Y-%m-%d', parsed)}, in the future;"
                     f" catalogued as {seen}, the day it was first seen")
        return seen
    return time.strftime("%Y-%m-%d", parsed)


def _plain(text: str) -> str:
    return " ".join(strip_controls(text).split())


def _text(html: str) -> str:
    return re.sub(r"<[^>]*>|\s+", " ", html or "").strip()
