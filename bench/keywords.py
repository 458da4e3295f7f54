"""Keyword search that updates in place: the two candidates of issue 17 beside what shipped before,
on ranking quality, query time and the cost of adding or removing one bulletin.

- ``in place``: ours (index/keywords.py): a main segment plus a delta read from the chunk table's
  change log, scored with the live statistics at query time;
- ``fts5``: SQLite FTS5 over the same tokens (its ``bm25()``: k1 1.2, b 0.75), one row per chunk
  in its own table, updated in the writing transaction;
- ``bm25s rebuilt``: bm25s over every chunk, rebuilt after each change (the shipped index before).

Quality: for each evaluation set a fresh index of its corpus; each keyword index plugged into the
real retriever, keyword-only (``dense_weight`` 0) and hybrid (the fitted weights): hit@1, hit@5,
MRR@10 over the answerable questions. Cost: the chunk tables of generated corpora (no embedding):
query p50/p95 over the seed questions, then one bulletin of 15 chunks added and removed.

    python bench/keywords.py                                   # the three sets, then 10k chunks
    python bench/keywords.py --scale bench/out/corpus-6350      # also ~100k chunks
    python bench/keywords.py --json bench/out/keywords.json
Not a test: nothing here asserts a time."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.quality import DEFAULT_SETS, answerable, parse_set, scores, shown  # noqa: E402

_FTS_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '-./:''_'"  # our tokens hold these


class _EachRestriction:
    """``KeywordIndex.search_each`` and ``dated``, which the retriever calls (a question's time window
    searched beside the whole index, as a range of dates), as one ``search`` per restriction, a date
    range as the ids dated inside it."""

    dates: dict[str, int]  # chunk id -> date number

    def search(self, query: str, n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        raise NotImplementedError

    def search_each(self, query: str, n: int, restrictions: list[Any]) -> list[list[tuple[str, float]]]:
        from index.keywords import Dates

        return [self.search(query, n, self.dated(self.dates, r) if isinstance(r, Dates) else r) for r in restrictions]

    def dated(self, ids: Any, span: Any) -> set[str]:
        return {c for c in ids if span.lo <= self.dates.get(c, -1) <= span.hi}


class FTS5(_EachRestriction):
    """SQLite FTS5 over the chunk table's tokens, searched like ``KeywordIndex.search``."""

    def __init__(self, path: Path, rows: list[tuple[str, str]], dates: dict[str, int]) -> None:
        self.dates = dates
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute(f"CREATE VIRTUAL TABLE kw USING fts5(id UNINDEXED, terms, tokenize=\"{_FTS_TOKENIZER}\")")
        self.add(rows)

    def add(self, rows: list[tuple[str, str]]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT INTO kw (id, terms) VALUES (?, ?)", rows)

    def remove(self, rowids: list[int]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("DELETE FROM kw WHERE rowid = ?", [(r,) for r in rowids])

    def search(self, query: str, n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        from index.tokenize import tokens

        words = " OR ".join(f'"{t}"' for t in tokens(query) if t)
        if not words:
            return []
        if allowed is None:
            sql, params = "", ()
        else:
            sql, params = " AND id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(allowed)),)
        return self.conn.execute(f"SELECT id, -bm25(kw) FROM kw WHERE kw MATCH ?{sql} ORDER BY rank LIMIT ?",
                                 (words, *params, n)).fetchall()


class Rebuilt(_EachRestriction):
    """bm25s over every chunk, as shipped before: rebuilt whole after each change."""

    def __init__(self, rows: list[tuple[str, str]], dates: dict[str, int]) -> None:
        import bm25s

        self.dates = dates
        self.ids = [c for c, _ in rows]
        self.position = {c: i for i, c in enumerate(self.ids)}
        self.model = bm25s.BM25()
        self.model.index([t.split(" ") or [""] for _, t in rows], show_progress=False)

    def search(self, query: str, n: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        import numpy as np

        from index.tokenize import tokens

        q = [t for t in tokens(query) if t in self.model.vocab_dict]
        if not q:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=np.float32)
            mask[[self.position[c] for c in allowed if c in self.position]] = 1.0
        s = self.model.get_scores(q, weight_mask=mask)
        top = [int(i) for i in np.argsort(-s, kind="stable")[:n] if s[i] > 0]
        return [(self.ids[i], float(s[i])) for i in top]


def quality(sets: list[str], work: Path) -> dict[str, Any]:
    from assistant.pipeline import Assistant
    from assistant.retrieve import Filters, Retriever
    from evals.run import open_index
    from index.settings import load_settings

    out: dict[str, Any] = {}
    for spec in sets:
        path, corpus = parse_set(spec, ROOT)
        if not path.is_file() or not corpus.is_dir():
            print(f"note: skipping {shown(path)}: set or corpus missing", flush=True)
            continue
        questions = answerable(path)
        print(f"{shown(path)}: {len(questions)} answerable questions", flush=True)
        with open_index(load_settings(home=work / "home"), corpus, progress=False) as (index, _):
            every = list(index.db.all_chunks("id, tokens, date_num"))
            rows, dates = [(r["id"], r["tokens"]) for r in every], {r["id"]: r["date_num"] for r in every}
            fts = FTS5(Path(tempfile.mkdtemp(dir=work)) / "fts.sqlite", rows, dates)
            contenders = {"in place": index.bm25, "fts5": fts, "bm25s rebuilt": Rebuilt(rows, dates)}
            bot = Assistant(index.settings, index=index)
            figures: dict[str, Any] = {}
            for name, keywords in contenders.items():
                index._bm25 = keywords  # type: ignore[assignment]  # the retriever asks index.bm25
                for mode, update in (("keyword only", {"dense_weight": 0.0}), ("hybrid", {})):
                    retriever = Retriever(index, index.settings.model_copy(update=update))
                    ranked = [[p.doc_id for p in retriever.search(bot.condense(q.question, q.history), k=10,
                                                                  filters=Filters(as_of=q.as_of))]
                              for q in questions]
                    got = scores(ranked, questions)
                    figures[f"{name}, {mode}"] = {k: got[k] for k in ("hit@1", "hit@5", "mrr@10")}
                    print(f"  {name:14} {mode:12} hit@1 {got['hit@1']:.3f}  hit@5 {got['hit@5']:.3f}"
                          f"  MRR@10 {got['mrr@10']:.3f}", flush=True)
            index._bm25 = contenders["in place"]  # type: ignore[assignment]
            out[shown(path)] = {"chunks": len(rows), **figures}
    return out


def cost(corpus: Path, work: Path, questions: list[str]) -> dict[str, Any]:
    """Query and update times of the three on the chunk table of ``corpus`` (no embedding)."""
    from bench.common import chunk_texts, percentile
    from index.chunkdb import ChunkDB
    from index.keywords import KeywordIndex

    print(f"{shown(corpus)}: chunking ...", flush=True)
    texts = chunk_texts(corpus)
    home = Path(tempfile.mkdtemp(dir=work))
    db = ChunkDB(home / "index.sqlite")
    rows = [{"id": f"doc{i // 15}#{i % 15}", "doc_id": f"doc{i // 15}", "article": 0, "title": "",
             "bulletin_title": "", "publisher": "", "date": "", "date_num": 0, "text": t} for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    for i in range(0, len(rows), 2000):
        db.put_chunks(rows[i:i + 2000])
    print(f"  {len(rows)} chunk rows in {time.perf_counter() - t0:.1f} s", flush=True)
    toks = [(r["id"], r["tokens"]) for r in db.all_chunks("id, tokens")]
    ours = KeywordIndex(db.path, home / "bm25")
    t = time.perf_counter()
    ours.refresh()
    built = {"in place": time.perf_counter() - t}
    t = time.perf_counter()
    fts = FTS5(home / "fts.sqlite", toks, {})
    built["fts5"] = time.perf_counter() - t
    t = time.perf_counter()
    rebuilt = Rebuilt(toks, {})
    built["bm25s rebuilt"] = time.perf_counter() - t
    result: dict[str, Any] = {"chunks": len(rows), "build_s": {k: round(v, 2) for k, v in built.items()}}
    new = [{**rows[j], "id": f"new#{j}", "doc_id": "new"} for j in range(15)]
    add_s: dict[str, float] = {}
    remove_s: dict[str, float] = {}
    t = time.perf_counter()  # in place: the chunk rows' own write (triggers log them), then a reader's refresh
    db.put_chunks(new)
    ours.refresh()
    add_s["in place"] = time.perf_counter() - t
    t = time.perf_counter()
    fts.add(db.conn.execute("SELECT id, tokens FROM chunks WHERE doc_id = 'new'").fetchall())
    add_s["fts5"] = time.perf_counter() - t
    t = time.perf_counter()
    rebuilt = Rebuilt([(r["id"], r["tokens"]) for r in db.all_chunks("id, tokens")], {})
    add_s["bm25s rebuilt"] = time.perf_counter() - t
    query_ms: dict[str, dict[str, float]] = {}
    for name, keywords in (("in place", ours), ("fts5", fts), ("bm25s rebuilt", rebuilt)):
        times = []
        for q in questions:
            t = time.perf_counter()
            keywords.search(q, 50)
            times.append(1000 * (time.perf_counter() - t))
        query_ms[name] = {"p50": round(statistics.median(times), 2), "p95": round(percentile(times, 95), 2)}
    t = time.perf_counter()
    db.delete_chunks([r["id"] for r in new])
    ours.refresh()
    remove_s["in place"] = time.perf_counter() - t
    last = fts.conn.execute("SELECT MAX(rowid) FROM kw").fetchone()[0]
    t = time.perf_counter()
    fts.remove(list(range(last - 14, last + 1)))
    remove_s["fts5"] = time.perf_counter() - t
    t = time.perf_counter()
    Rebuilt([(r["id"], r["tokens"]) for r in db.all_chunks("id, tokens")], {})
    remove_s["bm25s rebuilt"] = time.perf_counter() - t
    t = time.perf_counter()
    ours.compact()
    result |= {"query_ms": query_ms, "add_one_bulletin_s": {k: round(v, 4) for k, v in add_s.items()},
               "remove_one_bulletin_s": {k: round(v, 4) for k, v in remove_s.items()},
               "compaction_s": round(time.perf_counter() - t, 2)}
    for name in query_ms:
        print(f"  {name:14} query p50 {query_ms[name]['p50']:7.2f} ms  p95 {query_ms[name]['p95']:7.2f} ms"
              f"  add {add_s[name]:.3f} s  remove {remove_s[name]:.3f} s", flush=True)
    print(f"  in place: a new main segment (compaction) {result['compaction_s']} s", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> int:
    from bench.common import loadavg

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", action="append", help="FILE[=CORPUS] (default: the three sets)")
    p.add_argument("--scale", action="append", type=Path, help="a generated corpus for the cost figures"
                   " (default: bench/out/corpus-635, if present)")
    p.add_argument("--no-quality", action="store_true")
    p.add_argument("--work", type=Path, default=ROOT / "bench/out/keywords")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": loadavg()}
    if not args.no_quality:
        out["quality"] = quality(args.set or list(DEFAULT_SETS), args.work)
    questions = [json.loads(line)["question"] for line in (ROOT / "evals/sets/seed.jsonl").open() if line.strip()]
    scale = args.scale or [c for c in [ROOT / "bench/out/corpus-635"] if c.is_dir()]
    out["cost"] = {shown(c): cost(c, args.work, questions) for c in scale}
    out["load_after"] = loadavg()
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
