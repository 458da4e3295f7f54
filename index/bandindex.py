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
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from index.chunkdb import ChunkDB
    from index.dedupe import Article

Id = tuple[str, int]  # (doc_id, article)
Same = Callable[[np.ndarray, int, np.ndarray], np.ndarray]  # (overlaps, own size, their sizes) -> same story
MEMORY_AFTER, MEMORY_WINDOW_S = 16, 60.0  # this many links that quickly on one connection: a build


class SqlBands:
    """Index lookups in SQLite: one range read per band key, one primary-key read per candidate."""

    def __init__(self, db: ChunkDB) -> None:
        self.db = db

    def first(self, doc_id: str, arts: Sequence[Article], cap: int, same: Same) -> list[list[Id]]:
        """Per article, which of the ``cap`` newest articles of each of its bands (other bulletins'
        only) are the same story."""
        members = self.db.band_members({k for a in arts for k in a.bands}, cap)
        todo = [[m for m in dict.fromkeys(m for k in a.bands for m in members.get(k, ())) if m[0] != doc_id]
                for a in arts]
        return self.confirm(same, [(a.words, ids) for a, ids in zip(arts, todo, strict=True)])

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
    """The tables in memory: band key -> slots (oldest first), each slot's word ids (one flat
    array, a vocabulary of ints), its bulletin, confirmed partners. ChunkDB applies its own
    writes here (``put``, ``drop``, ``clear``); another connection's commit changes
    ``data_version`` and makes the copy stale."""

    def __init__(self, db: ChunkDB) -> None:
        self.db, self.version = db, db.data_version()
        self.vocab: dict[str, int] = {}
        self.docs: dict[str, int] = {}  # doc_id -> its number in ``doc``
        self.slot: dict[Id, int] = {}
        self.ids: list[Id | None] = []  # by slot (None once dropped)
        self.keys: list[list[int]] = []  # by slot: band keys
        self.start = np.zeros(1024, dtype=np.int64)  # by slot: where its word ids begin in ``flat``
        self.size = np.zeros(1024, dtype=np.int64)  # by slot: how many (0 once dropped)
        self.doc = np.zeros(1024, dtype=np.int64)  # by slot: its bulletin's number
        self.flat = np.zeros(1 << 16, dtype=np.int32)
        self.used = 0
        self.by_doc: dict[str, list[int]] = {}
        self.bands: dict[int, list[int]] = {}
        self.pairs: dict[Id, set[Id]] = {}
        self.mark = np.zeros(1024, dtype=np.uint8)  # 1 at an article's own word ids while it is checked
        self.seen = np.zeros(1024, dtype=bool)  # by slot: scratch for ``_distinct``
        self._last: tuple[Collection[str] | None, np.ndarray] = (None, self.mark[:0])
        for r in db.signatures():
            self._add(r["doc_id"], r["article"], r["words"], [])
        for key, d, a in db.all_bands():
            if (d, a) in self.slot:
                self.keys[self.slot[(d, a)]].append(key)
                self.bands.setdefault(key, []).append(self.slot[(d, a)])
        self._pair(db.dup_pairs())

    def clear(self) -> None:
        self.__init__(self.db)  # type: ignore[misc]  # the tables are empty now: nothing to read

    def _word_ids(self, words: Collection[str]) -> np.ndarray:
        if words is self._last[0]:  # the article being linked: checked once per round, then stored
            return self._last[1]
        vocab = self.vocab
        for w in words:
            if w not in vocab:
                vocab[w] = len(vocab)
        ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
        self._last = (words, ids)
        return ids

    def _add(self, doc_id: str, article: int, text: str, keys: Sequence[int]) -> None:
        slot, ws = len(self.ids), self._word_ids(text.split())
        if slot == len(self.size):
            self.start, self.size, self.doc = (np.concatenate([a, np.zeros_like(a)])
                                               for a in (self.start, self.size, self.doc))
        while self.used + len(ws) > len(self.flat):
            self.flat = np.concatenate([self.flat, np.zeros_like(self.flat)])
        self.flat[self.used : self.used + len(ws)] = ws
        self.start[slot], self.size[slot] = self.used, len(ws)
        self.doc[slot] = self.docs.setdefault(doc_id, len(self.docs))
        self.used += len(ws)
        self.slot[(doc_id, article)] = slot
        self.ids.append((doc_id, article))
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
            self.ids[slot], self.keys[slot], self.size[slot] = None, [], 0
            del self.slot[m]
            for other in self.pairs.pop(m, set()):
                self.pairs.get(other, set()).discard(m)

    def first(self, doc_id: str, arts: Sequence[Article], cap: int, same: Same) -> list[list[Id]]:
        own = self.docs.get(doc_id, -1)
        out = []
        for art in arts:
            bands = [self.bands[k][-cap:] for k in art.bands if k in self.bands]
            slots = self._distinct(np.fromiter(chain.from_iterable(bands), dtype=np.int64))
            out.append(self._check(art.words, slots[(self.doc[slots] != own) & (self.size[slots] > 0)], same))
        return out

    def _distinct(self, slots: np.ndarray) -> np.ndarray:
        """``np.unique(slots)`` by marking a flag per slot: no sort or hash of the up to 37 x cap
        candidates (np.unique was a quarter of the candidate check at 100k chunks)."""
        if len(self.seen) < len(self.ids):
            self.seen = np.zeros(2 * len(self.ids), dtype=bool)
        self.seen[slots] = True
        found = np.flatnonzero(self.seen[: len(self.ids)])
        self.seen[found] = False
        return found

    def confirm(self, same: Same, batch: Sequence[tuple[frozenset[str], Sequence[Id]]]) -> list[list[Id]]:
        return [self._check(words, np.array([self.slot[m] for m in ids if m in self.slot], dtype=np.int64), same)
                for words, ids in batch]

    def _check(self, words: frozenset[str], slots: np.ndarray, same: Same) -> list[Id]:
        """Those of these slots that are the same story as an article of these words: the word
        overlap of all of them counted in one gather."""
        if not len(slots):
            return []
        own = self._word_ids(words)
        if len(self.mark) < len(self.vocab):
            self.mark = np.zeros(2 * len(self.vocab), dtype=np.uint8)
        self.mark[own] = 1
        sizes = self.size[slots]
        offsets = np.cumsum(sizes) - sizes
        where = np.repeat(self.start[slots] - offsets, sizes) + np.arange(int(sizes.sum()))
        inter = np.add.reduceat(self.mark[self.flat[where]], offsets, dtype=np.int64)  # every slot here has words
        self.mark[own] = 0
        return [self.ids[s] for s in slots[same(inter, len(words), sizes)]]  # type: ignore[misc]

    def partners(self, ids: Iterable[Id]) -> dict[Id, set[Id]]:
        return {m: self.pairs[m] for m in ids if m in self.pairs}


