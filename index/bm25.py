"""Keyword index beside Chroma: bm25s over the chunk table, saved atomically as a
new generation folder plus a ``CURRENT`` pointer swapped with ``os.replace``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

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
        model = bm25s.BM25()
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


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
