"""The chunk table's near-duplicate tables (``index.dedupe``): each article's MinHash signature and
words, its LSH band rows and the confirmed duplicate pairs, as methods ``index.chunkdb.ChunkDB``
inherits (same connection, same transactions). ``lsh`` is ``index.bandindex``'s in-memory copy of
these tables while one is loaded (None otherwise): the writes here keep it in step, or drop it when
they cannot."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS article_sigs (
    doc_id TEXT NOT NULL, article INTEGER NOT NULL, sig BLOB NOT NULL, words TEXT NOT NULL,
    PRIMARY KEY (doc_id, article));
CREATE TABLE IF NOT EXISTS article_bands (
    key INTEGER NOT NULL, doc_id TEXT NOT NULL, article INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS article_bands_key ON article_bands(key);
CREATE INDEX IF NOT EXISTS article_bands_doc ON article_bands(doc_id);
CREATE TABLE IF NOT EXISTS dup_pairs (
    doc_a TEXT NOT NULL, art_a INTEGER NOT NULL, doc_b TEXT NOT NULL, art_b INTEGER NOT NULL,
    PRIMARY KEY (doc_a, art_a, doc_b, art_b));
CREATE INDEX IF NOT EXISTS dup_pairs_b ON dup_pairs(doc_b);
DROP TABLE IF EXISTS dup_groups;
CREATE TRIGGER IF NOT EXISTS dup_pairs_counted_insert AFTER INSERT ON dup_pairs BEGIN
    INSERT INTO meta (key, value) VALUES ('pairs_version', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END;
CREATE TRIGGER IF NOT EXISTS dup_pairs_counted_delete AFTER DELETE ON dup_pairs BEGIN
    INSERT INTO meta (key, value) VALUES ('pairs_version', '1')
    ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; END;
"""


