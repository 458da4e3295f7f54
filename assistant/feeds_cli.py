"""``stdnews feeds add|list|remove|poll``: news feeds whose entries become bulletins (index/feeds.py).
Polling writes files into the corpus, then the index is brought up to them: by the running watcher
when there is one (``stdnews chat`` or ``index watch``), else by this process."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

Common = Callable[[argparse.ArgumentParser], None]


def add_parser(sub: Any, common: Common) -> None:
    fd = sub.add_parser("feeds", help="news feeds (RSS, Atom) whose entries become bulletins")
    fsub = fd.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = fsub.add_parser("add", help="subscribe to a feed, read it and index its entries")
    common(p)
    p.add_argument("url")
    p.add_argument("--name", default=None, help="short name, also its folder under <corpus>/feeds (default: from"
                                                " the feed's title)")
    p.add_argument("--publisher", default=None, help="publisher of its bulletins (default: the feed's title)")
    p.add_argument("--interval", type=float, default=None, metavar="MINUTES",
                   help="minutes between polls (default 30; at least feed_min_interval, 5 min)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=cmd_add)
    p = fsub.add_parser("list", help="feeds, their last poll, entries and errors")
    common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    p = fsub.add_parser("remove", help="stop polling a feed (its bulletins stay unless --delete-bulletins)")
    common(p)
    p.add_argument("name")
    p.add_argument("--delete-bulletins", action="store_true", help="also remove its bulletins from the corpus and"
                                                                   " the index")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=cmd_remove)
    p = fsub.add_parser("poll", help="poll feeds now (default: all) and index what is new")
    common(p)
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--due", action="store_true", help="only feeds whose interval (or back-off) has passed")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=cmd_poll)


def _book(args: argparse.Namespace) -> Any:
    from assistant.cli import settings_from
    from index.feeds import FeedBook

    return FeedBook(settings_from(args))


def _settle(book: Any, doc_ids: list[str], since: float, quiet: bool) -> int:
    """Index what the feeds wrote; prints the update's summary, and its failures on stderr."""
    from index.indexer import Index
    from index.watch import running_watcher, settle

    index = Index(book.settings)
    if (watcher := running_watcher(index)) and not quiet:
        print(f"handing over to the running watcher (pid {watcher['pid']})", file=sys.stderr, flush=True)
    report = settle(index, doc_ids, since, progress=not quiet)
    for path, why in report.failed:
        print(f"error: {path}: {why}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0


def _show(result: Any) -> None:
    print(result.line(), file=sys.stderr if result.error else sys.stdout, flush=True)
    for note in result.notes:
        print(f"  note: {note}", flush=True)


def cmd_add(args: argparse.Namespace) -> int:
    book = _book(args)
    since = time.time()
    result = book.add(args.url, args.name, args.publisher, args.interval, progress=not args.quiet)
    print(f"added feed '{result.name}' ({result.url})")
    _show(result)
    return _settle(book, result.written, since, args.quiet)


def cmd_poll(args: argparse.Namespace) -> int:
    book = _book(args)
    since = time.time()
    names = args.names or (book.due() if args.due else None)
    if args.due and not names:
        print("no feed is due")
        return 0
    if not book.feeds():
        print("no feeds yet; add one with 'stdnews feeds add URL'")
        return 0
    results = book.poll(names, progress=not args.quiet, on_result=_show)
    failed = [r for r in results if r.error]
    rc = _settle(book, [d for r in results for d in r.written], since, args.quiet) if any(r.written for r in
                                                                                          results) else 0
    if failed:
        print(f"{len(failed)} of {len(results)} feed(s) could not be read; the others were, and nothing already"
              " indexed was lost", file=sys.stderr)
    return 1 if failed or rc else 0


def cmd_remove(args: argparse.Namespace) -> int:
    book = _book(args)
    since = time.time()
    doc_ids = book.remove(args.name, delete_bulletins=args.delete_bulletins)
    if not args.delete_bulletins:
        print(f"removed feed '{args.name}'; its {len(doc_ids)} bulletin(s) stay in the library"
              " (--delete-bulletins removes them)")
        return 0
    print(f"removed feed '{args.name}' and its {len(doc_ids)} bulletin(s)")
    return _settle(book, doc_ids, since, args.quiet)


def cmd_list(args: argparse.Namespace) -> int:
    feeds = _book(args).feeds()
    if args.json:
        print(json.dumps([{k: v for k, v in f.items() if k != "entries"} | {"entries": len(f["entries"])}
                          for f in feeds.values()], ensure_ascii=False, indent=2))
        return 0
    if not feeds:
        print("no feeds yet; add one with 'stdnews feeds add URL'")
        return 0
    for f in feeds.values():
        print(f"{f['name']}  {f['url']}  [{f['publisher']}]  {len(f['entries'])} entries; {status_line(f)}")
    return 0


def status_line(feed: dict[str, Any], now: float | None = None) -> str:
    """Last poll, next poll and the last error of a feed, in a few words."""
    now = time.time() if now is None else now
    last = f"last poll {_when(feed['last_poll'])}" if feed.get("last_poll") else "never polled"
    nxt = feed.get("next_poll") or 0
    due = "due now" if nxt <= now else f"next in {_span(nxt - now)}"
    if feed.get("last_error"):
        n = feed.get("failures", 0)
        return f"{last}, FAILING ({n} time{'s' if n != 1 else ''} in a row; {due}): {feed['last_error']}"
    return f"{last}, ok; {due}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
