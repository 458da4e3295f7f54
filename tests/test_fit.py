"""``stdnews eval fit`` reproduces the shipped weights (assistant/weights.json) from the
three evaluation sets it was fitted on, and the file it writes is what the assistant loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import weights
from assistant.cli import main

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "evalsets" / "realtimeqa-2025-dev" / "set.jsonl"


@pytest.mark.slow
def test_eval_fit_reproduces_the_shipped_weights(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert REAL.is_file(), f"{REAL} is missing: the real-news set lives in ../shared (evaluation use only)"
    shipped = json.loads(weights.WEIGHTS_FILE.read_text())
    out = tmp_path / "weights.json"
    sets = [f"{ROOT / s['set']}={ROOT / s['corpus']}" for s in shipped["sets"]]
    assert len(sets) == 3 and str(REAL.relative_to(ROOT.parent)) in str(shipped["sets"])
    argv = ["eval", "fit", *[a for s in sets for a in ("--set", s)], "--folds", str(shipped["folds"]),
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "held-out folds" in printed and "fold 4:" in printed and f"wrote {out}" in printed
    fresh = json.loads(out.read_text())
    assert fresh["fusion"] == shipped["fusion"]
    for model in ("sentence", "refusal"):
        assert fresh[model]["features"] == shipped[model]["features"]
        assert max(abs(a - b) for a, b in zip(fresh[model]["coef"], shipped[model]["coef"], strict=True)) < 0.05
        assert abs(fresh[model]["threshold"] - shipped[model]["threshold"]) < 0.02
    loaded = weights.load(out)
    assert loaded.refusal.features == weights.load().refusal.features and "eval fit" in loaded.command


def test_fit_refuses_a_bad_set_in_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["eval", "fit", "--set", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "w.json")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.jsonl" in err[0] and "no such file" in err[0]
