"""Near-duplicate news: the same story in two bulletins (reworded, trimmed) is found
at index time with MinHash LSH over each article's content words, confirmed by exact
Jaccard or containment, and stored as pairs.

The LSH lives in the chunk table's SQLite file (one row per article and band), so
adding a bulletin compares only its own articles with their candidates: regrouping
every article on every change cost 13-17 s at 10k chunks. MinHash is a few lines of
numpy here because datasketch, which does it well, imports scipy (1.4 s of a 3 s
budget for adding a bulletin) and cannot keep its LSH in SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from index import bandindex
from index.tokenize import tokens

if TYPE_CHECKING:
    from index.chunkdb import ChunkDB

SCHEME = "np-affine64-v1"  # stored with the signatures; another scheme means recompute them
NUM_PERM = 128
BANDS, ROWS = 37, 3  # datasketch's optimal (b, r) for a 0.3 threshold at 128 permutations
MIN_JACCARD = 0.5
MIN_CONTAINMENT = 0.75  # a trimmed copy lies mostly inside the longer one
MIN_WORDS = 25  # shorter articles (headline-only stubs) are never grouped
CAP = 100  # an article is compared with at most this many of the newest articles of each of its bands
EXPAND = 2000  # partners of its confirmed duplicates compared with an article, at most

_rng = np.random.default_rng(7)
_A = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd: a bijection
_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)


@dataclass(frozen=True)
class Article:
    """One article's dedupe record: its words, MinHash signature and LSH band keys."""

    doc_id: str
    article: int
    words: frozenset[str]
    sig: np.ndarray

    @cached_property
    def bands(self) -> list[int]:
        return band_keys(self.sig) if len(self.words) >= MIN_WORDS else []


def words(text: str) -> frozenset[str]:
    """Content words (stemmed, identifiers whole) of an article."""
    return frozenset(tokens(text))


def signature(word_set: Iterable[str]) -> np.ndarray:
    """MinHash of a word set: per permutation, the least ``a*h(w)+b mod 2^64``."""
    hashes = np.fromiter((int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                          for w in word_set), dtype=np.uint64)
    if hashes.size == 0:
        return np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    return (hashes[:, None] * _A[None, :] + _B[None, :]).min(axis=0)


def band_keys(sig: np.ndarray) -> list[int]:
    """One signed 64-bit key per band (band number and its rows hashed together)."""
    return [int.from_bytes(hashlib.blake2b(bytes([b]) + sig[b * ROWS:(b + 1) * ROWS].tobytes(), digest_size=8)
                           .digest(), "little", signed=True) for b in range(BANDS)]


def article(doc_id: str, index: int, text: str, word_set: Iterable[str] | None = None) -> Article:
    """An article's record from its text, or from its content words when the caller has them."""
    ws = words(text) if word_set is None else frozenset(word_set)
    return Article(doc_id, index, ws, signature(ws))


def same_story(a: frozenset[str], b: frozenset[str]) -> bool:
    inter = len(a & b)
    return inter / len(a | b) >= MIN_JACCARD or inter / min(len(a), len(b)) >= MIN_CONTAINMENT


def same_counts(inter: np.ndarray, size: int, sizes: np.ndarray) -> np.ndarray:
    """``same_story`` for many pairs at once, from their word overlaps and set sizes."""
    return (inter / (size + sizes - inter) >= MIN_JACCARD) | (inter / np.minimum(size, sizes) >= MIN_CONTAINMENT)


def link(db: ChunkDB, doc_id: str, articles: Sequence[Article]) -> None:
    """Store one bulletin's articles (replacing what it had) and its confirmed duplicate pairs
    with articles of other bulletins, in one transaction.

    Each article is compared with the ``CAP`` newest articles of each of its bands, never with a
    whole crowded band, so its cost is bounded however many articles share a band; then with the
    confirmed partners of each duplicate it confirms (at most ``EXPAND``), so a story syndicated
    far more than ``CAP`` times still comes out whole. Where a true pair can be missed (beyond
    what LSH misses anyway): two articles whose only shared bands each hold more than ``CAP``
    articles stored after the older one, and that share no confirmed partner, are not compared;
    such bands are boilerplate shared by hundreds of articles, as text generated from a few
    seed sentences has. Lookups come from memory during a build (``index.bandindex``)."""
    source = bandindex.lookups(db)
    linkable = [a for a in articles if len(a.words) >= MIN_WORDS]
    found = source.first(doc_id, linkable, CAP, same_counts)
    seen = [set(ids) for ids in found]  # per article: confirmed, or compared as a partner
    budget = [EXPAND] * len(linkable)
    pairs: set[tuple[str, int, str, int]] = set()
    while any(found):
        for art, ids in zip(linkable, found, strict=True):
            pairs.update(min((doc_id, art.article, d, a), (d, a, doc_id, art.article)) for d, a in ids)
        partners = source.partners({m for ids in found for m in ids})
        todo = []
        for i, (ids, done) in enumerate(zip(found, seen, strict=True)):
            more = list(dict.fromkeys(p for m in ids for p in sorted(partners.get(m, ()))
                                      if p[0] != doc_id and p not in done))[: budget[i]]
            budget[i] -= len(more)
            done.update(more)
            todo.append(more)
        found = source.confirm(same_counts, [(a.words, ids) for a, ids in zip(linkable, todo, strict=True)])
    db.put_articles(doc_id, [(a.article, a.sig.tobytes(), " ".join(sorted(a.words)), a.bands) for a in articles],
                    sorted(pairs))


def migrate(db: ChunkDB) -> bool:
    """Signatures stored under another scheme (or before the LSH moved into SQLite) are recomputed
    from their stored words and relinked, once; True when that happened."""
    if db.meta("dedupe_scheme") == SCHEME:
        return False
    stored = db.signatures()
    db.clear_articles()
    by_doc: dict[str, list[Article]] = {}
    for r in stored:
        ws = frozenset(r["words"].split())
        by_doc.setdefault(r["doc_id"], []).append(Article(r["doc_id"], r["article"], ws, signature(ws)))
    for doc_id, arts in sorted(by_doc.items()):
        link(db, doc_id, arts)
    db.set_meta("dedupe_scheme", SCHEME)
    return bool(stored)


def groups(pairs: Iterable[tuple[str, int, str, int]]) -> list[list[tuple[str, int]]]:
    """Duplicate groups for people to read (``index status``, the Library): stars, not connected
    components, because components chain different stories through articles that resemble two of
    them (one group of 475 stories on the synthetic 10k corpus). The article with the most
    confirmed pairs leads a group of its partners not yet grouped, and so on; every member is a
    confirmed duplicate of its group's first article. Computed when asked: an update only stores pairs."""
    partners: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for d1, a1, d2, a2 in pairs:
        partners.setdefault((d1, a1), set()).add((d2, a2))
        partners.setdefault((d2, a2), set()).add((d1, a1))
    placed: set[tuple[str, int]] = set()
    out = []
    for lead in sorted(partners, key=lambda k: (-len(partners[k]), k)):
        if lead in placed:
            continue
        members = sorted(partners[lead] - placed)
        if members:
            placed.update(members, [lead])
            out.append([lead, *members])
    return out
