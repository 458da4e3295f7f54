"""docs/scaling.png from bench/out/scale-*.json (bench/scale.py): one small panel per figure
against corpus size (log x), one line per store, the issue's target at 100k chunks dashed red,
1.5x the embedded store's 10k figure dotted grey (the issue: every figure within 1.5x of it). The
repeated steps (CLI commands, the handed-over add) are drawn by their medians."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (title, unit, figure from one run's JSON, target or None)
PANELS: list[tuple[str, str, Callable[[dict[str, Any]], float | None], float | None]] = [
    ("build from empty", "s", lambda r: r["build"]["wall_s"], None),
    ("build throughput", "tokens/s", lambda r: r["build"]["tokens_per_s"], None),
    ("build vs int8 encode-only, wall", "x", lambda r: r["build"]["vs_encode_only"], 0.85),
    ("build: share outside the model", "fraction", lambda r: r["build"].get("outside_embedding_share"), 0.15),
    ("retrieval p50", "ms", lambda r: r["query"]["retrieval_ms"]["p50"], 50),
    ("retrieval p95", "ms", lambda r: r["query"]["retrieval_ms"]["p95"], 120),
    ("extractive answer p50", "ms", lambda r: r["query"]["ask_ms"]["p50"], 300),
    ("add one bulletin via chat server, median", "s", lambda r: _median(r["chat"]["add"]), 2.0),
    ("no-op update, median", "s", lambda r: _median(r["no-op update"]), 1.0),
    ("index status, median", "s", lambda r: _median(r["status"]), 1.0),
    ("index status --verify, median", "s", lambda r: _median(r["status --verify"]), 30.0),
    ("chat peak RSS, 8 users", "MiB", lambda r: r["chat"]["load"]["memory"]["peak_mb"], 1536.0),
]


def _median(step: dict[str, Any]) -> float:
    """A repeated step's median (bench/scale.py --repeat); a run from before the repeats: its one figure."""
    return float(step.get("median_s", step["wall_s"]))


def _first_median(step: dict[str, Any]) -> str:
    return f"{step['wall_s']:.2f}; {_median(step):.2f}"


def _adds(add: dict[str, Any]) -> str:
    handed = add["handed_over"] and all(a["handed_over"] for a in add.get("more", []))
    late = "" if handed else ", NOT handed over"
    return f"{add['wall_s']:.2f} ({add['server_update_s']}); {_median(add):.2f}{late}"


STYLE = {"embedded": ("#4f46e5", "o"), "chroma": ("#d97706", "s")}
SIZES = ("2k", "10k", "50k", "100k")  # bench/out/scale-<size>.json; other scale-*.json files are not ours


def files(out: Path) -> list[Path]:
    return [out / f"scale-{s}.json" for s in SIZES if (out / f"scale-{s}.json").is_file()]


def points(out: Path) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Runs by store, as (chunks, run), smallest corpus first."""
    by_store: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for path in files(out):
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


def _fmt(run: dict[str, Any], get: Callable[[dict[str, Any]], str]) -> str:
    try:
        return get(run)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):  # a failed step, or a figure older runs lack
        return "-"


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("chunks (tokens)", lambda r: f"{r['build']['chunks']:,} ({r['build']['tokens']:,})"),
    ("build from empty, wall s (CPU s)", lambda r: f"{r['build']['wall_s']:.1f} ({r['build']['cpu_s']:.0f})"
     + (f" + Chroma server {r['build']['chroma_server_cpu_s']:.0f} CPU-s" if "chroma_server_cpu_s" in r["build"]
        else "")),
    ("build tokens/s (per CPU-s)",
     lambda r: f"{r['build']['tokens_per_s']:,.0f} ({r['build']['tokens_per_cpu_s']:,.0f})"),
    ("int8 encode-only tokens/s (per CPU-s), chunks encoded",
     lambda r: f"{r['encode_only']['tokens_per_s']:,.0f} ({r['encode_only']['tokens_per_cpu_s']:,.0f}),"
               f" {r['encode_only']['encoded_chunks']:,}"),
    ("build / encode-only, wall (CPU)",
     lambda r: f"{r['build']['vs_encode_only']:.2f}x ({r['build']['vs_encode_only_cpu']:.2f}x)"),
    ("build's seconds in the model; share outside it",
     lambda r: f"{max(r['build']['embed_fields'].values()):.0f} s; {r['build']['outside_embedding_share']:.0%}"),
    ("no-op update s, first after the build; median", lambda r: _first_median(r["no-op update"])),
    ("index status s, first; median", lambda r: _first_median(r["status"])),
    ("index status --verify s, first; median", lambda r: _first_median(r["status --verify"])),
    ("retrieval p50 / p95 ms (1 user)",
     lambda r: f"{r['query']['retrieval_ms']['p50']} / {r['query']['retrieval_ms']['p95']}"),
    ("extractive answer p50 / p95 ms (1 user)",
     lambda r: f"{r['query']['ask_ms']['p50']} / {r['query']['ask_ms']['p95']}"),
    ("`index add` handed to `stdnews chat`, s (server's update s); median of the adds",
     lambda r: _adds(r["chat"]["add"])),
    ("next question answered from the new bulletin", lambda r: "yes" if r["chat"]["next_question"]["answered_from_it"]
     else f"no: cited {r['chat']['next_question']['cited']}"),
    ("chat server ready s", lambda r: f"{r['chat']['ready_s']:.1f}"),
    ("chat peak RSS MiB, 8 users (whole life)",
     lambda r: f"{r['chat']['load']['memory']['peak_mb']:.0f} ({r['chat']['peak_rss_mb']:.0f})"),
    ("8 users: answered / errors, p50 ms", lambda r: f"{r['chat']['load']['answered']} / {r['chat']['load']['errors']},"
     f" {r['chat']['load']['latency_ms']['p50']:.0f}"),
    ("index.sqlite MiB", lambda r: f"{_mib(r, 'index.sqlite')}"),
    ("chroma/ MiB", lambda r: f"{_mib(r, 'chroma-server' if r['store'] == 'chroma' else 'chroma')}"),
    ("load average (1 min) at start / end", lambda r: f"{r['load_start'][0]} / {r['load_end'][0]}"),
    ("commit", lambda r: r["commit"]),
]


def _mib(run: dict[str, Any], name: str) -> str:
    files = run["disk"]["files"]
    total = sum(v for k, v in files.items() if k == name or k.startswith(f"{name}-"))  # -wal, -shm beside it
    return f"{total / 2**20:.1f}"


def tables(out: Path) -> str:
    """One markdown table per size: every figure, one column per store."""
    parts = []
    for path in files(out):
        data = json.loads(path.read_text())
        kinds = [k for k in ("embedded", "chroma") if k in data]
        lines = [f"### {path.stem.split('-')[1]} (`{path.relative_to(out.parent.parent)}`)", "",
                 "| figure | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
        lines += [f"| {name} | " + " | ".join(_fmt(data[k], get) for k in kinds) + " |" for name, get in ROWS]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
