"""Helpers shared by the benchmarks: the chunks our indexer would make of a corpus,
token counts, load average, peak memory of child processes, percentiles."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def chunk_texts(corpus: Path, settings: Any = None) -> list[str]:
    """What ``stdnews index update`` embeds for ``corpus``: every chunk with its headline."""
    from index.catalog import meta_for, read_catalog, scan
    from index.chunk import chunk_bulletin
    from index.load import load_text
    from index.sink import embedding_text
    from index.split import split_articles

    max_chars = settings.chunk_max_chars if settings else 900
    min_chars = settings.chunk_min_chars if settings else 200
    files, _ = scan(corpus)
    catalog = read_catalog(corpus)
    out = []
    for doc_id, path in files.items():
        text = load_text(path)
        meta = meta_for(doc_id, text, catalog.get(doc_id))
        articles = split_articles(text, meta.title, meta.date)
        out += [embedding_text(c.text, c.title) for c in chunk_bulletin(meta, text, articles, max_chars, min_chars)]
    return out


_TOKENIZER: Any = None


def token_counts(texts: Sequence[str]) -> list[int]:
    """Tokens the model sees per text (its own tokenizer, truncated at 256 like the model)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from tokenizers import Tokenizer

        from index.embed import MAX_TOKENS, model_path

        _TOKENIZER = Tokenizer.from_file(str(Path(model_path()) / "tokenizer.json"))
        _TOKENIZER.no_padding()
        _TOKENIZER.enable_truncation(MAX_TOKENS)
    return [len(e.ids) for e in _TOKENIZER.encode_batch(list(texts))]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_commit() -> str:
    """The commit the benchmark ran on, with '+dirty' when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else "")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPU ({model}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 3600,
              show_stderr: bool = False) -> dict[str, Any]:
    """Run a command; wall time, CPU time (user + system, all its threads and children, from
    wait4: robust to other load on the machine), exit code, peak RSS (VmHWM sampled from
    /proc, and ru_maxrss) and its output tail. ``show_stderr``: the command's stderr (its
    progress bars) goes to ours as it runs instead of into the output tail."""
    import threading

    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=None if show_stderr else subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    out_parts: list[str] = []
    reader = threading.Thread(target=lambda: out_parts.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    while True:
        pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, vm_hwm_kb(status))
        time.sleep(0.05)
        if time.perf_counter() - t0 > timeout:
            proc.kill()  # our own child, by its handle
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(code)
    reader.join()
    return {"cmd": " ".join(cmd), "rc": proc.returncode, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": max(peak, usage.ru_maxrss) / 1024, "output": "".join(out_parts)[-2000:]}


def vm_hwm_kb(status: Path) -> int:
    """Peak resident set (VmHWM) of a live process, KiB; 0 once it is gone."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
