"""Retrieval quality: the plain LangChain pipeline beside ours, on every evaluation set
given, in one run. For each set, over its answerable questions (those with
``expected_sources``): hit@1, hit@5 and MRR@10 of the top-10 passages, where a passage
counts when its doc_id is an expected source (ranks per passage, as ``stdnews eval``
counts them: ``evals.metrics.first_hit_rank``). Systems:

- ``langchain``: the plain pipeline of ``bench/index.py``: every ``.txt``/``.md`` file
  of the corpus (doc_id: its path relative to the corpus without extension) ->
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)`` -> the same
  MiniLM on sentence-transformers -> ``langchain_chroma.Chroma`` ->
  ``similarity_search(question, k=10)``; the question as written (no dates, no history).
  The embeddings are ``langchain_huggingface.HuggingFaceEmbeddings`` when that package is
  installed; it is not in .venv (it needs huggingface-hub < 2, which would downgrade the
  hub that transformers 5 uses), so by default ``STEmbeddings`` below does exactly what
  ``HuggingFaceEmbeddings._embed`` does (newlines to spaces, ``SentenceTransformer.encode``,
  no normalisation); the JSON names which one ran;
- ``ours``: the evaluation runner's retrieval (``evals.run.ask_one``): a fresh index of
  the corpus (``evals.run.open_index``), ``Assistant.condense`` of the question and its
  history, ``Retriever.search(query, k=10, Filters(as_of=question's as_of))``;
- ``dense`` / ``bm25``: ours with one half of the fusion only (``bm25_weight=0`` /
  ``dense_weight=0`` on the same index, through a new ``Retriever``);
- ``ours, undated``: ours without the question's ``as_of`` (what the dates add).

    python bench/quality.py                                    # the three default sets
    python bench/quality.py --json bench/out/quality/results.json
    python bench/quality.py --set evals/sets/seed.jsonl=corpus --set my.jsonl=my-corpus
    python bench/quality.py --limit 20                          # first 20 questions a set (a quick check)

Default sets: ``evals/sets/seed.jsonl=corpus``,
``evals/sets/standards.jsonl=evals/sets/standards-corpus`` and
``../shared/evalsets/realtimeqa-2025-dev/set.jsonl=../shared/evalsets/realtimeqa-2025-dev/corpus``
(relative to the project; a set whose file is missing is skipped with a note). A
``--set FILE`` without ``=CORPUS`` uses a ``corpus`` folder beside FILE, else the
project's ``corpus/``.

The older comparison of the embedding backends (does the ONNX int8 export find the same
bulletins as PyTorch? hybrid and dense-only hit@1/hit@5/MRR per backend, and the cosine
between the two backends' vectors of the same texts) runs on the first set with
``--backends``:

    python bench/quality.py --backends                          # seed set, seed corpus
    python bench/quality.py --backends --distractors 125        # + ~2k chunks of look-alike news

Everything is built under --work (default bench/out/quality), emptied at the start
(except ``models/``, the ONNX export cache of ``--backends``). Prints one Markdown table
per set, then the whole result as JSON (also written to --json): per set and system the
three figures, each question's first-hit rank (None: no expected source in the top 10) and
the mean search time, the index sizes and fusion weights, and the load average before and
after.
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

K = 10
SYSTEMS = ("langchain", "ours", "dense", "bm25", "ours, undated")
DEFAULT_SETS = (
    "evals/sets/seed.jsonl=corpus",
    "evals/sets/standards.jsonl=evals/sets/standards-corpus",
    "../shared/evalsets/realtimeqa-2025-dev/set.jsonl=../shared/evalsets/realtimeqa-2025-dev/corpus",
)


# sets --------------------------------------------------------------------------------
def parse_set(spec: str, base: Path) -> tuple[Path, Path]:
    """``FILE[=CORPUS]`` -> (set file, corpus folder); relative paths against ``base``."""
    file, _, corpus = spec.partition("=")
    path = Path(file) if Path(file).is_absolute() else base / file
    if corpus:
        folder = Path(corpus) if Path(corpus).is_absolute() else base / corpus
    else:
        beside = path.parent / "corpus"
        folder = beside if beside.is_dir() else ROOT / "corpus"
    return path, folder


def shown(path: Path) -> str:
    """A path as the tables show it: relative to the project."""
    return os.path.relpath(path, ROOT)


def answerable(path: Path, limit: int | None = None) -> list[Any]:
    """The set's answerable questions (``evals.run.load_set``), the first ``limit`` of them."""
    from evals.run import load_set

    qs = [q for q in load_set(path) if q.answerable and q.expected_sources]
    return qs[:limit] if limit else qs


