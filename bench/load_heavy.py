"""An ordinary question's latency while heavy ones run: does one costly request starve the rest?
Starts ``stdnews chat`` on 127.0.0.1 (its own process, a temporary copy of the seed corpus),
times an ordinary question alone, then again while ``--heavy`` clients keep asking questions of
``--chars`` characters (default 4 x 2,000: the longest question the assistant accepts), and prints
the figures. Not a test: nothing here asserts a time.

    python bench/load_heavy.py                     # 4 heavy clients, 2,000-character questions, via /ask
    python bench/load_heavy.py --chars 20000       # over the cap: refused at once since the cap
    python bench/load_heavy.py --url http://127.0.0.1:7860   # a running server
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import loadavg  # noqa: E402

ORDINARY = "Who convenes JTC 1/WG 11?"


def heavy_question(chars: int) -> str:
    """A question of exactly ``chars`` characters made of the seed corpus's own words (every one a BM25
    term and many of them standard numbers), so retrieval and answering work as hard as they can."""
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))).split()
    text, i = [], 0
    while sum(len(w) + 1 for w in text) < chars:
        text.append(words[i % len(words)])
        i += 1
    return ("What do the bulletins say about " + " ".join(text))[: chars - 1] + "?"


def timed(client: Any, question: str, api: str) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    try:
        if api == "/chat":
            client.submit(question, api_name="/chat").result()
        else:
            client.predict(question, api_name="/ask")
        error = None
    except Exception as exc:  # noqa: BLE001 - a refused heavy question is an outcome, reported
        error = f"{type(exc).__name__}: {exc}"[:160]
    return time.perf_counter() - t0, error


def measure(url: str, heavy: int, chars: int, rounds: int, api: str) -> dict[str, Any]:
    from gradio_client import Client

    probe = Client(url, verbose=False)
    timed(probe, ORDINARY, api)  # warm
    alone = [timed(probe, ORDINARY, api)[0] for _ in range(rounds)]
    stop = threading.Event()
    heavy_runs: list[tuple[float, str | None]] = []
    question = heavy_question(chars)

    def keep_asking() -> None:
        c = Client(url, verbose=False)
        while not stop.is_set():
            heavy_runs.append(timed(c, question, api))

    threads = [threading.Thread(target=keep_asking, daemon=True) for _ in range(heavy)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every heavy client has a request in flight
    loaded = [timed(probe, ORDINARY, api) for _ in range(rounds)]
    stop.set()
    for t in threads:
        t.join(timeout=600)
    errors = [e for _, e in heavy_runs if e]
    return {"alone_s": alone, "loaded_s": [s for s, _ in loaded], "loaded_errors": [e for _, e in loaded if e],
            "heavy_s": [s for s, e in heavy_runs if not e], "heavy_refused": len(errors),
            "heavy_error_sample": errors[:1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heavy", type=int, default=4, help="concurrent heavy clients (default 4)")
    p.add_argument("--chars", type=int, default=2000, help="length of each heavy question (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="ordinary questions timed, alone and under load")
    p.add_argument("--api", choices=["/ask", "/chat"], default="/ask")
    p.add_argument("--url", default=None, help="a running server instead of starting one")
    a = p.parse_args(argv)
    with ExitStack() as stack:
        url = a.url
        if url is None:
            from tests.app_server import chat_process

            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stdnews-heavy-")))
            url = stack.enter_context(chat_process(base)).url
        load = loadavg()
        r = measure(url, a.heavy, a.chars, a.rounds, a.api)
    med = statistics.median
    print(f"{a.api}: ordinary question {ORDINARY!r}; {a.heavy} clients asking {a.chars}-character questions;"
          f" load average before {load}")
    print(f"  alone:        median {med(r['alone_s']):.2f} s  ({', '.join(f'{s:.2f}' for s in r['alone_s'])})")
    print(f"  under load:   median {med(r['loaded_s']):.2f} s  ({', '.join(f'{s:.2f}' for s in r['loaded_s'])})"
          + (f"  errors: {r['loaded_errors']}" if r["loaded_errors"] else ""))
    if r["heavy_s"]:
        print(f"  heavy answered: {len(r['heavy_s'])}, median {med(r['heavy_s']):.2f} s, max {max(r['heavy_s']):.2f} s")
    if r["heavy_refused"]:
        print(f"  heavy refused: {r['heavy_refused']} ({r['heavy_error_sample'][0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
