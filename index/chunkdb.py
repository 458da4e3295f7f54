"""The chunk table: text, metadata and offsets of every indexed chunk, the
bulletins they come from, and a log of updates. One SQLite file in the data
directory; citations are resolved against it. Its triggers log every chunk written or
deleted to ``keyword_log``, in the same transaction: index/keywords.py reads that log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.articledb import SCHEMA as ARTICLE_SCHEMA
from index.articledb import ArticleTables, in_lists
from index.tokenize import tokens

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, article INTEGER NOT NULL, title TEXT NOT NULL,
    bulletin_title TEXT NOT NULL, publisher TEXT NOT NULL, date TEXT NOT NULL, date_num INTEGER NOT NULL,
    start INTEGER NOT NULL DEFAULT -1, "end" INTEGER NOT NULL DEFAULT -1, text TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}', tokens TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_date_id ON chunks(date_num, id);  -- covers "ids in a date window" (retrieve.py)
DROP INDEX IF EXISTS chunks_date;
CREATE TABLE IF NOT EXISTS bulletins (
    doc_id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, publisher TEXT, date TEXT,
    url TEXT, language TEXT, sha256 TEXT NOT NULL, articles TEXT NOT NULL, text TEXT NOT NULL,
    indexed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS bulletins_indexed ON bulletins(indexed_at);  -- the newest, without reading every text
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keyword_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS chunks_logged_insert AFTER INSERT ON chunks
    BEGIN INSERT INTO keyword_log (id) VALUES (new.id); END;
CREATE TRIGGER IF NOT EXISTS chunks_logged_delete AFTER DELETE ON chunks
    BEGIN INSERT INTO keyword_log (id) VALUES (old.id); END;
CREATE TRIGGER IF NOT EXISTS chunks_logged_update AFTER UPDATE OF title, text, tokens ON chunks
    BEGIN INSERT INTO keyword_log (id) VALUES (new.id); END;
CREATE TRIGGER IF NOT EXISTS chunks_logged_redate AFTER UPDATE OF date_num ON chunks
    BEGIN INSERT INTO keyword_log (id) VALUES (new.id); END;  -- the keyword index keeps each chunk's date
CREATE TABLE IF NOT EXISTS chunk_labels (
    kind TEXT NOT NULL, label TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (kind, label)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_memo (path TEXT PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, summary TEXT NOT NULL);
"""

CHUNK_COLUMNS = ("id", "doc_id", "article", "title", "bulletin_title", "publisher", "date", "date_num",
                 "start", "end", "text")

_NOT_META = ("chunk_id", "tokens")  # row keys that are not stored in the meta column


# SQLite's default 2 MB page cache is too small for the band index's random keys at 100k chunks (1M
# band rows): storing a 100k build's articles took 13.9 CPU-s with it, 8.7-9.5 with 32 MB. Only a
# ``batch`` (an update's writes) has the large one: a chat server's reads filled it to 32 MB and ran
# no faster for it (retrieval p50/p95 at 100k chunks the same within noise with 2 MB).
CACHE_KIB = 32 * 1024


