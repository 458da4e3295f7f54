"""Retrieval quality with each embedding backend: does the ONNX int8 export find the
same bulletins as PyTorch? For every answerable question of an evaluation set:
hit@1 and hit@5 (an expected source among the top passages) and MRR, for the hybrid
retrieval the assistant uses and for dense search alone; plus how close the two
backends' vectors are (cosine, same texts).

    python bench/quality.py                                   # seed set, seed corpus
    python bench/quality.py --distractors 125                  # + ~2k chunks of look-alike news

Builds a throw-away index per backend under --work (default bench/out/quality).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def load_set(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("answerable") and r.get("expected_sources")]


def evaluate(backend: str, corpus: Path, home: Path, questions: list[dict[str, Any]],
             models_dir: Path) -> dict[str, Any]:
    from assistant.question import standalone
    from assistant.retrieve import Retriever
    from index.embed import make_embedder
    from index.indexer import Index
    from index.settings import load_settings

    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(home=home, corpus=corpus, embed_backend=backend)
    embedder = make_embedder(backend, settings.embed_batch_size, models_dir=models_dir)
    index = Index(settings, embedder=embedder)
    t0 = time.perf_counter()
    report = index.update(progress=False)
    build_s = time.perf_counter() - t0
    retriever = Retriever(index, settings)
    hybrid, dense = [], []
    for q in questions:
        query = standalone(q["question"], [tuple(t) for t in q.get("history", [])])
        expected = set(q["expected_sources"])
        passages = retriever.search(query, k=5)
        hybrid.append(_rank([p.doc_id for p in passages], expected))
        hits = index.store.query(embedder.embed_query(query), 30)
        rows = index.db.get_chunks([cid for cid, _ in hits])
        dense.append(_rank([rows[cid]["doc_id"] for cid, _ in hits if cid in rows], expected))
    return {"backend": backend, "chunks": report.embedded, "build_s": round(build_s, 1),
            "hybrid": _summary(hybrid), "dense": _summary(dense)}


def _rank(doc_ids: list[str], expected: set[str]) -> int | None:
    return next((i for i, d in enumerate(doc_ids, 1) if d in expected), None)


def _summary(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {"hit@1": round(sum(r == 1 for r in ranks) / n, 3),
            "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 3),
            "mrr@10": round(sum(1 / r for r in ranks if r is not None and r <= 10) / n, 3)}


def vector_agreement(corpus: Path, models_dir: Path, limit: int = 2000) -> dict[str, float]:
    """Cosine between the two backends' vectors of the same chunk texts."""
    import numpy as np

    from bench.common import chunk_texts
    from index.embed import make_embedder

    texts = chunk_texts(corpus)[:limit]
    a = np.asarray(make_embedder("torch").embed_documents(texts))
    b = np.asarray(make_embedder("onnx", models_dir=models_dir).embed_documents(texts))
    cos = (a * b).sum(1)
    return {"texts": len(texts), "cos_mean": round(float(cos.mean()), 4), "cos_min": round(float(cos.min()), 4)}


def main() -> None:
    from bench.common import loadavg
    from bench.make_corpus import make_corpus

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=ROOT / "evals" / "sets" / "seed.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--distractors", type=int, default=0, help="add N generated bulletins to the corpus")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "quality")
    ap.add_argument("--models", type=Path, default=None, help="ONNX export cache (default <work>/models)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    questions = load_set(args.set)
    corpus = args.corpus
    if args.distractors:
        corpus = args.work / f"corpus-seed+{args.distractors}"
        make_corpus(args.distractors, corpus)
    models = args.models or args.work / "models"
    out: dict[str, Any] = {"set": str(args.set), "questions": len(questions), "corpus": str(corpus),
                           "load_before": loadavg()}
    for backend in ("torch", "onnx"):
        out[backend] = evaluate(backend, corpus, args.work / f"home-{backend}", questions, models)
        print(json.dumps(out[backend]), flush=True)
    out["vectors"] = vector_agreement(corpus, models)
    out["load_after"] = loadavg()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
