"""Start the chat window as a real server on loopback over a fresh, writable data
directory built from a copy of the seed corpus: in this process (app and browser
tests), or as its own ``stdnews chat`` process (load test: its memory is its own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    url: str
    demo: Any
    app: Any  # the Assistant
    settings: Any


@contextmanager
def chat_server(base: Path, embedder: Any, auth: tuple[str, str] | None = None, **overrides: Any) -> Iterator[Server]:
    """Index a copy of the seed corpus under ``base``, serve it on 127.0.0.1, stop it afterwards;
    ``overrides`` (e.g. ``llm="local"``) are settings of the server's own."""
    from assistant.app import build_app, launch
    from assistant.pipeline import Assistant
    from index.indexer import Index
    from index.settings import load_settings

    corpus = base / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    settings = load_settings(home=base / "home", corpus=corpus, **overrides)
    index = Index(settings, embedder=embedder)
    report = index.update(progress=False)
    assert report.ok, report.failed
    bot = Assistant(settings, index=index)
    demo = build_app(bot)
    url = launch(demo, "127.0.0.1", free_port(), auth=auth)
    try:
        yield Server(url, demo, bot, settings)
    finally:
        demo.close()


@dataclass
class ServerProcess:
    url: str
    pid: int
    home: Path
    log: Path


def seed_home(base: Path) -> tuple[Path, Path]:
    """A copy of the seed corpus under ``base`` and a data directory indexed from it (``stdnews index update``)."""
    corpus, home = base / "corpus", base / "home"
    shutil.copytree(ROOT / "corpus", corpus)
    subprocess.run([sys.executable, "-m", "assistant", "index", "update", "--home", str(home), "--corpus",
                    str(corpus), "--quiet"], check=True, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
    return home, corpus


@contextmanager
def chat_process(base: Path, home: Path | None = None, corpus: Path | None = None,
                 timeout: float = 300.0) -> Iterator[ServerProcess]:
    """``stdnews chat`` as a child process on 127.0.0.1 over ``home`` as it is (or, without one, a fresh
    index of a copy of the seed corpus under ``base``); stopped (its whole process group) afterwards."""
    base.mkdir(parents=True, exist_ok=True)
    if home is None:
        home, corpus = seed_home(base)
    port = free_port()
    cmd = [sys.executable, "-m", "assistant", "chat", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]
    if corpus is not None:
        cmd += ["--corpus", str(corpus)]
    log = base / f"chat-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=_env(),
                                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/", timeout=timeout, proc=proc)  # it answers once the model is warm
            yield ServerProcess(url, proc.pid, home, log)
        finally:
            stop(proc)


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
            "GRADIO_ANALYTICS_ENABLED": "False"}


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the parent dies, so a killed test or
    benchmark never leaves a server behind."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