class ChunkDB(ArticleTables):
    """Thin, typed access to the SQLite file; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.lsh: Any = None  # index.dedupe's in-memory band index, while a build has one
        self._batch_at: float | None = None  # while a ``batch`` is open: when it last committed
        self._batch_every = 5.0
        self.conn.execute("PRAGMA journal_mode=WAL")
        self._cache_size = self.conn.execute("PRAGMA cache_size").fetchone()[0]  # SQLite's own; see CACHE_KIB
        self.conn.executescript(_SCHEMA + ARTICLE_SCHEMA)  # meta first: the article tables' triggers write it
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(chunks)")}
        if "tokens" not in columns:  # a data directory from before the BM25 token cache
            self.conn.execute("ALTER TABLE chunks ADD COLUMN tokens TEXT")
        if self.meta("id_sum") is None and self.conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:
            self.set_meta("id_sum", "0")  # a new chunk table: kept from the first write on
            self.set_meta("labels_kept", "1")

    def close(self) -> None:
        self.conn.close()

    # chunks -------------------------------------------------------------
    def put_chunks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace chunks, with their BM25 tokens (a row's ``tokens`` when the update has
        them, else computed here; the keyword index reads them: index/keywords.py)."""
        with self._tx():
            self._account([r["id"] for r in rows], -1)  # what these rows replace leaves the counts
            self._account(rows, +1)
            self.conn.executemany(
                'INSERT OR REPLACE INTO chunks (id, doc_id, article, title, bulletin_title, publisher, date,'
                ' date_num, start, "end", text, meta, tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
                [(r["id"], r["doc_id"], r["article"], r["title"], r["bulletin_title"], r["publisher"], r["date"],
                  r["date_num"], r.get("start", -1), r.get("end", -1), r["text"],
                  json.dumps({k: v for k, v in r.items() if k not in CHUNK_COLUMNS and k not in _NOT_META}),
                  r.get("tokens") or " ".join(tokens(f"{r['title']}\n{r['text']}")))
                 for r in rows],
            )

    def set_offsets(self, offsets: Iterable[tuple[str, int, int]]) -> None:
        with self._tx():
            self.conn.executemany('UPDATE chunks SET start=?, "end"=? WHERE id=?', [(s, e, i) for i, s, e in offsets])

    def delete_chunks(self, ids: Sequence[str]) -> None:
        with self._tx():
            self._account(ids, -1)
            self.conn.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in ids])

    def id_sum(self) -> int:
        """The sum of the chunk ids' 64-bit hashes (mod 2**64): identifies the set of chunk ids.
        Kept in the meta table by every write of this class, so reading it costs one lookup; computed
        from all ids once, in a write transaction, for a data directory from before it was kept."""
        if (kept := self.meta("id_sum")) is not None:
            return int(kept)
        with self._tx():
            total = sum(map(_id_hash, (r[0] for r in self.conn.execute("SELECT id FROM chunks")))) % 2**64
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('id_sum', ?)", (str(total),))
        return total

    def label_counts(self) -> list[tuple[str, str, int]]:
        """(kind, label, passages) for the ``standards`` and ``orgs`` the chunks name: kept by every
        write of this class (the filter lists read them on each page load); counted from all chunks
        once, in a write transaction, for a data directory from before they were kept."""
        if self.meta("labels_kept") is None:
            with self._tx():
                self.conn.execute("DELETE FROM chunk_labels")
                for (meta,) in self.conn.execute("SELECT meta FROM chunks").fetchall():
                    self._add_labels(json.loads(meta), +1)
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('labels_kept', '1')")
        return [tuple(r) for r in self.conn.execute("SELECT kind, label, n FROM chunk_labels WHERE n > 0")]

    def _account(self, rows: Sequence[Any], sign: int) -> None:
        """Inside a write transaction, before the write: the kept ``id_sum`` and label counts gain the
        chunks of ``rows`` (``sign`` +1: rows about to be inserted) or lose those of the ids present now
        (-1: about to be deleted or replaced)."""
        sums, labels = self.meta("id_sum"), self.meta("labels_kept")
        if sums is None and labels is None:
            return  # neither kept yet: each is computed from the table when first asked
        if sign > 0:
            changing = {r["id"]: r for r in rows}
        else:
            changing = {}
            for marks, part in in_lists(sorted(set(rows))):
                q = f"SELECT id, meta FROM chunks WHERE id IN ({marks})"
                changing |= {cid: json.loads(meta) for cid, meta in self.conn.execute(q, part)}
        if sums is not None:
            total = (int(sums) + sign * sum(map(_id_hash, changing))) % 2**64
            self.conn.execute("UPDATE meta SET value=? WHERE key='id_sum'", (str(total),))
        if labels is not None:
            for meta in changing.values():
                self._add_labels(meta, sign)

    def _add_labels(self, meta: dict[str, Any], sign: int) -> None:
        counts = [(kind, label, sign) for kind in ("standards", "orgs")
                  for label in (meta.get(kind) or "").split("|") if label]
        self.conn.executemany("INSERT INTO chunk_labels (kind, label, n) VALUES (?,?,?)"
                              " ON CONFLICT(kind, label) DO UPDATE SET n = n + excluded.n", counts)

    def chunk_ids(self, doc_id: str | None = None) -> set[str]:
        if doc_id is None:
            return self.ids_where("1", [])
        return self.ids_where("doc_id=?", [doc_id])

    def ids_where(self, clause: str, params: Sequence[Any]) -> set[str]:
        """The ids of the chunks matching an SQL condition, read as plain tuples (``sqlite3.Row`` made
        reading a year's 8,770 ids at 100k chunks take 3.5 ms, against 2.7)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return {r[0] for r in cursor.execute(f"SELECT id FROM chunks WHERE {clause}", params)}

    def chunk_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def newest_date_num(self) -> int:
        """The latest article date in the index as a number (0 when none is dated); an index lookup."""
        return int(self.conn.execute("SELECT MAX(date_num) FROM chunks").fetchone()[0] or 0)

    def get_chunks(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for marks, part in in_lists(ids):
            rows = self.conn.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", part)
            out.update({r["id"]: _row(r) for r in rows})
        return out

    def all_chunks(self, columns: str = "id, text") -> list[sqlite3.Row]:
        return self.conn.execute(f"SELECT {columns} FROM chunks ORDER BY doc_id, start").fetchall()

    def chunks_of(self, doc_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM chunks WHERE doc_id=? ORDER BY start", (doc_id,))
        return [_row(r) for r in rows]

    # bulletins ------------------------------------------------------------
    def put_bulletin(self, rec: dict[str, Any]) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT OR REPLACE INTO bulletins (doc_id, path, title, publisher, date, url, language, sha256,"
                " articles, text, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (rec["doc_id"], rec["path"], rec["title"], rec.get("publisher"), rec.get("date"), rec.get("url"),
                 rec.get("language"), rec["sha256"], json.dumps(rec["articles"]), rec["text"], time.time()),
            )

    def delete_bulletin(self, doc_id: str) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM bulletins WHERE doc_id=?", (doc_id,))

    def bulletins(self, newest: int | None = None, doc_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every bulletin (but its text) by doc_id, or the ``newest`` most recently indexed (the index on
        ``indexed_at``: no scan), or those of ``doc_ids`` (that are indexed)."""
        cols = ("SELECT b.doc_id, b.path, b.title, b.publisher, b.date, b.url, b.language, b.sha256, b.articles,"
                " b.indexed_at, (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = b.doc_id) AS chunks FROM bulletins b")
        if doc_ids is not None:
            rows = [r for marks, part in in_lists(sorted(set(doc_ids)))
                    for r in self.conn.execute(f"{cols} WHERE b.doc_id IN ({marks}) ORDER BY b.doc_id", part)]
        elif newest is None:
            rows = self.conn.execute(f"{cols} ORDER BY b.doc_id").fetchall()
        else:
            rows = self.conn.execute(f"{cols} ORDER BY b.indexed_at DESC, b.doc_id LIMIT ?", (newest,)).fetchall()
        return [{**dict(r), "articles": json.loads(r["articles"])} for r in rows]

    def counts(self) -> tuple[int, int, int]:
        """Bulletins, articles and chunks held."""
        row = self.conn.execute("SELECT (SELECT COUNT(*) FROM bulletins),"
                                " (SELECT COALESCE(SUM(json_array_length(articles)), 0) FROM bulletins),"
                                " (SELECT COUNT(*) FROM chunks)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def bulletin(self, doc_id: str) -> dict[str, Any] | None:
        r = self.conn.execute("SELECT * FROM bulletins WHERE doc_id=?", (doc_id,)).fetchone()
        return {**dict(r), "articles": json.loads(r["articles"])} if r else None

    def sha_by_doc(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT doc_id, sha256 FROM bulletins")}

    def urls(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The catalog url of these bulletins, where they have one (a feed entry's page, say)."""
        out: dict[str, str] = {}
        for marks, docs in in_lists(sorted(set(doc_ids))):
            q = f"SELECT doc_id, url FROM bulletins WHERE doc_id IN ({marks}) AND url IS NOT NULL AND url != ''"
            out.update({r["doc_id"]: r["url"] for r in self.conn.execute(q, docs)})
        return out

    # key/value facts about the data directory ------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", (key, value))

    def file_memo(self) -> dict[str, tuple[str, str]]:
        """``index.fingerprint.FileMemo``'s rows: path -> (its stat key, the value derived from it)."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT path, key, value FROM file_memo")}

    def keep_file_memo(self, rows: dict[str, tuple[str, str] | None]) -> None:
        """Store these rows (None: forget the path), one transaction."""
        with self._tx():
            self.conn.executemany("DELETE FROM file_memo WHERE path=?", [(p,) for p, v in rows.items() if v is None])
            self.conn.executemany("INSERT OR REPLACE INTO file_memo (path, key, value) VALUES (?,?,?)",
                                  [(p, *v) for p, v in rows.items() if v is not None])

    # update log -----------------------------------------------------------
    def log_update(self, kind: str, summary: dict[str, Any]) -> None:
        with self._tx():
            self.conn.execute("INSERT INTO updates (at, kind, summary) VALUES (?,?,?)",
                              (time.time(), kind, json.dumps(summary)))

    def updates(self, limit: int = 20, since: float | None = None) -> list[dict[str, Any]]:
        """The last ``limit`` update logs, newest first; with ``since``, only those logged at or after it
        (a build's log lists every article it added: 0.13 s to parse at 100k chunks, and ``index add``
        looks for the watcher's report of its files every 50 ms)."""
        rows = self.conn.execute("SELECT * FROM updates WHERE at >= ? ORDER BY id DESC LIMIT ?",
                                 (-1.0 if since is None else since, limit))
        return [{"id": r["id"], "at": r["at"], "kind": r["kind"], **json.loads(r["summary"])} for r in rows]

    def failures(self, limit: int = 200) -> list[tuple[float, list[list[str]]]]:
        """(when, [[path, why], ...]) of each of the last ``limit`` updates that could not index some
        file, newest first: only that field of each log, picked out by SQLite (the build's: 0.04 s less)."""
        rows = self.conn.execute("SELECT at, failed FROM (SELECT id, at, json_extract(summary, '$.failed') AS"
                                 " failed FROM updates ORDER BY id DESC LIMIT ?) WHERE failed != '[]'"
                                 " ORDER BY id DESC", (limit,))
        return [(at, json.loads(failed)) for at, failed in rows]

    def _tx(self) -> sqlite3.Connection:
        return _Tx(self)  # type: ignore[return-value]

    @contextmanager
    def batch(self, every_s: float = 5.0) -> Iterator[None]:
        """The writes made inside share one transaction, committed every ``every_s`` seconds and at
        the end: a build writes thousands of bulletins' rows, and a commit each wrote the same pages
        of the band-key index again and again (~36 of 81 CPU-s of linking at 100k chunks). Only for
        rows that nothing else records as done before the batch ends: a process killed inside loses
        the uncommitted part, and the next update writes it again."""
        if self._batch_at is not None:  # already in one
            yield
            return
        self._batch_at, self._batch_every = time.monotonic(), every_s
        self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
                self.lsh = None  # it holds the rolled-back rows too
            raise
        else:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        finally:
            self._batch_at = None
            self.conn.execute(f"PRAGMA cache_size={self._cache_size}")  # SQLite frees the pages above it

    def _batch_step(self) -> None:
        """Inside a batch, after a write: commit when ``every_s`` have passed since the last commit."""
        if self._batch_at is not None and time.monotonic() - self._batch_at >= self._batch_every:
            self.conn.execute("COMMIT")
            self._batch_at = time.monotonic()


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (autocommit connection underneath); inside a
    ``ChunkDB.batch``, a savepoint of the batch's transaction."""

    def __init__(self, db: ChunkDB) -> None:
        self.db, self.conn = db, db.conn
        self.nested = db._batch_at is not None

    def __enter__(self) -> sqlite3.Connection:
        if self.nested and not self.conn.in_transaction:  # the batch's first write since it committed
            self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("SAVEPOINT tx" if self.nested else "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self.nested:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            return
        if exc_type:
            self.conn.execute("ROLLBACK TO tx")
        self.conn.execute("RELEASE tx")
        if not exc_type:
            self.db._batch_step()


def _id_hash(chunk_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "big")


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d.update(json.loads(d.pop("meta") or "{}"))
    d["chunk_id"] = d["id"]
    return d
