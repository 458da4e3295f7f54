"""The write side handed to LangChain's indexing API: a ``VectorStore`` whose
writes embed the chunks and land in Chroma and the chunk table together."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore as LCVectorStore

from index.chunkdb import ChunkDB
from index.embed import Embedder
from index.store import VectorStore

# Texts handed to the embedder per call: few large calls, not many small ones. The torch
# embedder sorts each call's texts by length and pads each batch to its longest text
# (measured: 58% padding in calls of 64, 20% in calls of 256, 4% in calls of 1024); the
# onnx embedder spreads each call over its worker threads.
EMBED_STEP = 1024


def embedding_text(doc_text: str, title: str) -> str:
    """What gets embedded: the headline gives each passage its topic."""
    return doc_text if doc_text.startswith(title) else f"{title}\n{doc_text}"


class IndexSink(LCVectorStore):
    """Adapter so ``langchain_core.indexing.index`` can drive our stores."""

    def __init__(self, store: VectorStore, db: ChunkDB, embedder: Callable[[], Embedder],
                 on_embedded: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.db = db
        self._embedder = embedder  # lazy: a no-op update never loads the model
        self.on_embedded = on_embedded or (lambda n: None)
        self.embedded = 0

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        ids = list(kwargs.get("ids") or [d.id for d in documents])
        texts = [embedding_text(d.page_content, d.metadata["title"]) for d in documents]
        vectors: list[list[float]] = []
        model = self._embedder()
        for i in range(0, len(texts), EMBED_STEP):
            part = texts[i : i + EMBED_STEP]
            vectors.extend(model.embed_documents(part))
            self.on_embedded(len(part))
        metas = [{k: v for k, v in d.metadata.items() if k not in ("start", "end")} for d in documents]
        self.store.upsert(ids, vectors, metas, [d.page_content for d in documents])
        rows = [{**d.metadata, "id": cid, "text": d.page_content} for cid, d in zip(ids, documents, strict=True)]
        self.db.put_chunks(rows)
        self.embedded += len(ids)
        return ids

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, **kwargs: Any) -> list[str]:
        docs = [Document(page_content=t, metadata=m) for t, m in zip(texts, metadatas or [], strict=True)]
        return self.add_documents(docs, **kwargs)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids:
            self.store.delete(ids)
            self.db.delete_chunks(ids)
        return True

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        raise NotImplementedError("IndexSink only writes; retrieval lives in assistant.retrieve")

    @classmethod
    def from_texts(cls, texts: Sequence[str], embedding: Any, metadatas: Any = None, **kwargs: Any) -> IndexSink:
        raise NotImplementedError("build an IndexSink with its stores")
