"""Load test of the chat window: N concurrent users (one ``gradio_client`` each) ask the
questions of an evaluation set through ``/ask`` until a total is reached. Reports errors,
latency p50/p95, throughput, and the server's resident memory sampled every second
(first vs last minute: does it stay flat?); draws a latency histogram and memory over time.

    python bench/load.py                                  # 16 users, 300 questions, temp copy of the seed corpus
    python bench/load.py --users 4 --questions 40         # a small run
    python bench/load.py --home .stdnews --corpus corpus  # serve an existing data directory as it is
    python bench/load.py --url http://127.0.0.1:7860 --pid 4242   # a running server (memory needs --pid)

The server is started here (``stdnews chat`` on 127.0.0.1, its own process) and stopped at the
end. Writes <out>/load.json and <out>/load.png (default bench/out/load); exits 1 on any error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import loadavg, machine, percentile  # noqa: E402

SEED_SET = ROOT / "evals" / "sets" / "seed.jsonl"
WINDOW_S = 60.0  # memory: first minute vs last minute of the measured run


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Question and earlier turns of every line of an evaluation set, in file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"question": r["question"], "history": r.get("history") or []} for r in rows]


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (psutil when installed, else /proc/<pid>/status); None once gone."""
    try:
        import psutil
    except ImportError:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            return None
        return None
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


class MemorySampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds: ``samples`` holds (seconds since start, MiB)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.t0 = time.perf_counter()
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            mb = rss_mb(self.pid)
            if mb is not None:
                self.samples.append((time.perf_counter() - self.t0, mb))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_load(url: str, questions: Sequence[dict[str, Any]], users: int = 16, total: int = 300,
             pid: int | None = None, warmup: int | None = None, auth: tuple[str, str] | None = None,
             interval: float = 1.0) -> dict[str, Any]:
    """Ask ``total`` questions (cycling through ``questions``) from ``users`` concurrent clients.
    ``warmup`` questions (default one per user) go first and are not counted; memory is sampled
    throughout when ``pid`` is given. Returns the figures (see ``summarise``)."""
    from gradio_client import Client

    load_before = loadavg()
    clients = [Client(url, auth=auth, verbose=False) for _ in range(users)]
    sampler = MemorySampler(pid, interval) if pid else None
    if sampler:
        sampler.start()
        time.sleep(min(interval, 1.0) * 1.5)  # a sample or two before the first question
    warm_n = users if warmup is None else warmup
    _parallel(users, lambda u, i: _ask(clients[u], questions[(len(questions) - 1 - i) % len(questions)]), warm_n)
    t_start = time.perf_counter()
    records = _parallel(users, lambda u, i: _ask(clients[u], questions[i % len(questions)]), total)
    wall = time.perf_counter() - t_start
    if sampler:
        sampler.stop()
    for c in clients:
        c.close()
    offset = (t_start - sampler.t0) if sampler else 0.0
    memory = [(round(t - offset, 2), round(mb, 1)) for t, mb in sampler.samples] if sampler else []
    result = summarise(records, wall, memory, users, total, warm_n, url)
    result["memory"]["interval_s"] = interval
    result["loadavg_before"] = load_before
    return result


def _parallel(users: int, ask: Any, total: int) -> list[dict[str, Any]]:
    """``users`` threads take question numbers 0..total-1 in turn; each record gains the question number."""
    counter = itertools.count()
    lock = threading.Lock()
    records: list[dict[str, Any]] = []

    def user(u: int) -> None:
        while True:
            with lock:
                i = next(counter)
            if i >= total:
                return
            rec = ask(u, i)
            rec.update(n=i, user=u)
            with lock:
                records.append(rec)

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(records, key=lambda r: r["n"])


