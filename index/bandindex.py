"""Where ``index.dedupe.link`` finds its candidates and confirms them: straight from the
chunk table's SQLite file (a lone update of a few bulletins), or from a copy of the band,
word and pair tables held in memory while a build links thousands (at 30k chunks, SQLite
lookups of candidates' words read 25 GB and were nearly all of the linking time).

Both give the same answers: per band, its ``cap`` most recently stored articles (SQLite's
rowid order, kept by the copy), and the exact word overlap of each candidate. The copy
counts that overlap for all of an article's candidates in one numpy gather over word ids
(written here: no library keeps an incremental set-overlap index with these semantics)."""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from index.chunkdb import ChunkDB

Id = tuple[str, int]  # (doc_id, article)
Same = Callable[[np.ndarray, int, np.ndarray], np.ndarray]  # (overlaps, own size, their sizes) -> same story
MEMORY_AFTER, MEMORY_WINDOW_S = 16, 60.0  # this many links that quickly on one connection: a build


class SqlBands:
    """Index lookups in SQLite: one range read per band key, one primary-key read per candidate."""

    def __init__(self, db: ChunkDB) -> None:
        self.db = db

    def members(self, keys: Iterable[int], cap: int) -> dict[int, list[Id]]:
        return self.db.band_members(keys, cap)

    def confirm(self, same: Same, batch: Sequence[tuple[frozenset[str], Sequence[Id]]]) -> list[list[Id]]:
        texts = {m: frozenset(r[0].split()) for m, r in self.db.article_rows({m for _, ids in batch for m in ids},
                                                                            "words").items()}
        out = []
        for words, ids in batch:
            ids = [m for m in ids if m in texts]
            inter = np.array([len(words & texts[m]) for m in ids], dtype=np.int64)
            keep = same(inter, len(words), np.array([len(texts[m]) for m in ids], dtype=np.int64))
            out.append([m for m, ok in zip(ids, keep, strict=True) if ok])
        return out

    def partners(self, ids: Iterable[Id]) -> dict[Id, set[Id]]:
        return self.db.dup_neighbours(ids)


