"""News feeds (RSS 2.0, RSS 1.0, Atom) as a source of bulletins: each entry becomes one file under
``<corpus>/feeds/<feed>/`` with its catalog entry, so the ordinary index update indexes it.

Feed state (address, ETag / Last-Modified, last poll, last error, failures, entry ids and their
files) is one JSON file in the data directory, replaced atomically under a lock; fetching happens
outside the lock, so ``feeds list`` and a second poller never wait on a slow server. A feed that
fails is retried later and later (its interval doubled per failure, at most a day); its entries
already in the corpus stay, and so do entries that left the feed (feeds are windows, not archives)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from index.catalog import replace_entries
from index.entries import entry_fingerprint, entry_key, make_slug, page_main_html, to_bulletin
from index.errors import UserError
from index.feedparse import parse_feed
from index.fetch import PAGE_TYPES, Fetched, FetchError, fetch
from index.settings import Settings

FOLDER = "feeds"  # inside the corpus
STATE = "feeds.json"  # inside the data directory
MAX_BACKOFF_S = 86400.0
POLL_WORKERS = 8  # feeds fetched at once; each server still sees one request at a time from us


@dataclass
class PollResult:
    """What one poll of one feed did: bulletins written (new, changed), notes, or its error."""

    name: str
    url: str
    status: str = "ok"  # ok | not modified | error
    added: list[str] = field(default_factory=list)  # doc_ids
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    next_poll: float = 0.0

    @property
    def written(self) -> list[str]:
        return [*self.added, *self.changed]

    def line(self) -> str:
        """One line for the terminal."""
        if self.error:
            return f"feed {self.name}: error: {self.error}"
        if self.status == "not modified":
            return f"feed {self.name}: not modified"
        return (f"feed {self.name}: {len(self.added)} new, {len(self.changed)} changed,"
                f" {self.unchanged} unchanged entries")


class FeedBook:
    """The feed state of one data directory, and the corpus folder its bulletins go to."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.home / STATE
        self.corpus = settings.corpus

    def feeds(self) -> dict[str, dict[str, Any]]:
        """Every feed by name (a snapshot; the file is only ever replaced whole)."""
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8")).get("feeds", {}))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: cannot be read ({exc}); move it away to start afresh") from None

    @contextlib.contextmanager
    def editing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The feeds under the lock, written back (atomically) when the block ends without error."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with open(self.settings.home / "feeds.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                feeds = self.feeds()
                yield feeds
                tmp = self.path.with_name(f".{STATE}.part")
                tmp.write_text(json.dumps({"feeds": feeds}, ensure_ascii=False), encoding="utf-8")  # no indent: fast
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # subscribing -------------------------------------------------------------
    def add(self, url: str, name: str | None = None, publisher: str | None = None,
            interval_min: float | None = None, progress: bool = False) -> PollResult:
        """Subscribe to a feed after reading it once (a URL that gives no feed is refused, nothing
        kept), and write its entries as bulletins."""
        url = url.strip()
        norm = normalise_url(url)
        interval = self._interval(interval_min)
        for other in self.feeds().values():
            if norm in (normalise_url(other["url"]), normalise_url(other.get("asked_url", other["url"]))):
                raise UserError(f"{url} is already a feed, as '{other['name']}'; nothing was added")
        if name is not None and not make_slug(name, None).strip("-"):
            raise UserError(f"feed name {name!r} has no letters or digits; give another --name")
        try:
            got = fetch(url, **self._limits())
            parsed, notes = parse_feed(got)
        except FetchError as exc:
            raise UserError(f"{url} {exc}; nothing was added") from None
        title = " ".join(str(parsed.feed.get("title", "")).split())
        with self.editing() as feeds:
            base = make_slug(name, None) if name else make_slug(title or urlsplit(url).hostname or "feed", None)
            if name and base in feeds:
                raise UserError(f"a feed named '{base}' already exists; give another --name")
            chosen, n = base, 2
            while chosen in feeds:
                chosen, n = f"{base}-{n}", n + 1
            feeds[chosen] = {"name": chosen, "url": got.moved_to or url, "asked_url": url,
                             "publisher": (publisher or "").strip() or title or urlsplit(url).hostname or chosen,
                             "title": title, "interval_s": interval, "added": time.time(), "etag": None,
                             "last_modified": None, "last_poll": None, "last_ok": None, "last_error": None,
                             "failures": 0, "next_poll": 0.0, "entries": {}, "notes": []}
        return self._apply(chosen, got, parsed, notes, progress)

    def remove(self, name: str, delete_bulletins: bool = False) -> list[str]:
        """Stop polling a feed; with ``delete_bulletins`` its files and catalog entries go too (an index
        update then removes them). Returns the doc_ids of its bulletins."""
        with self.editing() as feeds:
            if name not in feeds:
                known = ", ".join(sorted(feeds)) or "none"
                raise UserError(f"no feed named {name!r} (feeds: {known}); see 'stdnews feeds list'")
            feed = feeds.pop(name)
            doc_ids = sorted(e["doc_id"] for e in feed["entries"].values())
            if delete_bulletins:
                for doc_id in doc_ids:
                    (self.corpus / f"{doc_id}.html").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    (self.corpus / FOLDER / name).rmdir()
                if doc_ids:
                    replace_entries(self.corpus, dict.fromkeys(doc_ids))
        return doc_ids

    # polling -----------------------------------------------------------------
    def due(self, now: float | None = None) -> list[str]:
        """Feeds whose interval (or back-off after failures) has passed."""
        now = time.time() if now is None else now
        return [n for n, f in sorted(self.feeds().items()) if (f.get("next_poll") or 0) <= now]

    def poll(self, names: Sequence[str] | None = None, progress: bool = False,
             on_result: Callable[[PollResult], None] | None = None) -> list[PollResult]:
        """Poll these feeds (default: all) now, ``POLL_WORKERS`` at a time (a feed's server, not our CPU,
        is what a poll mostly waits for); a failing feed is that feed's error, never the others'.
        Results come in the order of ``names``; ``on_result`` sees each as it arrives."""
        from concurrent.futures import ThreadPoolExecutor

        feeds = self.feeds()
        for name in names or ():
            if name not in feeds:
                raise UserError(f"no feed named {name!r} (feeds: {', '.join(sorted(feeds)) or 'none'})")
        todo = list(names or sorted(feeds))

        def one(name: str) -> PollResult:
            try:
                result = self.poll_one(name, progress and len(todo) == 1)
            except UserError as exc:  # the catalog cannot take its entries, say: this feed's error only
                result = PollResult(name, feeds[name]["url"], "error", error=str(exc))
            if on_result:
                on_result(result)
            return result

        if len(todo) <= 1:
            return [one(n) for n in todo]
        with ThreadPoolExecutor(min(POLL_WORKERS, len(todo)), thread_name_prefix="stdnews-poll") as pool:
            return list(pool.map(one, todo))

    def poll_one(self, name: str, progress: bool = False) -> PollResult:
        feed = self.feeds().get(name)
        if feed is None:
            return PollResult(name, "", "error", error="no longer a feed (removed)")
        try:
            got = fetch(feed["url"], etag=feed.get("etag"), last_modified=feed.get("last_modified"),
                        **self._limits())
            if got.not_modified:
                return self._record(name, got, PollResult(name, feed["url"], "not modified"))
            parsed, notes = parse_feed(got)
        except FetchError as exc:
            return self._fail(name, feed["url"], str(exc), exc.retry_after)
        return self._apply(name, got, parsed, notes, progress)

    def _apply(self, name: str, got: Fetched, parsed: Any, notes: list[str], progress: bool) -> PollResult:
        """Write the feed's new and changed entries as bulletins (catalog first, then the files, so an
        index update never sees a file without its entry) and record the poll."""
        feed = self.feeds()[name]
        result = PollResult(name, feed["url"], notes=list(notes))
        known: dict[str, dict[str, str]] = feed["entries"]
        folder = self.corpus / FOLDER / name
        taken = {e["doc_id"].rsplit("/", 1)[-1] for e in known.values()}
        todo = []
        for entry in _progress(parsed.entries, progress, name):
            key = entry_key(entry)
            had = known.get(key)
            if had and had.get("fp") == entry_fingerprint(entry):
                result.unchanged += 1
                continue
            slug = had["doc_id"].rsplit("/", 1)[-1] if had else None
            bulletin = to_bulletin(entry, feed["publisher"], slug, self._page)
            if not had:
                base, n = bulletin.slug, 2
                while bulletin.slug in taken:
                    bulletin.slug, n = f"{base}-{n}", n + 1
                taken.add(bulletin.slug)
            todo.append((bulletin, had))
            result.notes += bulletin.notes
        with self.editing() as feeds:
            if name not in feeds:  # removed while this poll fetched
                return PollResult(name, feed["url"], "error", error="removed while it was polled")
            entries = feeds[name]["entries"]
            catalog = {f"{FOLDER}/{name}/{b.slug}": b.catalog for b, _ in todo}
            if catalog:
                folder.mkdir(parents=True, exist_ok=True)
                replace_entries(self.corpus, catalog)
            for bulletin, had in todo:
                doc_id = f"{FOLDER}/{name}/{bulletin.slug}"
                path = self.corpus / f"{doc_id}.html"
                data = bulletin.html.encode("utf-8")
                if not path.is_file() or path.read_bytes() != data or not had:
                    tmp = path.with_name(f".{path.name}.part")
                    tmp.write_bytes(data)
                    os.replace(tmp, path)  # atomic: the watcher never reads half a file
                    (result.changed if had else result.added).append(doc_id)
                entries[bulletin.key] = {"doc_id": doc_id, "fp": bulletin.fingerprint}
            self._succeed(feeds[name], got, result)
        return result

    def _record(self, name: str, got: Fetched, result: PollResult) -> PollResult:
        with self.editing() as feeds:
            if name in feeds:
                self._succeed(feeds[name], got, result)
        return result

    def _succeed(self, feed: dict[str, Any], got: Fetched, result: PollResult) -> None:
        now = time.time()
        if got.moved_to:  # a permanent redirect: poll the new address from now on
            feed["url"] = result.url = got.moved_to
            result.notes.append(f"moved permanently to {got.moved_to}; polling it there from now on")
        if not got.not_modified:
            feed["etag"] = got.headers.get("etag")
            feed["last_modified"] = got.headers.get("last-modified")
        feed.update(last_poll=now, last_ok=now, last_error=None, failures=0,
                    next_poll=now + feed["interval_s"])
        if not got.not_modified:
            feed["notes"] = result.notes[-20:]
        result.next_poll = feed["next_poll"]

    def _fail(self, name: str, url: str, error: str, retry_after: float | None) -> PollResult:
        result = PollResult(name, url, "error", error=f"{url} {error}")
        with self.editing() as feeds:
            if name in feeds:
                feed, now = feeds[name], time.time()
                feed["failures"] = int(feed.get("failures") or 0) + 1
                wait = min(feed["interval_s"] * 2 ** (feed["failures"] - 1), MAX_BACKOFF_S)
                feed.update(last_poll=now, last_error=result.error, next_poll=now + max(wait, retry_after or 0))
                result.next_poll = feed["next_poll"]
        return result

    def _page(self, url: str) -> str | None:
        """The main text of an entry's page, or None when it cannot be fetched or holds none."""
        try:
            got = fetch(url, accept=PAGE_TYPES, **self._limits())
        except FetchError:
            return None
        return page_main_html(got.body) if got.body.strip() else None

    def _limits(self) -> dict[str, Any]:
        s = self.settings
        return {"timeout": s.feed_timeout, "max_bytes": s.feed_max_bytes, "max_redirects": s.feed_max_redirects}

    def _interval(self, minutes: float | None) -> float:
        s = self.settings
        seconds = s.feed_interval if minutes is None else minutes * 60
        if seconds < s.feed_min_interval:
            raise UserError(f"--interval {seconds / 60:g} min is shorter than the floor of"
                            f" {s.feed_min_interval / 60:g} min (feed_min_interval): polling more often is impolite")
        return float(seconds)


def normalise_url(url: str) -> str:
    """The same feed however its URL is spelled: scheme and host in lower case, no default port,
    no fragment, an empty path as ``/``."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def _progress(items: Sequence[Any], show: bool, name: str) -> Any:
    if not show or len(items) < 5:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"feed {name}", unit="entry", leave=False)
