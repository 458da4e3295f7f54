"""Read-side lookups over the chunk table: what's new (articles that updates added, from the
update log) and the groups of articles that tell the same story (``index.dedupe``'s pairs)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import dedupe
from index.errors import UserError

if TYPE_CHECKING:
    from index.chunkdb import ChunkDB
    from index.indexer import Index

log = logging.getLogger(__name__)


def whats_new(index: Index, since: str | None = None) -> list[dict[str, Any]]:
    """Articles that updates added: those since ``since`` (YYYY-MM-DD), else the last update's.
    Only articles still in the index are listed, newest first."""
    from datetime import datetime

    if since:
        try:
            cutoff = datetime.fromisoformat(since).timestamp()
        except ValueError:
            raise UserError(f"--since {since!r} is not a date; use YYYY-MM-DD") from None
        logs = index.db.updates(10_000, cutoff)
    else:
        logs = [u for u in index.db.updates(10_000) if u.get("new_articles")][:1]
    present = index.db.sha_by_doc().keys()  # the doc_ids still indexed (not every bulletin's articles)
    seen: set[tuple[str, str]] = set()
    out = []
    for log in logs:
        for art in log.get("new_articles", []):
            key = (art["doc_id"], art["title"])
            if art["doc_id"] in present and key not in seen:
                seen.add(key)
                out.append({**art, "added_at": log["at"]})
    return sorted(out, key=lambda a: (a["date"] or "", a["added_at"]), reverse=True)


def duplicate_groups(index: Index, bulletins: list[dict[str, Any]] | None = None) -> list[list[dict[str, Any]]]:
    """Groups of articles that tell the same story, with their headlines (from ``bulletins``, the
    chunk table's ``bulletins()``, when the caller has read them already)."""
    titles = {(b["doc_id"], a["index"]): (a["title"], a["date"], b["publisher"])
              for b in (index.db.bulletins() if bulletins is None else bulletins) for a in b["articles"]}
    out = []
    for group in kept_groups(index):
        out.append([])
        for doc_id, art in group:
            title, date, publisher = titles.get((doc_id, art), ("?", None, None))
            out[-1].append({"doc_id": doc_id, "article": art, "title": title, "date": date,
                            "publisher": publisher})
    return out


def kept_groups(index: Index) -> list[list[tuple[str, int]]]:
    """``dedupe.groups`` of the stored pairs, kept in a file until a pair changes (0.2-0.4 s to
    compute from the ~82k pairs of a 100k-chunk index; ``index status`` and the Library ask often, and
    an update that changed pairs has them computed after its log (``Regrouper``), so the next reader
    does not wait)."""
    return _kept(index.db)


def _kept(db: ChunkDB) -> list[list[tuple[str, int]]]:
    """The groups of ``db``'s pairs, from the file kept beside it while they are current, else computed
    and kept there. A file, not a row of the chunk table: a commit by another connection makes a serving
    process read its band index again (``index.bandindex.lookups``: 2 s at 100k chunks)."""
    version, kept = db.pairs_version(), groups_file(db.path)
    try:
        saved = json.loads(kept.read_text())
        if saved["version"] == version:
            return [[(d, a) for d, a in group] for group in saved["groups"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: computed again
    groups = dedupe.groups(db.dup_pairs())
    if version == db.pairs_version():  # no update stored pairs meanwhile
        tmp = kept.with_name(f".{kept.name}.{os.getpid()}-{threading.get_ident()}.part")
        try:
            tmp.write_text(json.dumps({"version": version, "groups": groups}))
            os.replace(tmp, kept)  # whole: another process reads the old groups or the new
        except OSError:  # (a data directory this process may not write: computed for each reader)
            tmp.unlink(missing_ok=True)
    return groups


def groups_file(db_path: Path) -> Path:
    """Where the duplicate groups of the chunk table at ``db_path`` are kept."""
    return db_path.with_name("dup_groups.json")


QUIET_S = 2.0  # the Regrouper waits until no update has asked for this long (a script adding files one by
# one hands each over ~1 s after the last at 100k chunks)


class Regrouper:
    """Computes the duplicate groups again after an update that changed pairs, in a process that serves
    (a chat server, a watcher): on a thread of its own, with its own connection, so that the update
    (an upload in the Library, a hand-over) returns without waiting for them (0.2-0.4 s at 100k
    chunks). It starts once no update has asked for ``QUIET_S``: beside the next update it slowed that
    one (hand-overs one after another at 100k: 0.67 s median with the groups computed in the update,
    0.87 s with them computed at once on this thread), and a burst makes one pass after its last update.
    Requests made while it works make one more pass. A reader that comes first computes them itself, as
    ``kept_groups`` always does when they are stale."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._due = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def request(self) -> None:
        self._due.set()
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stdnews-groups", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from index.chunkdb import ChunkDB

        db = ChunkDB(self.db_path)
        while True:
            self._due.wait()
            self._due.clear()
            while self._due.wait(QUIET_S):  # asked again meanwhile: wait for quiet
                self._due.clear()
            try:
                _kept(db)
            except sqlite3.Error as exc:  # (a reader computes them instead)
                log.warning("duplicate groups not kept: %s", exc)
