"""Keyword index beside Chroma: bm25s over the chunk table, saved atomically as a
new generation folder plus a ``CURRENT`` pointer swapped with ``os.replace``.

bm25s has no incremental update, so every change rebuilds the index from the chunk
table's cached tokens; its builder loops over documents in Python (0.76 s at 10k
chunks), so ``build_index_from_ids``, which bm25s offers for overriding, is done here
in a few vectorised numpy steps (0.13 s) with the same scores."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.tokenize import tokens


class BM25Index:
    """Chunk ids and their bm25s model; ``search`` returns (id, score) best first."""

    def __init__(self, ids: list[str], model: object | None) -> None:
        self.ids = ids
        self.model = model
        self.position = {cid: i for i, cid in enumerate(ids)}

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str]) -> BM25Index:
        return cls.from_tokens(ids, [tokens(t) for t in texts])

    @classmethod
    def from_tokens(cls, ids: Sequence[str], token_lists: Sequence[list[str]]) -> BM25Index:
        """The index over already tokenised chunks (the chunk table caches each chunk's tokens)."""
        import bm25s

        if not ids:
            return cls([], None)
        model = _builder(bm25s)()
        model.index([[t for t in toks if t] or ["\x00"] for toks in token_lists], show_progress=False)
        return cls(list(ids), model)

    def search(self, query: str, n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top ``n`` chunks for ``query``; ``allowed`` restricts to those ids (filters)."""
        if self.model is None or n <= 0:
            return []
        vocab = self.model.vocab_dict  # type: ignore[attr-defined]
        q = [t for t in tokens(query) if t in vocab]
        if not q:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=np.float32)
            mask[[self.position[c] for c in allowed if c in self.position]] = 1.0
        scores = self.model.get_scores(q, weight_mask=mask)  # type: ignore[attr-defined]
        n = min(n, int(np.count_nonzero(scores)))
        if n == 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        gen = f"gen-{os.getpid()}-{os.urandom(4).hex()}"
        target = folder / gen
        target.mkdir()
        (target / "ids.json").write_text(json.dumps(self.ids))
        if self.model is not None:
            self.model.save(str(target / "model"))  # type: ignore[attr-defined]
        tmp = folder / f"CURRENT.{gen}"
        tmp.write_text(gen)
        _fsync_dir(target)
        os.replace(tmp, folder / "CURRENT")
        for old in folder.iterdir():
            if old.is_dir() and old.name != gen:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        import bm25s

        current = folder / "CURRENT"
        if not current.is_file():
            return cls([], None)
        target = folder / current.read_text().strip()
        ids = json.loads((target / "ids.json").read_text())
        model = bm25s.BM25.load(str(target / "model")) if (target / "model").exists() else None
        return cls(ids, model)


def _builder(bm25s: Any) -> type:
    """``bm25s.BM25`` with the index built by numpy (Lucene scoring, bm25s's default); it saves
    what bm25s saves and ``bm25s.BM25.load`` reads it back."""

    class FastBM25(bm25s.BM25):  # type: ignore[misc, name-defined]
        def build_index_from_tokens(self, corpus_tokens: list[list[str]], show_progress: bool = True,
                                    leave_progress: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
            vocab: defaultdict[str, int] = defaultdict()
            vocab.default_factory = vocab.__len__  # a new token gets the next id, in C
            ids = [list(map(vocab.__getitem__, doc)) for doc in corpus_tokens]
            return self.build_index_from_ids(list(vocab.values()), ids, show_progress, leave_progress), dict(vocab)

        def build_index_from_ids(self, unique_token_ids: list[int], corpus_token_ids: list[list[int]],
                                 show_progress: bool = True, leave_progress: bool = False) -> dict[str, Any]:
            if self.method != "lucene" or self.idf_method not in (None, "lucene"):
                return super().build_index_from_ids(unique_token_ids, corpus_token_ids, show_progress, leave_progress)
            self.nonoccurrence_array = None  # only BM25L and BM25+ have one
            n_docs, n_vocab = len(corpus_token_ids), len(unique_token_ids)
            lengths = np.fromiter(map(len, corpus_token_ids), dtype=np.int64, count=n_docs)
            flat = np.fromiter(itertools.chain.from_iterable(corpus_token_ids), dtype=np.int64,
                               count=int(lengths.sum()))
            pairs, tf = np.unique(np.repeat(np.arange(n_docs), lengths) * n_vocab + flat, return_counts=True)
            doc, tok = pairs // n_vocab, pairs % n_vocab  # one entry per (document, distinct token)
            df = np.bincount(tok, minlength=n_vocab)
            idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(self.dtype)
            tf = tf.astype(self.dtype)
            norm = self.k1 * ((1 - self.b) + self.b * lengths[doc] / lengths.mean())
            scores = idf[tok] * (tf / (norm + tf))
            order = np.lexsort((doc, tok))  # column-major (token, then document), as bm25s stores it
            indptr = np.zeros(n_vocab + 1, dtype=np.int64)
            np.cumsum(df, out=indptr[1:])
            return {"data": scores[order].astype(self.dtype), "indices": doc[order].astype(self.int_dtype),
                    "indptr": indptr, "num_docs": n_docs}

    return FastBM25


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
