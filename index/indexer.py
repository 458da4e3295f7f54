"""The index of one data directory: incremental updates through LangChain's
indexing API (record manager in SQLite), Chroma for vectors, BM25 beside it,
and the chunk table that ties them together."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from index import dedupe
from index.bm25 import BM25Index
from index.catalog import by_file, doc_id_for, entries_of, holders, meta_for, part_entry, part_id, read_catalog, scan
from index.chunk import CHUNKER_VERSION, chunk_bulletin
from index.chunkdb import ChunkDB
from index.embed import Embedder, make_embedder
from index.errors import LoadError, UpdateBusy, UserError
from index.load import SUPPORTED, load_parts, load_text
from index.model import Loaded, Part
from index.settings import Settings
from index.split import split_articles
from index.status import CorpusCheck, check_corpus, interrupted
from index.store import ChromaStore, make_store

ADD_WAITS_S = 600.0  # how long adding files waits for an update another process is running
ASK_TO_REPLACE = "ask to replace it"  # how the refusal of a taken name ends; callers say how


@dataclass
class UpdateReport:
    """What one update did; printed by the CLI and kept in the update log."""

    kind: str = "update"
    files: int = 0
    unchanged: int = 0
    added_docs: list[str] = field(default_factory=list)
    changed_docs: list[str] = field(default_factory=list)
    removed_docs: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # read, with a caveat (a charset guessed)
    embedded: int = 0
    deleted: int = 0
    kept: int = 0
    new_articles: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def absorb(self, other: UpdateReport) -> None:
        """Add what ``other`` (another process's update) did to this report."""
        if not self.files:  # a report made only of others' updates takes their counts
            self.files, self.unchanged = other.files, other.unchanged
        for name in ("added_docs", "changed_docs", "removed_docs", "failed", "notes", "new_articles"):
            getattr(self, name).extend(x for x in getattr(other, name) if x not in getattr(self, name))
        self.embedded += other.embedded
        self.deleted += other.deleted
        self.kept += other.kept
        self.seconds += other.seconds

    @classmethod
    def from_log(cls, entry: dict[str, Any]) -> UpdateReport:
        """The report an update stored in the update log (``ChunkDB.updates``)."""
        names = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in entry.items() if k in names})
        report.failed = [(path, why) for path, why in report.failed]
        report.notes = [(path, why) for path, why in report.notes]
        return report

    def summary(self) -> str:
        parts = [f"{self.files} files: {len(self.added_docs)} new, {len(self.changed_docs)} changed,"
                 f" {len(self.removed_docs)} removed, {self.unchanged} unchanged"]
        parts.append(f"embedded {self.embedded} chunks, deleted {self.deleted}, kept {self.kept}")
        if self.failed:
            parts.append(f"{len(self.failed)} file(s) failed and were left as they were in the index")
        return "; ".join(parts) + f" ({self.seconds:.1f} s)"


