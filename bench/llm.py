"""The written answers of ``--llm local`` on this machine, for each packaged model size: first visible
text (the extractive quote), time to the model's first token, tokens/s while writing, whole answer
p50/p95, and the peak memory of a process that holds what the chat server holds (index, embedding
model, the GGUF loaded), with the extractive answerer beside it on the same questions.

Each size runs in its own process (``--child``), so its memory is its own and one model's pages do not
help the next. Questions: the answerable questions of an evaluation set, every ``--every``-th.

    python bench/llm.py --home .stdnews --set evals/sets/seed.jsonl --every 8 --out bench/out/llm.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.common import loadavg, machine, peak_rss_mb, percentile  # noqa: E402


def questions(path: Path, every: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows if r.get("answerable", True) and not r.get("history")][::every]


def child(home: Path, size: str, qs: list[str]) -> dict[str, Any]:
    """One process: load the assistant (``size`` "none" is the extractive one), answer every question."""
    from assistant.answer import Quote
    from assistant.pipeline import Assistant
    from index.settings import load_settings

    t0 = time.perf_counter()
    llm = {"llm": "none"} if size == "none" else {"llm": "local", "llm_size": size}
    bot = Assistant(load_settings(home=home, **llm))
    bot.ask(qs[0])  # warm: the first question pages in the embedding model and index
    load_s = time.perf_counter() - t0
    rows = []
    for q in qs:
        marks: dict[str, float] = {}
        tokens = 0
        start = time.perf_counter()

        def on_delta(delta: str, marks: dict[str, float] = marks, start: float = start) -> None:
            nonlocal tokens
            now = time.perf_counter() - start
            marks.setdefault("first_text", now)
            if isinstance(delta, Quote):
                marks["quote"] = now
            elif size != "none":
                marks.setdefault("first_token", now)
                marks["last_token"] = now
                tokens += 1  # llama.cpp streams one token per delta

        result = bot.ask(q, on_delta=on_delta)
        total = time.perf_counter() - start
        writing = marks.get("last_token", 0) - marks.get("first_token", 0)
        rows.append({"question": q, "total_s": total, "first_text_s": marks.get("first_text", total),
                     "first_token_s": marks.get("first_token"), "tokens": tokens,
                     "tokens_per_s": (tokens - 1) / writing if writing > 0 and tokens > 1 else None,
                     "answerer": result.answerer, "refused": result.refused})
    return {"size": size, "load_s": load_s, "peak_rss_mb": peak_rss_mb(), "rows": rows}


def summary(run: dict[str, Any]) -> dict[str, Any]:
    rows = run["rows"]
    written = [r for r in rows if r["first_token_s"] is not None]

    def pct(key: str, p: float, subset: list[dict[str, Any]]) -> float | None:
        vals = [r[key] for r in subset if r[key] is not None]
        return round(percentile(vals, p), 3) if vals else None

    return {"size": run["size"], "questions": len(rows), "written_by_model": sum(
        r["answerer"].startswith("local:") for r in rows), "asked_the_model": len(written),
        "load_s": round(run["load_s"], 2), "peak_rss_mb": round(run["peak_rss_mb"]),
        "first_text_p50_s": pct("first_text_s", 50, rows), "first_text_p95_s": pct("first_text_s", 95, rows),
        "first_token_p50_s": pct("first_token_s", 50, written), "first_token_p95_s": pct("first_token_s", 95, written),
        "tokens_per_s_p50": pct("tokens_per_s", 50, written),
        "answer_p50_s": pct("total_s", 50, written or rows), "answer_p95_s": pct("total_s", 95, written or rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=ROOT / ".stdnews", help="an indexed data directory")
    ap.add_argument("--set", type=Path, default=ROOT / "evals/sets/seed.jsonl")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--sizes", default="none,0.5b,1.5b")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/llm.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    qs = questions(args.set, args.every)
    if args.child:
        print(json.dumps(child(args.home, args.child, qs)))
        return 0
    runs = []
    for size in args.sizes.split(","):
        before = loadavg()
        out = subprocess.run([sys.executable, __file__, "--home", str(args.home), "--set", str(args.set),
                              "--every", str(args.every), "--child", size], capture_output=True, text=True,
                             cwd=ROOT)
        if out.returncode != 0:
            print(f"error: {size}: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        run = json.loads(out.stdout.strip().splitlines()[-1])
        run["loadavg_before"], run["loadavg_after"] = before, loadavg()
        runs.append(run)
        s = summary(run)
        print(f"{size:>5}: {s['questions']} q, model asked {s['asked_the_model']}, wrote {s['written_by_model']};"
              f" first text p50 {s['first_text_p50_s']} s; first token p50 {s['first_token_p50_s']} /"
              f" p95 {s['first_token_p95_s']} s; {s['tokens_per_s_p50']} tokens/s; answer p50"
              f" {s['answer_p50_s']} / p95 {s['answer_p95_s']} s; peak {s['peak_rss_mb']} MiB;"
              f" load {run['loadavg_before']} -> {run['loadavg_after']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "set": str(args.set), "every": args.every,
                                    "summary": [summary(r) for r in runs], "runs": runs}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