class MemoryBands:
    """The tables in memory: band key -> slots, each slot's word ids (a vocabulary of ints),
    confirmed partners. ChunkDB applies its own writes here (``put``, ``drop``); another
    connection's commit changes ``data_version`` and makes the copy stale."""

    def __init__(self, db: ChunkDB) -> None:
        self.db, self.version = db, db.data_version()
        self.vocab: dict[str, int] = {}
        self.slot: dict[Id, int] = {}
        self.ids: list[Id | None] = []  # by slot (None once dropped)
        self.words: list[np.ndarray] = []  # by slot: sorted word ids
        self.keys: list[list[int]] = []  # by slot: band keys
        self.by_doc: dict[str, list[int]] = {}
        self.bands: dict[int, list[int]] = {}  # key -> slots, oldest first
        self.pairs: dict[Id, set[Id]] = {}
        self.mark = np.zeros(1024, dtype=np.int64)  # 1 at an article's own word ids while it is checked
        for r in db.signatures():
            self._add(r["doc_id"], r["article"], r["words"], [])
        for key, d, a in db.all_bands():
            if (d, a) in self.slot:
                self.keys[self.slot[(d, a)]].append(key)
                self.bands.setdefault(key, []).append(self.slot[(d, a)])
        self._pair(db.dup_pairs())

    def clear(self) -> None:
        self.__init__(self.db)  # type: ignore[misc]  # the tables are empty now: nothing to read

    def _word_ids(self, words: Iterable[str]) -> np.ndarray:
        vocab = self.vocab
        return np.array(sorted(vocab.setdefault(w, len(vocab)) for w in words), dtype=np.int64)

    def _add(self, doc_id: str, article: int, text: str, keys: Sequence[int]) -> None:
        slot = len(self.ids)
        self.slot[(doc_id, article)] = slot
        self.ids.append((doc_id, article))
        self.words.append(self._word_ids(text.split()))
        self.keys.append(list(keys))
        self.by_doc.setdefault(doc_id, []).append(slot)
        for k in keys:
            self.bands.setdefault(k, []).append(slot)

    def _pair(self, pairs: Iterable[tuple[str, int, str, int]]) -> None:
        for d1, a1, d2, a2 in pairs:
            self.pairs.setdefault((d1, a1), set()).add((d2, a2))
            self.pairs.setdefault((d2, a2), set()).add((d1, a1))

    def put(self, doc_id: str, rows: Sequence[tuple[int, bytes, str, Sequence[int]]],
            pairs: Sequence[tuple[str, int, str, int]]) -> None:
        """A bulletin's articles replaced (as ChunkDB.put_articles has just committed)."""
        self.drop(doc_id)
        for article, _, text, keys in rows:
            self._add(doc_id, article, text, keys)
        self._pair(pairs)

    def drop(self, doc_id: str) -> None:
        for slot in self.by_doc.pop(doc_id, []):
            for k in self.keys[slot]:
                self.bands[k].remove(slot)
                if not self.bands[k]:
                    del self.bands[k]
            m = self.ids[slot]
            assert m is not None
            self.ids[slot], self.keys[slot], self.words[slot] = None, [], self.words[slot][:0]
            del self.slot[m]
            for other in self.pairs.pop(m, set()):
                self.pairs.get(other, set()).discard(m)

    def members(self, keys: Iterable[int], cap: int) -> dict[int, list[Id]]:
        ids = self.ids
        return {k: [ids[s] for s in reversed(self.bands[k][-cap:])] for k in keys if k in self.bands}  # type: ignore[misc]

    def confirm(self, same: Same, batch: Sequence[tuple[frozenset[str], Sequence[Id]]]) -> list[list[Id]]:
        out = []
        for words, ids in batch:
            slots = [self.slot[m] for m in ids if m in self.slot]
            if not slots:
                out.append([])
                continue
            own = self._word_ids(words)
            if len(self.mark) < len(self.vocab):
                self.mark = np.zeros(2 * len(self.vocab), dtype=np.int64)
            self.mark[own] = 1
            theirs = [self.words[s] for s in slots]
            sizes = np.array([len(w) for w in theirs], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            inter = np.add.reduceat(self.mark[np.concatenate(theirs)], starts)  # every slot has words
            self.mark[own] = 0
            keep = same(inter, len(words), sizes)
            out.append([self.ids[s] for s, ok in zip(slots, keep, strict=True) if ok])  # type: ignore[misc]
        return out

    def partners(self, ids: Iterable[Id]) -> dict[Id, set[Id]]:
        return {m: self.pairs[m] for m in ids if m in self.pairs}


_calls: weakref.WeakKeyDictionary[ChunkDB, deque[float]] = weakref.WeakKeyDictionary()


def hold(db: ChunkDB) -> MemoryBands:
    """This connection's lookups from memory from now on (a build about to link many bulletins)."""
    if db.lsh is None or db.lsh.version != db.data_version():
        db.lsh = MemoryBands(db)
    return db.lsh


def lookups(db: ChunkDB) -> SqlBands | MemoryBands:
    """The in-memory copy where this connection holds a current one or has just linked
    MEMORY_AFTER bulletins within MEMORY_WINDOW_S seconds (a build: loading it costs about as
    much as a dozen SQLite lookups at 100k chunks), else SQLite."""
    if db.lsh is not None and db.lsh.version != db.data_version():
        db.lsh = None  # another process changed the tables: this copy is stale
    if db.lsh is None:
        calls = _calls.setdefault(db, deque(maxlen=MEMORY_AFTER))
        calls.append(time.monotonic())
        if len(calls) == MEMORY_AFTER and calls[-1] - calls[0] <= MEMORY_WINDOW_S:
            return hold(db)
    return db.lsh or SqlBands(db)
