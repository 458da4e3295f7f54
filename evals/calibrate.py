"""Sweep the extractive answerer's refusal threshold (``min_score``) on an evaluation set,
with the index built once, and print one table row per value (docs/calibration.md):

    python -m evals.calibrate --set evals/sets/seed.jsonl --corpus corpus 0.35 0.38 0.40 0.52

The embedder is the configured one (``STDNEWS_EMBED_BACKEND``): its similarities are part of the
score. The threshold in use is ``ExtractiveAnswerer``'s ``min_score`` default."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import metrics
from evals.run import ask_all, load_set, open_index
from index.errors import UserError
from index.settings import load_settings

COLUMNS = ("answer_accuracy", "refusal_accuracy", "false_refusal_rate", "overall_accuracy")


def sweep(set_path: Path, corpus: Path, values: Sequence[float]) -> tuple[str, list[dict[str, Any]]]:
    """(embedder name, one row per ``min_score``: the metrics of COLUMNS and the correct count)."""
    from assistant.compose import ExtractiveAnswerer
    from assistant.pipeline import Assistant

    questions = load_set(set_path)
    rows = []
    with open_index(load_settings(corpus=corpus), corpus, progress=False) as (index, _):
        answerer = ExtractiveAnswerer(embed=index.embedder.embed_documents)
        bot = Assistant(index.settings, index=index, answerer=answerer)
        for value in values:
            answerer.min_score = value
            records = ask_all(bot, questions, progress=False)
            computed = metrics.compute(records)
            rows.append({"min_score": value, "correct": metrics.counts(records)["correct"],
                         **{k: computed[k] for k in COLUMNS}})
        return index.embedder.name, rows


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(prog="python -m evals.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("values", type=float, nargs="+", help="min_score values to try")
    args = ap.parse_args(argv)
    try:
        name, rows = sweep(args.set, args.corpus, args.values)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"embedder {name}, set {args.set}\n")
    print("| min_score | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " | correct |")
    print("|---:|" + "---:|" * (len(COLUMNS) + 1))
    for r in rows:
        cells = " | ".join("-" if r[c] is None else f"{r[c]:.3f}" for c in COLUMNS)
        print(f"| {r['min_score']:.2f} | {cells} | {r['correct']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