def _ask(client: Any, q: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        r = client.predict(q["question"], history=q["history"], api_name="/ask")
        if not isinstance(r, dict) or "answer" not in r or "citations" not in r:
            raise ValueError(f"unexpected reply {str(r)[:200]!r}")
        error, refused = None, bool(r["refused"])
    except Exception as exc:  # noqa: BLE001 - every failure counts as an error, and is kept for the report
        error, refused = f"{type(exc).__name__}: {exc}"[:300], None
    return {"start": t0, "latency_s": time.perf_counter() - t0, "error": error, "refused": refused,
            "question": q["question"]}


def summarise(records: list[dict[str, Any]], wall: float, memory: list[tuple[float, float]], users: int,
              total: int, warmup: int, url: str) -> dict[str, Any]:
    """Errors, latency percentiles, throughput, and memory: before the run, first vs last window, peak."""
    ok = [r for r in records if r["error"] is None]
    lat = [r["latency_s"] * 1000 for r in ok]
    return {
        "url": url, "users": users, "questions": total, "warmup": warmup, "machine": machine(),
        "loadavg_after": loadavg(), "wall_s": round(wall, 2),
        "answered": len(ok), "errors": len(records) - len(ok),
        "error_samples": [r["error"] for r in records if r["error"]][:5],
        "refused": sum(1 for r in ok if r["refused"]),
        "throughput_qps": round(len(ok) / wall, 3) if wall else 0.0,
        "latency_ms": {"p50": _r(percentile(lat, 50)), "p95": _r(percentile(lat, 95)),
                       "p99": _r(percentile(lat, 99)), "mean": _r(sum(lat) / len(lat)) if lat else None,
                       "max": _r(max(lat)) if lat else None},
        "latencies_ms": [_r(x) for x in lat],
        "memory": memory_summary(memory, wall),
        "memory_samples": memory,
    }


def memory_summary(samples: list[tuple[float, float]], wall: float) -> dict[str, Any]:
    """RSS before the measured run, its first and last minute (halves when the run is shorter than
    two minutes), the two halves, and the peak. Times are seconds from the start of the measured run."""
    if not samples:
        return {"samples": 0}
    during = [(t, mb) for t, mb in samples if 0 <= t <= wall] or samples
    before = [mb for t, mb in samples if t < 0]
    window = min(WINDOW_S, wall / 2)
    first = [mb for t, mb in during if t <= window]
    last = [mb for t, mb in during if t >= wall - window]
    half_a = [mb for t, mb in during if t <= wall / 2]
    half_b = [mb for t, mb in during if t > wall / 2]
    stats = {"samples": len(during), "window_s": round(window, 1),
             "before_mb": _r(before[-1]) if before else None,
             "first_avg_mb": _avg(first), "first_max_mb": _r(max(first, default=0)),
             "last_avg_mb": _avg(last), "last_max_mb": _r(max(last, default=0)),
             "first_half_avg_mb": _avg(half_a), "second_half_avg_mb": _avg(half_b),
             "peak_mb": _r(max(mb for _, mb in samples))}
    stats["growth_mb"] = _r((stats["last_avg_mb"] or 0) - (stats["first_avg_mb"] or 0))
    stats["growth_halves_mb"] = _r((stats["second_half_avg_mb"] or stats["first_half_avg_mb"] or 0)
                                   - (stats["first_half_avg_mb"] or 0))
    return stats


def plot(result: dict[str, Any], path: Path) -> Path:
    """Latency histogram (p50/p95 marked) beside the server's memory over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    lat = result["latencies_ms"]
    ax1.hist(lat, bins=min(40, max(5, len(lat) // 8)), color="#6366f1")
    for key, style in (("p50", "-"), ("p95", "--")):
        value = result["latency_ms"][key]
        if value is not None:
            ax1.axvline(value, color="#b45309", linestyle=style, label=f"{key} {value:.0f} ms")
    ax1.set_xlabel("latency (ms)")
    ax1.set_ylabel("questions")
    ax1.set_title(f"{result['answered']} answered, {result['errors']} errors, {result['users']} users, "
                  f"{result['throughput_qps']:.2f} q/s", fontsize=10)
    ax1.legend()
    mem = result["memory_samples"]
    if mem:
        ax2.plot([t for t, _ in mem], [mb for _, mb in mem], color="#6366f1")
        m = result["memory"]
        ax2.axvspan(0, m["window_s"], color="#fde68a", alpha=0.5, label=f"first {m['window_s']:.0f} s")
        ax2.axvspan(result["wall_s"] - m["window_s"], result["wall_s"], color="#bbf7d0", alpha=0.6,
                    label=f"last {m['window_s']:.0f} s")
        ax2.set_title(f"server RSS: first {m['first_avg_mb']:.0f} MiB, last {m['last_avg_mb']:.0f} MiB, "
                      f"peak {m['peak_mb']:.0f} MiB", fontsize=10)
        ax2.legend(loc="lower right")
        lo = min(mb for _, mb in mem)
        ax2.set_ylim(lo * 0.9, max(mb for _, mb in mem) * 1.05)
    else:
        ax2.text(0.5, 0.5, "memory not sampled (no --pid)", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("seconds since the measured run began (warm-up before 0)")
    ax2.set_ylabel("RSS (MiB)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(result: dict[str, Any]) -> str:
    lat, m = result["latency_ms"], result["memory"]
    lines = [f"{result['users']} users, {result['questions']} questions (+{result['warmup']} warm-up) "
             f"against {result['url']} on {result['machine']}; load average before {result.get('loadavg_before')}, "
             f"after {result['loadavg_after']}",
             f"errors: {result['errors']}  answered: {result['answered']} ({result['refused']} refusals)",
             f"latency: p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
             f"throughput: {result['throughput_qps']} questions/s over {result['wall_s']} s"]
    if m.get("samples"):
        lines.append(f"server RSS ({m['samples']} samples, every {m['interval_s']:g} s): before {m['before_mb']} MiB; "
                     f"first {m['window_s']:.0f} s avg {m['first_avg_mb']} / max {m['first_max_mb']} MiB; "
                     f"last {m['window_s']:.0f} s avg {m['last_avg_mb']} / max {m['last_max_mb']} MiB; "
                     f"growth {m['growth_mb']:+} MiB; peak {m['peak_mb']} MiB")
    else:
        lines.append("server RSS: not sampled (give --pid with --url)")
    for e in result["error_samples"]:
        lines.append(f"error: {e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=16, help="concurrent clients (default 16)")
    p.add_argument("--questions", type=int, default=300, help="questions in all, after the warm-up (default 300)")
    p.add_argument("--warmup", type=int, default=None, help="uncounted questions first (default: one per user)")
    p.add_argument("--set", dest="set_path", type=Path, default=SEED_SET, help="evaluation set to cycle through")
    p.add_argument("--url", default=None, help="a running chat window instead of starting one")
    p.add_argument("--pid", type=int, default=None, help="with --url: the server's process id, to sample its memory")
    p.add_argument("--auth", default=None, help="USER:PASS when the server asks for it")
    p.add_argument("--home", type=Path, default=None, help="data directory to serve as it is (default: a temp "
                                                            "copy of the seed corpus, indexed first)")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder of --home")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "load")
    a = p.parse_args(argv)
    if a.users < 1 or a.questions < 1:
        p.error("--users and --questions must be at least 1")
    auth = tuple(a.auth.split(":", 1)) if a.auth else None
    questions = read_questions(a.set_path)
    with ExitStack() as stack:
        if a.url:
            url, pid = a.url, a.pid
        else:
            from tests.app_server import chat_process

            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stdnews-load-")))
            print("starting the chat window (indexing a copy of the seed corpus first)..." if a.home is None
                  else f"starting the chat window over {a.home}...", file=sys.stderr)
            srv = stack.enter_context(chat_process(base, a.home, a.corpus))
            url, pid = srv.url, srv.pid
        print(f"{a.users} users asking {a.questions} questions of {a.set_path.name} at {url}...", file=sys.stderr)
        result = run_load(url, questions, a.users, a.questions, pid=pid, warmup=a.warmup, auth=auth)  # type: ignore[arg-type]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "load.json").write_text(json.dumps(result, indent=1))
    png = plot(result, a.out / "load.png")
    print(report(result))
    print(f"wrote {a.out / 'load.json'} and {png}")
    return 0 if result["errors"] == 0 else 1


def _r(x: float | None) -> float | None:
    return None if x is None or x != x else round(x, 1)


def _avg(values: list[float]) -> float | None:
    return _r(sum(values) / len(values)) if values else None


if __name__ == "__main__":
    sys.exit(main())
