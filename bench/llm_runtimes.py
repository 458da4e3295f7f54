"""llama.cpp runtimes side by side for ``--llm local``: llama-cpp-python 0.3.36 as ``assistant/llm.py``
configures it (the source build of ``.ci/llama.sh``) against prebuilt llama.cpp wheels from PyPI, each
installed in its own venv. Same GGUF file, same prompts (the project's own, captured from the seed
index), same threads, greedy decoding, same max tokens; each runtime in its own process.

Per run: load seconds, the warm-up (the fixed system prompt, as ``assistant.llm.loaded`` does), and per
prompt the time to the first token, llama.cpp's own prompt and generation timings (tokens/s), the
text; per process its peak RSS. Runs alternate between runtimes, ``--repeats`` times, with the load
average before and after each. A runtime that cannot load or crashes is recorded as such.

    .venv/bin/python bench/llm_runtimes.py prompts --home .stdnews --n 4     # project venv: the prompts
    .venv/bin/python bench/llm_runtimes.py run --sizes 1.5b,0.5b --repeats 2 \\
        --runtime llama-cpp-python=.venv/bin/python --runtime xllamacpp=/tmp/xlvenv/bin/python \\
        --runtime llama-cpp-py-sync=/tmp/llvenv/bin/python

The child (``child RUNTIME``) imports only the standard library and its runtime, except the
llama-cpp-python one, which loads the model through the project's ``assistant.llm.loaded``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "bench/out/llm-runtimes-prompts.json"
ROLES = {"system": "system", "human": "user", "ai": "assistant"}  # as LlamaCppChat maps them


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the prompts (project venv) -----------------------------------------------------------------------


def make_prompts(home: Path, qset: Path, n: int, out: Path) -> None:
    """The messages ``--llm local`` sends for ``n`` answerable seed questions (spread over the set):
    retrieval, the extractive gate, its excerpts, ``prompt.answer_messages``, as ``LLMAnswerer.answer``."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from assistant import prompt
    from assistant.compose import ExtractiveAnswerer
    from assistant.llm import EXCERPT_CHARS, MAX_TOKENS, LLMAnswerer
    from assistant.pipeline import Assistant
    from index.settings import load_settings

    bot = Assistant(load_settings(home=home, llm="none"))
    gate_of = bot.answerer
    assert isinstance(gate_of, ExtractiveAnswerer)
    excerpter = LLMAnswerer(chat=None, fallback=gate_of, excerpt_chars=EXCERPT_CHARS)  # type: ignore[arg-type]
    rows = [json.loads(line) for line in qset.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("answerable", True) and not r.get("history")]
    prompts = []
    for r in rows[:: max(1, len(rows) // (2 * n))]:
        passages = bot.retriever.search(r["question"])
        gate = gate_of.draft(r["question"], passages)
        if gate.refused:  # the model is never asked
            continue
        msgs = prompt.answer_messages(r["question"], passages, excerpts=excerpter._excerpts(gate, passages))
        prompts.append({"id": r["id"], "question": r["question"], "messages": msgs})
        if len(prompts) == n:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"set": str(qset), "max_tokens": MAX_TOKENS,
                               "warmup": prompt.answer_messages("", []), "prompts": prompts}, indent=2))
    print(f"wrote {out}: {len(prompts)} prompts")


# --- the runtimes (child process, the runtime's own venv) ------------------------------------------------

Stream = Callable[[list[list[str]], int], Iterator[tuple[float, str]]]  # (messages, max_tokens) -> (when, delta)
Perf = Callable[[], dict[str, Any]]  # llama.cpp's timings of the last request


def open_llama_cpp_python(model: str, threads: int) -> tuple[Stream, Perf, dict[str, Any]]:
    """The project's path: ``assistant.llm.loaded`` (plain CPU buffers on AMX builds, n_ctx 4096, the
    system prompt evaluated once), streamed through ``LlamaCppChat``."""
    sys.path.insert(0, str(ROOT))
    import llama_cpp

    from assistant.llm import amx_built, loaded

    chat = loaded(Path(model), threads)
    ctx = chat._llama._ctx.ctx

    def stream(messages: list[list[str]], max_tokens: int) -> Iterator[tuple[float, str]]:
        llama_cpp.llama_perf_context_reset(ctx)
        for chunk in chat.stream([tuple(m) for m in messages], max_tokens=max_tokens):
            yield time.perf_counter(), str(chunk.text)

    def perf() -> dict[str, Any]:
        p = llama_cpp.llama_perf_context(ctx)
        return {"prompt_n": p.n_p_eval, "prompt_ms": p.t_p_eval_ms, "gen_n": p.n_eval, "gen_ms": p.t_eval_ms,
                "reused_n": None}

    return stream, perf, {"version": llama_cpp.__version__, "amx_built": amx_built(),
                          "warmed_by": "assistant.llm.loaded"}