_calls: weakref.WeakKeyDictionary[ChunkDB, deque[float]] = weakref.WeakKeyDictionary()
_kept: weakref.WeakSet[ChunkDB] = weakref.WeakSet()


def hold(db: ChunkDB, keep: bool = False) -> MemoryBands:
    """This connection's lookups from memory from now on (a build about to link many bulletins);
    with ``keep``, for the life of the connection: a copy made stale by another process's commit is
    read again rather than given up (a watcher or chat server: at 100k chunks the SQLite lookups of
    one new bulletin took 1.8 s, the copy ~0.05 s, for 3.6 s and ~240 MB to load it once)."""
    if keep:
        _kept.add(db)
    if db.lsh is None or db.lsh.version != db.data_version():
        db.lsh = MemoryBands(db)
    return db.lsh


def lookups(db: ChunkDB) -> SqlBands | MemoryBands:
    """The in-memory copy where this connection holds a current one or has just linked
    MEMORY_AFTER bulletins within MEMORY_WINDOW_S seconds (a build: loading it reads the whole
    band table once, too much for one bulletin added to a large index), or where ``hold(db, keep=True)``
    was called (read again when stale), else SQLite."""
    if db.lsh is not None and db.lsh.version != db.data_version():
        db.lsh = None  # another process changed the tables: this copy is stale
    if db.lsh is None and db in _kept:
        return hold(db)
    if db.lsh is None:
        calls = _calls.setdefault(db, deque(maxlen=MEMORY_AFTER))
        calls.append(time.monotonic())
        if len(calls) == MEMORY_AFTER and calls[-1] - calls[0] <= MEMORY_WINDOW_S:
            return hold(db)
    return db.lsh or SqlBands(db)
