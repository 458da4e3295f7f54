"""The index of one data directory: ``Index`` owns its stores (the chunk table, Chroma, BM25, the
record manager and the embedder, each built on first use) and composes the two sides of the package:

- update, a pipeline: ``index.update`` (scan -> fingerprint -> prepare -> embed -> write, removal,
  keyword index, the update lock) with ``index.fingerprint``, ``index.prepare`` and ``index.write`` for its
  steps; ``index.place`` (files into the corpus folder: add, replace) and ``index.report``
  (``UpdateReport``, the update log, accounting of other processes' updates);
- read: ``index.status`` (status, verify, verify against the corpus, interrupted updates) and
  ``index.read`` (what's new, same-story groups).

Each method below is the function of the same name in those modules, with this index first."""

from __future__ import annotations

import threading
from typing import Any

from index import memory
from index import place as _place
from index import read as _read
from index import report as _report
from index import status as _status
from index import update as _update
from index.catalog import doc_id_for
from index.chunkdb import ChunkDB
from index.embed import Embedder, make_embedder
from index.errors import UserError
from index.fingerprint import SeenFiles, bulletin_sha, is_current
from index.keywords import KeywordIndex
from index.load import SUPPORTED
from index.place import ASK_TO_REPLACE, Placement, backup, safe_name
from index.report import UpdateReport
from index.settings import Settings
from index.store import ChromaStore, make_store
from index.update import ADD_WAITS_S


class Index:
    """Owns the stores of one data directory; built once per process and shared."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = ChunkDB(settings.db_path)
        self._embedder = embedder
        self._store: ChromaStore | None = None
        self._bm25: KeywordIndex | None = None
        self.seen = SeenFiles(self.db)  # corpus files' fingerprints, kept while their stat is unchanged
        self._record_manager: Any = None
        self._lazy = threading.RLock()  # concurrent first questions must not build a store twice
        self._regrouper: _read.Regrouper | None = None  # a serving process's (``warm(update=True)``)

    # lazily built parts -------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lazy:
            return self._make_embedder()

    def _make_embedder(self) -> Embedder:
        if self._embedder is None:
            embedder = make_embedder(self.settings.embed_backend, self.settings.embed_batch_size,
                                     models_dir=self.settings.models_dir)
            built_with = self.db.meta("embedder")
            if built_with and built_with != embedder.name and self.db.chunk_count():
                raise UserError(f"this index was built with the {built_with} embedder, not {embedder.name}: set"
                                f" embed_backend = \"{built_with.rsplit('/', 1)[-1].split('-')[0]}\" or run"
                                " 'stdnews index rebuild'")
            self._embedder = embedder
        return self._embedder

    @property
    def store(self) -> ChromaStore:
        with self._lazy:
            return self._make_store()

    def _make_store(self) -> ChromaStore:
        if self._store is None:
            self._store = make_store(self.settings.chroma_path, self.settings.chroma_url, self.settings.collection)
        return self._store

    @property
    def bm25(self) -> KeywordIndex:
        """The keyword index (BM25), in step with the chunk table at every search (index.keywords)."""
        with self._lazy:
            if self._bm25 is None:
                self._bm25 = KeywordIndex(self.settings.db_path, self.settings.bm25_path)
            return self._bm25

    @property
    def record_manager(self) -> Any:
        with self._lazy:
            return self._make_record_manager()

    def _make_record_manager(self) -> Any:
        if self._record_manager is None:
            from index.records import SQLiteRecordManager

            rm = SQLiteRecordManager(f"stdnews/{self.settings.collection}", self.settings.record_manager_path)
            rm.create_schema()
            self._record_manager = rm
        return self._record_manager

    def warm(self, update: bool = False) -> None:
        """Load what a question needs (model, the store's vector index, the keyword segment) and,
        with ``update``, what an update needs (LangChain's indexing API, the record manager, the
        duplicate bands in memory, a thread for the duplicate groups: ``regroup``): a running server or
        watcher should not make the first question or the first new bulletin wait for loading (at 100k
        chunks Chroma's first search or write in a process took 0.4-1.0 s, the bands' SQLite lookups
        1.8 s per bulletin)."""
        vector = self.embedder.embed_query("warm up")
        if self.store.count():
            self.store.query(vector, 1)  # Chroma loads its vector index on a collection's first use
        self.bm25.search("warm up", 1)
        if update:
            from langchain_core.indexing import index as _index  # noqa: F401

            from index import bandindex, sink  # noqa: F401

            _ = self.record_manager
            bandindex.hold(self.db, keep=True)
            self._regrouper = self._regrouper or _read.Regrouper(self.settings.db_path)
            memory.release()  # what loading freed (a server loaded ~50 MB it never uses again)

    # update side ------------------------------------------------------------
    update = _update.update
    rebuild = _update.rebuild
    repair = _update.repair
    add = _place.add
    place = _place.place
    check = _place.check
    account = _report.account

    # read side --------------------------------------------------------------
    whats_new = _read.whats_new
    duplicate_groups = _read.duplicate_groups
    fingerprint = _status.fingerprint
    status = _status.status
    summary = _status.summary
    headline = _status.headline
    indexed_corpus = _status.indexed_corpus
    verify = _status.verify
    verify_corpus = _status.verify_corpus

    def regroup(self) -> None:
        """The duplicate groups computed again after an update that changed pairs: here, or in a serving
        process on the ``Regrouper``'s thread."""
        if self._regrouper is not None:
            self._regrouper.request()
        else:
            _read.kept_groups(self)

    def interrupted(self) -> str | None:
        """Why the index looks half written by an update killed before it finished (None: it does not)."""
        return _status.interrupted(self.settings.home)


__all__ = ["ADD_WAITS_S", "ASK_TO_REPLACE", "SUPPORTED", "Index", "Placement", "UpdateReport", "backup",
           "bulletin_sha", "doc_id_for", "is_current", "safe_name"]
