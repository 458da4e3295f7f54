"""The same index, against a real Chroma server started by the test (``chroma run``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import UserError
from index.indexer import Index
from tests.servers import chroma_server, free_port

pytestmark = pytest.mark.slow


def test_index_and_answer_through_a_chroma_server(make_settings, corpus_copy: Path, tmp_path: Path, embedder) -> None:
    from assistant.pipeline import Assistant

    with chroma_server(tmp_path / "chroma-server") as url:
        settings = make_settings(corpus_copy, chroma_url=url)
        index = Index(settings, embedder=embedder)
        first = index.update(progress=False)
        assert first.ok and first.embedded > 50
        assert index.store.count() == first.embedded and index.verify() == []
        assert index.update(progress=False).embedded == 0
        (corpus_copy / "iec-smart-cities.txt").unlink()
        removed = index.update(progress=False)
        assert removed.removed_docs == ["iec-smart-cities"]
        assert not [i for i in index.store.ids() if i.startswith("iec-smart-cities#")]
        assert index.verify() == []
        result = Assistant(settings, index=index).ask("Who convenes JTC 1/WG 11?")
        assert "Heng Qian" in result.answer
        assert result.citations[0].doc_id == "jtc1-smart-cities-webconference"
    # The server is gone: a clear error, not a traceback.
    with pytest.raises(UserError, match="cannot reach the Chroma server"):
        Index(settings, embedder=embedder).store.count()


def test_unreachable_server_is_one_clear_error(make_settings, embedder) -> None:
    settings = make_settings(chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UserError, match="cannot reach the Chroma server"):
        Index(settings, embedder=embedder).update(progress=False)


def test_a_large_write_to_a_server_is_settled_by_writing_its_last_vector_again(tmp_path: Path) -> None:
    """After ``SETTLE_AFTER`` vectors, checking the write reads the count and writes the last vector
    again, with its id and metadata (what makes the server do the work the next add would wait for);
    after fewer it writes nothing more, and the collection holds the same vectors either way."""
    import numpy as np

    from index import store as store_mod

    with chroma_server(tmp_path / "chroma-server") as url:
        store = store_mod.make_store(tmp_path / "unused", url, "settle-test")
        writes: list[list[str]] = []
        real = store._collection.upsert
        store._collection.upsert = lambda **kw: (writes.append(kw["ids"]), real(**kw))[1]
        vectors = np.random.default_rng(0).standard_normal((store_mod.SETTLE_AFTER + 5, 8)).tolist()
        ids = [f"c{i}" for i in range(len(vectors))]
        metas = [{"doc_id": f"d{i}", "n": i} for i in range(len(vectors))]

        store.upsert(ids[:5], vectors[:5], metas[:5])
        store.check_last_write()
        assert writes == [ids[:5]]  # a small write: nothing more

        writes.clear()
        store.upsert(ids[5:], vectors[5:], metas[5:])
        store.check_last_write()
        assert writes[-1] == [ids[-1]] and sum(map(len, writes)) == store_mod.SETTLE_AFTER + 1
        store.check_last_write()  # checked once per write
        assert sum(map(len, writes)) == store_mod.SETTLE_AFTER + 1
        assert store.count() == len(ids) and store.ids() == set(ids)
        got = store._collection.get(ids=[ids[-1]], include=["embeddings", "metadatas"])
        assert got["metadatas"][0] == metas[-1] and np.allclose(got["embeddings"][0], vectors[-1], atol=1e-6)
        assert store.query(vectors[-1], 1)[0][0] == ids[-1]
