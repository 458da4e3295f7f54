"""Near-duplicate news: the same story in two bulletins (reworded, trimmed) is
found at index time with MinHash LSH (datasketch) over each article's content
words, confirmed by exact Jaccard or containment, and grouped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from index.tokenize import tokens

NUM_PERM = 128
SCHEME = "affine32"  # stored signatures say which hashing produced them
LSH_THRESHOLD = 0.3  # candidate pairs; confirmed below
MIN_JACCARD = 0.5
MIN_CONTAINMENT = 0.75  # a trimmed copy lies mostly inside the longer one
MIN_WORDS = 25  # shorter articles (headline-only stubs) are never grouped


@dataclass(frozen=True)
class ArticleRef:
    doc_id: str
    article: int


def words(text: str) -> set[str]:
    """Content words (stemmed, identifiers whole) of an article."""
    return set(tokens(text))


def signature(word_set: set[str]) -> np.ndarray:
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=7, scheme=SCHEME)
    m.update_batch([w.encode() for w in word_set])
    return m.hashvalues.astype(np.uint64)


def group(items: Iterable[tuple[ArticleRef, np.ndarray, set[str]]]) -> list[list[ArticleRef]]:
    """Groups of two or more articles from different bulletins that tell the same story."""
    from datasketch import MinHash, MinHashLSH

    items = [(ref, sig, ws) for ref, sig, ws in items if len(ws) >= MIN_WORDS]
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    by_key: dict[str, tuple[ArticleRef, MinHash, set[str]]] = {}
    for ref, sig, ws in items:
        key = f"{ref.doc_id}\x1f{ref.article}"
        mh = MinHash(num_perm=NUM_PERM, seed=7, hashvalues=sig, scheme=SCHEME)
        by_key[key] = (ref, mh, ws)
        lsh.insert(key, mh)
    parent: dict[str, str] = {k: k for k in by_key}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for key, (ref, mh, ws) in by_key.items():
        for other in lsh.query(mh):
            oref, _, ows = by_key[other]
            if other <= key or oref.doc_id == ref.doc_id:
                continue
            inter = len(ws & ows)
            if inter / len(ws | ows) >= MIN_JACCARD or inter / min(len(ws), len(ows)) >= MIN_CONTAINMENT:
                parent[find(key)] = find(other)
    groups: dict[str, list[ArticleRef]] = {}
    for key, (ref, _, _) in by_key.items():
        groups.setdefault(find(key), []).append(ref)
    return sorted((sorted(g, key=lambda r: (r.doc_id, r.article)) for g in groups.values() if len(g) > 1),
                  key=lambda g: (g[0].doc_id, g[0].article))
