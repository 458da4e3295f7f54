"""The keyword index: our numpy builder gives bm25s's own scores, and what it saves is
what bm25s loads back."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest

from index.bm25 import BM25Index


def _corpus(seed: int, docs: int = 300) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = [f"t{i}" for i in range(rng.randint(50, 2000))]
    # word frequencies skewed like text's, documents of very different lengths, repeated words
    weights = [1 / (i + 1) for i in range(len(vocab))]
    return [rng.choices(vocab, weights, k=rng.choice([1, 3, 40, 200, 700])) for _ in range(docs)]


def _dense(model: bm25s.BM25) -> dict[str, np.ndarray]:
    """Every token's score for every document."""
    return {tok: model.get_scores([tok]) for tok in model.vocab_dict if tok}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numpy_builder_gives_bm25s_scores(seed: int) -> None:
    corpus = _corpus(seed)
    reference = bm25s.BM25()
    reference.index(corpus, show_progress=False)
    ours = BM25Index.from_tokens([f"c{i}" for i in range(len(corpus))], corpus).model
    assert type(ours) is not bm25s.BM25  # the fast builder really ran
    ref, got = _dense(reference), _dense(ours)  # type: ignore[arg-type]
    assert ref.keys() == got.keys()
    for tok in ref:
        np.testing.assert_allclose(got[tok], ref[tok], rtol=1e-5, atol=1e-7, err_msg=tok)
    assert ours.scores["num_docs"] == len(corpus)  # type: ignore[union-attr]


def test_saved_index_loads_and_ranks_like_bm25s(tmp_path: Path) -> None:
    corpus = _corpus(4)
    ids = [f"c{i}" for i in range(len(corpus))]
    built = BM25Index.from_tokens(ids, corpus)
    built.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert type(loaded.model) is bm25s.BM25 and loaded.ids == ids
    reference = bm25s.BM25()
    reference.index(corpus, show_progress=False)
    for query in (["t3"], ["t0", "t17", "t40"], ["t5", "t5", "t9"]):
        expected = reference.get_scores(query)
        hits = loaded.search(" ".join(query), 10)
        assert len(hits) == min(10, int(np.count_nonzero(expected)))
        for cid, score in hits:  # each hit carries bm25s's score, and nothing left out scores higher
            assert score == pytest.approx(float(expected[ids.index(cid)]), rel=1e-5)
        assert hits[-1][1] == pytest.approx(float(np.sort(expected)[-len(hits)]), rel=1e-5)


def test_tokens_keep_identifiers_whole_and_stem_words() -> None:
    from index.tokenize import tokens

    text = "The ISO/IEC 30145-3:2020 standard and TC 260 — Standardisation’s work on smart cities, 2019-2020."
    expected = ["id:30145-3", "id:tc260", "iso", "iec", "30145-3:2020", "30145", "3", "2020", "standard", "tc260",
                "standard", "work", "smart", "citi", "2019-2020", "2019", "2020"]
    assert tokens(text) == expected
    assert tokens(text) == expected  # the second time from the per-word cache
    assert tokens("Cities CITIES organisation organization") == ["citi", "citi", "organiz", "organiz"]
