"""How long a poll of many feeds takes when nothing is new: every feed answers 304 to the conditional
request. Serves ``--feeds`` RSS feeds (``--entries`` entries each) from a stdlib http.server on
127.0.0.1, subscribes to them all in a temporary data directory, then times: the poll inside a running
process (what the watcher of ``stdnews chat`` / ``index watch`` does), the same poll when the server
ignores ETag and Last-Modified (every feed sent and parsed again, every entry found unchanged), and
``stdnews feeds poll`` as a new process (what a user at the terminal waits for, imports included).
Prints the figures; not a test: nothing here asserts a time.

    python bench/feeds.py                       # 20 feeds x 20 entries, 5 rounds
    python bench/feeds.py --latency 0.2          # each answer 200 ms away, as a distant server's
    python bench/feeds.py --feeds 100 --json bench/out/feeds.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import loadavg, machine, run_timed  # noqa: E402


def feed_body(n: int, entries: int) -> bytes:
    from tests.feed_server import rss

    items = [{"title": f"Feed {n} story {i}: committee {i} publishes its work programme", "guid": f"urn:f{n}:{i}",
              "link": f"http://example.invalid/{n}/{i}", "date": f"Mon, {1 + i % 28:02d} Jun 2026 09:00:00 GMT",
              "content": f"<p>Committee {i} of feed {n} published its programme of work for the next two years,"
                         " with liaisons to three other committees and a plenary in the autumn.</p>" * 3}
             for i in range(entries)]
    return rss(f"Bench feed {n}", items).encode()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=20)
    p.add_argument("--entries", type=int, default=20, help="entries per feed")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--latency", type=float, default=0.0, help="seconds the server waits before each answer (a"
                                                              " remote publisher's round trip); default 0")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)

    from index.feeds import FeedBook
    from index.settings import load_settings
    from tests.feed_server import Page, feed_server

    with feed_server() as srv, tempfile.TemporaryDirectory(prefix="stdnews-feeds-bench-") as tmp:
        corpus, home = Path(tmp) / "corpus", Path(tmp) / "home"
        corpus.mkdir()
        book = FeedBook(load_settings(home=home, corpus=corpus))
        for n in range(a.feeds):
            srv.routes[f"/f{n}"] = Page(feed_body(n, a.entries), delay=a.latency)
        t0 = time.perf_counter()
        for n in range(a.feeds):
            book.add(srv.url(f"/f{n}"), name=f"f{n}")
        first = time.perf_counter() - t0  # fetch, parse, write every entry (no index update)

        def rounds(expect: str) -> list[float]:
            out = []
            for _ in range(a.rounds):
                t = time.perf_counter()
                results = book.poll()
                out.append(time.perf_counter() - t)
                assert all(r.status == expect and not r.written for r in results), [r.line() for r in results]
            return out

        load = loadavg()
        in_process = rounds("not modified")
        statuses = {e["status"] for e in srv.log[-a.feeds:]}
        for n in range(a.feeds):
            srv.routes[f"/f{n}"].conditional = False  # a server that ignores ETag / Last-Modified
        unconditional = rounds("ok")
        for n in range(a.feeds):
            srv.routes[f"/f{n}"].conditional = True
        book.poll()  # the ETags again
        cli = [run_timed([sys.executable, "-m", "assistant", "--home", str(home), "--corpus", str(corpus), "feeds",
                          "poll", "--quiet"]) for _ in range(max(1, a.rounds // 2))]
        assert all(c["rc"] == 0 and c["output"].count("not modified") == a.feeds for c in cli), cli[0]["output"]

    med = statistics.median
    figures = {
        "machine": machine(), "load_before": load, "feeds": a.feeds, "entries_per_feed": a.entries,
        "latency_s": a.latency,
        "first_poll_s": first, "poll_304_s": in_process, "poll_304_statuses": sorted(map(str, statuses)),
        "poll_unconditional_s": unconditional, "cli_poll_304_wall_s": [c["wall_s"] for c in cli],
        "cli_poll_304_cpu_s": [c["cpu_s"] for c in cli],
    }
    print(f"{a.feeds} feeds x {a.entries} entries on 127.0.0.1 (answering after {a.latency:g} s); {machine()};"
          f" load average before {load}")
    print(f"  subscribe + first poll (write {a.feeds * a.entries} bulletins): {first:.2f} s")
    print(f"  poll, nothing new, all 304 (in process, as the watcher): median {med(in_process):.3f} s,"
          f" max {max(in_process):.3f} s  (statuses seen: {', '.join(figures['poll_304_statuses'])})")
    print(f"  poll, nothing new, server ignores ETag (200, parsed, all unchanged): median {med(unconditional):.3f} s")
    print(f"  stdnews feeds poll, all 304 (new process): median {med(figures['cli_poll_304_wall_s']):.2f} s wall,"
          f" {med(figures['cli_poll_304_cpu_s']):.2f} s CPU")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
