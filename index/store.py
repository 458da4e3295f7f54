"""Vector store: Chroma, embedded (``PersistentClient``) or a server (``HttpClient``).
We always pass our own embeddings; Chroma's default embedding function would
try to download a model. Chroma holds vectors and metadata only: a chunk's text lives in
the chunk table (``index.chunkdb``), which answers every read of it. Text stored in Chroma
too went into its trigram full-text index, which nothing here queries: upserting 20k chunks
cost 33.7 CPU-s with their text and 19.9 without (250 MB on disk against 43 MB)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from index.errors import UserError


class VectorStore(Protocol):
    """What the index and retrieval need from a vector database."""

    def upsert(self, ids: Sequence[str], embeddings: Sequence[Sequence[float]],
               metadatas: Sequence[dict[str, Any]]) -> None: ...

    def check_last_write(self) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def query(self, embedding: Sequence[float], n: int, where: dict[str, Any] | None = None,
              among: Collection[str] | None = None) -> list[tuple[str, float]]: ...

    def ids(self) -> set[str]: ...

    def count(self) -> int: ...


# A search among at most this many ids reads their vectors and ranks them here, exactly: Chroma's
# search among given ids walks its vector index around them, slower the fewer there are (at 100k
# chunks: 30 ids 70 ms, 200 ids 57 ms, 600 ids 35 ms, reading their vectors 2, 6-9, 18 ms; a server: 300
# ids 43 ms, their vectors 22 ms; at 10k chunks 6-8 ms at any count, 122 vectors 5-6 ms), and may miss
# some of the nearest.
EXACT_UP_TO = 300
# The metadata Chroma keeps with each vector: what its own filter can be asked (the fallback of ``query``,
# ``assistant.retrieve.Filters.chroma_where``); the rest of a chunk's metadata lives in the chunk table.
# Chroma indexes every key it is given: all eleven cost 98 CPU-s of a 100k-chunk build's writes, these
# four 77 (the same vectors upserted into an empty embedded collection, 256 at a time).
FILTER_KEYS = ("chunk_id", "doc_id", "publisher", "date_num")
SELF_AMONG = 10  # a vector just written is looked for among this many nearest to itself (check_last_write)
SETTLE_AFTER = 1000  # vectors written to a Chroma server by one update that make it settle them (check_last_write)


class StoreUnavailable(UserError):
    """The Chroma server cannot be reached."""


class ChromaStore:
    """One Chroma collection with cosine distance; similarity = 1 - distance."""

    def __init__(self, client: Any, name: str, where: str, reopen: Callable[[], Any] | None = None) -> None:
        self.where = where
        self._client = client
        self._name = name
        self._reopen = reopen  # embedded only: a fresh client on the same folder
        self._last: tuple[str, Sequence[float], dict[str, Any]] | None = None  # the last vector written, unchecked
        self._written = 0  # vectors written since the last check
        self._collection = self._open(client)

    def _open(self, client: Any) -> Any:
        return self._call(lambda: client.get_or_create_collection(
            self._name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}))

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # chromadb raises many types for a dead server
            if _is_connection_error(exc):
                raise StoreUnavailable(
                    f"cannot reach the Chroma server at {self.where} ({type(exc).__name__}); start it"
                    " (chroma run --path DIR --host 127.0.0.1 --port P) or drop --chroma-url") from None
            raise

    def upsert(self, ids: Sequence[str], embeddings: Sequence[Sequence[float]],
               metadatas: Sequence[dict[str, Any]]) -> None:
        if not ids:
            return
        step = 1000
        for i in range(0, len(ids), step):
            self._call(lambda i=i: self._collection.upsert(
                ids=list(ids[i:i + step]), embeddings=[list(e) for e in embeddings[i:i + step]],
                metadatas=list(metadatas[i:i + step])))
        self._last, self._written = (ids[-1], embeddings[-1], metadatas[-1]), self._written + len(ids)

    def check_last_write(self) -> None:
        """Once an update has written its vectors. Chroma 1.5's embedded client now and then leaves a
        vector it has stored out of its in-process vector index (a fresh client finds it; 3 of 30 adds
        of one bulletin to the seed index, which made tests/test_app.py fail now and then): its last
        vector is checked (after every upsert batch, it was 4.6% of a 50k build's main thread), and if
        not served, the folder is opened again. A Chroma server, after a large write (``SETTLE_AFTER``
        vectors), makes the first write that follows its next read rewrite its whole vector index (a
        watcher's first add after a 10k-chunk build: 0.63 s and 17.8 MB written in the server, 1.7 s
        at 100k); reading the count and writing the last vector again (the same id, vector and
        metadata) does it here, in the update that caused it."""
        last, written = self._last, self._written
        self._last, self._written = None, 0
        if last is None:
            return
        cid, embedding, metadata = last
        if self._reopen is not None:
            if not self._searchable(cid, embedding):
                self._client = self._reopen()
                self._collection = self._open(self._client)
        elif written >= SETTLE_AFTER:
            self.count()
            self._call(lambda: self._collection.upsert(ids=[cid], embeddings=[list(embedding)], metadatas=[metadata]))

    def _searchable(self, cid: str, embedding: Sequence[float]) -> bool:
        """Whether a search finds this vector: among the nearest to itself (2 ms at 100k chunks), else
        searched among its id alone (the nearest may all be the same text stored under other ids; 67 ms
        at 100k chunks, where Chroma walks its whole vector index; an id it does not hold is an error)."""
        from chromadb.errors import ChromaError

        def found(n: int, **only: Any) -> bool:
            res = self._call(lambda: self._collection.query(
                query_embeddings=[list(embedding)], n_results=n, include=["distances"], **only))
            return cid in res["ids"][0]

        try:
            return found(SELF_AMONG) or found(1, ids=[cid])
        except ChromaError:
            return False

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call(lambda: self._collection.delete(ids=list(ids)))

    def query(self, embedding: Sequence[float], n: int, where: dict[str, Any] | None = None,
              among: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The ``n`` nearest, those matching ``where``; with ``among`` (the ids that match it, from the
        chunk table), searched among those ids: at 100k chunks 15-40 ms where Chroma's metadata filter
        takes 200-300 ms, or, for up to ``EXACT_UP_TO`` ids, their vectors read and ranked exactly. An
        id without a vector (a removal between Chroma and the chunk table) makes Chroma refuse the id
        list, and the metadata filter answers instead; the exact ranking leaves it out."""
        if n <= 0:
            return []
        if among is not None and len(among) <= EXACT_UP_TO:
            return self._exact(embedding, among, n)
        from chromadb.errors import ChromaError  # a dead server is StoreUnavailable (``_call``), not this

        def nearest(**only: Any) -> list[tuple[str, float]]:
            res = self._call(lambda: self._collection.query(
                query_embeddings=[list(embedding)], n_results=n, include=["distances"], **only))
            return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0], strict=True)]

        if among is not None:
            try:
                return nearest(ids=sorted(among))
            except ChromaError:
                pass  # an id without a vector: the metadata filter below
        return nearest(where=where or None)

    def _exact(self, embedding: Sequence[float], among: Collection[str], n: int) -> list[tuple[str, float]]:
        """The ``n`` of ``among`` nearest to ``embedding`` by cosine similarity, from their stored vectors."""
        import numpy as np

        if not among:
            return []
        got = self._call(lambda: self._collection.get(ids=sorted(among), include=["embeddings"]))
        if not got["ids"]:
            return []
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        query = np.asarray(embedding, dtype=np.float32)
        sims = vectors @ query / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(query), 1e-12)
        best = np.argsort(-sims, kind="stable")[:n]
        return [(got["ids"][i], float(sims[i])) for i in best]

    def ids(self) -> set[str]:
        """Every chunk id, read in pages as large as the collection: Chroma pages by OFFSET, so each page
        costs all the rows before it (at 100k chunks: 1.39 s in pages of 5,000, 0.22 s in one)."""
        out: set[str] = set()
        offset, step = 0, max(5000, self.count() + 1)
        while True:
            got = self._call(lambda o=offset: self._collection.get(include=[], limit=step, offset=o))["ids"]
            out.update(got)
            if len(got) < step:
                return out
            offset += step

    def count(self) -> int:
        return int(self._call(self._collection.count))


def _is_connection_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connect", "timeout", "timed out", "refused", "unreachable", "remoteprotocol"))


def make_store(chroma_path: Path, chroma_url: str | None, collection: str) -> ChromaStore:
    """Embedded store in the data directory, or the server at ``chroma_url``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if not url.hostname:
            raise UserError(f"--chroma-url {chroma_url!r} is not a URL like http://127.0.0.1:8000")
        try:
            client = chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https",
                                         settings=chroma_settings)
        except Exception as exc:
            if _is_connection_error(exc):
                raise StoreUnavailable(f"cannot reach the Chroma server at {chroma_url}; start it"
                                       " (chroma run --path DIR --host 127.0.0.1 --port P) or drop --chroma-url"
                                       ) from None
            raise
        return ChromaStore(client, collection, chroma_url)
    chroma_path.mkdir(parents=True, exist_ok=True)

    def embedded(fresh: bool = False) -> Any:
        if fresh:  # Chroma keeps one system per folder and process: drop ours, so the client is a new one
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(chroma_path), None)
        return chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)

    return ChromaStore(embedded(), collection, str(chroma_path), reopen=lambda: embedded(fresh=True))
