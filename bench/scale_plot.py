"""docs/scaling.png from bench/out/scale-*.json (bench/scale.py): one small panel per figure
against corpus size (log x), one line per store, the issue's target at 100k chunks dashed red,
1.5x the embedded store's 10k figure dotted grey (the issue: every figure within 1.5x of it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (title, unit, figure from one run's JSON, target or None)
PANELS: list[tuple[str, str, Callable[[dict[str, Any]], float | None], float | None]] = [
    ("build from empty", "s", lambda r: r["build"]["wall_s"], None),
    ("build throughput", "tokens/s", lambda r: r["build"]["tokens_per_s"], None),
    ("build vs int8 encode-only", "x", lambda r: r["build"]["vs_encode_only"], 0.85),
    ("build: share outside the model", "fraction", lambda r: r["build"].get("outside_embedding_share"), 0.15),
    ("retrieval p50", "ms", lambda r: r["query"]["retrieval_ms"]["p50"], 50),
    ("retrieval p95", "ms", lambda r: r["query"]["retrieval_ms"]["p95"], 120),
    ("extractive answer p50", "ms", lambda r: r["query"]["ask_ms"]["p50"], 300),
    ("add one bulletin via chat server", "s", lambda r: r["chat"]["add"]["wall_s"], 2.0),
    ("no-op update", "s", lambda r: r["no-op update"]["wall_s"], 1.0),
    ("index status", "s", lambda r: r["status"]["wall_s"], 1.0),
    ("index status --verify", "s", lambda r: r["status --verify"]["wall_s"], 30.0),
    ("chat peak RSS, 8 users", "MiB", lambda r: r["chat"]["load"]["memory"]["peak_mb"], 1536.0),
]
STYLE = {"embedded": ("#4f46e5", "o"), "chroma": ("#d97706", "s")}


def points(out: Path) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Runs by store, as (chunks, run), smallest corpus first."""
    by_store: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for path in sorted(out.glob("scale-*.json")):
        for kind, run in json.loads(path.read_text()).items():
            if "build" in run:
                by_store.setdefault(kind, []).append((run["build"]["chunks"], run))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in by_store.items()}


def plot(out: Path, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = points(out)
    cols = 4
    fig, axes = plt.subplots((len(PANELS) + cols - 1) // cols, cols, figsize=(14, 9.5))
    for ax, (title, unit, get, target) in zip(axes.flat, PANELS, strict=False):
        for kind, pts in runs.items():
            xs, ys = [], []
            for chunks, run in pts:
                if _has(get, run):
                    value = get(run)
                    xs.append(chunks)
                    ys.append(value)
            color, marker = STYLE.get(kind, ("#444444", "^"))
            ax.plot(xs, ys, marker=marker, color=color, label=kind, linewidth=1.5, markersize=4)
        ten_k = [get(run) for chunks, run in runs.get("embedded", []) if 5_000 < chunks < 20_000 and _has(get, run)]
        if ten_k and not title.startswith("build"):  # a build grows with the corpus by nature
            ax.axhline(1.5 * ten_k[0], color="#6b7280", linestyle=":", linewidth=1, label="1.5x 10k")
        if target is not None:
            ax.axhline(target, color="#dc2626", linestyle="--", linewidth=1, label=f"target {target:g}")
        ax.set_xscale("log")
        ax.set_title(f"{title} ({unit})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(PANELS):]:
        ax.axis("off")
    commits = sorted({run["commit"] for pts in runs.values() for _, run in pts})
    fig.suptitle(f"stdnews against corpus size (chunks, log scale); commit {', '.join(commits)}", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _has(get: Callable[[dict[str, Any]], float | None], run: dict[str, Any]) -> bool:
    """Whether this run has the figure (a step may have failed, or an older run lacks it)."""
    try:
        return get(run) is not None
    except (KeyError, TypeError):
        return False
