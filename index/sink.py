"""The write side handed to LangChain's indexing API: a ``VectorStore`` whose
writes embed the chunks and land in Chroma and the chunk table together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore as LCVectorStore

from index.chunkdb import ChunkDB
from index.embed import Embedder
from index.store import FILTER_KEYS, VectorStore

# Texts handed to the embedder per call: few large calls, not many small ones. The torch
# embedder sorts each call's texts by length and pads each batch to its longest text
# (measured: 58% padding in calls of 64, 20% in calls of 256, 4% in calls of 1024); the
# onnx embedder spreads each call over its worker threads.
EMBED_STEP = 1024
# An update that queues more texts than this embeds the rest in worker processes (the
# embedder's ``in_processes``): ~1.5 s to start them, while the first call runs here.
PROCESSES_AFTER = EMBED_STEP


def embedding_text(doc_text: str, title: str) -> str:
    """What gets embedded: the headline gives each passage its topic."""
    return doc_text if doc_text.startswith(title) else f"{title}\n{doc_text}"


class Prefetch:
    """Embeds the chunks an update is going to write, in the order it writes them, in a
    background thread, up to ``ahead`` vectors ahead of the writes (64k as float32 rows,
    96 MiB). The writes start only when all files are read: a 100k-chunk build read for
    ~4 minutes, longer than the model takes for 16k chunks, so with 16k ahead the model
    stood idle for a minute of it. onnxruntime and torch release the GIL, so the model works while the update
    reads the next files and while the indexing API, Chroma and SQLite store the last
    batch (on 2 cores the build used 1.4 of them without it); past ``processes_after``
    texts the model runs in worker processes, out of reach of the GIL that Chroma's
    writes hold. Written by hand: the indexing API hands the sink one batch at a time."""

    def __init__(self, embedder: Callable[[], Embedder], on_embedded: Callable[[int], None],
                 ahead: int = 64 * EMBED_STEP, min_call: int = 256, processes_after: int | None = None) -> None:
        self._embedder, self._on_embedded, self._ahead, self._min_call = embedder, on_embedded, ahead, min_call
        self._processes_after = PROCESSES_AFTER if processes_after is None else processes_after
        self._procs: Any = None  # the embedder in worker processes, once the update is large enough
        self._procs_failed = False
        self._pending: list[tuple[str, str]] = []
        self._planned: set[str] = set()
        self._ready: dict[str, np.ndarray] = {}  # float32 rows: 1.5 KiB a vector, not 12 as lists
        self._error: BaseException | None = None
        self._finished = self._done = self._closed = False
        self.seconds = 0.0  # wall seconds inside the embedder's calls
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="stdnews-embed", daemon=True)
        self._thread.start()

    def add(self, items: Sequence[tuple[str, str]]) -> None:
        """Queue (chunk id, text to embed) pairs, in write order."""
        with self._cond:
            self._pending.extend(items)
            self._planned.update(cid for cid, _ in items)
            self._cond.notify_all()

    def finish(self) -> None:
        """Nothing more will be queued."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop (the update ended or failed) and drop what was not used."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        self._drop_processes()  # and none started after this

    def _model(self) -> Embedder:
        """The embedder for the next call: in worker processes once more than ``processes_after``
        texts were queued and the workers are ready; until then, and if they fail, in this process."""
        model = self._embedder()
        if (self._procs is None and not self._procs_failed and len(self._planned) > self._processes_after
                and hasattr(model, "in_processes")):
            self._procs = model.in_processes()
        if self._procs is not None:
            try:
                if self._procs.ready():
                    return self._procs  # type: ignore[no-any-return]
            except Exception:  # a worker could not start
                self._drop_processes()
        return model

    def _drop_processes(self) -> None:
        if self._procs is not None:
            self._procs.close()
        self._procs, self._procs_failed = None, True

    def _vectors(self, texts: list[str]) -> np.ndarray:
        model = self._model()
        try:
            return np.asarray(model.embed_documents(texts), dtype=np.float32)
        except Exception:
            if self._closed or model is not self._procs:
                raise
            self._drop_processes()  # a worker died (killed, out of memory): this process embeds the rest
            return np.asarray(self._embedder().embed_documents(texts), dtype=np.float32)

    def _next(self) -> list[tuple[str, str]] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._finished and not self._pending) or (
                len(self._ready) < self._ahead and (len(self._pending) >= self._min_call or self._finished)))
            if self._closed or not self._pending:
                return None
            part, self._pending = self._pending[:EMBED_STEP], self._pending[EMBED_STEP:]
            return part

    def _run(self) -> None:
        try:
            while (part := self._next()) is not None:
                t0 = time.perf_counter()
                vectors = self._vectors([text for _, text in part])
                self.seconds += time.perf_counter() - t0
                with self._cond:
                    if not self._closed:
                        self._ready.update(zip((cid for cid, _ in part), vectors, strict=True))
                    self._cond.notify_all()
                self._on_embedded(len(part))
        except BaseException as exc:  # handed to the writer, which raises it
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def take(self, ids: Sequence[str]) -> list[list[float]] | None:
        """The vectors of ``ids`` once embedded; None when some were never queued (embed those directly)."""
        with self._cond:
            if not self._planned.issuperset(ids):
                return None
            self._cond.wait_for(lambda: self._error or self._done or all(i in self._ready for i in ids))
            if self._error:
                raise self._error
            if not all(i in self._ready for i in ids):
                return None
            vectors = [self._ready.pop(i).tolist() for i in ids]
            self._cond.notify_all()
            return vectors


class IndexSink(LCVectorStore):
    """Adapter so ``langchain_core.indexing.index`` can drive our stores."""

    def __init__(self, store: VectorStore, db: ChunkDB, embedder: Callable[[], Embedder],
                 on_embedded: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.db = db
        self._embedder = embedder  # lazy: a no-op update never loads the model
        self.on_embedded = on_embedded or (lambda n: None)
        self.embedded = 0
        self.direct_seconds = 0.0  # embedding calls made here, for ids the look-ahead did not hold
        self.prefetch: Prefetch | None = None

    def plan(self, documents: Sequence[Document]) -> None:
        """Start embedding these documents (those the update will write, in write order) ahead of the writes."""
        if self.prefetch is None:
            self.prefetch = Prefetch(self._embedder, self.on_embedded)
        self.prefetch.add([(d.metadata["chunk_id"], embedding_text(d.page_content, d.metadata["title"]))
                           for d in documents])

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        ids = list(kwargs.get("ids") or [d.id for d in documents])
        vectors = self.prefetch.take(ids) if self.prefetch else None
        if vectors is None:
            texts = [embedding_text(d.page_content, d.metadata["title"]) for d in documents]
            vectors = []
            model = self._embedder()
            for i in range(0, len(texts), EMBED_STEP):
                part = texts[i : i + EMBED_STEP]
                t0 = time.perf_counter()
                vectors.extend(model.embed_documents(part))
                self.direct_seconds += time.perf_counter() - t0
                self.on_embedded(len(part))
        metas = [{k: d.metadata[k] for k in FILTER_KEYS if k in d.metadata} for d in documents]
        self.store.upsert(ids, vectors, metas)
        rows = [{**d.metadata, "id": cid, "text": d.page_content} for cid, d in zip(ids, documents, strict=True)]
        self.db.put_chunks(rows)
        self.embedded += len(ids)
        return ids

    @property
    def embed_seconds(self) -> float:
        """Wall seconds spent in the embedder's calls (the look-ahead thread's and this sink's own)."""
        return self.direct_seconds + (self.prefetch.seconds if self.prefetch else 0.0)

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