class ArticleTables:
    """The near-duplicate tables' reads and writes (mixed into ``ChunkDB``)."""

    conn: sqlite3.Connection
    lsh: Any
    if TYPE_CHECKING:
        def _tx(self) -> Any: ...  # ChunkDB's write transaction

        def meta(self, key: str) -> str | None: ...

    def put_articles(self, doc_id: str, rows: Sequence[tuple[int, bytes, str, Sequence[int]]],
                     pairs: Sequence[tuple[str, int, str, int]]) -> None:
        """Replace a bulletin's article signatures, LSH bands and duplicate pairs (one transaction)."""
        with self._tx():
            self._delete_articles(doc_id)
            self.conn.executemany("INSERT INTO article_sigs (doc_id, article, sig, words) VALUES (?,?,?,?)",
                                  [(doc_id, a, sig, w) for a, sig, w, _ in rows])
            self.conn.executemany("INSERT INTO article_bands (key, doc_id, article) VALUES (?,?,?)",
                                  [(k, doc_id, a) for a, _, _, keys in rows for k in keys])
            self.conn.executemany("INSERT OR IGNORE INTO dup_pairs (doc_a, art_a, doc_b, art_b) VALUES (?,?,?,?)",
                                  pairs)
        self._in_memory("put", doc_id, rows, pairs)

    def delete_articles(self, doc_id: str) -> None:
        with self._tx():
            self._delete_articles(doc_id)
        self._in_memory("drop", doc_id)

    def _in_memory(self, method: str, *args: Any) -> None:
        """The committed change, applied to the in-memory copy too (dropped if that fails)."""
        if self.lsh is not None:
            try:
                getattr(self.lsh, method)(*args)
            except Exception:
                self.lsh = None
                raise

    def _delete_articles(self, doc_id: str) -> None:
        for sql in ("DELETE FROM article_sigs WHERE doc_id=?", "DELETE FROM article_bands WHERE doc_id=?",
                    "DELETE FROM dup_pairs WHERE doc_a=?", "DELETE FROM dup_pairs WHERE doc_b=?"):
            self.conn.execute(sql, (doc_id,))

    def clear_articles(self) -> None:
        with self._tx():
            for table in ("article_sigs", "article_bands", "dup_pairs"):
                self.conn.execute(f"DELETE FROM {table}")
        self._in_memory("clear")

    def data_version(self) -> int:
        """Changes when another connection commits to this file (never for this connection's own writes)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def band_members(self, keys: Iterable[int], cap: int) -> dict[int, list[tuple[str, int]]]:
        """Per LSH band key, its ``cap`` most recently stored articles, newest first: one index
        range read per key, however many articles share it."""
        out: dict[int, list[tuple[str, int]]] = {}
        q = "SELECT doc_id, article FROM article_bands WHERE key=? ORDER BY rowid DESC LIMIT ?"
        for k in set(keys):
            rows = self.conn.execute(q, (k, cap)).fetchall()
            if rows:
                out[k] = [(r[0], r[1]) for r in rows]
        return out

    def article_rows(self, keys: Iterable[tuple[str, int]],
                     columns: str = "sig, words") -> dict[tuple[str, int], tuple[Any, ...]]:
        """These articles' stored ``columns`` (by primary key), those that exist."""
        out: dict[tuple[str, int], tuple[Any, ...]] = {}
        wanted = sorted(set(keys))
        for i in range(0, len(wanted), 400):
            part = wanted[i : i + 400]
            w, params = pairs_table(part)
            q = (f"{w} SELECT doc_id, article, {columns}"
                 " FROM w CROSS JOIN article_sigs ON doc_id = w.d AND article = w.a")  # a primary key search each
            out.update({(r[0], r[1]): tuple(r[2:]) for r in self.conn.execute(q, params)})
        return out

    def all_bands(self) -> Iterator[tuple[int, str, int]]:
        """Every band row (key, doc_id, article), oldest first."""
        yield from self.conn.execute("SELECT key, doc_id, article FROM article_bands ORDER BY rowid")

    def article_words(self) -> Iterator[tuple[str, int, str]]:
        """Every article's (doc_id, article, words), read as it is used (no signatures, no list)."""
        yield from self.conn.execute("SELECT doc_id, article, words FROM article_sigs")

    def signatures(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT doc_id, article, sig, words FROM article_sigs").fetchall()

    def pairs_version(self) -> str:
        """Changes whenever a duplicate pair is stored or removed (the table's triggers count them)."""
        return self.meta("pairs_version") or "0"

    def dup_pairs(self) -> list[tuple[str, int, str, int]]:
        return [tuple(r) for r in self.conn.execute("SELECT doc_a, art_a, doc_b, art_b FROM dup_pairs")]

    def dup_neighbours(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], set[tuple[str, int]]]:
        """For each of these articles that has near-duplicates: the articles confirmed as the same
        story (direct pairs, not the whole connected group, which chains unrelated stories)."""
        wanted = sorted(set(keys))
        out: dict[tuple[str, int], set[tuple[str, int]]] = {}
        for i in range(0, len(wanted), 400):
            part = wanted[i : i + 400]
            # by article, not by bulletin: a bulletin's other articles' pairs are not read (at 100k chunks
            # the retriever's lookup read every pair of its passages' bulletins: 2.5 of its ~15 ms)
            w, params = pairs_table(part)
            q = (f"{w} SELECT d, a, doc_b, art_b FROM w CROSS JOIN dup_pairs ON doc_a = w.d AND art_a = w.a"
                 " UNION ALL SELECT d, a, doc_a, art_a FROM w CROSS JOIN dup_pairs ON doc_b = w.d AND art_b = w.a")
            for d1, a1, d2, a2 in self.conn.execute(q, params):
                out.setdefault((d1, a1), set()).add((d2, a2))
        return out

    def article_info(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, str]]:
        """Bulletin, headline, publisher and date of these articles (those still indexed): their own
        chunks, not every chunk of their bulletins (a passage's same-story articles at 100k chunks:
        1.2 -> 0.7 ms)."""
        wanted = sorted(set(keys))
        out: dict[tuple[str, int], dict[str, str]] = {}
        for i in range(0, len(wanted), 400):
            part = wanted[i : i + 400]
            w, params = pairs_table(part)
            q = (f"{w} SELECT doc_id, article, MIN(title) AS title, MIN(publisher) AS publisher, MIN(date) AS date"
                 " FROM w CROSS JOIN chunks ON chunks.doc_id = w.d AND chunks.article = w.a GROUP BY doc_id, article")
            for r in self.conn.execute(q, params):
                out[(r["doc_id"], r["article"])] = {"doc_id": r["doc_id"], "title": r["title"],
                                                    "publisher": r["publisher"], "date": r["date"]}
        return out


def pairs_table(keys: Sequence[tuple[str, int]]) -> tuple[str, list[Any]]:
    """A ``WITH w(d, a)`` table of these (doc_id, article) keys for one query, and its parameters."""
    return f"WITH w(d, a) AS (VALUES {','.join(['(?,?)'] * len(keys))})", [v for k in keys for v in k]


def in_lists(values: Sequence[Any], size: int = 400) -> Iterator[tuple[str, list[Any]]]:
    """``values`` in parts small enough for one SQL ``IN (...)``: (placeholders, part)."""
    for i in range(0, len(values), size):
        part = list(values[i : i + size])
        yield ",".join("?" * len(part)), part
