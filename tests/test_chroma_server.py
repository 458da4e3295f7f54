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
