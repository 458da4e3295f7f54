"""What a run's reader sees: ``report.md`` (metrics, the breakdown by tag, and
every failure with its reason, worst first) and ``metrics.png``, a chart of the
metrics and of accuracy per tag."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals import metrics

CHART = "metrics.png"
REPORT = "report.md"
# How much a failure hurts a user, worst first: a confident answer where none exists, a wrong
# answer, then a refusal of a question the bulletins do answer.
_SEVERITY = {"answered unanswerable": 3, "wrong answer": 2, "false refusal": 1}


def fmt(value: float | None, kind: str = "rate") -> str:
    if value is None:
        return "n/a"
    if kind == "ms":
        return f"{value:.0f} ms"
    if kind == "words":
        return f"{value:.1f}"
    return f"{value:.3f}"


def _clip(text: str, n: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _groups(groups: Sequence[Sequence[str]]) -> str:
    return " and ".join(" or ".join(f"'{s}'" for s in g) for g in groups)


def _blame(rec: Mapping[str, Any]) -> tuple[str, bool]:
    """Whether retrieval or the answerer failed, judged by what the passages the answerer saw contain."""
    seen = len(rec.get("answer_passages") or ()) or 5
    rank = metrics.first_hit_rank(rec, 10)
    where = "no expected source in the top 10" if rank is None else f"first expected-source passage at rank {rank}"
    lacking = metrics.missing_in_passages(rec, seen)
    if lacking is None:
        return where, rank is None or rank > seen
    if lacking:
        return f"retrieval: the {seen} passages the answerer saw lack {_groups(lacking)} ({where})", True
    return f"answerer: the {seen} passages it saw hold the answer ({where})", False


def failure(rec: Mapping[str, Any]) -> dict[str, Any] | None:
    """Why a question failed (None when it did not): its kind, a severity for ordering, and the reason."""
    if metrics.is_correct(rec):
        return None
    notes = "; ".join(rec.get("notes") or ())
    cited = sorted({c["doc_id"] for c in rec.get("citations") or ()})
    if not rec.get("answerable"):
        kind = "answered unanswerable"
        reason = f"answered instead of refusing: “{_clip(rec.get('answer') or '')}” (cites {', '.join(cited) or '-'})"
        order = 0.0
    elif rec.get("refused"):
        kind = "false refusal"
        blame, retrieval = _blame(rec)
        reason = f"refused ({notes or 'no reason given'}); {blame}"
        order = 0.5 if retrieval else 0.0
    else:
        kind = "wrong answer"
        off_source = not any(metrics.citation_hits(rec))
        blame, retrieval = _blame(rec)
        reason = (
            f"lacks {_groups(metrics.missing_groups(rec))}; answer: “{_clip(rec.get('answer') or '')}”;"
            f" cites {', '.join(cited) or 'nothing'}{' (no expected source)' if off_source else ''}; {blame}"
        )
        order = (0.5 if retrieval else 0.0) + (0.25 if off_source else 0.0)
    return {"kind": kind, "severity": _SEVERITY[kind] + order, "reason": reason}


def failures(records: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
    """Failed questions with their reasons, worst first (then in set order)."""
    found = [(r, f) for r in records if (f := failure(r))]
    return sorted(found, key=lambda rf: -rf[1]["severity"])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(result: Mapping[str, Any], chart: str | None = CHART) -> str:
    """The markdown report of a run's results document."""
    meta, values, records = result["meta"], result["metrics"], result["questions"]
    count = metrics.counts(records)
    git = meta.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (with uncommitted changes)" if git.get("dirty") else "")
    lines = [
        f"# Evaluation report: {Path(meta['set']['path']).name}",
        "",
        f"- run `{meta['run_id']}` at {meta['time']}, {meta['seconds']} s; commit {commit}",
        f"- set `{meta['set']['path']}` (sha256 {meta['set']['sha256'][:12]}), {count['questions']} questions:"
        f" {count['answerable']} answerable, {count['unanswerable']} unanswerable",
        f"- corpus `{meta['corpus']}`{' (fresh index)' if meta.get('fresh_index') else ''},"
        f" index fingerprint `{meta['index_fingerprint']}`, answerer `{meta['answerer']}`",
        f"- **{count['correct']} of {count['questions']} questions correct**",
        "",
    ]
    lines += [f"> warning: {w}" for w in result.get("warnings") or ()]
    lines += ["## Metrics", "", "| metric | value | over | what it measures |", "|---|---:|---|---|"]
    for name, m in metrics.METRICS.items():
        lines.append(f"| {name} | {fmt(values.get(name), m.kind)} | {m.over} | {_md(m.doc)} |")
    lines.append("")
    if chart:
        lines += [f"![metrics]({chart})", ""]
    lines += ["## By tag", "", "| tag | questions | accuracy | hit@5 | refused |", "|---|---:|---:|---:|---:|"]
    for tag, row in result["by_tag"].items():
        lines.append(
            f"| {tag} | {int(row['n'] or 0)} | {fmt(row['accuracy'])} | {fmt(row['hit@5'])} | {fmt(row['refused'])} |"
        )
    failed = failures(records)
    lines += ["", f"## Failures ({len(failed)})", ""]
    if not failed:
        lines.append("None.")
    else:
        lines.append(
            "Worst first: an answer to an unanswerable question, then wrong answers, then refusals"
            " of answerable questions; within each, retrieval failures (the answer is not in the passages the"
            " answerer saw) first, then answers that cite no expected source."
        )
        lines.append("")
        for rank, (rec, f) in enumerate(failed[:5], 1):
            lines += [f"{rank}. **{rec['id']}** ({f['kind']}): {_md(rec['question'])}  ", f"   {_md(f['reason'])}"]
        lines += ["", "| id | kind | question | reason |", "|---|---|---|---|"]
        lines += [f"| {r['id']} | {f['kind']} | {_md(r['question'])} | {_md(f['reason'])} |" for r, f in failed]
    answerable = [r for r in records if r.get("answerable")]
    misses = [r["id"] for r in answerable if metrics.first_hit_rank(r, 10) is None]
    lacking = [r["id"] for r in answerable if metrics.missing_in_passages(r, 5)]
    lines += [
        "",
        "## Retrieval misses",
        "",
        f"- no passage from an expected source in the top 10 ({len(misses)}): {', '.join(misses) or 'none'}",
        f"- the top 5 passages lack a `must_include` group ({len(lacking)}): {', '.join(lacking) or 'none'}",
    ]
    return "\n".join(lines) + "\n"


