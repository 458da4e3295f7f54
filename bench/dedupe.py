"""Near-duplicate linking alone, without embedding: the articles of a corpus go to
``index.dedupe.link`` bulletin by bulletin, in scan order, into an empty chunk table
(as ``stdnews index update`` from an empty data directory links them), then one fresh
bulletin is added twice: through the same connection (a running watcher or chat
server) and through a new one (a lone ``stdnews index add``).

Reported: seconds spent preparing articles (tokens and MinHash, done by any update
anyway) and linking, bytes the process read (``rchar`` of /proc/self/io: SQLite's
reads, page cache included), band rows, confirmed pairs, duplicate groups, load.

    python bench/make_corpus.py 6350 --out bench/out/corpus-100k
    python bench/dedupe.py --corpus bench/out/corpus-100k --json bench/out/dedupe-100k.json

``--limit-s S`` stops linking after S seconds (for code that does not finish) and
reports how far it got. The ``index`` package is imported from ``PYTHONPATH`` when one
is set (so older code can be measured the same way), else from this checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0:1] = []  # this script's folder: its index.py is not the package
sys.path.append(str(ROOT))  # after PYTHONPATH: another copy of `index` there wins

from index import dedupe  # noqa: E402, I001 - before bench.make_corpus, which puts this checkout first
from index.catalog import meta_for, read_catalog, scan  # noqa: E402
from index.chunkdb import ChunkDB  # noqa: E402
from index.load import load_text  # noqa: E402
from index.split import split_articles  # noqa: E402

from bench.common import loadavg, machine, peak_rss_mb  # noqa: E402
from bench.make_corpus import one_bulletin  # noqa: E402


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def bulletin_articles(doc_id: str, text: str, entry: dict[str, Any] | None) -> list[dedupe.Article]:
    meta = meta_for(doc_id, text, entry)
    return [dedupe.article(doc_id, a.index, text[a.start:a.end]) for a in split_articles(text, meta.title, meta.date)]


def counts(db: ChunkDB) -> dict[str, int]:
    q = db.conn.execute
    return {"articles": q("SELECT COUNT(*) FROM article_sigs").fetchone()[0],
            "band_rows": q("SELECT COUNT(*) FROM article_bands").fetchone()[0],
            "pairs": q("SELECT COUNT(*) FROM dup_pairs").fetchone()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--limit-s", type=float, default=None, help="stop linking after this many seconds")
    ap.add_argument("--cap", type=int, default=None, help="compare with this many articles per band (dedupe.CAP)")
    ap.add_argument("--pairs-out", type=Path, default=None, help="write the stored pairs here (to compare runs)")
    args = ap.parse_args()

    load0 = loadavg()
    if args.cap:
        dedupe.CAP = args.cap
    files, _ = scan(args.corpus)
    catalog = read_catalog(args.corpus)
    t0 = time.perf_counter()
    bulletins = [(doc_id, bulletin_articles(doc_id, load_text(path), catalog.get(doc_id)))
                 for doc_id, path in files.items()]
    prepare_s = time.perf_counter() - t0
    n_articles = sum(len(a) for _, a in bulletins)
    print(f"{len(bulletins)} bulletins, {n_articles} articles prepared in {prepare_s:.1f} s "
          f"(index from {Path(dedupe.__file__).parent})", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.sqlite"
        db = ChunkDB(path)
        r0, t0, c0 = rchar(), time.perf_counter(), time.process_time()
        linked, marks = 0, []
        for doc_id, arts in bulletins:
            dedupe.link(db, doc_id, arts)
            linked += 1
            elapsed = time.perf_counter() - t0
            if linked % max(1, len(bulletins) // 10) == 0:
                marks.append({"bulletins": linked, "seconds": round(elapsed, 2),
                              "read_mb": round((rchar() - r0) / 2**20, 1)})
                print(f"  {linked} bulletins linked, {elapsed:.1f} s, read {(rchar() - r0) / 2**20:.0f} MiB",
                      flush=True)
            if args.limit_s and elapsed > args.limit_s:
                print(f"  stopped after {args.limit_s:.0f} s", flush=True)
                break
        link_s, link_read, link_cpu = time.perf_counter() - t0, rchar() - r0, time.process_time() - c0
        stored = counts(db)
        t1 = time.perf_counter()
        n_groups = len(dedupe.groups(db.dup_pairs()))
        groups_s = time.perf_counter() - t1

        fresh = Path(tmp) / "fresh.txt"
        new_id, entry = one_bulletin(fresh)
        new_arts = bulletin_articles(new_id, fresh.read_text(), entry)
        adds = {}
        for how, conn in (("same_connection", db), ("new_connection", None)):
            target = conn or ChunkDB(path)
            r1, t1 = rchar(), time.perf_counter()
            dedupe.link(target, f"{new_id}-{how}", new_arts)
            adds[how] = {"seconds": round(time.perf_counter() - t1, 4), "read_mb": round((rchar() - r1) / 2**20, 2)}
            if conn is None:
                target.close()
        if args.pairs_out:
            args.pairs_out.write_text("\n".join("\t".join(map(str, p)) for p in sorted(db.dup_pairs())) + "\n")
        db.close()

    out = {"corpus": str(args.corpus), "code": str(Path(dedupe.__file__).parent), "cap": getattr(dedupe, "CAP", None),
           "bulletins": len(bulletins),
           "bulletins_linked": linked, "articles": n_articles, "prepare_s": round(prepare_s, 2),
           "link_s": round(link_s, 2), "link_cpu_s": round(link_cpu, 2), "link_read_mb": round(link_read / 2**20, 1),
           "link_ms_per_bulletin": round(1000 * link_s / max(1, linked), 3), **stored, "groups": n_groups,
           "groups_s": round(groups_s, 3), "add_one": adds, "marks": marks, "peak_rss_mb": round(peak_rss_mb()),
           "loadavg_before": load0, "loadavg_after": loadavg(), "machine": machine()}
    print(f"linked {linked}/{len(bulletins)} bulletins in {link_s:.1f} s ({link_cpu:.1f} s CPU), "
          f"read {link_read / 2**20:.0f} MiB; "
          f"{stored['band_rows']} band rows, {stored['pairs']} pairs, {n_groups} groups; "
          f"add one: {adds['same_connection']['seconds'] * 1000:.0f} ms same connection, "
          f"{adds['new_connection']['seconds'] * 1000:.0f} ms new connection; load {out['loadavg_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