def scores(ranked: list[list[str]], questions: list[Any]) -> dict[str, Any]:
    """hit@1, hit@5, MRR@10 by the eval metrics' own definitions, from the doc_ids retrieved."""
    from evals import metrics

    recs = [{"answerable": True, "expected_sources": list(q.expected_sources), "retrieved": docs}
            for q, docs in zip(questions, ranked, strict=True)]
    out = {"hit@1": metrics.hit_at(recs, 1), "hit@5": metrics.hit_at(recs, 5), "mrr@10": metrics.mrr_at_10(recs)}
    return {**{k: round(v, 3) if v is not None else None for k, v in out.items()}, "questions": len(recs),
            "ranks": [metrics.first_hit_rank(r, K) for r in recs]}


# the plain LangChain pipeline ----------------------------------------------------------
def lc_embeddings() -> tuple[Any, str]:
    """``HuggingFaceEmbeddings`` of the packaged MiniLM, or the same thing by hand when
    ``langchain_huggingface`` is not installed."""
    from index.embed import model_path

    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:
        pass
    else:
        return (HuggingFaceEmbeddings(model_name=model_path(), model_kwargs={"device": "cpu"}),
                "langchain_huggingface.HuggingFaceEmbeddings")
    from langchain_core.embeddings import Embeddings
    from sentence_transformers import SentenceTransformer

    class STEmbeddings(Embeddings):
        """What ``HuggingFaceEmbeddings`` (default arguments) does: newlines become spaces,
        ``SentenceTransformer.encode``, no normalisation of its own, lists of floats."""

        def __init__(self, model: str) -> None:
            self.client = SentenceTransformer(model, device="cpu")

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.client.encode([t.replace("\n", " ") for t in texts], show_progress_bar=False).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    return STEmbeddings(model_path()), "bench.quality.STEmbeddings (sentence-transformers, as HuggingFaceEmbeddings)"


def run_langchain(corpus: Path, questions: list[Any], work: Path, embeddings: Any) -> dict[str, Any]:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    files = [p for p in sorted(corpus.rglob("*")) if p.is_file() and p.suffix.lower() in (".txt", ".md")]
    docs = [Document(page_content=p.read_text(encoding="utf-8"),
                     metadata={"source": p.relative_to(corpus).with_suffix("").as_posix()}) for p in files]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150).split_documents(docs)
    t0 = time.perf_counter()
    store = Chroma.from_documents(chunks, embeddings, persist_directory=str(work / "lc-chroma"),
                                  collection_name="quality")
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ranked = [[d.metadata["source"] for d in store.similarity_search(q.question, k=K)] for q in questions]
    search_s = time.perf_counter() - t1
    return {**scores(ranked, questions), "files": len(files), "chunks": len(chunks), "build_s": round(build_s, 1),
            "search_ms": round(1000 * search_s / max(1, len(questions)), 1)}


# ours ----------------------------------------------------------------------------------
def run_ours(corpus: Path, questions: list[Any], home: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """ours, dense, bm25 and ours-undated on one fresh index of ``corpus``."""
    from assistant.pipeline import Assistant
    from assistant.retrieve import Filters, Retriever
    from evals.run import open_index
    from index.settings import load_settings

    settings = load_settings(home=home)
    ranked: dict[str, list[list[str]]] = {name: [] for name in SYSTEMS[1:]}
    seconds: dict[str, float] = dict.fromkeys(ranked, 0.0)
    t0 = time.perf_counter()
    with open_index(settings, corpus, progress=False) as (index, warnings):
        build_s = time.perf_counter() - t0
        bot = Assistant(index.settings, index=index)  # once per set, as evals.run.run_set does
        dense = Retriever(index, index.settings.model_copy(update={"bm25_weight": 0.0}))
        bm25 = Retriever(index, index.settings.model_copy(update={"dense_weight": 0.0}))
        known = {b["doc_id"] for b in index.db.bulletins()}
        chunks = index.db.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        for q in questions:
            query = bot.condense(q.question, q.history)
            dated = Filters(as_of=q.as_of)
            for name, retriever, filters in (("ours", bot.retriever, dated), ("dense", dense, dated),
                                             ("bm25", bm25, dated), ("ours, undated", bot.retriever, Filters())):
                t = time.perf_counter()
                ranked[name].append([p.doc_id for p in retriever.search(query, k=K, filters=filters)])
                seconds[name] += time.perf_counter() - t
        fusion = {"dense": bot.retriever.fusion.dense, "bm25": dict(bot.retriever.fusion.bm25),
                  "rrf_k": bot.retriever.fusion.rrf_k}
        backend = index.settings.embed_backend
    unknown = sorted({s for q in questions for s in q.expected_sources} - known)
    if unknown:
        warnings.append(f"expected source(s) not in the index: {', '.join(unknown[:10])}"
                        + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""))
    out = {name: {**scores(r, questions), "search_ms": round(1000 * seconds[name] / max(1, len(questions)), 1)}
           for name, r in ranked.items()}
    meta = {"chunks": chunks, "build_s": round(build_s, 1), "embed_backend": backend, "fusion": fusion,
            "warnings": warnings}
    return out, meta


