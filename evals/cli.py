"""``stdnews eval run`` and ``stdnews eval compare``: run a set, write its results,
report and chart, record it in the history, and hold it to ``--min`` thresholds."""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import history, metrics, report
from index.embed import Embedder
from index.errors import UserError
from index.settings import Settings

_THRESHOLD = re.compile(r"^\s*([\w@.-]+)\s*(>=|<=|=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Threshold:
    """A bound on one metric: ``at_least`` or at most ``value``."""

    metric: str
    value: float
    at_least: bool

    def fails(self, measured: float | None) -> str | None:
        """One line saying how the measured value falls short, or None when it passes."""
        kind = metrics.METRICS[self.metric].kind
        if measured is None:
            return f"threshold failed: {self.metric} could not be measured on this set (nothing to count)"
        if (measured < self.value) if self.at_least else (measured > self.value):
            op = "<" if self.at_least else ">"
            unit = " ms" if kind == "ms" else ""
            return (
                f"threshold failed: {self.metric} = {report.fmt(measured, kind)} {op} "
                f"{self.value:g}{unit} ({'minimum' if self.at_least else 'maximum'})"
            )
        return None


def parse_thresholds(specs: Sequence[str]) -> list[Threshold]:
    """``METRIC=VALUE`` (no worse than VALUE: at least for higher-is-better metrics, at most for
    lower-is-better ones), or explicit ``METRIC>=VALUE`` / ``METRIC<=VALUE``."""
    out = []
    for spec in specs:
        m = _THRESHOLD.match(spec)
        if not m:
            raise UserError(f"--min {spec!r}: expected METRIC=VALUE, e.g. --min answer_accuracy=0.55")
        name, op, raw = m.groups()
        metric = metrics.METRICS.get(name)
        if metric is None:
            raise UserError(f"--min {spec!r}: unknown metric {name!r}; known: {', '.join(metrics.METRICS)}")
        try:
            value = float(raw)
        except ValueError:
            raise UserError(f"--min {spec!r}: {raw!r} is not a number") from None
        if metric.kind == "rate" and not 0.0 <= value <= 1.0:
            raise UserError(f"--min {spec!r}: {name} is a share between 0 and 1 (write 0.55, not 55)")
        if op == "=" and metric.better is None:
            raise UserError(f"--min {spec!r}: {name} is neither better high nor low; write {name}>=V or {name}<=V")
        at_least = op == ">=" or (op == "=" and metric.better == "higher")
        out.append(Threshold(name, value, at_least))
    return out


def check_thresholds(thresholds: Sequence[Threshold], measured: Mapping[str, float | None]) -> list[str]:
    """One line per threshold the measured metrics fall short of."""
    return [line for t in thresholds if (line := t.fails(measured.get(t.metric)))]


def gate(measured: Mapping[str, float | None]) -> str:
    """``--min`` flags just under the measured quality metrics (two decimals, strictly worse than measured
    by less than 0.01), for a CI gate that fails on a regression; latency and length are left out."""
    flags = []
    for name, m in metrics.METRICS.items():
        value = measured.get(name)
        if value is None or m.kind != "rate" or m.better is None:
            continue
        cents = value * 100
        if m.better == "higher":
            bound = (math.ceil(cents) - 1) / 100 if cents > 0 else 0.0
        else:
            bound = (math.floor(cents) + 1) / 100 if cents < 100 else 1.0
        flags.append(f"--min {name}={bound:.2f}")
    return " ".join(flags)


def run_command(args: argparse.Namespace, settings: Settings, embedder: Embedder | None = None,
                argv: Sequence[str] = ()) -> int:
    """Entry point from ``assistant.cli``; ``embedder`` lets tests share an already loaded model."""
    if args.action == "compare":
        print(compare(settings.home, args.run_a, args.run_b))
        return 0
    if args.action == "fit":
        from evals.fit import command_line, run_fit, set_corpora

        kwargs: dict[str, Any] = {"out": Path(args.out)} if args.out else {}
        if args.dump:
            kwargs["dump"] = Path(args.dump)
        run_fit(settings, set_corpora(args.fit_sets, settings.corpus), folds=args.folds,
                max_false_refusals=args.max_false_refusals, command=command_line(argv), **kwargs)
        return 0
    return run(args, settings, embedder)


def run(args: argparse.Namespace, settings: Settings, embedder: Embedder | None = None) -> int:
    from evals.run import run_set  # loads the assistant stack; compare does not need it

    thresholds = parse_thresholds(getattr(args, "minimums", None) or [])
    corpus = getattr(args, "corpus", None)
    result = run_set(
        settings, args.set_path, corpus=corpus, embedder=embedder, progress=not getattr(args, "quiet", False),
        every=getattr(args, "every", 1),
    )
    doc = result.results()
    run_dir = history.save_run(settings.home, result.run_id, doc, result.meta)
    report.write(doc, run_dir)
    shown = run_dir
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "meta.json", report.REPORT, report.CHART):
            shutil.copyfile(run_dir / name, out / name)
        shown = out
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(doc))
    print(f"report: {shown / report.REPORT}   chart: {shown / report.CHART}   run id: {result.run_id}")
    print(f"a gate just under this run: {gate(result.metrics)}")
    failed = check_thresholds(thresholds, result.metrics)
    for line in failed:
        print(line, file=sys.stderr)
    if thresholds and not failed:
        print(f"all {len(thresholds)} threshold(s) met", file=sys.stderr)
    return 1 if failed else 0