class Index:
    """Owns the stores of one data directory; built once per process and shared."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = ChunkDB(settings.db_path)
        self._embedder = embedder
        self._store: ChromaStore | None = None
        self._bm25: BM25Index | None = None
        self._bm25_gen: str | None = None
        self._record_manager: Any = None
        self._lazy = threading.RLock()  # concurrent first questions must not build a store twice

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
    def bm25(self) -> BM25Index:
        """The saved BM25 index, reloaded when another process has written a newer one."""
        current = self.settings.bm25_path / "CURRENT"
        gen = current.read_text().strip() if current.is_file() else None
        with self._lazy:
            if self._bm25 is None or gen != self._bm25_gen:
                self._bm25, self._bm25_gen = BM25Index.load(self.settings.bm25_path), gen
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
        """Load what a question needs (model, store, BM25) and, with ``update``, what an update
        needs (LangChain's indexing API, the record manager): a running server or watcher should
        not make the first question or the first new bulletin wait for imports."""
        self.embedder.embed_query("warm up")
        _ = self.store, self.bm25
        if update:
            from langchain_core.indexing import index as _index  # noqa: F401

            from index import sink  # noqa: F401

            _ = self.record_manager

    # updates ----------------------------------------------------------------
    def update(self, corpus: Path | None = None, progress: bool = True, kind: str = "update",
               wait: float = 0.0) -> UpdateReport:
        """Bring the index in line with the corpus folder; unchanged files cost nothing. While another
        process updates, wait up to ``wait`` seconds for it, then refuse (``UpdateBusy``)."""
        with _UpdateLock(self.settings.home, wait):
            return self._update(corpus or self.settings.corpus, progress, kind)

    def rebuild(self, corpus: Path | None = None, progress: bool = True) -> UpdateReport:
        """Drop everything and index the corpus from scratch."""
        with _UpdateLock(self.settings.home):
            rm = self.record_manager
            while keys := rm.list_keys(limit=5000):
                rm.delete_keys(keys)
            self.store.delete(sorted(self.store.ids()))
            self.db.delete_chunks(sorted(self.db.chunk_ids()))
            for b in self.db.bulletins():
                self.db.delete_bulletin(b["doc_id"])
            self.db.clear_articles()
            return self._update(corpus or self.settings.corpus, progress, "rebuild")

    def add(self, files: Sequence[Path], corpus: Path | None = None, progress: bool = True,
            names: Sequence[str] | None = None, replace: bool = False, replace_hint: str = ASK_TO_REPLACE,
            before_copy: Callable[[list[Placement]], None] | None = None) -> UpdateReport:
        """Copy files into the corpus folder (``place``), then update; an update already running
        (a watcher's, say) is waited for, since it may be indexing these very files."""
        corpus = corpus or self.settings.corpus
        since = time.time()
        placed, refused = self.place(files, corpus, names, replace, replace_hint, before_copy)
        report = self.update(corpus, progress, kind="add", wait=ADD_WAITS_S)
        self.account(report, placed, since)
        report.failed[:0] = refused
        return report

    def account(self, report: UpdateReport, doc_ids: Sequence[str], since: float) -> set[str]:
        """Add to ``report`` the updates of other processes since ``since`` that handled these
        bulletins (a watcher that sees a new file may index it before this process gets the lock);
        returns those that no update has handled yet."""
        def handled(r: UpdateReport) -> set[str]:
            failed = {self._doc_id(path) for path, _ in r.failed}
            done = {*r.added_docs, *r.changed_docs, *r.removed_docs}  # an e-mail's bulletins stand for its file
            return {*done, *(h for d in done for h in holders(d)), *failed}

        missing = set(doc_ids) - handled(report)
        for entry in reversed(self.db.updates(50) if missing else []):  # oldest first
            other = UpdateReport.from_log(entry)
            if entry["at"] >= since and handled(other) & missing:
                report.absorb(other)
                missing -= handled(other)
        return missing

    def _doc_id(self, path: str) -> str:
        try:
            return doc_id_for(self.settings.corpus.resolve(), Path(path).resolve())
        except ValueError:  # not a corpus file (a refused upload)
            return path

    def place(self, files: Sequence[Path], corpus: Path | None = None, names: Sequence[str] | None = None,
              replace: bool = False, replace_hint: str = ASK_TO_REPLACE,
              before_copy: Callable[[list[Placement]], None] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
        """Copy files into the corpus folder, each atomically; returns their doc_ids and the refused
        files with why. A file is refused when its type is not allowed, it is too large or
        unreadable, the corpus already holds the same content, or a bulletin of the same name (any
        extension) is there and ``replace`` is not given; with it, the old file moves to
        ``<home>/backups``. ``names`` are the names users gave (uploads arrive under temporary names).
        ``before_copy`` sees the accepted files before any is copied (catalog entries are written there)."""
        corpus = corpus or self.settings.corpus
        plan, refused = self.check(files, corpus, names, replace, replace_hint)
        if before_copy and plan:
            before_copy(plan)
        placed: list[str] = []
        for item in plan:
            if item.source.resolve() != item.target.resolve():
                tmp = item.target.with_name(f".{item.target.name}.part")
                shutil.copyfile(item.source, tmp)
                for old in item.replaces:  # the file the new one overwrites is copied first: no gap
                    if old.resolve() == item.target.resolve():
                        backup(self.settings.home, corpus, old, keep=True)
                os.replace(tmp, item.target)  # atomic: the corpus never holds half a file
                for old in item.replaces:  # then the same name under other extensions leaves
                    if old.resolve() != item.target.resolve():
                        backup(self.settings.home, corpus, old)
            placed.append(item.doc_id)
        return placed, refused

    def check(self, files: Sequence[Path], corpus: Path | None = None, names: Sequence[str] | None = None,
              replace: bool = False, replace_hint: str = ASK_TO_REPLACE) -> tuple[list[Placement],
                                                                                   list[tuple[str, str]]]:
        """Which files ``place`` would copy in, and where (nothing is written); the refused ones with why."""
        corpus = corpus or self.settings.corpus
        corpus.mkdir(parents=True, exist_ok=True)
        plan: list[Placement] = []
        refused: list[tuple[str, str]] = []
        present, skipped = scan(corpus)
        by_doc: dict[str, list[Path]] = {d: [p] for d, p in present.items()}
        for path, _ in _clashing(corpus, present, skipped):
            by_doc[doc_id_for(corpus, path)].append(path)
        known = {hashlib.sha256(p.read_bytes()).hexdigest(): doc_id for doc_id, p in present.items()}
        for i, f in enumerate(files):
            shown = names[i] if names else str(f)
            try:
                name = safe_name(names[i] if names else f.name)
                if not f.is_file():
                    raise LoadError(shown, "does not exist or is not a file")
                _load_checked(f, Path(name).suffix)
                target = corpus / name
                doc_id = doc_id_for(corpus, target)
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
                if any(p.doc_id == doc_id for p in plan):
                    raise LoadError(shown, f"has the same name ('{doc_id}') as another file added with it;"
                                           " add one of them")
                if digest in known and not (replace and known[digest] == doc_id):
                    raise LoadError(shown, f"is already in the corpus as '{known[digest]}'; nothing to add")
                taken = [p for p in by_doc.get(doc_id, []) if p.resolve() != f.resolve()]
                if taken and not replace:
                    raise LoadError(shown, f"has the same name as the bulletin '{doc_id}' in the corpus"
                                           f" ({', '.join(p.name for p in taken)}); nothing was changed;"
                                           f" {replace_hint}")
            except LoadError as exc:
                refused.append((shown, exc.reason))
                continue
            same = digest in known and known[digest] == doc_id and present[doc_id].name == target.name
            plan.append(Placement(f, shown, target, doc_id, [] if same else taken, bool(taken)))
            known[digest] = doc_id
        return plan, refused

    def _update(self, corpus: Path, progress: bool, kind: str) -> UpdateReport:
        t0 = time.perf_counter()
        report = UpdateReport(kind=kind)
        files, skipped = scan(corpus)
        if self.db.meta("corpus") != str(corpus.resolve()):  # what `status --verify` compares against
            self.db.set_meta("corpus", str(corpus.resolve()))
        known = self.db.sha_by_doc()
        clashes = self._clashes(corpus, files, skipped, report)
        report.failed.extend((str(p), why) for p, why in skipped if p not in clashes)
        catalog = read_catalog(corpus)
        report.files = len(files)
        dedupe.migrate(self.db)

        docs: list[Any] = []  # langchain_core Documents
        fresh: list[dict[str, Any]] = []
        writer: _Writer | None = None  # made at the first changed file: a no-op update loads nothing
        held = by_file(known, {*files, *(doc_id_for(corpus, p) for p in clashes)})  # bulletins by file
        described = by_file(catalog, files)  # catalog entries by file
        stale: list[str] = []  # bulletins a changed file no longer holds
        try:
            for doc_id, path in _progress(files.items(), progress and len(files) > 50, "reading"):
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    report.failed.append((str(path), f"cannot be read ({exc.strerror or exc})"))
                    continue
                fp = _fingerprint(data, entries_of(catalog, doc_id, path.suffix, described), self.settings)
                owned = held.get(doc_id, [])
                if is_current([known[d] for d in owned], fp):
                    report.unchanged += 1
                    continue
                try:
                    loaded = load_parts(path)
                except LoadError as exc:
                    report.failed.append((str(path), exc.reason))
                    continue
                parts, kept = self._parts(doc_id, path, loaded, files, owned, report)
                if not parts:
                    continue
                sha = bulletin_sha(fp, len(parts) + len(kept))
                for bulletin_id, part in parts.items():
                    file_docs, record = self._prepare(bulletin_id, path, part.text, sha,
                                                      part_entry(catalog, doc_id, part), report)
                    docs.extend(file_docs)
                    fresh.append(record)
                    writer = writer or self._writer(progress)
                    writer.plan(file_docs)  # the model starts on these while the next files are read
                fresh.extend({**old, "sha256": sha, "offsets": []} for old in kept)
                stale.extend(d for d in owned if d not in parts and d not in {k["doc_id"] for k in kept})

            removed = sorted({*held.get(None, []), *stale})
            changed = bool(docs or removed)
            dirty = self.settings.home / "bm25.dirty"  # set while the stores may be ahead of BM25
            if changed:
                dirty.touch()
            if writer:
                writer.sink.prefetch.finish()  # type: ignore[union-attr]
            if docs and writer:
                result = writer.index(docs, writer.rm, writer.sink, cleanup="scoped_full", source_id_key="doc_id",
                                  key_encoder=lambda d: d.metadata["chunk_id"],
                                  batch_size=self.settings.index_batch_size)
                report.embedded, report.deleted = writer.sink.embedded, result["num_deleted"]
                if writer.sink.embedded:  # which model the vectors come from: queries must use the same
                    self.db.set_meta("embedder", self.embedder.name)
                report.kept = result["num_skipped"]
                for rec in fresh:
                    self.db.set_offsets(rec.pop("offsets"))
                    self.db.put_bulletin(rec)
        finally:
            if writer:
                writer.close()  # stops the embedding thread, also when the update failed
        for doc_id in removed:
            keys = self.record_manager.list_keys(group_ids=[doc_id])
            self.store.delete(keys)
            self.db.delete_chunks(keys)
            self.record_manager.delete_keys(keys)
            stale = sorted(self.db.chunk_ids(doc_id))  # rows a crash may have orphaned
            self.store.delete(stale)
            self.db.delete_chunks(stale)
            self.db.delete_articles(doc_id)
            self.db.delete_bulletin(doc_id)
            report.deleted += len(keys)
        report.removed_docs = removed
        if self.settings.crash_at == "before-bm25":
            _kill_self()
        if changed or dirty.exists() or not (self.settings.bm25_path / "CURRENT").is_file():
            BM25Index.from_tokens(*self.db.bm25_tokens()).save(self.settings.bm25_path)
            dirty.unlink(missing_ok=True)
        report.seconds = time.perf_counter() - t0
        if changed or report.failed or kind != "update":
            self.db.log_update(kind, {**asdict(report), "fingerprint": self.fingerprint()})
        return report

    def _clashes(self, corpus: Path, files: dict[str, Path], skipped: list[tuple[Path, str]],
                 report: UpdateReport) -> set[Path]:
        """Files sharing one doc_id (``x.txt`` beside ``x.md``): that doc_id leaves this update (its
        indexed version, if any, is kept as it was) and one error names all its files; returns them."""
        shared: dict[str, list[Path]] = {}
        for path, _ in _clashing(corpus, files, skipped):
            doc_id = doc_id_for(corpus, path)
            if doc_id not in shared:
                shared[doc_id] = [files.pop(doc_id)]
            shared[doc_id].append(path)
        for doc_id, paths in shared.items():
            paths.sort(key=lambda p: (_mtime(p), p.name))  # the newest last: most likely the newcomer
            indexed = self.db.bulletin(doc_id)
            kept = (f"the index keeps '{doc_id}' as it was indexed before (from {Path(indexed['path']).name})"
                    if indexed else "neither is indexed")
            report.failed.append((str(paths[-1]), f"has the same name as {' and '.join(p.name for p in paths[:-1])}"
                                                  f" (bulletin '{doc_id}'); {kept}; rename or remove one of them"))
        return {p for paths in shared.values() for p in paths}

    def _parts(self, doc_id: str, path: Path, loaded: Loaded, files: dict[str, Path], owned: list[str],
               report: UpdateReport) -> tuple[dict[str, Part], list[dict[str, Any]]]:
        """The bulletins a changed file now holds, by doc_id, and the indexed records of those it held
        and can no longer read (kept as they were, like a refused file); failures and caveats go into
        the report. A bulletin whose doc_id names another corpus file is refused."""
        report.notes.extend((str(path), note) for note in loaded.notes)
        parts: dict[str, Part] = {}
        unread: set[str] = set()
        for part in loaded.parts:
            bulletin_id = part_id(doc_id, part.key)
            if bulletin_id != doc_id and bulletin_id in files:
                report.failed.append((str(path), f"holds a bulletin named '{bulletin_id}' like the file"
                                                 f" {files[bulletin_id].name}; rename one of them"))
                unread.add(bulletin_id)
            else:
                parts[bulletin_id] = part
        for key, why in loaded.failed:
            report.failed.append((str(path), why))
            unread.add(part_id(doc_id, key))
        kept = [self.db.bulletin(d) for d in owned if d in unread]
        return parts, [k for k in kept if k]

    def _prepare(self, doc_id: str, path: Path, text: str, fp: str, entry: dict[str, Any] | None,
                 report: UpdateReport) -> tuple[list[Any], dict[str, Any]]:
        """A changed bulletin: its chunks as LangChain Documents and its record for the bulletin
        table; its new articles go into the report and its near-duplicate links into the chunk table."""
        from langchain_core.documents import Document  # imported only once a file has changed

        meta = meta_for(doc_id, text, entry)
        articles = split_articles(text, meta.title, meta.date)
        chunks = chunk_bulletin(meta, text, articles, self.settings.chunk_max_chars, self.settings.chunk_min_chars)
        old = self.db.bulletin(doc_id)
        (report.changed_docs if old else report.added_docs).append(doc_id)
        old_titles = {a["title"] for a in old["articles"]} if old else set()
        report.new_articles.extend(
            {"doc_id": doc_id, "title": a.title, "date": a.date, "publisher": meta.publisher,
             "lead": _lead(text[a.start:a.end], a.title)}
            for a in articles if a.title not in old_titles)
        dedupe.link(self.db, doc_id, [dedupe.article(doc_id, a.index, text[a.start:a.end]) for a in articles])
        docs = [Document(page_content=c.text, metadata={**c.metadata(), "start": c.start, "end": c.end})
                for c in chunks]
        return docs, {**asdict(meta), "path": str(path), "sha256": fp, "text": text,
                      "articles": [asdict(a) for a in articles],
                      "offsets": [(c.chunk_id, c.start, c.end) for c in chunks]}

    def _writer(self, progress: bool) -> _Writer:
        """The write side of an update: the indexing API's sink (embedding ahead of the writes),
        the record manager, a progress bar, and the fault injection of ``settings.crash_at``."""
        # imported here, before the embedding thread starts importing its model's libraries:
        # two threads importing the same package at once can see it half initialised
        from langchain_core.indexing import index as lc_index

        from index.sink import IndexSink

        crash = self.settings.crash_at
        writer = _Writer(None, None, self.record_manager, progress, lc_index)
        on_embedded = _CrashAfter(writer.embedded, "__call__") if crash == "embedding" else writer.embedded
        store = _CrashAfter(self.store, "upsert") if crash == "after-chroma" else self.store
        writer.rm = _CrashAfter(self.record_manager, "update") if crash == "record-manager" else self.record_manager
        writer.sink = IndexSink(store, self.db, lambda: self.embedder, on_embedded)  # type: ignore[arg-type]
        return writer

    def whats_new(self, since: str | None = None) -> list[dict[str, Any]]:
        """Articles that updates added: those since ``since`` (YYYY-MM-DD), else the last update's.
        Only articles still in the index are listed, newest first."""
        from datetime import datetime

        if since:
            try:
                cutoff = datetime.fromisoformat(since).timestamp()
            except ValueError:
                raise UserError(f"--since {since!r} is not a date; use YYYY-MM-DD") from None
            logs = [u for u in self.db.updates(10_000) if u["at"] >= cutoff]
        else:
            logs = [u for u in self.db.updates(10_000) if u.get("new_articles")][:1]
        present = {b["doc_id"] for b in self.db.bulletins()}
        seen: set[tuple[str, str]] = set()
        out = []
        for log in logs:
            for art in log.get("new_articles", []):
                key = (art["doc_id"], art["title"])
                if art["doc_id"] in present and key not in seen:
                    seen.add(key)
                    out.append({**art, "added_at": log["at"]})
        return sorted(out, key=lambda a: (a["date"] or "", a["added_at"]), reverse=True)

    def duplicate_groups(self) -> list[list[dict[str, Any]]]:
        """Groups of articles that tell the same story, with their headlines."""
        titles = {(b["doc_id"], a["index"]): (a["title"], a["date"], b["publisher"])
                  for b in self.db.bulletins() for a in b["articles"]}
        out = []
        for group in dedupe.groups(self.db.dup_pairs()):
            out.append([])
            for doc_id, art in group:
                title, date, publisher = titles.get((doc_id, art), ("?", None, None))
                out[-1].append({"doc_id": doc_id, "article": art, "title": title, "date": date,
                                "publisher": publisher})
        return out

    # status -----------------------------------------------------------------
    def fingerprint(self) -> str:
        """Identifies the indexed content: a hash of the sorted chunk ids."""
        ids = sorted(self.db.chunk_ids())
        return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]

    def status(self) -> dict[str, Any]:
        bulletins = self.db.bulletins()
        last = self.db.updates(1)
        return {
            "home": str(self.settings.home),
            "store": self.settings.chroma_url or str(self.settings.chroma_path),
            "bulletins": len(bulletins),
            "articles": sum(len(b["articles"]) for b in bulletins),
            "chunks": sum(b["chunks"] for b in bulletins),
            "fingerprint": self.fingerprint(),
            "last_update": last[0] if last else None,
            "duplicates": self.duplicate_groups(),
            "documents": bulletins,
        }

    def indexed_corpus(self) -> Path:
        """The corpus folder the last update read (``settings.corpus`` before any, or when it is gone)."""
        recorded = self.db.meta("corpus")
        return Path(recorded) if recorded and Path(recorded).is_dir() else self.settings.corpus

    def interrupted(self) -> str | None:
        """Why the index looks half written by an update killed before it finished (None: it does not)."""
        return interrupted(self.settings.home)

    def repair(self, progress: bool = False) -> UpdateReport | None:
        """The crash repair of ``index update``: when the last update was interrupted, update again from
        the corpus it read (written parts are kept, the rest is indexed, BM25 rebuilt); None: nothing to do."""
        if self.interrupted() is None:
            return None
        return self.update(self.indexed_corpus(), progress=progress, kind="repair", wait=ADD_WAITS_S)

    def verify_corpus(self, corpus: Path | None = None) -> CorpusCheck:
        """``index.status.CorpusCheck`` of ``corpus`` (default: the one the last update read), with an
        interrupted update as a mismatch: what ``verify`` cannot see, since the stores may all agree."""
        check = check_corpus(self, corpus or self.indexed_corpus())
        if why := self.interrupted():
            check.mismatches.insert(0, why)
        return check

    def verify(self) -> list[str]:
        """Where record manager, Chroma, BM25 and the chunk table disagree (empty: all agree)."""
        sets = {
            "record manager": set(self.record_manager.list_keys()),
            "Chroma": self.store.ids(),
            "BM25": set(self.bm25.ids),
            "chunk table": self.db.chunk_ids(),
        }
        problems = []
        ref_name, ref = "record manager", sets["record manager"]
        for name, ids in sets.items():
            if name == ref_name:
                continue
            if missing := ref - ids:
                problems.append(f"{name} lacks {len(missing)} chunk(s) the {ref_name} holds, e.g. {sorted(missing)[0]}")
            if extra := ids - ref:
                problems.append(f"{name} holds {len(extra)} chunk(s) the {ref_name} does not, e.g. {sorted(extra)[0]}")
        if len(self.bm25.ids) != len(set(self.bm25.ids)):
            problems.append("BM25 holds duplicate chunk ids")
        return problems


@dataclass
class _Writer:
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


@dataclass
class Placement:
    """One file ``Index.place`` will copy into the corpus: from where, to where, under which doc_id,
    and the corpus files of that doc_id it replaces (moved to the backups folder first)."""

    source: Path
    shown: str
    target: Path
    doc_id: str
    replaces: list[Path]
    replacing: bool  # a bulletin of this name was in the corpus (even when its file stays as it is)


def backup(home: Path, corpus: Path, path: Path, keep: bool = False) -> Path:
    """Move (with ``keep``: copy) a corpus file to ``<home>/backups/<doc_id>-<timestamp><ext>``;
    returns where it went."""
    folder = home / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{doc_id_for(corpus, path).replace('/', '__')}-{time.strftime('%Y%m%dT%H%M%S')}"
    target, n = folder / f"{stem}{path.suffix}", 1
    while target.exists():
        target, n = folder / f"{stem}-{n}{path.suffix}", n + 1
    if keep:
        shutil.copy2(path, target)
    else:
        shutil.move(path, target)
    return target


def _clashing(corpus: Path, files: dict[str, Path], skipped: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """The files ``scan`` skipped because another file already has their doc_id."""
    root = corpus.resolve()
    return [(p, why) for p, why in skipped
            if p.suffix.lower() in SUPPORTED and not (p.is_symlink() and not p.resolve().is_relative_to(root))
            and doc_id_for(corpus, p) in files]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _load_checked(path: Path, suffix: str) -> None:
    """``load_text``, with any parser failure it lets through as the file's one-line error."""
    try:
        load_text(path, suffix=suffix)
    except LoadError:
        raise
    except Exception:  # a parser's own error (a malformed PDF, say): this file is refused, not the upload
        raise LoadError(path, f"cannot be read as a {suffix} file") from None


def safe_name(name: str) -> str:
    """A file name safe to create in the corpus: no folders, no ``..``, no control or shell-special
    characters (letters of any script are kept); the extension must be allowed."""
    import re
    import unicodedata

    if "/" in name.replace("\\", "/").rstrip("/") and ".." in name.replace("\\", "/").split("/"):
        raise LoadError(name, "a path with '..' is refused; give a plain file name")
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in SUPPORTED:
        raise LoadError(name, f"unsupported file type '.{ext if dot else ''}' (use {', '.join(SUPPORTED)})")
    stem = re.sub(r"[^\w.\- ]+", "-", stem).strip(" .-")[:120]
    if not stem:
        raise LoadError(name, "has no usable file name")
    return f"{stem}.{ext.lower()}"


def bulletin_sha(fp: str, n: int) -> str:
    """What each bulletin record of a file of ``n`` bulletins stores: the file's fingerprint, with the
    count when there are several, so that a file whose records were not all written reads as changed."""
    return fp if n == 1 else f"{fp}:{n}"


def is_current(shas: list[str], fp: str) -> bool:
    """Whether the records of a file's bulletins (their ``sha256``) all come from the version ``fp``."""
    return bool(shas) and all(s == bulletin_sha(fp, len(shas)) for s in shas)


def _fingerprint(data: bytes, entry: dict[str, Any] | None, settings: Settings) -> str:
    h = hashlib.sha256(data)
    h.update(json.dumps([entry or {}, CHUNKER_VERSION, settings.chunk_max_chars, settings.chunk_min_chars],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


def _lead(body: str, title: str) -> str:
    """First sentence of an article after its headline."""
    rest = body.strip()
    if rest.startswith(title):
        rest = rest[len(title):].strip()
    first = rest.split("\n", 1)[0].strip()
    end = first.find(". ")
    return first[: end + 1] if 0 < end < 300 else first[:300]


def _progress(items: Iterable[Any], show: bool, desc: str) -> Iterable[Any]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk")


class _CrashAfter:
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
            _kill_self()
            return result

        return call


def _kill_self() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


class _UpdateLock:
    """One update at a time per data directory; a second one waits up to ``wait`` seconds,
    then refuses with a clear message."""

    def __init__(self, home: Path, wait: float = 0.0) -> None:
        self.path = home / "update.lock"
        self.wait = wait

    def __enter__(self) -> None:
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the lock's lifetime
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self.fh.seek(0)
                pid = self.fh.read().strip() or "?"
                self.fh.close()
                raise UpdateBusy(f"another index update is running (pid {pid}); wait for it to finish") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    def __exit__(self, *_: object) -> None:
        self.fh.seek(0)
        self.fh.truncate()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


__all__ = ["ASK_TO_REPLACE", "SUPPORTED", "Index", "Placement", "UpdateReport", "backup", "doc_id_for"]