def open_xllamacpp(model: str, threads: int) -> tuple[Stream, Perf, dict[str, Any]]:
    """xllamacpp's embedded llama.cpp server (``Server.handle_chat_completions``, Jinja chat template),
    set up like the project's llama-cpp-python: n_ctx 4096, batch 512, no flash attention, one slot."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = model
    p.n_ctx, p.n_batch, p.n_ubatch, p.n_parallel = 4096, 512, 512, 1
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
    p.flash_attn_type = xlc.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
    p.warmup = False  # the same warm-up as the others, below
    p.no_extra_bufts = os.environ.get("BENCH_NO_EXTRA_BUFTS") == "1"
    server = xlc.Server(p)
    last: dict[str, Any] = {}

    def stream(messages: list[list[str]], max_tokens: int) -> Iterator[tuple[float, str]]:
        # the callback runs as each token comes while handle_chat_completions blocks: stamped there
        out: list[tuple[float, str]] = []

        def cb(chunk: dict[str, Any]) -> bool:
            if "timings" in chunk:
                last.update(chunk["timings"])
            for choice in chunk.get("choices", []):
                if text := (choice.get("delta") or {}).get("content"):
                    out.append((time.perf_counter(), text))
            return False

        last.clear()
        server.handle_chat_completions({"messages": [{"role": ROLES[r], "content": c} for r, c in messages],
                                        "max_tokens": max_tokens, "temperature": 0.0, "stream": True,
                                        "cache_prompt": True}, cb)
        yield from out

    def perf() -> dict[str, Any]:
        return {"prompt_n": last.get("prompt_n"), "prompt_ms": last.get("prompt_ms"),
                "gen_n": last.get("predicted_n"), "gen_ms": last.get("predicted_ms"), "reused_n": last.get("cache_n")}

    return stream, perf, {"version": xlc.__version__, "system_info": xlc.get_system_info().strip(),
                          "listening_address": server.listening_address, "no_extra_bufts": p.no_extra_bufts}


def open_llama_cpp_py_sync(model: str, threads: int) -> tuple[Stream, Perf, dict[str, Any]]:
    """llama-cpp-py-sync's ``Llama.create_chat_completion`` (llama.cpp's built-in template matcher),
    greedy, no repeat penalty (llama-cpp-python's default), the same prefix reuse by ``cache_key``."""
    import llama_cpp_py_sync as lps

    llm = lps.Llama(model, n_ctx=4096, n_batch=512, n_threads=threads)
    last: dict[str, Any] = {}

    def stream(messages: list[list[str]], max_tokens: int) -> Iterator[tuple[float, str]]:
        last.clear()
        for part in llm.create_chat_completion([{"role": ROLES[r], "content": c} for r, c in messages],
                                               max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0,
                                               stream=True, cache_key="bench", on_stats=last.update):
            if text := part["choices"][0]["delta"].get("content"):
                yield time.perf_counter(), text

    def perf() -> dict[str, Any]:
        return {"prompt_n": last.get("prefilled_tokens"), "prompt_ms": (last.get("prefill_seconds") or 0) * 1000,
                "gen_n": None, "gen_ms": None, "reused_n": last.get("reused_tokens")}

    return stream, perf, {"version": lps.__version__}


RUNTIMES = {"llama-cpp-python": open_llama_cpp_python, "xllamacpp": open_xllamacpp,
            "llama-cpp-py-sync": open_llama_cpp_py_sync}


def rate(n: int | None, ms: float | None) -> float | None:
    return n / ms * 1000 if n and ms else None


def child(runtime: str, model: str, threads: int, prompts_file: Path) -> dict[str, Any]:
    data = json.loads(prompts_file.read_text())
    base = {"runtime": runtime, "model": Path(model).name, "threads": threads}
    rss_start = rss_mb()
    t0 = time.perf_counter()
    try:
        stream, perf, info = RUNTIMES[runtime](model, threads)
    except Exception as exc:  # a wheel that cannot load here: recorded, not raised
        return {**base, "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:400]}
    load_s = time.perf_counter() - t0
    warm_s = 0.0
    if runtime != "llama-cpp-python":  # assistant.llm.loaded did it for that one, inside load_s
        t1 = time.perf_counter()
        for _ in stream(data["warmup"], 1):
            pass
        warm_s = time.perf_counter() - t1
    rows = []
    for p in data["prompts"]:
        start = time.perf_counter()
        stamps: list[float] = []
        parts: list[str] = []
        for at, text in stream(p["messages"], data["max_tokens"]):
            stamps.append(at - start)
            parts.append(text)
        total = time.perf_counter() - start
        pf = perf()
        rows.append({"id": p["id"], "total_s": total, "first_token_s": stamps[0] if stamps else None,
                     "deltas": len(stamps), "wall_tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0])
                     if len(stamps) > 2 and stamps[-1] > stamps[0] else None,
                     "prompt_tokens_per_s": rate(pf["prompt_n"], pf["prompt_ms"]),
                     "gen_tokens_per_s": rate(pf["gen_n"], pf["gen_ms"]), **pf, "text": "".join(parts)})
    return {**base, **info, "load_s": load_s, "warm_s": warm_s, "rss_after_imports_mb": rss_start,
            "peak_rss_mb": rss_mb(), "rows": rows}


# --- the driver (project venv) ------------------------------------------------------------------------


def median(xs: list[float]) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2 if xs else None


def summary(run: dict[str, Any]) -> str:
    if "error" in run or "crash" in run:
        return f"{run['runtime']:>18} {run['model'][:20]:<20} FAILED: {run.get('error') or run.get('crash')}"
    rows = run["rows"]

    def med(key: str) -> str:
        v = median([r[key] for r in rows])
        return "-" if v is None else f"{v:.2f}"

    return (f"{run['runtime']:>18} {run['model'][:20]:<20} load {run['load_s'] + run['warm_s']:.1f} s;"
            f" first token p50 {med('first_token_s')} s; prompt {med('prompt_tokens_per_s')} tok/s;"
            f" writing {med('gen_tokens_per_s')} tok/s (wall {med('wall_tokens_per_s')}); answer p50"
            f" {med('total_s')} s; peak {run['peak_rss_mb']:.0f} MiB; load avg {run['loadavg_before']} ->"
            f" {run['loadavg_after']}")


def drive(runtimes: list[tuple[str, str]], sizes: list[str], repeats: int, threads: int, prompts: Path,
          out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from assistant.packaged import MODELS, model_file
    from bench.common import git_commit, loadavg, machine
    from index.embed import default_models_dir

    runs = []
    for rep in range(repeats):
        for size in sizes:
            model = model_file(size, default_models_dir())
            order = runtimes if rep % 2 == 0 else runtimes[::-1]  # alternate who goes first
            for name, python in order:
                before = loadavg()
                proc = subprocess.run([python, __file__, "child", name, "--model", str(model), "--threads",
                                       str(threads), "--prompts", str(prompts)], capture_output=True, text=True,
                                      cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                lines = proc.stdout.strip().splitlines()
                if proc.returncode == 0 and lines:
                    run = json.loads(lines[-1])
                else:
                    tail = [x for x in proc.stderr.strip().splitlines() if x.strip()][-1:]
                    run = {"runtime": name, "model": MODELS[size].name, "returncode": proc.returncode,
                           "crash": f"exit {proc.returncode} {tail}"}
                run.update(repeat=rep, size=size, loadavg_before=before, loadavg_after=loadavg())
                runs.append(run)
                print(summary(run), flush=True)
    same = {}
    for size in sizes:
        texts = {(r["runtime"], r["repeat"]): [x["text"] for x in r["rows"]] for r in runs
                 if r["size"] == size and "rows" in r}
        same[size] = {f"{a[0]}#{a[1]} vs {b[0]}#{b[1]}": sum(x == y for x, y in zip(texts[a], texts[b], strict=True))
                      for i, a in enumerate(texts) for b in list(texts)[i + 1:]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "commit": git_commit(), "threads": threads,
                               "prompts": str(prompts), "same_text_count": same, "runs": runs}, indent=2))
    print(json.dumps(same, indent=1))
    print(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prompts", help="capture the project's prompts (project venv)")
    p.add_argument("--home", type=Path, default=ROOT / ".stdnews")
    p.add_argument("--set", type=Path, default=ROOT / "evals/sets/seed.jsonl")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--out", type=Path, default=PROMPTS)
    r = sub.add_parser("run", help="every runtime on every size, alternating")
    r.add_argument("--runtime", action="append", required=True, help="NAME=PYTHON, NAME one of " + ", ".join(RUNTIMES))
    r.add_argument("--sizes", default="1.5b")
    r.add_argument("--repeats", type=int, default=2)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--prompts", type=Path, default=PROMPTS)
    r.add_argument("--out", type=Path, default=ROOT / "bench/out/llm-runtimes.json")
    c = sub.add_parser("child")
    c.add_argument("runtime", choices=list(RUNTIMES))
    c.add_argument("--model", required=True)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--prompts", type=Path, default=PROMPTS)
    args = ap.parse_args()
    if args.cmd == "prompts":
        make_prompts(args.home, args.set, args.n, args.out)
    elif args.cmd == "child":
        print(json.dumps(child(args.runtime, args.model, args.threads, args.prompts)))
    else:
        pairs = [tuple(x.split("=", 1)) for x in args.runtime]
        if bad := [n for n, *_ in pairs if n not in RUNTIMES or len(_) != 1]:
            print(f"error: --runtime NAME=PYTHON with NAME one of {', '.join(RUNTIMES)} (got {bad})", file=sys.stderr)
            return 2
        drive(pairs, args.sizes.split(","), args.repeats, args.threads, args.prompts, args.out)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
