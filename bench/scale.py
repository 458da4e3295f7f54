"""Scaling benchmark: the figures of issue 17 at 2k, 10k, 50k and 100k chunks, each step its own
process on a fresh data directory, with the embedded store and/or a Chroma server:

- build from empty (``stdnews index update``): seconds, chunks, tokens/s, CPU seconds, and its
  ratio to the int8 ONNX model's encode-only throughput on the same chunks in the same run
  (at 50k and 100k on a fixed spread sample of ``--sample`` chunks), timed just before and just
  after the build and averaged (this machine's speed drifts over a build), and the share of the build
  outside the model's calls when the update reports its seconds in the model;
- no-op update, ``stdnews index status``, ``stdnews index status --verify``: ``--repeat`` times each,
  the first (after the build) and the median kept (a sub-second command moves by more than the 1.5x
  growth the issue allows between two single runs);
- retrieval p50/p95 and extractive answer p50, one user (``bench/query.py``'s ``latency``);
- ``stdnews index add FILE`` handed to a running ``stdnews chat`` (end to end), and the next
  question about that bulletin answered from it; then ``--repeat`` - 1 more bulletins added the same way
  (the median of all kept beside the first);
- the chat server's peak memory under 8 concurrent users (``bench/load.py``'s ``run_load``);
- the data directory's files and the chunk database's tables, in bytes.

    python bench/scale.py --sizes 2k,10k --stores embedded,chroma
    python bench/scale.py --sizes 100k                 # one size; results merge into its JSON
    python bench/scale.py --plot                       # redraw docs/scaling.png from bench/out/scale-*.json
    python bench/scale.py --plot --markdown            # and print a markdown table per size

Writes bench/out/scale-<size>.json (one object per store) and redraws docs/scaling.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.common import git_commit, loadavg, machine, run_timed, vm_hwm_kb  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZES = {"2k": 125, "10k": 635, "50k": 3175, "100k": 6350}  # generated bulletins (bench/make_corpus.py N)
SAMPLED = ("50k", "100k")  # encode-only runs on --sample chunks of these; on all chunks of the others
QUESTION_SET = ROOT / "evals" / "sets" / "seed.jsonl"
# The added bulletin carries one fact no other bulletin holds, so "answered from it" can be checked.
NEW_ARTICLE = ("Convener Appointed for Tidal Turbine Noise Working Group\n\n\n"
               "Dr. Ottoline Brackwater was appointed convener of ISO/TC 987/WG 44 on tidal turbine noise on"
               " 3 March 2026. The working group will draft a measurement method for underwater sound near"
               " tidal turbines, with a first committee draft expected within eighteen months.\n\n"
               "By Lars Nilsson on 4 March 2026\n")
NEW_QUESTION, NEW_ANSWER = "Who was appointed convener of ISO/TC 987/WG 44?", "Brackwater"


# children: each runs in its own process and prints one JSON line ---------------------------
def child_encode(corpus: Path, sample: int) -> dict[str, Any]:
    """Chunks and tokens of the whole corpus, then the int8 model's encode-only time on them (or on a
    fixed spread sample of ``sample`` chunks): model loaded and warmed first, only the call timed."""
    from bench.common import chunk_texts, token_counts
    from index.embed import make_embedder

    texts = chunk_texts(corpus)
    counts = token_counts(texts)
    whole = sample <= 0 or len(texts) <= sample
    picked = range(len(texts)) if whole else [i * len(texts) // sample for i in range(sample)]
    part = [texts[i] for i in picked]
    emb = make_embedder("onnx", 64)
    emb.embed_documents(part[:8])
    t0, c0 = time.perf_counter(), time.process_time()
    emb.embed_documents(part)
    return {"chunks": len(texts), "tokens": sum(counts), "encoded_chunks": len(part),
            "encoded_tokens": sum(counts[i] for i in picked), "sampled": len(part) < len(texts),
            "encode_s": time.perf_counter() - t0, "encode_cpu_s": time.process_time() - c0}


def child_query(home: Path) -> dict[str, Any]:
    from bench.query import latency, load_questions

    with contextlib.redirect_stdout(sys.stderr):  # latency() prints its own lines
        res = latency(home, "onnx", load_questions(QUESTION_SET), users=1)
    return res["1 user"]


def child(name: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    res = run_timed([sys.executable, __file__, "--child", name, *args], env=env, timeout=7200)
    if res["rc"] != 0:
        raise SystemExit(f"child {name} failed:\n{res['output']}")
    return {**json.loads(res["output"].strip().splitlines()[-1]), "wall_s": res["wall_s"], "load_after": loadavg()}


# the steps -----------------------------------------------------------------------------------
def stdnews(run: dict[str, Any], *args: str, progress: bool = False, timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "assistant", "--home", str(run["home"]), "--corpus", str(run["corpus"]), *run["url"],
           *args]
    r = run_timed(cmd, timeout=timeout, show_stderr=progress)
    if r["rc"] != 0:
        raise SystemExit(f"failed ({r['rc']}): {r['cmd']}\n{r['output']}")
    r.update(load=loadavg(), output=r["output"][-600:])
    return r


def build_log(home: Path) -> dict[str, Any]:
    """The build's own entry in the update log, and any seconds it reports spending on embedding."""
    con = sqlite3.connect(home / "index.sqlite")
    row = con.execute("SELECT summary FROM updates ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    entry = json.loads(row[0]) if row else {}
    embed = {k: v for k, v in entry.items() if "embed" in k and isinstance(v, (int, float)) and k != "embedded"}
    return {"seconds": entry.get("seconds"), "embedded": entry.get("embedded"), "embed_fields": embed}


def chat_steps(run: dict[str, Any], users: int, questions: int, repeat: int) -> dict[str, Any]:
    """``stdnews chat`` over the index: one bulletin added through ``stdnews index add`` (handed over),
    the next question about it, ``repeat`` - 1 more bulletins added, then ``users`` concurrent users; the
    server's memory throughout."""
    from gradio_client import Client

    from bench.load import read_questions, run_load
    from bench.make_corpus import one_bulletin
    from tests.app_server import chat_process

    new = run["work"] / "new-bulletin.txt"
    doc_id = new.stem
    one_bulletin(new, seed=31337)
    new.write_text(new.read_text() + "\n" + NEW_ARTICLE)
    t0 = time.perf_counter()
    with chat_process(run["work"] / "chat", run["home"], run["corpus"], timeout=1200) as srv:
        out: dict[str, Any] = {"ready_s": time.perf_counter() - t0, "rss_ready_mb": vm_hwm_kb(Path(
            f"/proc/{srv.pid}/status")) / 1024}
        out["watching_s"] = watching(srv.log) + out["ready_s"]  # its watcher warm (bands loaded) and watching
        add = stdnews(run, "index", "add", str(new))
        out["add"] = added(add) | {"cpu_s": add["cpu_s"], "summary": add["output"].strip(), "load": add["load"]}
        client = Client(srv.url, verbose=False)
        t1 = time.perf_counter()
        reply = client.predict(NEW_QUESTION, history=[], api_name="/ask")
        cited = [c["doc_id"] for c in reply["citations"]]
        out["next_question"] = {"question": NEW_QUESTION, "s": time.perf_counter() - t1, "cited": cited,
                                "answered_from_it": doc_id in cited and NEW_ANSWER in reply["answer"],
                                "answer": reply["answer"][:300]}
        client.close()
        more = [new.with_name(f"new-bulletin-{i}.txt") for i in range(1, repeat)]
        for i, path in enumerate(more, 1):
            one_bulletin(path, seed=31337 + i)
            out["add"].setdefault("more", []).append(added(stdnews(run, "index", "add", str(path))))
        walls = [out["add"]["wall_s"], *(a["wall_s"] for a in out["add"].get("more", []))]
        out["add"]["median_s"] = statistics.median(walls)
        load = run_load(srv.url, read_questions(QUESTION_SET), users=users, total=questions, pid=srv.pid)
        out["load"] = {k: load[k] for k in ("users", "questions", "answered", "errors", "latency_ms", "wall_s",
                                            "loadavg_before", "loadavg_after")}
        out["load"]["memory"] = load["memory"]
        out["peak_rss_mb"] = vm_hwm_kb(Path(f"/proc/{srv.pid}/status")) / 1024  # whole life, start included
    return out


def added(add: dict[str, Any]) -> dict[str, Any]:
    """An ``index add``'s wall seconds, whether it was handed over, and the server's own update seconds."""
    server_s = re.findall(r"\(([\d.]+) s\)", add["output"])
    return {"wall_s": add["wall_s"], "handed_over": "handing over" in add["output"],
            "server_update_s": float(server_s[-1]) if server_s else None}


def watching(log: Path, timeout: float = 600.0) -> float:
    """Seconds until the chat server's log says its watcher watches the corpus (``index.watch.WATCHING``)."""
    from index.watch import WATCHING

    t0 = time.perf_counter()
    while WATCHING not in log.read_text(errors="replace"):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"the chat server did not start watching within {timeout:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - t0


def disk(home: Path, corpus: Path) -> dict[str, Any]:
    """Bytes of each part of the data directory, and of each table (with its indexes) of the chunk database."""
    def size(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size

    files = {p.name: size(p) for p in sorted(home.iterdir()) if p.exists()}
    files["corpus/catalog.toml"] = size(corpus / "catalog.toml")
    files["corpus (all files)"] = size(corpus)
    con = sqlite3.connect(home / "index.sqlite")
    owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
    tables: dict[str, int] = {}
    for name, nbytes in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        tables[owner.get(name, name)] = tables.get(owner.get(name, name), 0) + nbytes
    rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables if t in owner.values()}
    con.close()
    return {"files": files, "index.sqlite tables": tables, "rows": rows}


@contextlib.contextmanager
def store(kind: str, work: Path) -> Iterator[list[str]]:
    """The store flags of every command: none (embedded), or a real Chroma server started here."""
    if kind == "embedded":
        yield []
        return
    from tests.servers import chroma_server

    with chroma_server(work / "chroma-server") as url:
        os.environ["STDNEWS_CHROMA_URL"] = url  # for the query child and the chat server
        try:
            yield ["--chroma-url", url]
        finally:
            os.environ.pop("STDNEWS_CHROMA_URL", None)


def measure(size: str, kind: str, sample: int, users: int, questions: int, repeat: int) -> dict[str, Any]:
    corpus_src = OUT / f"corpus-{SIZES[size]}"
    if not (corpus_src / "catalog.toml").is_file():
        from bench.make_corpus import make_corpus

        make_corpus(SIZES[size], corpus_src)
    work = OUT / "scale" / f"{size}-{kind}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus, home = work / "corpus", work / "home"
    shutil.copytree(corpus_src, corpus)  # `index add` writes into the corpus folder
    home.mkdir()
    res: dict[str, Any] = {"size": size, "store": kind, "commit": git_commit(), "machine": machine(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": loadavg(),
                           "corpus": str(corpus_src)}
    sample = sample if size in SAMPLED else 0
    before = encode_before(size, kind, corpus_src, sample)
    with store(kind, work) as url:
        run = {"home": home, "corpus": corpus, "url": url, "work": work}
        server = server_cpu_s(work / "chroma-server")
        b = stdnews(run, "index", "update", progress=True, timeout=4 * 3600)
        res["build"] = {k: b[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "load", "output")} | build_log(home)
        if server is not None:
            res["build"]["chroma_server_cpu_s"] = (server_cpu_s(work / "chroma-server") or 0.0) - server
        row(size, kind, "build from empty", f"{b['wall_s']:.1f} s, {b['cpu_s']:.0f} CPU-s", b["load"])
        steps = [("encode_only", lambda: encode_step(res, size, kind, corpus_src, sample, before))]
        for name, args in (("no-op update", ("index", "update", "--quiet")), ("status", ("index", "status")),
                           ("status --verify", ("index", "status", "--verify"))):
            steps.append((name, lambda name=name, args=args: cli_step(res, size, kind, run, name, args, repeat)))
        steps += [("query", lambda: query_step(res, size, kind, home)),
                  ("chat", lambda: chat_step(res, size, kind, run, users, questions, repeat))]
        for name, fn in steps:  # a failing step is recorded, and the others still run
            try:
                fn()
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - kept in the JSON, printed once
                res[name] = {"error": f"{type(exc).__name__}: {exc}"[-1500:]}
                row(size, kind, name, f"FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    loadavg())
        res["disk"] = disk(home, corpus)
        if kind == "chroma":
            res["disk"]["files"]["chroma-server"] = sum(f.stat().st_size for f in (work / "chroma-server").rglob("*")
                                                        if f.is_file())
    res["load_end"], res["finished"] = loadavg(), time.strftime("%Y-%m-%d %H:%M:%S")
    return res


def encode_before(size: str, kind: str, corpus: Path, sample: int) -> dict[str, Any] | None:
    """The encode-only reference timed before the build (None if it failed: the one after still counts)."""
    try:
        return child("encode", str(corpus), str(sample))
    except SystemExit as exc:
        row(size, kind, "encode-only before the build", f"FAILED: {str(exc).splitlines()[0]}", loadavg())
        return None


def encode_step(res: dict[str, Any], size: str, kind: str, corpus: Path, sample: int,
                before: dict[str, Any] | None) -> None:
    after = child("encode", str(corpus), str(sample))
    runs = [r for r in (before, after) if r]
    enc = res["encode_only"] = {**after, "encode_s": sum(r["encode_s"] for r in runs) / len(runs),
                                "encode_cpu_s": sum(r["encode_cpu_s"] for r in runs) / len(runs),
                                "runs": [{k: r[k] for k in ("encode_s", "encode_cpu_s", "load_after")} for r in runs]}
    build, wall = res["build"], res["build"]["wall_s"]
    build.update(chunks=enc["chunks"], tokens=enc["tokens"], tokens_per_s=enc["tokens"] / wall,
                 chunks_per_s=enc["chunks"] / wall, tokens_per_cpu_s=enc["tokens"] / build["cpu_s"])
    enc["tokens_per_s"] = enc["encoded_tokens"] / enc["encode_s"]
    enc["tokens_per_cpu_s"] = enc["encoded_tokens"] / enc["encode_cpu_s"]
    build["vs_encode_only"] = build["tokens_per_s"] / enc["tokens_per_s"]
    build["vs_encode_only_cpu"] = build["tokens_per_cpu_s"] / enc["tokens_per_cpu_s"]
    build["embed_s_at_encode_only_speed"] = enc["tokens"] / enc["tokens_per_s"]
    outside = ""
    if build["embed_fields"]:  # the update's own seconds in the model, when it reports them
        build["outside_embedding_share"] = 1 - max(build["embed_fields"].values()) / wall
        outside = f"; outside the model {build['outside_embedding_share']:.0%} of the build"
    each = " / ".join(f"{enc['encoded_tokens'] / r['encode_s']:.0f}" for r in runs)
    row(size, kind, "build vs encode-only", f"{build['tokens_per_s']:.0f} vs {enc['tokens_per_s']:.0f} tokens/s"
        f" (before / after the build: {each}) = {build['vs_encode_only']:.2f}x ({enc['encoded_chunks']} chunks"
        f" encoded){outside}", enc["load_after"])


def cli_step(res: dict[str, Any], size: str, kind: str, run: dict[str, Any], name: str, args: tuple[str, ...],
             repeat: int) -> None:
    """The command ``repeat`` times: the first run's figures, every run's wall seconds and their median."""
    r = stdnews(run, *args)
    walls = [r["wall_s"]] + [stdnews(run, *args)["wall_s"] for _ in range(repeat - 1)]
    res[name] = {k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "load", "output")} | {
        "runs_s": walls, "median_s": statistics.median(walls)}
    row(size, kind, name, f"{r['wall_s']:.2f} s ({r['cpu_s']:.2f} CPU-s), median of {repeat}"
        f" {res[name]['median_s']:.2f} s", r["load"])


def query_step(res: dict[str, Any], size: str, kind: str, home: Path) -> None:
    q = res["query"] = child("query", str(home))
    row(size, kind, "retrieval / answer (1 user)", f"{q['retrieval_ms']['p50']} / {q['retrieval_ms']['p95']} ms,"
        f" answer p50 {q['ask_ms']['p50']} ms", q["load_after"])


def chat_step(res: dict[str, Any], size: str, kind: str, run: dict[str, Any], users: int, questions: int,
              repeat: int) -> None:
    c = res["chat"] = chat_steps(run, users, questions, repeat)
    row(size, kind, "add via chat server", f"{c['add']['wall_s']:.2f} s (server {c['add']['server_update_s']} s,"
        f" handed over {c['add']['handed_over']}), answered from it: {c['next_question']['answered_from_it']};"
        f" median of {repeat} adds {c['add']['median_s']:.2f} s", c["add"]["load"])
    row(size, kind, f"chat peak RSS, {users} users", f"{c['load']['memory']['peak_mb']} MiB under load,"
        f" {c['peak_rss_mb']:.0f} MiB whole life (ready in {c['ready_s']:.1f} s)", c["load"]["loadavg_after"])


def server_cpu_s(path: Path) -> float | None:
    """CPU seconds so far of the ``chroma run`` process serving ``path`` (and of its threads); None: none runs."""
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return None


def row(size: str, kind: str, step: str, figures: str, load: list[float]) -> None:
    print(f"| {size} | {kind} | {step} | {figures} | {load[0]} |", flush=True)


def save(size: str, kind: str, res: dict[str, Any]) -> Path:
    path = OUT / f"scale-{size}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[kind] = res
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2k", help=f"comma list of {', '.join(SIZES)}")
    ap.add_argument("--stores", default="embedded", help="comma list of: embedded, chroma (a `chroma run` server)")
    ap.add_argument("--sample", type=int, default=5000,
                    help=f"encode-only at {', '.join(SAMPLED)}: this many chunks, spread over the corpus")
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--questions", type=int, default=64, help="questions the concurrent users ask in all")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each CLI step and of the handed-over add")
    ap.add_argument("--plot", action="store_true", help="only redraw docs/scaling.png from the JSON")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table per size from the JSON")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        out = child_encode(Path(rest[0]), int(rest[1])) if args.child == "encode" else child_query(Path(rest[0]))
        print(json.dumps(out))
        return
    if not args.plot:
        sizes, kinds = args.sizes.split(","), args.stores.split(",")
        bad = [s for s in sizes if s not in SIZES] + [k for k in kinds if k not in ("embedded", "chroma")]
        if bad:
            raise SystemExit(f"error: unknown size or store {', '.join(bad)}")
        if args.repeat < 1:
            raise SystemExit(f"error: --repeat {args.repeat}: run each step at least once")
        print(f"commit {git_commit()}, {machine()}, load {loadavg()}", flush=True)
        print("| size | store | step | figures | load (1 min) |\n|---|---|---|---|---:|", flush=True)
        for size in sizes:
            for kind in kinds:
                res = measure(size, kind, args.sample, args.users, args.questions, args.repeat)
                print(f"wrote {save(size, kind, res)}", flush=True)
    from bench.scale_plot import plot, tables

    print(f"drew {plot(OUT, ROOT / 'docs' / 'scaling.png')}")
    if args.markdown:
        print(tables(OUT))


if __name__ == "__main__":
    main()