def compare(sets: list[tuple[Path, Path]], work: Path, limit: int | None) -> dict[str, Any]:
    from bench.common import loadavg

    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": loadavg(), "k": K,
                           "sets": {}, "skipped": []}
    embeddings = name = None
    for n, (path, corpus) in enumerate(sets):
        if not path.is_file():
            print(f"note: skipping {shown(path)}: no such file", flush=True)
            out["skipped"].append(shown(path))
            continue
        if not corpus.is_dir():
            print(f"note: skipping {shown(path)}: corpus {shown(corpus)} is not a folder", flush=True)
            out["skipped"].append(shown(path))
            continue
        questions = answerable(path, limit)
        print(f"{shown(path)} ({shown(corpus)}): {len(questions)} answerable questions ...", flush=True)
        if embeddings is None:
            embeddings, name = lc_embeddings()
        set_work = work / f"set-{n}"
        set_work.mkdir(parents=True)
        lc = run_langchain(corpus, questions, set_work, embeddings)
        ours, meta = run_ours(corpus, questions, set_work / "home")
        for w in meta["warnings"]:
            print(f"  warning: {w}", flush=True)
        out["sets"][shown(path)] = {"corpus": shown(corpus), "questions": len(questions), "ours": meta,
                                  "langchain": {"embeddings": name, "files": lc.pop("files"),
                                                "chunks": lc.pop("chunks"), "build_s": lc.pop("build_s")},
                                  "systems": {"langchain": lc, **ours}}
        print(table(shown(path), out["sets"][shown(path)]), flush=True)
    out["load_after"] = loadavg()
    return out


def table(name: str, res: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [f"\n### {name} (corpus {res['corpus']}; LangChain chunks {res['langchain']['chunks']}, "
             f"ours {res['ours']['chunks']})\n",
             "| system | hit@1 | hit@5 | MRR@10 | questions |", "|---|---|---|---|---|"]
    for system, s in res["systems"].items():
        lines.append(f"| {system} | {f(s['hit@1'])} | {f(s['hit@5'])} | {f(s['mrr@10'])} | {s['questions']} |")
    return "\n".join(lines)


# --backends: torch vs onnx on one set ------------------------------------------------
def evaluate(backend: str, corpus: Path, home: Path, questions: list[Any], models_dir: Path) -> dict[str, Any]:
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
        query = standalone(q.question, list(q.history))
        expected = set(q.expected_sources)
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


def backends(set_path: Path, corpus: Path, work: Path, models: Path, distractors: int,
             limit: int | None) -> dict[str, Any]:
    from bench.common import loadavg
    from bench.make_corpus import make_corpus

    questions = answerable(set_path, limit)
    if distractors:  # the seed corpus (bench/make_corpus.py copies it) plus generated bulletins
        corpus = work / f"corpus-seed+{distractors}"
        make_corpus(distractors, corpus)
    out: dict[str, Any] = {"set": str(set_path), "questions": len(questions), "corpus": str(corpus),
                           "load_before": loadavg()}
    for backend in ("torch", "onnx"):
        out[backend] = evaluate(backend, corpus, work / f"home-{backend}", questions, models)
        print(json.dumps(out[backend]), flush=True)
    out["vectors"] = vector_agreement(corpus, models)
    out["load_after"] = loadavg()
    return out


# -------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=None, metavar="FILE[=CORPUS]",
                    help="an evaluation set and its corpus folder; repeatable (default: the three sets above)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N answerable questions of each set")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "quality")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--backends", action="store_true",
                    help="instead: torch vs onnx embedding backends on the first set")
    ap.add_argument("--distractors", type=int, default=0,
                    help="--backends: the seed corpus plus N generated bulletins")
    ap.add_argument("--models", type=Path, default=None, help="--backends: ONNX export cache (default <work>/models)")
    args = ap.parse_args()

    given = [(s, Path.cwd()) for s in args.set or ()] or [(s, ROOT) for s in DEFAULT_SETS]
    sets = [parse_set(s, base) for s, base in given]
    work: Path = args.work
    if work.is_dir():
        for child in work.iterdir():
            if child.name == "models":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    work.mkdir(parents=True, exist_ok=True)

    if args.backends:
        set_path, corpus = sets[0]
        out = backends(set_path, corpus, work, args.models or work / "models", args.distractors, args.limit)
    else:
        out = compare(sets, work, args.limit)
        print(f"\nload average before {out['load_before']}, after {out['load_after']}")
    doc = dumps(out)
    print(doc)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(doc + "\n")


def dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with lists of numbers (the per-question ranks) on one line each."""
    import re

    return re.sub(r"\[\s+([-\d.eE+,\snul]*?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(","))
                  + "]", json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
