"""Start the chat window as a real server on loopback over a fresh, writable data
directory built from a copy of the seed corpus (shared by the app and browser tests)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    url: str
    demo: Any
    app: Any  # the Assistant
    settings: Any


@contextmanager
def chat_server(base: Path, embedder: Any, auth: tuple[str, str] | None = None) -> Iterator[Server]:
    """Index a copy of the seed corpus under ``base``, serve it on 127.0.0.1, stop it afterwards."""
    from assistant.app import build_app, launch
    from assistant.pipeline import Assistant
    from index.indexer import Index
    from index.settings import load_settings

    corpus = base / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    settings = load_settings(home=base / "home", corpus=corpus)
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
