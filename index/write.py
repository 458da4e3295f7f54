"""Update steps 4 and 5, embed and write: the documents of changed files go through LangChain's
indexing API (record manager) into ``index.sink.IndexSink``, which embeds them ahead of the writes
and stores Chroma and the chunk table together; bulletins that left the corpus are removed from
every store. The fault injection of ``settings.crash_at`` lives here (the SIGKILL tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.indexer import Index
    from index.report import UpdateReport


@dataclass
class Writer:
    sink: Any  # index.sink.IndexSink
    rm: Any  # the record manager handed to the indexing API
    records: Any  # the same, without fault injection
    progress: bool
    index: Any  # langchain_core.indexing.index
    bar: Any = None

    def plan(self, documents: list[Any]) -> None:
        """Queue for embedding the documents of one file that the record manager does not hold yet."""
        ids = [d.metadata["chunk_id"] for d in documents]
        new = [d for d, known in zip(documents, self.records.exists(ids), strict=True) if not known]
        if new and self.progress:
            self.bar = self.bar or _bar(0, "embedding")
            self.bar.total += len(new)
        self.sink.plan(new)

    def embedded(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.sink.prefetch:
            self.sink.prefetch.close()
        if self.bar is not None:
            self.bar.close()


def make_writer(index: Index, progress: bool) -> Writer:
    """The write side of an update: the indexing API's sink (embedding ahead of the writes),
    the record manager, a progress bar, and the fault injection of ``settings.crash_at``."""
    # imported here, before the embedding thread starts importing its model's libraries:
    # two threads importing the same package at once can see it half initialised
    from langchain_core.indexing import index as lc_index

    from index.sink import IndexSink

    crash = index.settings.crash_at
    writer = Writer(None, None, index.record_manager, progress, lc_index)
    on_embedded = CrashAfter(writer.embedded, "__call__") if crash == "embedding" else writer.embedded
    store = CrashAfter(index.store, "upsert") if crash == "after-chroma" else index.store
    writer.rm = CrashAfter(index.record_manager, "update") if crash == "record-manager" else index.record_manager
    writer.sink = IndexSink(store, index.db, lambda: index.embedder, on_embedded)  # type: ignore[arg-type]
    return writer


def write(index: Index, writer: Writer, docs: list[Any], fresh: list[dict[str, Any]], report: UpdateReport) -> None:
    """Index ``docs`` (the chunks of every changed bulletin) and then store the bulletins' records
    ``fresh``; what was embedded, deleted and kept goes into the report."""
    result = writer.index(docs, writer.rm, writer.sink, cleanup="scoped_full", source_id_key="doc_id",
                          key_encoder=lambda d: d.metadata["chunk_id"],
                          batch_size=index.settings.index_batch_size)
    index.store.check_last_write()
    report.embedded, report.deleted = writer.sink.embedded, result["num_deleted"]
    report.embed_seconds = writer.sink.embed_seconds
    if writer.sink.embedded:  # which model the vectors come from: queries must use the same
        index.db.set_meta("embedder", index.embedder.name)
    report.kept = result["num_skipped"]
    with index.db.batch():  # after every chunk is stored: one commit, not two per bulletin
        for rec in fresh:
            index.db.set_offsets(rec.pop("offsets"))
            index.db.put_bulletin(rec)


def remove(index: Index, doc_ids: list[str], report: UpdateReport) -> None:
    """Delete these bulletins from the record manager, Chroma, the chunk table and the bulletin table."""
    for doc_id in doc_ids:
        keys = index.record_manager.list_keys(group_ids=[doc_id])
        index.store.delete(keys)
        index.db.delete_chunks(keys)
        index.record_manager.delete_keys(keys)
        stale = sorted(index.db.chunk_ids(doc_id))  # rows a crash may have orphaned
        index.store.delete(stale)
        index.db.delete_chunks(stale)
        index.db.delete_articles(doc_id)
        index.db.delete_bulletin(doc_id)
        report.deleted += len(keys)


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk")


class CrashAfter:
    """Fault injection (``settings.crash_at``): SIGKILL right after the first call of ``method``."""

    def __init__(self, target: Any, method: str) -> None:
        self._target, self._method = target, method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("__call__")(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = self._target if name == "__call__" else getattr(self._target, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            kill_self()
            return result

        return call


def kill_self() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
