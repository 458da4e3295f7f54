"""Query benchmark on built indexes (e.g. 2k and 10k chunks, see bench/index.py):

- retrieval latency (``Retriever.search``: query embedding, Chroma, BM25, fusion) and
  answer latency (``Assistant.ask`` with the extractive answerer: retrieval + compose +
  citation check), p50/p95, one user and 8 concurrent users (threads in one process,
  as the chat server runs them);
- cold start of ``stdnews ask`` (a new process each time; the OS file cache is warm);
- peak memory of a ``stdnews chat`` server answering questions through its HTTP API.

Questions: the evaluation set's questions (follow-ups with their history), in order.

    python bench/query.py --home 2k=bench/out/homes/h2k --home 10k=bench/out/homes/h10k
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.common import loadavg, machine, percentile, run_timed, vm_hwm_kb  # noqa: E402

COLD_QUESTION = "Who convenes JTC 1/WG 11?"


def load_questions(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["question"], [tuple(t) for t in r.get("history", [])]) for r in rows]


def stats(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
            "mean": round(sum(ms) / max(1, len(ms)), 1)}


def latency(home: Path, backend: str, questions: list[tuple[str, list[tuple[str, str]]]],
            users: int) -> dict[str, Any]:
    """In-process latencies on one index: retrieval alone, then the full answer."""
    from assistant.pipeline import Assistant
    from index.settings import load_settings

    settings = load_settings(home=home, embed_backend=backend)
    bot = Assistant(settings)
    for q, h in questions[:5]:  # warm: model, stores, BM25, caches
        bot.ask(q, history=h)
    out: dict[str, Any] = {"chunks": bot.index.store.count(), "backend": backend}

    def retrieval(item: tuple[str, list[tuple[str, str]]]) -> float:
        q, h = item
        t0 = time.perf_counter()
        bot.retriever.search(bot.condense(q, h))
        return (time.perf_counter() - t0) * 1000

    def answer(item: tuple[str, list[tuple[str, str]]]) -> tuple[float, float]:
        q, h = item
        t0 = time.perf_counter()
        r = bot.ask(q, history=h)
        return (time.perf_counter() - t0) * 1000, r.timings_ms["answer"]

    for label, n in (("1 user", 1), (f"{users} users", users)):
        load0 = loadavg()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            ret = list(pool.map(retrieval, questions))
        t1 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            ans = list(pool.map(answer, questions))
        t2 = time.perf_counter()
        out[label] = {
            "retrieval_ms": stats(ret), "retrieval_qps": round(len(ret) / (t1 - t0), 1),
            "ask_ms": stats([a for a, _ in ans]), "compose_ms": stats([c for _, c in ans]),
            "ask_qps": round(len(ans) / (t2 - t1), 1), "load": [load0, loadavg()],
        }
        print(json.dumps({str(home): {label: out[label]}}), flush=True)
    return out


def cold_ask(home: Path, backend: str, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        r = run_timed([sys.executable, "-m", "assistant", "--home", str(home), "ask", COLD_QUESTION, "--json"],
                      env={"STDNEWS_EMBED_BACKEND": backend})
        if r["rc"] != 0:
            raise SystemExit(f"stdnews ask failed:\n{r['output']}")
        runs.append({"wall_s": round(r["wall_s"], 2), "peak_rss_mb": round(r["peak_rss_mb"]), "load": loadavg()})
    walls = sorted(x["wall_s"] for x in runs)
    return {"backend": backend, "median_s": walls[len(walls) // 2], "runs": runs}


def chat_memory(home: Path, backend: str, questions: list[tuple[str, list[tuple[str, str]]]],
                users: int) -> dict[str, Any]:
    """Start ``stdnews chat``, ask through its /ask API (``users`` at once), track its peak RSS."""
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "--home", str(home), "chat", "--port", str(port)],
                            env={**os.environ, "STDNEWS_EMBED_BACKEND": backend}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status = Path(f"/proc/{proc.pid}/status")
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], vm_hwm_kb(status))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"stdnews chat exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        idle_mb = vm_hwm_kb(status) / 1024
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def ask(item: tuple[str, list[tuple[str, str]]]) -> float:
            q, h = item
            a = time.perf_counter()
            client.predict(q, history=[list(t) for t in h], api_name="/ask")
            return (time.perf_counter() - a) * 1000

        ask(questions[0])  # one question first: Index opens its stores lazily, and not thread-safely
        with ThreadPoolExecutor(users) as pool:
            http_ms = list(pool.map(ask, questions))
        peak[0] = max(peak[0], vm_hwm_kb(status))
    finally:
        stop.set()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"backend": backend, "ready_s": round(ready_s, 1), "rss_after_start_mb": round(idle_mb),
            "peak_rss_mb": round(peak[0] / 1024), "questions": len(http_ms), "users": users,
            "http_ask_ms": stats(http_ms), "load": loadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", action="append", required=True, help="LABEL=DIR of a built index (repeatable)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--set", type=Path, default=ROOT / "evals" / "sets" / "seed.jsonl")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--cold", type=int, default=3, help="cold `stdnews ask` runs per index")
    ap.add_argument("--cold-backends", default="onnx",
                    help="comma list (an index answers only with the backend that built it)")
    ap.add_argument("--chat", default="", help="LABEL of the index to serve for the chat memory run")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    questions = load_questions(args.set)
    homes = dict(h.split("=", 1) for h in args.home)
    res: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "load_start": loadavg(), "questions": len(questions), "latency": {}, "cold": {}}
    for label, home in homes.items():
        if not args.skip_latency:
            res["latency"][label] = latency(Path(home), args.backend, questions, args.users)
    for label, home in homes.items() if args.cold > 0 else ():
        res["cold"][label] = [cold_ask(Path(home), b, args.cold) for b in args.cold_backends.split(",")]
        print(json.dumps({"cold": {label: res["cold"][label]}}), flush=True)
    if args.chat:
        res["chat"] = chat_memory(Path(homes[args.chat]), args.backend, questions, args.users)
        print(json.dumps({"chat": res["chat"]}), flush=True)
    res["load_end"] = loadavg()
    print_tables(res)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))


def print_tables(res: dict[str, Any]) -> None:
    print(f"\nmachine: {res['machine']}; load at start {res['load_start']}, end {res['load_end']}")
    if res["latency"]:
        print("\n| index | users | retrieval p50 / p95 ms | ask (extractive) p50 / p95 ms | compose p50 ms |"
              " asks/s | load (1 min) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in res["latency"].items():
            for users in (k for k in r if k.endswith(("user", "users"))):
                x = r[users]
                print(f"| {label} ({r['chunks']} chunks) | {users} | {x['retrieval_ms']['p50']} / "
                      f"{x['retrieval_ms']['p95']} | {x['ask_ms']['p50']} / {x['ask_ms']['p95']} |"
                      f" {x['compose_ms']['p50']} | {x['ask_qps']} | {x['load'][1][0]} |")
    print("\n| cold `stdnews ask` | backend | median s | runs s | peak RSS MiB | load (1 min) |")
    print("|---|---|---:|---|---:|---:|")
    for label, runs in res["cold"].items():
        for r in runs:
            print(f"| {label} | {r['backend']} | {r['median_s']} | {', '.join(str(x['wall_s']) for x in r['runs'])}"
                  f" | {max(x['peak_rss_mb'] for x in r['runs'])} | {r['runs'][-1]['load'][0]} |")
    if "chat" in res:
        c = res["chat"]
        print(f"\nstdnews chat ({c['backend']}): ready in {c['ready_s']} s, RSS after start {c['rss_after_start_mb']}"
              f" MiB, peak {c['peak_rss_mb']} MiB over {c['questions']} questions from {c['users']} users"
              f" (HTTP /ask p50 {c['http_ask_ms']['p50']} ms, p95 {c['http_ask_ms']['p95']} ms); load {c['load'][0]}")


if __name__ == "__main__":
    main()
