"""Shared fixtures: the real MiniLM model loaded once per session, a real Chroma index of the seed
corpus built once per session in a temporary folder, and Debian's Chromium driven by Playwright; and
the chunk ids a clean index of a corpus holds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def small_corpus(root: Path) -> Path:
    """Two seed bulletins and the catalog in ``root/corpus``: a corpus that indexes in seconds."""
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("jtc1-smart-cities-webconference.txt", "iec-smart-cities.txt", "catalog.toml"):
        shutil.copy(SEED_CORPUS / name, corpus / name)
    return corpus


def assert_keywords_as_rebuilt(index: object, tmp: Path) -> None:
    """The index's keyword search ranks as one written from scratch over its chunk table: the same
    chunks, order and scores, for questions made of words of its own chunks."""
    from index.keywords import KeywordIndex

    live = index.bm25  # type: ignore[attr-defined]
    fresh = KeywordIndex(live.db_path, tmp / "keywords-rebuilt")
    fresh.compact(prune=False)
    assert sorted(live.ids) == sorted(fresh.ids)
    texts = [r["text"] for r in index.db.all_chunks()][::7]  # type: ignore[attr-defined]
    questions = [" ".join(t.split()[i:i + 6]) for t in texts for i in (0, 20)] + ["smart city standards"]
    for q in questions:
        assert live.search(q, 20) == fresh.search(q, 20), q
    fresh.close()


def expected_ids(corpus: Path) -> set[str]:
    """The chunk ids a clean run over ``corpus`` produces, e-mail files' parts included (what cannot be
    loaded is skipped)."""
    from index.catalog import meta_for, part_entry, part_id, read_catalog, scan
    from index.chunk import chunk_bulletin
    from index.errors import LoadError
    from index.load import load_parts
    from index.split import split_articles

    files, _ = scan(corpus)
    catalog = read_catalog(corpus)
    ids: set[str] = set()
    for doc_id, path in files.items():
        try:
            loaded = load_parts(path)
        except LoadError:
            continue
        for part in loaded.parts:
            meta = meta_for(part_id(doc_id, part.key), part.text, part_entry(catalog, doc_id, part))
            ids |= {c.chunk_id for c in chunk_bulletin(meta, part.text, split_articles(part.text, meta.title,
                                                                                          meta.date))}
    return ids


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium (never a downloaded one), driven by Playwright."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (see .ci/test-deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def embedder():  # noqa: ANN201
    """The default embedder (the int8 ONNX export of the packaged all-MiniLM-L6-v2, made once per
    machine in the user's cache, as ``stdnews`` processes the tests start use it), loaded once."""
    from index.embed import make_embedder
    from index.settings import Settings

    return make_embedder(Settings.model_fields["embed_backend"].default)


@pytest.fixture(scope="session")
def torch_embedder():  # noqa: ANN201
    """The packaged all-MiniLM-L6-v2 on sentence-transformers, loaded once."""
    from index.embed import make_embedder

    return make_embedder("torch")


@pytest.fixture()
def make_settings(tmp_path: Path):  # noqa: ANN201
    """Settings for a fresh data directory (and optionally a corpus copy) under tmp_path."""
    from index.settings import load_settings

    def make(corpus: Path | None = None, **kw: object):  # noqa: ANN202
        return load_settings(home=tmp_path / "home", corpus=corpus or SEED_CORPUS, **kw)

    return make


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed corpus."""
    dst = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, dst)
    return dst


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, embedder):  # noqa: ANN001, ANN201
    """An index of the seed corpus, built once per session; tests must not write to it."""
    from index.indexer import Index
    from index.settings import load_settings

    home = tmp_path_factory.mktemp("seed-home")
    settings = load_settings(home=home, corpus=SEED_CORPUS)
    index = Index(settings, embedder=embedder)
    report = index.update(progress=False)
    assert report.ok, report.failed
    return index


@pytest.fixture(scope="session")
def seed_assistant(seed_index):  # noqa: ANN001, ANN201
    """The default (extractive) assistant over the seed index."""
    from assistant.pipeline import Assistant

    return Assistant(seed_index.settings, index=seed_index)


@pytest.fixture(scope="session")
def seed_home(seed_index) -> Iterator[Path]:  # noqa: ANN001
    """The data directory of the seed index, for CLI tests (read-only use)."""
    yield seed_index.settings.home
