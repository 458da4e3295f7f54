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
from array import array
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
MERGE_ROWS = 1 << 16  # band rows added to a MemoryBands before they are merged into its arrays (or half theirs)


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
    """The tables in memory: each slot's word ids (one flat array, a vocabulary of ints), its
    bulletin, confirmed partners, and the band table: key -> slots, oldest first. ChunkDB applies its
    own writes here (``put``, ``drop``, ``clear``); another connection's commit changes
    ``data_version`` and makes the copy stale.

    The band table is sorted arrays (keys, where each key's slots begin, the slots) plus the rows
    added since they were built, in a dict: at 100k chunks a dict of lists of all 1.06M rows held
    ~130 MB of a chat server's memory, the arrays ~10 MB. A dropped slot leaves the arrays only at
    the next merge: it is skipped by its size, 0."""

    def __init__(self, db: ChunkDB) -> None:
        self.db, self.version = db, db.data_version()
        self.vocab: dict[str, int] = {}
        self.docs: dict[str, int] = {}  # doc_id -> its number in ``doc``
        self.slot: dict[Id, int] = {}
        self.ids: list[Id | None] = []  # by slot (None once dropped)
        self.start = np.zeros(1024, dtype=np.int64)  # by slot: where its word ids begin in ``flat``
        self.size = np.zeros(1024, dtype=np.int64)  # by slot: how many (0 once dropped)
        self.doc = np.zeros(1024, dtype=np.int64)  # by slot: its bulletin's number
        self.flat = np.zeros(1 << 16, dtype=np.int32)
        self.used = 0
        self.by_doc: dict[str, list[int]] = {}
        self.keys = np.zeros(0, dtype=np.int64)  # the band table's keys, sorted
        self.ptr = np.zeros(1, dtype=np.int64)  # key i's slots: members[ptr[i]:ptr[i + 1]], oldest first
        self.members = np.zeros(0, dtype=np.int32)
        self.fresh: dict[int, list[int]] = {}  # key -> slots added since the arrays (newer than theirs)
        self.fresh_keys: dict[int, list[int]] = {}  # such a slot -> its keys (to take it out when dropped)
        self.fresh_rows = 0
        self.pairs: dict[Id, set[Id]] = {}
        self.mark = np.zeros(1024, dtype=np.uint8)  # 1 at an article's own word ids while it is checked
        self.seen = np.zeros(1024, dtype=bool)  # by slot: scratch for ``_distinct``
        self._last: tuple[Collection[str] | None, np.ndarray] = (None, self.mark[:0])
        for doc_id, article, words in db.article_words():
            self._add(doc_id, article, words, ())
        self.flat = self.flat[: self.used + self.used // 8 + 1024].copy()  # room for some more, not as much again
        slot, keys, slots = self.slot, array("q"), array("q")
        for key, d, a in db.all_bands():  # oldest first
            if (s := slot.get((d, a))) is not None:
                keys.append(key)
                slots.append(s)
        self._table(np.frombuffer(keys, dtype=np.int64), np.frombuffer(slots, dtype=np.int64))
        self._pair(db.dup_pairs())

    def clear(self) -> None:
        self.__init__(self.db)  # type: ignore[misc]  # the tables are empty now: nothing to read

    def _table(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """The band arrays of these rows (oldest first), without dropped slots' rows."""
        live = self.size[slots] > 0
        keys, slots = keys[live], slots[live]
        order = np.argsort(keys, kind="stable")  # by key, each key's rows still oldest first
        self.keys, first = np.unique(keys[order], return_index=True)
        self.ptr = np.append(first, len(order)).astype(np.int64)
        self.members = slots[order].astype(np.int32)

    def _merge(self) -> None:
        """The rows added since into the arrays (a build adds them all: merged each time they grow by
        half, so each row is sorted a few times)."""
        old = np.repeat(self.keys, np.diff(self.ptr))
        new_keys = np.fromiter(chain.from_iterable([k] * len(v) for k, v in self.fresh.items()), dtype=np.int64,
                               count=self.fresh_rows)
        new_slots = np.fromiter(chain.from_iterable(self.fresh.values()), dtype=np.int64, count=self.fresh_rows)
        self._table(np.concatenate([old, new_keys]), np.concatenate([self.members.astype(np.int64), new_slots]))
        self.fresh, self.fresh_keys, self.fresh_rows = {}, {}, 0

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
        if self.used + len(ws) > len(self.flat):
            self.flat = np.concatenate([self.flat, np.zeros(max(len(ws), len(self.flat)), dtype=np.int32)])
        self.flat[self.used : self.used + len(ws)] = ws
        self.start[slot], self.size[slot] = self.used, len(ws)
        self.doc[slot] = self.docs.setdefault(doc_id, len(self.docs))
        self.used += len(ws)
        self.slot[(doc_id, article)] = slot
        self.ids.append((doc_id, article))
        self.by_doc.setdefault(doc_id, []).append(slot)
        if keys:
            self.fresh_keys[slot] = list(keys)
            self.fresh_rows += len(keys)
            for k in keys:
                self.fresh.setdefault(k, []).append(slot)

    def _pair(self, pairs: Iterable[tuple[str, int, str, int]]) -> None:
        slot, ids = self.slot, self.ids

        def one(m: Id) -> Id:  # the slot's own tuple where there is one: not one more per pair
            s = slot.get(m)
            return m if s is None else ids[s] or m

        for d1, a1, d2, a2 in pairs:
            m1, m2 = one((d1, a1)), one((d2, a2))
            self.pairs.setdefault(m1, set()).add(m2)
            self.pairs.setdefault(m2, set()).add(m1)

    def put(self, doc_id: str, rows: Sequence[tuple[int, bytes, str, Sequence[int]]],
            pairs: Sequence[tuple[str, int, str, int]]) -> None:
        """A bulletin's articles replaced (as ChunkDB.put_articles has just committed)."""
        self.drop(doc_id)
        for article, _, text, keys in rows:
            self._add(doc_id, article, text, keys)
        self._pair(pairs)
        if self.fresh_rows > max(MERGE_ROWS, len(self.members) // 2):
            self._merge()

    def drop(self, doc_id: str) -> None:
        for slot in self.by_doc.pop(doc_id, []):
            for k in self.fresh_keys.pop(slot, ()):
                self.fresh[k].remove(slot)
                self.fresh_rows -= 1
                if not self.fresh[k]:
                    del self.fresh[k]
            m = self.ids[slot]
            assert m is not None
            self.ids[slot], self.size[slot] = None, 0  # its rows in the arrays are skipped from now on
            del self.slot[m]
            for other in self.pairs.pop(m, set()):
                self.pairs.get(other, set()).discard(m)

    def _newest(self, keys: Sequence[int], cap: int) -> np.ndarray:
        """The slots among the ``cap`` newest live ones of each of these bands (unordered, repeats)."""
        parts = [np.asarray(f[-cap:], dtype=np.int64) for k in keys if (f := self.fresh.get(k))]
        if len(self.keys) and keys:
            want = np.fromiter(keys, dtype=np.int64, count=len(keys))
            at = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
            hit = self.keys[at] == want
            if hit.any():
                lo, hi = self.ptr[at[hit]], self.ptr[at[hit] + 1]
                room = np.fromiter((cap - len(self.fresh.get(k, ())) for k in want[hit].tolist()), dtype=np.int64,
                                   count=len(lo))  # the rows added since are newer: they come first
                sizes = hi - lo
                begin = np.cumsum(sizes) - sizes
                band = np.repeat(np.arange(len(lo)), sizes)
                slots = self.members[np.repeat(lo - begin, sizes) + np.arange(int(sizes.sum()))].astype(np.int64)
                live = self.size[slots] > 0
                slots, band = slots[live], band[live]
                counts = np.bincount(band, minlength=len(lo))
                after = (np.cumsum(counts) - 1)[band] - np.arange(len(slots))  # live rows of its band after it
                parts.append(slots[after < room[band]])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def first(self, doc_id: str, arts: Sequence[Article], cap: int, same: Same) -> list[list[Id]]:
        own = self.docs.get(doc_id, -1)
        out = []
        for art in arts:
            slots = self._distinct(self._newest(art.bands, cap))
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