def chart(result: Mapping[str, Any], path: Path) -> Path:
    """A PNG of the rate metrics and of overall accuracy per tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = result["metrics"]
    rates = [(n, values.get(n)) for n, m in metrics.METRICS.items() if m.kind == "rate"]
    tags = list(result["by_tag"].items())
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(5, 0.32 * max(len(rates), len(tags)) + 1.5)))
    names = [n for n, _ in rates][::-1]
    nums = [v or 0.0 for _, v in rates][::-1]
    colours = ["#c0504d" if metrics.METRICS[n].better == "lower" else "#4f81bd" for n in names]
    left.barh(names, nums, color=colours)
    for y, (n, v) in enumerate(zip(names, nums, strict=True)):
        left.text(min(v, 1.0) + 0.01, y, "n/a" if values.get(n) is None else f"{v:.2f}", va="center", fontsize=8)
    left.set_xlim(0, 1.12)
    left.set_title("Metrics (red: lower is better)")
    acc = [row["accuracy"] or 0.0 for _, row in tags][::-1]
    right.barh([f"{t} ({int(row['n'] or 0)})" for t, row in tags][::-1], acc, color="#9bbb59")
    for y, v in enumerate(acc):
        right.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=8)
    right.set_xlim(0, 1.12)
    right.set_title("Accuracy by tag (questions)")
    lat = f"latency p50 {fmt(values.get('latency_p50_ms'), 'ms')}, p95 {fmt(values.get('latency_p95_ms'), 'ms')}"
    words = f"answer length {fmt(values.get('answer_length_words'), 'words')} words"
    fig.suptitle(f"{Path(result['meta']['set']['path']).name}: {lat}; {words}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: Mapping[str, Any], folder: Path) -> Path:
    """``report.md`` and the chart into ``folder``; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    chart(result, folder / CHART)
    path = folder / REPORT
    path.write_text(render(result), encoding="utf-8")
    return path
