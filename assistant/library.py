"""The chat window's library actions: add uploaded bulletins to the corpus (with optional
catalog metadata) and remove one, add, remove and poll news feeds; each ends in an incremental
index update."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from index.catalog import CATALOG, read_catalog, replace_entries, scan
from index.errors import UserError
from index.feeds import FeedBook, PollResult
from index.indexer import ADD_WAITS_S, ASK_TO_REPLACE, Index, Placement, UpdateReport
from index.watch import settle

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCK = threading.Lock()  # one library change at a time per server process


def add_bulletins(index: Index, files: list[Path], publisher: str = "", date: str = "", title: str = "",
                  progress: bool = True, replace: bool = False,
                  replace_hint: str = ASK_TO_REPLACE) -> tuple[UpdateReport, list[str]]:
    """Copy files into the corpus and index them; returns the update report and notes for the user.
    Each file is added or refused on its own: a refused one leaves no copy and no catalog entry. A
    file named like a bulletin in the corpus is refused (its reason ends in ``replace_hint``) unless
    ``replace``: then the old file goes to the backups folder and its catalog entry is replaced by
    the metadata given here."""
    if not files:
        raise UserError("choose at least one file to add")
    meta = {"title": title.strip(), "publisher": publisher.strip(), "date": date.strip()}
    if meta["date"] and not _DATE.match(meta["date"]):
        raise UserError(f"date {meta['date']!r} is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)")
    if meta["title"] and len(files) > 1:
        raise UserError("a title can only be given when adding one file")
    notes: list[str] = []

    def describe(plan: list[Placement]) -> None:  # the accepted files only, under their sanitised doc_ids
        notes.extend(catalog_entries(index.settings.corpus, [p.doc_id for p in plan], meta,
                                     replace=[p.doc_id for p in plan if p.replacing],
                                     backups=index.settings.home / "backups"))

    with _LOCK:
        report = index.add(files, progress=progress, replace=replace, replace_hint=replace_hint,
                           before_copy=describe)
    return report, notes


def remove_bulletin(index: Index, doc_id: str, progress: bool = True) -> UpdateReport:
    """Delete the bulletin's file from the corpus folder, then update so its passages leave the index.
    A message or attachment of an e-mail file (``<file>#<part>``) goes with its whole file: the file is
    what the corpus holds (the report lists every bulletin that left)."""
    if not doc_id:
        raise UserError("choose a bulletin to remove")
    corpus = index.settings.corpus
    with _LOCK:
        since = time.time()
        files, _ = scan(corpus)
        path = files.get(doc_id) or files.get(doc_id.split("#", 1)[0])
        if path is None and index.db.bulletin(doc_id) is None:
            raise UserError(f"no bulletin {doc_id!r} in the library")
        if path is not None:
            if not path.resolve().is_relative_to(corpus.resolve()):
                raise UserError(f"{doc_id}: its file lies outside the corpus folder; remove it by hand")
            path.unlink()
        report = index.update(progress=progress, wait=ADD_WAITS_S)  # a watcher may be updating: wait for it
        index.account(report, [doc_id], since)  # ... or may have removed it already
        return report


def catalog_entries(corpus: Path, doc_ids: list[str], meta: dict[str, str], replace: Sequence[str] = (),
                    backups: Path | None = None) -> list[str]:
    """Catalog entries for new doc_ids; an existing entry is kept as it is (and said so), unless its
    doc_id is in ``replace``: then it gives way to ``meta`` (dropped when ``meta`` is empty), its old
    text saved under ``backups``."""
    fields = {k: _CONTROL.sub(" ", v).strip() for k, v in meta.items() if v and v.strip()}
    existing = read_catalog(corpus)
    notes: list[str] = []
    entries: dict[str, dict[str, str] | None] = {}
    for doc_id in doc_ids:
        if doc_id in replace:
            if doc_id in existing or fields:
                entries[doc_id] = fields or None
        elif doc_id in existing:
            if fields:
                notes.append(f"{doc_id}: the catalog already describes it; edit {CATALOG} to change its details")
        elif fields:
            entries[doc_id] = fields
    if entries:
        replace_entries(corpus, entries, backups)
    return notes


def add_feed(index: Index, url: str, name: str = "", publisher: str = "") -> tuple[PollResult, UpdateReport]:
    """Subscribe to a news feed and index its entries (through the running watcher, when there is one)."""
    if not (url or "").strip():
        raise UserError("give the address of an RSS or Atom feed")
    since = time.time()
    with _LOCK:
        result = FeedBook(index.settings).add(url, name.strip() or None, publisher.strip() or None)
        return result, settle(index, result.written, since)


def remove_feed(index: Index, name: str, delete_bulletins: bool = False) -> tuple[list[str], UpdateReport | None]:
    """Stop polling a feed; with ``delete_bulletins`` its bulletins leave the corpus and the index too."""
    if not name:
        raise UserError("choose a feed to remove")
    since = time.time()
    with _LOCK:
        doc_ids = FeedBook(index.settings).remove(name, delete_bulletins)
        return doc_ids, settle(index, doc_ids, since) if delete_bulletins and doc_ids else None


def poll_feeds(index: Index) -> tuple[list[PollResult], UpdateReport | None]:
    """Poll every feed now and index what they brought."""
    since = time.time()
    with _LOCK:
        results = FeedBook(index.settings).poll()
        written = [d for r in results for d in r.written]
        return results, settle(index, written, since) if written else None
