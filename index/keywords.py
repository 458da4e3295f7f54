"""Keyword search that updates in place: BM25 (Lucene's form, as bm25s scores it: k1 1.5, b 0.75)
over a main segment saved in the data directory plus a delta of the chunks changed since.

The chunk table's triggers append every inserted, replaced or deleted chunk id to ``keyword_log`` in
the same transaction as the chunk row (index/chunkdb.py), so after a crash at any point the log and
the chunks agree. The main segment records the last log entry it covers; a process searching it
drops the chunks logged after that from the main segment and reads their current rows into a small
delta. Scores are computed at query time with the live corpus's statistics (documents, document
frequency, average length), so after any add or removal the ranking is exactly a rebuild's. A
question's rare words are scored first, and its common words only for the chunks they can still lift
into the best (MaxScore, ``_essential``). When the delta outgrows ``DELTA_MAX`` chunks (or a fiftieth
of the main segment) an update writes a new main segment (``compact``) and prunes the log.

Written by hand (numpy, one posting list per term) because neither candidate does this: bm25s stores
scores computed with the whole corpus's statistics and has no update; SQLite FTS5 updates in place
but scores every matching row in each query (on the same 100k chunks, load ~10: 346 ms p50 per
question against 13.5 ms for these posting lists; docs/benchmarks.md, bench/keywords.py)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.tokenize import tokens

K1, B = 1.5, 0.75
HEAD = 20  # a restricted search looks among the best HEAD * n of the whole index first
DELTA_MAX = 1000  # chunks changed since the main segment before an update writes a new one
_ARRAYS = ("indptr", "docs", "tf", "lengths", "dates")


@dataclass(frozen=True)
class Dates:
    """Chunks dated ``lo`` to ``hi`` (date numbers, ``index.model.date_num``; both included): a question's
    time window or date filters alone, tested on the date column kept beside the postings, not a list of
    ids read from the chunk table (a year of a 100k-chunk index is ~9k ids, 3-7 ms to read)."""

    lo: int
    hi: int

    def holds(self, dates: np.ndarray) -> np.ndarray:
        """Which of these date numbers lie inside the range."""
        return (dates >= self.lo) & (dates <= self.hi)


Restriction = set[str] | Dates | None  # chunk ids, a date range, or none


@dataclass
class Segment:
    """Chunk ids, their token counts and dates and, per term, the documents holding it with its frequency."""

    ids: list[str]
    vocab: dict[str, int]
    indptr: np.ndarray  # postings of term t: docs[indptr[t]:indptr[t + 1]]
    docs: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray
    dates: np.ndarray  # each chunk's date number (0: undated)

    @classmethod
    def build(cls, ids: Sequence[str], token_lists: Sequence[Sequence[str]], dates: Sequence[int]) -> Segment:
        vocab: defaultdict[str, int] = defaultdict()
        vocab.default_factory = vocab.__len__  # a new token gets the next id, all in C (map below)
        n_docs = len(token_lists)
        sizes = np.fromiter(map(len, token_lists), dtype=np.int64, count=n_docs)  # no "" tokens: _token_rows
        flat = np.fromiter(map(vocab.__getitem__, itertools.chain.from_iterable(token_lists)), dtype=np.int64,
                           count=int(sizes.sum()))
        n_vocab = len(vocab)
        lengths = np.maximum(sizes, 1)  # an empty chunk counts as one token long, as bm25s counts it
        keys, tf = np.unique(flat * max(1, n_docs) + np.repeat(np.arange(n_docs), sizes), return_counts=True)
        term, doc = keys // max(1, n_docs), keys % max(1, n_docs)  # sorted by term, then document
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(np.bincount(term, minlength=n_vocab), out=indptr[1:])
        return cls(list(ids), dict(vocab), indptr, doc.astype(np.int32), tf.astype(np.int32), lengths,
                   np.asarray(dates, dtype=np.int64))

    @classmethod
    def of(cls, rows: Sequence[tuple[str, list[str], int]]) -> Segment:
        """The segment of these (id, tokens, date number) rows (``_token_rows``)."""
        return cls.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    @classmethod
    def empty(cls) -> Segment:
        return cls.of([])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        t = self.vocab.get(term)
        if t is None:
            return _NONE, _NONE
        lo, hi = self.indptr[t], self.indptr[t + 1]
        return self.docs[lo:hi], self.tf[lo:hi]

    def save(self, folder: Path, seq: int) -> None:
        folder.mkdir(parents=True)
        (folder / "ids.json").write_text(json.dumps(self.ids))
        (folder / "vocab.json").write_text(json.dumps(self.vocab))
        for name in _ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        (folder / "seq").write_text(str(seq))

    @classmethod
    def load(cls, folder: Path) -> tuple[Segment, int]:
        arrays = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r")) for name in _ARRAYS}  # mapped,
        # as plain arrays: a memmap's slicing runs Python code (0.4 ms of a question at 100k chunks)
        seg = cls(json.loads((folder / "ids.json").read_text()), json.loads((folder / "vocab.json").read_text()),
                  **arrays)
        return seg, int((folder / "seq").read_text())


_NONE = np.zeros(0, dtype=np.int32)


class KeywordIndex:
    """The keyword index of one data directory (``folder``) over its chunk table (``db_path``);
    ``search`` returns (chunk id, score) best first. Safe to share between threads."""

    def __init__(self, db_path: Path, folder: Path) -> None:
        self.db_path, self.folder = db_path, folder
        self._conn = sqlite3.connect(db_path, timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._gen: str | None = ""  # not read yet (None: read, and there is none)
        self._norms: tuple[Segment, Segment, float, np.ndarray] | None = None  # see _norm
        self._dated: tuple[Segment, Segment, np.ndarray] | None = None  # see _dates
        self.main, self.seq = Segment.empty(), 0
        self._reset()

    def close(self) -> None:
        self._conn.close()

    # the live state ------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.position = {cid: i for i, cid in enumerate(self.main.ids)}
        self.alive = np.ones(len(self.main.ids), dtype=bool)
        self.main_length = int(np.sum(self.main.lengths))
        self.applied = self.seq
        self.touched: set[str] = set()
        self.delta, self.delta_position = Segment.empty(), {}

    def refresh(self) -> None:
        """Take in a newer main segment and the chunks logged since (cheap when nothing changed)."""
        with self._lock:
            for _ in range(3):
                if self._current() != self._gen:
                    self._load_main()
                self._conn.execute("BEGIN")  # the log and the chunk rows from one snapshot
                try:
                    floor = int(self._meta("keyword_floor") or 0)
                    if floor > self.applied:  # pruned past us: a newer main segment covers it
                        stale, self._gen = self._gen, None
                        if self._current() == stale:  # none does (it was not written here): write one
                            self._conn.execute("COMMIT")
                            self.compact()
                            self._conn.execute("BEGIN")
                        continue
                    logged = self._conn.execute("SELECT seq, id FROM keyword_log WHERE seq > ? ORDER BY seq",
                                                (self.applied,)).fetchall()
                    if logged:
                        self._apply(logged)
                    return
                finally:
                    self._conn.execute("COMMIT")
            raise RuntimeError(f"the keyword index in {self.folder} keeps changing under this reader")

    def _apply(self, logged: list[tuple[int, str]]) -> None:
        fresh = {cid for _, cid in logged} - self.touched
        alive = self.alive.copy()  # searches running now keep the arrays they took
        for cid in fresh:
            i = self.position.get(cid)
            if i is not None:
                alive[i] = False
                self.main_length -= int(self.main.lengths[i])
        self.touched |= fresh
        rows = _token_rows(self._conn, "WHERE id IN (SELECT value FROM json_each(?))",
                           (json.dumps(sorted(self.touched)),))
        self.alive = alive
        self.delta = Segment.of(rows)
        self.delta_position = {cid: len(self.main.ids) + i for i, cid in enumerate(self.delta.ids)}
        self.applied = logged[-1][0]

    def _load_main(self) -> None:
        gen = self._current()
        if gen is None or not all((self.folder / gen / f).is_file() for f in ("seq", "dates.npy")):  # none yet,
            # or an older format (bm25s's; ours before the date column)
            self.compact()
            gen = self._current()
        try:
            self.main, self.seq = Segment.load(self.folder / str(gen))
        except (OSError, ValueError):  # replaced and removed by another process just now: look again
            self._gen = None
            return
        self._gen = gen
        self._reset()

    def _current(self) -> str | None:
        try:
            return (self.folder / "CURRENT").read_text().strip() or None
        except OSError:
            return None

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # reading ------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """Every chunk id the keyword index holds now."""
        self.refresh()
        with self._lock:
            return [cid for cid, live in zip(self.main.ids, self.alive, strict=True) if live] + list(self.delta.ids)

    def pending(self) -> int:
        """Chunks changed since the main segment was written."""
        self.refresh()
        return len(self.touched)

    def dated(self, ids: Iterable[str], span: Dates) -> set[str]:
        """Those of ``ids`` the index holds dated inside ``span`` (the dense search's nearest chunks held
        against a question's time window, without the window's ids)."""
        self.refresh()
        with self._lock:
            main, alive, delta, position, delta_position = (self.main, self.alive, self.delta, self.position,
                                                            self.delta_position)
        dates = self._dates(main, delta)
        out = set()
        for cid in ids:
            i = delta_position.get(cid)
            if i is None and (i := position.get(cid)) is not None and not alive[i]:
                continue  # removed or changed since the main segment: the delta holds it if it is still there
            if i is not None and span.lo <= dates[i] <= span.hi:
                out.add(cid)
        return out

    def search(self, query: str, n: int, allowed: Restriction = None) -> list[tuple[str, float]]:
        """Top ``n`` chunks for ``query``; ``allowed`` restricts to those ids or dates (filters)."""
        return self.search_each(query, n, [allowed])[0]

    def search_each(self, query: str, n: int, restrictions: Sequence[Restriction]) -> list[list[tuple[str, float]]]:
        """``search`` under each restriction, the query scored once (a question's time window is
        searched beside the whole index)."""
        if n <= 0:
            return [[] for _ in restrictions]
        self.refresh()
        with self._lock:  # the arrays are replaced, never changed, by refresh: score outside the lock
            main, alive, delta, main_length = self.main, self.alive, self.delta, self.main_length
            position, delta_position = self.position, self.delta_position
        docs = int(alive.sum()) + len(delta.ids)
        if docs == 0:
            return [[] for _ in restrictions]
        avgdl = (main_length + int(delta.lengths.sum())) / docs
        norm = self._norm(main, delta, avgdl)
        pruned = len(alive) > 0 and not alive.all()  # some main-segment chunks changed since it was written
        terms: list[tuple[float, np.ndarray, np.ndarray]] = []  # (idf, documents, frequencies) per query token
        for term in tokens(query):  # a repeated word counts again, as bm25s counts it
            (d0, t0), (d1, t1) = main.postings(term), delta.postings(term)
            if pruned and len(d0):
                keep = alive[d0]
                d0, t0 = d0[keep], t0[keep]
            df = len(d0) + len(d1)
            if df == 0:
                continue
            if len(d1):  # the delta's documents follow the main segment's: still sorted
                d0, t0 = np.concatenate([d0, d1 + len(main.ids)]), np.concatenate([t0, t1])
            terms.append((float(np.log(1 + (docs - df + 0.5) / (df + 0.5))), d0, t0))
        terms.sort(key=lambda t: -t[0])  # every path adds a chunk's terms in this order: the same sums
        restricted = any(r is not None for r in restrictions)
        everything = np.zeros(len(main.ids) + len(delta.ids))
        want = max(n, HEAD * n) if restricted else n
        split = _essential(terms, everything, norm, want)
        partial = everything.copy() if restricted and split < len(terms) else None
        _complete(terms, split, everything, norm, want)
        scored: np.ndarray | None = None  # the chunks that scored, once a restriction needs them

        def id_of(i: int) -> str:
            return main.ids[i] if i < len(main.ids) else delta.ids[i - len(main.ids)]

        def positions(allowed: set[str] | Dates) -> np.ndarray:
            """The allowed chunks' positions, sorted (one changed since is dead in the main segment: it never
            scores there)."""
            if isinstance(allowed, Dates):
                return np.flatnonzero(allowed.holds(self._dates(main, delta)))
            at = np.fromiter(map(position.get, allowed, itertools.repeat(-1)), np.int64, len(allowed))
            delta_at = np.fromiter((delta_position[c] for c in delta_position.keys() & allowed), np.int64)
            return np.unique(np.concatenate([at[at >= 0], delta_at]))

        def held(allowed: set[str] | Dates, hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
            """Those of these hits (chunks that scored, so live) the restriction allows, in order."""
            if not isinstance(allowed, Dates):
                return [hit for hit in hits if hit[0] in allowed]
            at = np.fromiter((delta_position.get(c, position.get(c, -1)) for c, _ in hits), np.int64, len(hits))
            dates = self._dates(main, delta)[at]
            return [hit for hit, ok in zip(hits, allowed.holds(dates), strict=True) if ok]

        head = _top(everything, want, id_of)
        results = []
        for allowed in restrictions:
            if allowed is None:
                results.append(head[:n])  # the best n of the best HEAD * n: the same, ties too
                continue
            inside = held(allowed, head)[:n]
            if len(inside) == n:  # the allowed among the best HEAD * n hold n: they are its best n
                results.append(inside)
                continue
            at = positions(allowed) if isinstance(allowed, Dates) else None  # (a range's: cheap, taken at once)
            few = (len(allowed) if at is None else len(at)) * 4 <= len(everything)
            if partial is not None and few:  # few allowed: the rest of the words added for them alone
                at = positions(allowed) if at is None else at
                mine = np.zeros(len(everything))
                mine[at] = partial[at]
                _complete(terms, split, mine, norm, n, at)
                results.append(_top(mine, n, id_of))
                continue
            if partial is not None:  # every chunk's whole score, for the allowed beyond the best
                for idf, d, tf in terms[split:]:
                    partial[d] += idf * tf / (tf + norm[d])
                everything, partial = partial, None
            mask = np.zeros(len(everything), dtype=bool)  # else the allowed ids or the chunks that scored,
            scored = np.flatnonzero(everything) if scored is None else scored  # whichever is fewer
            if at is None and len(scored) < len(allowed):
                mask[scored[np.fromiter((id_of(i) in allowed for i in scored), bool, len(scored))]] = True
            else:
                mask[positions(allowed) if at is None else at] = True
            results.append(_top(np.where(mask, everything, 0.0), n, id_of))
        return results

    def _norm(self, main: Segment, delta: Segment, avgdl: float) -> np.ndarray:
        """BM25's length normalisation of each chunk, main segment then delta,
        ``K1 * (1 - B + B * length / avgdl)``: computed once per pair of segments and average length (until
        the next change), not per query term (a term held by most chunks cost a pass over all of them for it)."""
        kept = self._norms
        if kept is None or kept[0] is not main or kept[1] is not delta or kept[2] != avgdl:
            lengths = np.concatenate([main.lengths, delta.lengths])
            kept = self._norms = (main, delta, avgdl, K1 * (1 - B + B * lengths / avgdl))  # replaced whole:
            # searches in other threads read it as it was
        return kept[3]

    def _dates(self, main: Segment, delta: Segment) -> np.ndarray:
        """Each chunk's date number, main segment then delta (once per pair of segments)."""
        kept = self._dated
        if kept is None or kept[0] is not main or kept[1] is not delta:
            kept = self._dated = (main, delta, np.concatenate([main.dates, delta.dates]))
        return kept[2]

    # writing ------------------------------------------------------------------------------------
    def due(self) -> bool:
        """Whether the delta has grown enough for ``compact``."""
        return self.pending() > max(DELTA_MAX, len(self.main.ids) // 50)

    def compact(self, prune: bool = True) -> None:
        """Write a new main segment from one snapshot of the chunk table, then prune the log it covers
        (``prune``). Another process may do the same at once: each writes its own folder, the last
        pointer wins."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                seq = max(int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM keyword_log").fetchone()[0]),
                          int(self._meta("keyword_floor") or 0))
                rows = _token_rows(self._conn, "ORDER BY doc_id, start", ())
            finally:
                self._conn.execute("COMMIT")
            gen = f"gen-{os.getpid()}-{os.urandom(4).hex()}"
            Segment.of(rows).save(self.folder / gen, seq)
            _fsync_tree(self.folder / gen)
            tmp = self.folder / f"CURRENT.{gen}"
            tmp.write_text(gen)
            os.replace(tmp, self.folder / "CURRENT")
            for old in self.folder.iterdir():
                if old.is_dir() and old.name != gen:
                    shutil.rmtree(old, ignore_errors=True)
            if not prune:
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM keyword_log WHERE seq <= ?", (seq,))
                self._conn.execute("INSERT INTO meta (key, value) VALUES ('keyword_floor', ?) ON CONFLICT(key) DO"
                                   " UPDATE SET value = MAX(CAST(value AS INTEGER), excluded.value)", (str(seq),))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise


def _token_rows(conn: sqlite3.Connection, where: str, params: Iterable[object]) -> list[tuple[str, list[str], int]]:
    """(id, BM25 tokens, date number) of chunk rows; rows written before the token cache are tokenised here."""
    out = []
    for cid, cached, title, text, day in conn.execute(f"SELECT id, tokens, title, text, date_num FROM chunks {where}",
                                                      tuple(params)):
        out.append((cid, cached.split() if cached is not None else [t for t in tokens(f"{title}\n{text}") if t], day))
    return out


def _fsync_tree(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def _essential(terms: Sequence[tuple[float, np.ndarray, np.ndarray]], total: np.ndarray, norm: np.ndarray,
               n: int) -> int:
    """Score the terms into ``total`` (best weight first) until the rest cannot lift a chunk into the best
    ``n`` (MaxScore's split; ``_complete`` adds the rest where it can still matter). Returns how many
    terms were scored. The long posting lists of common words are the rest: at 100k chunks most of a
    question's postings."""
    most = 0.0  # the most a chunk can have scored so far
    for i, (idf, d, tf) in enumerate(terms):
        total[d] += idf * tf / (tf + norm[d])
        most += idf
        rest = _bound(terms[i + 1:])
        if 0 < rest < most and _nth(total, n) > rest:
            return i + 1
    return len(terms)


def _complete(terms: Sequence[tuple[float, np.ndarray, np.ndarray]], split: int, total: np.ndarray,
              norm: np.ndarray, n: int, among: np.ndarray | None = None) -> None:
    """Add ``terms[split:]`` to the chunks that can still be among the best ``n``: a term adds less than
    its idf to any chunk (``tf / (tf + norm) < 1``), so a chunk below the ``n``-th best score so far by
    more than the remaining terms' idfs stays out whatever they add. The others keep partial scores,
    all below the best ``n``'s. ``among``: only these chunks (sorted positions) may be among the best."""
    if split == len(terms):
        return
    chosen = among if among is not None else np.flatnonzero(total >= _nth(total, n) - _bound(terms[split:]))
    for j in range(split, len(terms)):
        idf, d, tf = terms[j]
        if len(chosen) * 16 < len(d):  # few chunks: looked up in the sorted posting list
            at = np.minimum(np.searchsorted(d, chosen), len(d) - 1)
            hit = d[at] == chosen
            c, f = chosen[hit], tf[at[hit]]
        else:  # many: the posting list filtered by them
            keep = np.zeros(len(total), dtype=bool)
            keep[chosen] = True
            hit = keep[d]
            c, f = d[hit], tf[hit]
        total[c] += idf * f / (f + norm[c])
        if j + 1 < len(terms):
            scores = total[chosen]
            nth = float(np.partition(scores, len(scores) - n)[len(scores) - n]) if len(scores) >= n else 0.0
            chosen = chosen[scores >= nth - _bound(terms[j + 1:])]


def _bound(terms: Sequence[tuple[float, np.ndarray, np.ndarray]]) -> float:
    """More than ``terms`` can add to a chunk's score, beyond the sums' rounding."""
    return sum(idf for idf, _, _ in terms) * (1 + 1e-6) + 1e-9 if terms else 0.0


def _nth(total: np.ndarray, n: int) -> float:
    """At most the ``n``-th best score: the ``n``-th best of the blocks' maxima (``n`` blocks hold a score
    that high), or 0."""
    blocks = _block_max(total)
    return float(np.partition(blocks, len(blocks) - n)[len(blocks) - n]) if len(blocks) >= n else 0.0


def _block_max(total: np.ndarray) -> np.ndarray:
    """The maximum of each of ``len(total) // _BLOCK`` disjoint blocks of scores, and of the rest."""
    whole = len(total) - len(total) % _BLOCK
    blocks = total[:whole].reshape(_BLOCK, -1).max(axis=0)  # blocks of every (len // _BLOCK)-th chunk:
    # any split into disjoint blocks will do, and this one reduces 5x faster (18 against 93 us at 100k)
    return np.append(blocks, total[whole:].max()) if whole < len(total) else blocks


def _top(total: np.ndarray, n: int, id_of: Callable[[int], str]) -> list[tuple[str, float]]:
    """The ``n`` best scores above zero, best first; ties go by chunk id, as in a rebuild. Only the
    scores at or above the ``n``-th best of the blocks' maxima can be among them (``n`` blocks hold at
    least ``n`` scores that high): a partition of those, not of all (0.9 -> 0.2 ms at 100k chunks)."""
    n = min(n, int(np.count_nonzero(total)))
    if n == 0:
        return []
    floor = _nth(total, n)
    near = np.flatnonzero(total >= floor)
    cut = np.partition(total[near], len(near) - n)[len(near) - n]
    above = near[total[near] > cut].tolist()
    ranked = sorted(zip((-total[above]).tolist(), map(id_of, above), strict=True))  # plain floats and ids: sorted in C
    tied = sorted(map(id_of, near[total[near] == cut].tolist()))[:n - len(above)]
    return [(cid, -negative) for negative, cid in ranked] + [(c, float(cut)) for c in tied]


_BLOCK = 64
