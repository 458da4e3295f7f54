"""``stdnews eval fit``: fit the weights the assistant ships (assistant/weights.json) on
several evaluation sets at once, with K-fold cross-validation so every figure it prints
is measured on questions the weights were not fitted on.

1. Fusion: the BM25 weight for each question class (assistant.question.keyword_class)
   and the RRF constant, by grid search; the objective weighs every set equally
   (mean of hit@1 and MRR@10 per set), so a large set cannot buy a loss on a small one.
2. Sentence choice: logistic regression on the extractive answerer's sentence features;
   a sentence is a positive when it holds the expected answer (or, without
   ``must_include``, comes from an expected source).
3. Refusal: logistic regression on evidence features of the question and its passages;
   positive = answerable. Its threshold is the highest whose out-of-fold false-refusal
   rate stays within ``--max-false-refusals`` (default 0.08) on every set.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from assistant.retrieve import Filters, Gathered
from assistant.weights import CLASSES, WEIGHTS_FILE, Fusion
from evals.fit_answer import fit_answer_models
from evals.run import EvalQuestion, load_set, open_index
from index.errors import UserError
from index.settings import Settings

RRF_K = (10, 20, 40, 60)
BM25_W = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5)
TOP = 10


@dataclass
class Item:
    """One question of one set, with what retrieval gathered for it."""

    set_no: int
    q: EvalQuestion
    query: str
    gathered: Gathered
    rank_of: dict[tuple[int, float], int | None] = field(default_factory=dict)  # (rrf_k, w) -> first hit rank


def _folds(items: Sequence[Item], k: int, seed: int = 0) -> np.ndarray:
    """A fold number per item, drawn within each set so every fold holds part of every set."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(items), dtype=int)
    for s in {it.set_no for it in items}:
        idx = np.array([i for i, it in enumerate(items) if it.set_no == s])
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


def _rank(doc_ids: Sequence[str], expected: set[str]) -> int | None:
    return next((i for i, d in enumerate(doc_ids[:TOP], 1) if d in expected), None)


def _score(rank: int | None) -> float:
    """What the fusion fit maximises per question: the mean of hit@1 and reciprocal rank."""
    return 0.0 if rank is None else 0.5 * (rank == 1) + 0.5 / rank


