"""Index benchmark, all on one corpus in one run, every contender in its own process
(end to end: start, imports, model load, reading, chunking, embedding, writing):

1. ``stdnews index update`` from an empty data directory (each --backends entry);
2. the plain LangChain pipeline: files -> ``RecursiveCharacterTextSplitter(1000, 150)``
   -> ``HuggingFaceEmbeddings`` (same model) -> ``Chroma.from_documents``;
3. the raw model limit: ``SentenceTransformer.encode`` of our chunks alone (model
   already loaded; only the encode call is timed), and the same for the int8 ONNX model;
4. then, on our index: the no-op update, adding one bulletin (``stdnews index add``),
   editing one bulletin, each end to end as a user runs it; peak memory of each process;
   the same add and edit inside a running process; ``stdnews index add`` while
   ``stdnews index watch`` runs (the add hands its file to the watcher).

Throughput is chunks/s and tokens/s (tokens = what the model sees, by its own
tokenizer, truncated at 256). The ONNX export is a one-time step (made on first use
and cached in the data directory); it is timed separately, not inside the runs.

    python bench/make_corpus.py 635 --out bench/out/corpus-10k
    python bench/index.py --corpus bench/out/corpus-10k --json bench/out/index-10k.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.common import chunk_texts, loadavg, machine, run_timed, token_counts  # noqa: E402


# children: each runs in its own process and prints one JSON line -------------------
def child_langchain(corpus: Path, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from index.embed import model_path

    docs = [Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.stem})
            for p in sorted(corpus.glob("*.txt"))]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150).split_documents(docs)
    embeddings = HuggingFaceEmbeddings(model_name=model_path(), model_kwargs={"device": "cpu"})
    t1 = time.perf_counter()
    Chroma.from_documents(chunks, embeddings, persist_directory=str(work / "lc-chroma"), collection_name="bench")
    t2, c2 = time.perf_counter(), time.process_time()
    tokens = sum(token_counts([c.page_content for c in chunks]))  # not part of the pipeline: subtracted
    return {"chunks": len(chunks), "tokens": tokens, "setup_s": t1 - t0, "embed_store_s": t2 - t1,
            "counting_s": time.perf_counter() - t2, "counting_cpu_s": time.process_time() - c2}


def child_raw(corpus: Path, backend: str, batch_size: int, models_dir: Path) -> dict[str, Any]:
    texts = chunk_texts(corpus)
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        from index.embed import model_path

        model = SentenceTransformer(model_path(), device="cpu")
        model.encode(texts[:8])
        t0, c0 = time.perf_counter(), time.process_time()
        model.encode(texts, batch_size=batch_size)
    else:
        from index.embed import make_embedder

        emb = make_embedder("onnx", batch_size, models_dir=models_dir)
        emb.embed_documents(texts[:8])
        t0, c0 = time.perf_counter(), time.process_time()
        emb.embed_documents(texts)
    return {"chunks": len(texts), "encode_s": time.perf_counter() - t0, "encode_cpu_s": time.process_time() - c0}


def child_in_process(home: Path, corpus: Path, work: Path, backend: str) -> dict[str, Any]:
    """What a running chat server (upload) or ``stdnews index watch`` waits for: the index is
    open and has answered a question; then one bulletin is added, and one edited."""
    os.environ["STDNEWS_EMBED_BACKEND"] = backend
    from assistant.pipeline import Assistant
    from bench.make_corpus import one_bulletin
    from index.indexer import Index
    from index.settings import load_settings

    settings = load_settings(home=home, corpus=corpus)
    index = Index(settings)
    index.warm(update=True)  # as `stdnews chat` and `stdnews index watch` do when they start
    Assistant(settings, index=index).ask("Who convenes JTC 1/WG 11?")
    new = work / "new-bulletin-2.txt"
    one_bulletin(new, seed=424242)
    t0, c0 = time.perf_counter(), time.process_time()
    add = index.add([new], progress=False)
    t1, c1 = time.perf_counter(), time.process_time()
    edit_one(corpus, offset=1)
    edit = index.update(progress=False)
    t2, c2 = time.perf_counter(), time.process_time()
    assert add.ok and edit.ok and add.embedded and edit.embedded, (add.summary(), edit.summary())
    return {"add_s": t1 - t0, "add_cpu_s": c1 - c0, "add": add.summary(),
            "edit_s": t2 - t1, "edit_cpu_s": c2 - c1, "edit": edit.summary()}


# the benchmark --------------------------------------------------------------------------
def via_watcher(home: Path, corpus: Path, work: Path, backend: str, times: int = 3) -> dict[str, Any]:
    """``stdnews index add`` while ``stdnews index watch`` runs (it hands the file over): end to
    end in the adding process, ``times`` bulletins one after another; the watcher's own update
    seconds as it reported them."""
    import subprocess

    from bench.make_corpus import one_bulletin

    watcher = subprocess.Popen([sys.executable, "-m", "assistant", "--home", str(home), "--corpus", str(corpus),
                                "index", "watch"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "STDNEWS_EMBED_BACKEND": backend}, cwd=ROOT)
    try:
        assert watcher.stdout and watcher.stdout.readline().startswith("watching"), "the watcher did not start"
        adds = []
        for i in range(times):
            new = work / f"new-bulletin-w{i}.txt"
            one_bulletin(new, seed=77_000 + i)
            adds.append(stdnews(home, corpus, "add", str(new), backend=backend))
            time.sleep(1)
    finally:
        watcher.terminate()
        log = watcher.communicate(timeout=60)[0]
    handed = [("handing over to the running watcher" in a["output"]) for a in adds]
    return {"wall_s": [round(a["wall_s"], 2) for a in adds], "cpu_s": [round(a["cpu_s"], 2) for a in adds],
            "handed_over": handed, "load": loadavg(),
            "watcher_update_s": [float(line.rsplit("(", 1)[1].split(" s)")[0]) for line in log.splitlines()
                                 if " files: " in line]}


def stdnews(home: Path, corpus: Path, *args: str, backend: str = "onnx", batch: int | None = None,
            index_batch: int | None = None) -> dict[str, Any]:
    env = {"STDNEWS_EMBED_BACKEND": backend}
    if batch:
        env["STDNEWS_EMBED_BATCH_SIZE"] = str(batch)
    if index_batch:
        env["STDNEWS_INDEX_BATCH_SIZE"] = str(index_batch)
    cmd = [sys.executable, "-m", "assistant", "--home", str(home), "--corpus", str(corpus), "index", *args]
    res = run_timed(cmd, env=env)
    if res["rc"] != 0:
        raise SystemExit(f"failed: {res['cmd']}\n{res['output']}")
    res["load"] = loadavg()
    return res


def model_time(home: Path) -> dict[str, Any]:
    """The build's own account (its update log entry): seconds in the model's calls, and the share of
    its time spent outside them (reading, chunking, linking, writing, imports)."""
    import sqlite3

    con = sqlite3.connect(home / "index.sqlite")
    row = con.execute("SELECT summary FROM updates ORDER BY id DESC LIMIT 1").fetchone()
    con.close()
    entry = json.loads(row[0]) if row else {}
    if not entry.get("embed_seconds"):
        return {}
    return {"update_seconds": entry["seconds"], "embed_seconds": entry["embed_seconds"],
            "outside_embedding_share": 1 - entry["embed_seconds"] / entry["seconds"]}


def child(name: str, *args: str) -> dict[str, Any]:
    res = run_timed([sys.executable, __file__, "--child", name, *args])
    if res["rc"] != 0:
        raise SystemExit(f"child {name} failed:\n{res['output']}")
    res.update(json.loads(res["output"].strip().splitlines()[-1]))
    res["load"] = loadavg()
    return res


def edit_one(corpus: Path, offset: int = 0) -> Path:
    """Change one paragraph of one generated bulletin (a correction, as publishers send)."""
    path = sorted(corpus.glob("bulletin-*.txt"))[len(list(corpus.glob("bulletin-*.txt"))) // 2 + offset]
    text = path.read_text()
    paras = text.split("\n\n")
    i = next(i for i, p in enumerate(paras) if len(p) > 300)
    paras[i] = paras[i].replace(".", " (corrected).", 1)
    path.write_text("\n\n".join(paras))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="corpus folder (bench/make_corpus.py); copied, never changed")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "index")
    ap.add_argument("--backends", default="onnx", help="comma list of embed backends for our runs (onnx,torch)")
    ap.add_argument("--batch", type=int, default=None, help="STDNEWS_EMBED_BATCH_SIZE for our runs")
    ap.add_argument("--index-batch", type=int, default=None, help="STDNEWS_INDEX_BATCH_SIZE for our runs")
    ap.add_argument("--skip", default="", help="comma list of: langchain, raw-torch, raw-onnx, incremental")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()

    if args.child:
        a = rest
        if args.child == "langchain":
            out = child_langchain(Path(a[0]), Path(a[1]))
        elif args.child == "in-process":
            out = child_in_process(Path(a[0]), Path(a[1]), Path(a[2]), a[3])
        else:
            out = child_raw(Path(a[0]), a[1], int(a[2]), Path(a[3]))
        print(json.dumps(out))
        return

    skip = set(filter(None, args.skip.split(",")))
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = work / "corpus"
    shutil.copytree(args.corpus, corpus)
    texts = chunk_texts(corpus)
    tokens = sum(token_counts(texts))
    results: dict[str, Any] = {
        "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": loadavg(),
        "corpus": {"path": str(args.corpus), "files": len(list(corpus.glob("*.txt"))),
                   "mb": round(sum(f.stat().st_size for f in corpus.iterdir()) / 2**20, 2),
                   "chunks": len(texts), "tokens": tokens},
        "runs": {},
    }

    # one-time ONNX export, made here so that no timed run includes it
    from index.embed import default_models_dir, ensure_onnx_model, onnx_model_dir

    models = work / "models"
    t0 = time.perf_counter()
    cached = (onnx_model_dir(default_models_dir()) / "model.onnx").is_file()
    src = ensure_onnx_model(None)
    results["onnx_export_s"] = None if cached else round(time.perf_counter() - t0, 1)
    shutil.copytree(src, onnx_model_dir(models))

    def ours(backend: str) -> dict[str, Any]:
        home = work / f"home-{backend}"
        home.mkdir()
        r = stdnews(home, corpus, "update", "--quiet", backend=backend, batch=args.batch, index_batch=args.index_batch)
        r.update(chunks=len(texts), tokens=tokens, **model_time(home))
        return r

    runs = results["runs"]
    backends = args.backends.split(",")

    def finish(name: str, r: dict[str, Any]) -> None:
        r.setdefault("tokens", tokens)
        seconds = r.get("encode_s") or r["wall_s"] - r.get("counting_s", 0.0)
        cpu = r.get("encode_cpu_s") or r["cpu_s"] - r.get("counting_cpu_s", 0.0)
        r.update(seconds=seconds, cpu_seconds=cpu, chunks_per_s=r["chunks"] / seconds,
                 tokens_per_s=r["tokens"] / seconds, tokens_per_cpu_s=r["tokens"] / cpu)
        r.pop("output", None)
        runs[name] = r
        save(results, args.json)  # partial results survive an interrupted run
        print(json.dumps({name: {k: r[k] for k in ("seconds", "cpu_seconds", "tokens_per_s", "load")}}), flush=True)

    for b in backends:
        finish(f"stdnews index update ({b})", ours(b))
    if "incremental" not in skip:  # on a copy of the corpus, so the runs below see the same one
        b = backends[0]
        home, inc_corpus = work / f"home-{b}", work / "corpus-incremental"
        shutil.copytree(corpus, inc_corpus)
        inc = results["incremental"] = {}
        inc["no-op update"] = stdnews(home, inc_corpus, "update", "--quiet", backend=b)
        new = work / "new-bulletin.txt"
        from bench.make_corpus import one_bulletin

        one_bulletin(new)
        inc["add one bulletin (index add)"] = stdnews(home, inc_corpus, "add", str(new), "--quiet", backend=b)
        edit_one(inc_corpus)
        inc["edit one bulletin (update)"] = stdnews(home, inc_corpus, "update", "--quiet", backend=b)
        inc["no-op update (again)"] = stdnews(home, inc_corpus, "update", "--quiet", backend=b)
        for r in inc.values():
            r["summary"] = r.pop("output").strip().splitlines()[-2:]
        inc["in a running process (chat upload, index watch)"] = child(
            "in-process", str(home), str(inc_corpus), str(work), b)
        inc["in a running process (chat upload, index watch)"].pop("output", None)
        inc["add via a running watcher (index add -> index watch)"] = via_watcher(home, inc_corpus, work, b)
        save(results, args.json)
        warm = inc["in a running process (chat upload, index watch)"]
        print(json.dumps({"incremental": {k: v["wall_s"] if isinstance(v["wall_s"], list) else round(v["wall_s"], 2)
                                          for k, v in inc.items()},
                          "in-process add / edit s": [round(warm[k], 2) for k in ("add_s", "edit_s")]}), flush=True)
    if "raw-onnx" not in skip:
        finish("raw model, onnx int8 (encode only)", child("raw", str(corpus), "onnx", "64", str(models)))
    if "raw-torch" not in skip:
        finish("raw model, torch (encode only)", child("raw", str(corpus), "torch", "32", str(models)))
    if "langchain" not in skip:
        finish("plain LangChain pipeline", child("langchain", str(corpus), str(work)))
    results["load_end"] = loadavg()
    save(results, args.json)
    print_tables(results)


def save(results: dict[str, Any], path: Path | None) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=str))


def print_tables(res: dict[str, Any]) -> None:
    c = res["corpus"]
    print(f"\ncorpus: {c['files']} bulletins, {c['mb']} MiB, our chunks: {c['chunks']}, tokens: {c['tokens']}")
    print(f"machine: {res['machine']}; load at start {res['load_start']}, end {res.get('load_end')}")
    if res.get("onnx_export_s"):
        print(f"one-time ONNX export: {res['onnx_export_s']} s")
    runs = res["runs"]
    lc = runs.get("plain LangChain pipeline")
    raw = runs.get("raw model, torch (encode only)")
    onnx = runs.get("raw model, onnx int8 (encode only)")
    print("\n| run | chunks | tokens | wall s | chunks/s | tokens/s | vs LangChain | vs raw torch | vs raw onnx |"
          " CPU s | tokens/CPU-s | vs LangChain (CPU) | vs raw torch (CPU) | vs raw onnx (CPU) | outside the model |"
          " peak RSS MiB | load (1 min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in runs.items():
        def ratio(ref: dict[str, Any] | None, key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key] / ref[key]:.2f}x" if ref else "-"

        outside = f"{r['outside_embedding_share']:.0%}" if "outside_embedding_share" in r else "-"
        print(f"| {name} | {r['chunks']} | {r['tokens']} | {r['seconds']:.1f} | {r['chunks_per_s']:.1f} |"
              f" {r['tokens_per_s']:.0f} | {ratio(lc, 'tokens_per_s')} | {ratio(raw, 'tokens_per_s')} |"
              f" {ratio(onnx, 'tokens_per_s')} | {r['cpu_seconds']:.1f} | {r['tokens_per_cpu_s']:.0f} |"
              f" {ratio(lc, 'tokens_per_cpu_s')} | {ratio(raw, 'tokens_per_cpu_s')} |"
              f" {ratio(onnx, 'tokens_per_cpu_s')} | {outside} | {r['peak_rss_mb']:.0f} | {r['load'][0]} |")
    if "incremental" in res:
        print("\n| incremental (end to end, one process each) | wall s | CPU s | peak RSS MiB | load (1 min) |")
        print("|---|---:|---:|---:|---:|")
        for name, r in res["incremental"].items():
            if "handed_over" in r:  # several adds, each its own process, while a watcher runs
                print(f"| {name} (each of {len(r['wall_s'])}) | {' / '.join(map(str, r['wall_s']))} |"
                      f" {' / '.join(map(str, r['cpu_s']))} | - | {r['load'][0]} |")
            elif "add_s" in r:  # one process, index already open: the add and the edit timed inside it
                print(f"| add one bulletin, {name} | {r['add_s']:.2f} | {r['add_cpu_s']:.2f} | - | {r['load'][0]} |")
                print(f"| edit one bulletin, {name} | {r['edit_s']:.2f} | {r['edit_cpu_s']:.2f} | - | {r['load'][0]} |")
            else:
                print(f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['load'][0]} |")


if __name__ == "__main__":
    main()
