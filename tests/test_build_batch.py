"""Build throughput without giving up crash safety: the chunk table's writes during a build share
one transaction (``ChunkDB.batch``) that commits together or not at all, a failed write inside it
undoes only itself, and what the update computes once (a chunk's keyword tokens, the file's bytes)
is what would have been computed again."""

from __future__ import annotations

import json
import sqlite3
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import dedupe
from index.chunkdb import ChunkDB
from index.indexer import Index
from index.tokenize import tokens

TEXT = ("The committee agreed a new work item on city data models. Experts from twelve countries"
        " reviewed the draft and asked for a second ballot on the terminology annex before the"
        " plenary meeting in the spring, where the convenor will report progress to the members and"
        " publish minutes, comments, votes and the revised timetable on the portal.")


def _link(db: ChunkDB, doc_id: str, text: str = TEXT) -> None:
    dedupe.link(db, doc_id, [dedupe.article(doc_id, 0, text)])


def _stored(path: Path) -> set[str]:
    """What another connection (another process) sees committed."""
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT doc_id FROM article_sigs")}
    finally:
        con.close()


def test_a_batch_commits_its_writes_together(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "index.sqlite")
    with db.batch(every_s=3600):
        for i in range(3):
            _link(db, f"b{i}")
        assert _stored(db.path) == set()  # nothing committed yet
        assert {r["doc_id"] for r in db.signatures()} == {"b0", "b1", "b2"}  # this connection sees them
    assert _stored(db.path) == {"b0", "b1", "b2"}
    assert len(db.dup_pairs()) == 3  # the same story in three bulletins: every pair linked


def test_a_batch_commits_as_it_goes_when_told_to(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "index.sqlite")
    with db.batch(every_s=0.0):  # commit after every write
        _link(db, "b0")
        assert _stored(db.path) == {"b0"}


def test_an_error_in_a_batch_undoes_all_of_it(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "index.sqlite")
    _link(db, "before")
    with pytest.raises(RuntimeError), db.batch(every_s=3600):
        _link(db, "b0")
        raise RuntimeError("killed")
    assert _stored(db.path) == {"before"}
    assert {r["doc_id"] for r in db.signatures()} == {"before"}
    assert db.lsh is None  # an in-memory copy holding the undone rows is dropped


def test_a_failed_write_inside_a_batch_undoes_only_itself(tmp_path: Path) -> None:
    db = ChunkDB(tmp_path / "index.sqlite")
    sig = dedupe.signature(["x"]).tobytes()
    with db.batch(every_s=3600):
        _link(db, "b0")
        with pytest.raises(sqlite3.IntegrityError):  # the same article twice: the primary key refuses
            db.put_articles("bad", [(0, sig, "x", []), (0, sig, "x", [])], [])
        _link(db, "b1")
    assert _stored(db.path) == {"b0", "b1"}


def test_linking_in_a_batch_finds_what_linking_one_by_one_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(vocab, 60)) for _ in range(8)]
    texts = {f"d{i}": base[i % 8] + " " + " ".join(rng.choice(vocab, 5)) for i in range(40)}
    pairs = []
    for name, batched in (("one", False), ("batch", True)):
        db = ChunkDB(tmp_path / f"{name}.sqlite")
        with db.batch(every_s=3600) if batched else nullcontext():
            for doc_id, text in texts.items():  # 40 links: past bandindex's switch to memory
                _link(db, doc_id, text)
        pairs.append(sorted(db.dup_pairs()))
    assert pairs[0] == pairs[1] and len(pairs[0]) > 40


def test_a_build_stores_each_chunk_s_tokens_as_computed_and_times_the_model(make_settings, corpus_copy: Path,
                                                                          embedder) -> None:
    index = Index(make_settings(corpus_copy), embedder=embedder)
    report = index.update(progress=False)
    assert report.ok and report.embedded > 50
    rows = index.db.conn.execute("SELECT title, text, tokens, meta FROM chunks").fetchall()
    assert len(rows) == report.embedded
    for r in rows:
        assert r["tokens"] == " ".join(tokens(f"{r['title']}\n{r['text']}"))
        assert "tokens" not in json.loads(r["meta"])
    metas = index.store._collection.get(include=["metadatas"])["metadatas"]
    assert metas and not any("tokens" in m for m in metas)
    assert 0 < report.embed_seconds <= report.seconds
    assert " s in the model)" in report.summary()
    logged = index.db.updates(1)[0]
    assert logged["embed_seconds"] == report.embed_seconds
    assert index.verify() == []


@pytest.mark.slow
def test_a_build_embedded_in_worker_processes_stores_the_vectors_of_one_embedded_here(
        tmp_path: Path, corpus_copy: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import time

    from index.embed import ProcessEmbedder
    from index.settings import load_settings

    monkeypatch.setattr("index.sink.EMBED_STEP", 16)  # several calls: the workers take the later ones
    started, in_workers = [], []

    def ready(self: Any) -> ProcessEmbedder:  # the workers, once they have loaded the model
        started.append(1)
        workers = ProcessEmbedder(self)
        deadline = time.monotonic() + 60
        while not workers.ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        return workers

    monkeypatch.setattr(type(embedder), "in_processes", ready)
    real = ProcessEmbedder.embed_documents
    monkeypatch.setattr(ProcessEmbedder, "embed_documents",
                        lambda self, texts: in_workers.extend(texts) or real(self, texts))
    stored = []
    for after in (10**9, 0):  # in this process, then in worker processes
        monkeypatch.setattr("index.sink.PROCESSES_AFTER", after)
        index = Index(load_settings(home=tmp_path / f"home-{after}", corpus=corpus_copy), embedder=embedder)
        report = index.update(progress=False)
        assert report.ok and report.embedded > 50
        assert index.verify() == []
        got = index.store._collection.get(include=["embeddings"])
        stored.append(dict(zip(got["ids"], np.asarray(got["embeddings"]).tolist(), strict=True)))
    assert started == [1] and len(in_workers) > 30  # only the second build used workers, for most chunks
    assert stored[0] == stored[1]