def _retrieval_figures(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {"hit@1": sum(r == 1 for r in ranks) / n, "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@10": sum(1 / r for r in ranks if r) / n}


def fit_fusion(items: Sequence[Item], train: np.ndarray) -> Fusion:
    """Per class, the BM25 weight with the best set-balanced objective; then the best RRF constant."""
    sets = {it.set_no for it in items}
    sizes = {s: sum(1 for i, it in enumerate(items) if train[i] and it.set_no == s) for s in sets}
    best: tuple[float, Fusion] | None = None
    for rrf_k in RRF_K:
        chosen, total = {}, 0.0
        for cls in CLASSES:
            members = [(i, it) for i, it in enumerate(items) if train[i] and it.gathered.keyword == cls]
            gains = [sum(_score(it.rank_of[(rrf_k, w)]) / max(1, sizes[it.set_no]) for _, it in members)
                     for w in BM25_W]
            j = int(np.argmax(gains))
            chosen[cls] = BM25_W[j]
            total += gains[j]
        if best is None or total > best[0] + 1e-12:
            best = (total, Fusion(rrf_k, 1.0, chosen))
    assert best is not None
    return best[1]


def collect(stack: ExitStack, settings: Settings, sets: Sequence[tuple[Path, Path | None]]) -> tuple[list[Item], list]:
    """Build a fresh index per set and gather every question's candidates once."""
    from assistant.pipeline import Assistant

    items: list[Item] = []
    bots = []
    for no, (set_path, corpus) in enumerate(sets):
        questions = load_set(set_path)
        index, warnings = stack.enter_context(open_index(settings, corpus, progress=False))
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        bot = Assistant(index.settings, index=index)
        bots.append(bot)
        for q in tqdm(questions, desc=f"gathering {set_path.name}", unit="q", dynamic_ncols=True):
            query = bot.condense(q.question, q.history)
            g = bot.retriever.gather(query, TOP, Filters(as_of=q.as_of))
            items.append(Item(no, q, query, g))
        print(f"gathered {len(questions)} questions of {set_path}", file=sys.stderr)
    for it in items:
        if not it.q.answerable:
            continue
        retriever = bots[it.set_no].retriever
        for rrf_k in RRF_K:
            for w in BM25_W:
                fusion = Fusion(rrf_k, 1.0, {c: w for c in CLASSES})
                docs = [p.doc_id for p in retriever.fuse(it.gathered, TOP, fusion)]
                it.rank_of[(rrf_k, w)] = _rank(docs, set(it.q.expected_sources))
    return items, bots


def _key(fusion: Fusion, it: Item) -> tuple[int, float]:
    return fusion.rrf_k, fusion.bm25_for(it.gathered.keyword)


def evaluate_fusion(items: Sequence[Item], mask: np.ndarray, fusion: Fusion, n_sets: int) -> list[dict[str, float]]:
    return [_retrieval_figures([it.rank_of[_key(fusion, it)] for i, it in enumerate(items)
                                if mask[i] and it.set_no == s]) for s in range(n_sets)]


def _figures_line(names: Sequence[str], figs: Sequence[dict[str, float]]) -> str:
    return "  ".join(f"{Path(n).stem} {x['hit@1']:.3f}/{x['hit@5']:.3f}/{x['mrr@10']:.3f}"
                     for n, x in zip(names, figs, strict=True))


def run_fit(settings: Settings, sets: Sequence[tuple[Path, Path | None]], folds: int = 5,
            out: Path = WEIGHTS_FILE, max_false_refusals: float = 0.08, command: str = "",
            dump: Path | None = None) -> dict[str, Any]:
    """Fit everything, print each fold's held-out figures, write the weights file; returns its document."""
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")
    names = [str(p) for p, _ in sets]
    t0 = time.time()
    with ExitStack() as stack:
        items, bots = collect(stack, settings, sets)
        answerable = np.array([it.q.answerable and bool(it.q.expected_sources) for it in items])
        fold_of = _folds(items, folds)
        report: list[dict[str, Any]] = []
        fold_fusion = [fit_fusion(items, (fold_of != f) & answerable) for f in range(folds)]
        print("fusion, held-out folds (hit@1 / hit@5 / MRR@10 per set):")
        for f, fusion in enumerate(fold_fusion):
            figs = evaluate_fusion(items, (fold_of == f) & answerable, fusion, len(sets))
            report.append({"fold": f, "fusion": _fusion_json(fusion), "held_out": figs})
            print(f"  fold {f}: rrf_k={fusion.rrf_k} bm25={dict(fusion.bm25)}  " + _figures_line(names, figs))
        final = fit_fusion(items, answerable)
        pooled = [_retrieval_figures([it.rank_of[_key(fold_fusion[fold_of[i]], it)] for i, it in enumerate(items)
                                      if answerable[i] and it.set_no == s]) for s in range(len(sets))]
        print("  all folds pooled: " + _figures_line(names, pooled))
        print(f"  fitted on everything: rrf_k={final.rrf_k} bm25={dict(final.bm25)}")
        answer = fit_answer_models(items, bots, final, fold_of, folds, names, max_false_refusals, dump)
    doc = {
        "command": command,
        "fitted_at": time.strftime("%Y-%m-%d"),
        "sets": [{"set": str(p), "corpus": str(c)} for p, c in sets],
        "folds": folds,
        "seconds": round(time.time() - t0, 1),
        "fusion": _fusion_json(final),
        "sentence": answer["sentence"].to_json(),
        "refusal": answer["refusal"].to_json(),
        "held_out": {"fusion": {"folds": report, "pooled": dict(zip(names, pooled, strict=True))},
                     "answers": answer["held_out"]},
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return doc


def _fusion_json(f: Fusion) -> dict[str, Any]:
    return {"rrf_k": f.rrf_k, "dense": f.dense, "bm25": dict(f.bm25)}


def set_corpora(specs: Sequence[str], default: Path) -> list[tuple[Path, Path | None]]:
    """``FILE[=CORPUS]`` -> (set, corpus); without ``=CORPUS`` the corpus is the folder ``corpus``
    beside the set, else ``<set stem>-corpus`` beside it, else ``default``."""
    out = []
    for spec in specs:
        path, _, corpus = spec.partition("=")
        set_path = Path(path)
        if not set_path.is_file():
            raise UserError(f"--set {path}: no such file")
        if corpus:
            found = Path(corpus)
        elif (set_path.parent / "corpus").is_dir():
            found = set_path.parent / "corpus"
        elif (set_path.parent / f"{set_path.stem}-corpus").is_dir():
            found = set_path.parent / f"{set_path.stem}-corpus"
        else:
            found = default
        if not found.is_dir():
            raise UserError(f"--set {spec}: corpus folder {found} does not exist")
        out.append((set_path, found))
    return out


def command_line(argv: Sequence[str]) -> str:
    return "stdnews " + " ".join(shlex.quote(a) for a in argv)