def summary(doc: Mapping[str, Any]) -> str:
    """A few lines for the terminal: counts and every metric."""
    c = doc["counts"]
    lines = [
        f"{c['correct']} of {c['questions']} correct ({c['answerable']} answerable, {c['unanswerable']} unanswerable)"
    ]
    for name, m in metrics.METRICS.items():
        lines.append(f"  {name:<24} {report.fmt(doc['metrics'].get(name), m.kind):>10}")
    return "\n".join(lines)


def compare(home: Path, ref_a: str, ref_b: str) -> str:
    """Each metric's change from run A to run B, and the questions whose verdict flipped."""
    dir_a, dir_b = history.resolve_run(home, ref_a), history.resolve_run(home, ref_b)
    a, b = history.load_run(dir_a), history.load_run(dir_b)
    name_a, name_b = _name(a, dir_a), _name(b, dir_b)
    lines = [f"A: {name_a}", f"B: {name_b}"]
    lines += [f"note: {n}" for n in _differences(a.get("meta") or {}, b.get("meta") or {})]
    # Recompute from the records so runs written by older code are judged by today's definitions.
    va, vb = metrics.compute(a["questions"]), metrics.compute(b["questions"])
    lines += ["", f"{'metric':<24} {'A':>10} {'B':>10} {'change':>10}"]
    for name, m in metrics.METRICS.items():
        x, y = va.get(name), vb.get(name)
        change, verdict = "", ""
        if x is not None and y is not None:
            delta = y - x
            change = f"{delta:+.0f}" if m.kind == "ms" else f"{delta:+.1f}" if m.kind == "words" else f"{delta:+.3f}"
            if abs(delta) > 1e-9 and m.better:
                verdict = "better" if (delta > 0) == (m.better == "higher") else "worse"
        lines.append(f"{name:<24} {report.fmt(x, m.kind):>10} {report.fmt(y, m.kind):>10} {change:>10}  {verdict}")
    by_a = {r["id"]: r for r in a["questions"]}
    by_b = {r["id"]: r for r in b["questions"]}
    fixed, broken = [], []
    for qid, rb in by_b.items():
        ra = by_a.get(qid)
        if ra is None:
            continue
        was, now = metrics.is_correct(ra), metrics.is_correct(rb)
        if was != now:
            (fixed if now else broken).append((ra, rb))
    lines += ["", f"flipped: {len(broken)} now wrong, {len(fixed)} now right"]
    for _, rb in broken:
        why = report.failure(rb)
        lines.append(f"  - {rb['id']}: {rb['question']}\n      B: {why['reason'] if why else ''}")
    for _, rb in fixed:
        lines.append(f"  + {rb['id']}: {rb['question']}")
    only_a, only_b = sorted(set(by_a) - set(by_b)), sorted(set(by_b) - set(by_a))
    if only_a or only_b:
        lines.append(f"questions only in A: {', '.join(only_a) or '-'}; only in B: {', '.join(only_b) or '-'}")
    return "\n".join(lines)


def _name(doc: Mapping[str, Any], folder: Path) -> str:
    meta = doc.get("meta") or {}
    git = (meta.get("git") or {}).get("commit") or "?"
    return f"{meta.get('run_id') or folder.name} ({folder}; commit {git[:12]}, index {meta.get('index_fingerprint')})"


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between two runs besides the code: the set, the indexed content, the settings."""
    out = []
    if (a.get("set") or {}).get("sha256") != (b.get("set") or {}).get("sha256"):
        out.append("the runs used different question sets (or versions of one)")
    if a.get("index_fingerprint") != b.get("index_fingerprint"):
        out.append("the runs used different indexed content (index fingerprints differ)")
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    skip = {"home", "corpus", "config"}
    changed = sorted(k for k in set(sa) | set(sb) if k not in skip and sa.get(k) != sb.get(k))
    if changed:
        out.append("settings differ: " + ", ".join(f"{k} {sa.get(k)!r} -> {sb.get(k)!r}" for k in changed))
    return out
