"""The update pipeline: scan the corpus folder -> fingerprint each file (``index.fingerprint``;
unchanged files stop here) -> prepare a changed file's bulletins and chunks (``index.prepare``)
-> embed and write them (``index.write``: the model starts while the next files are read) ->
remove what left the corpus -> log the update (``index.report``) -> a new main keyword segment
when enough has changed (``index.keywords``: the chunk table's triggers keep it in step meanwhile).
One update at a time per data directory (``UpdateLock``)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import dedupe
from index.catalog import (
    CATALOG,
    by_file,
    doc_id_for,
    entries_of,
    holders,
    links_out,
    of_files,
    part_entry,
    read_catalog,
    scan,
    scan_files,
    supported,
)
from index.errors import LoadError, UpdateBusy
from index.fingerprint import bulletin_sha, is_current
from index.load import load_parts
from index.prepare import parts_of, prepare
from index.report import UpdateReport
from index.write import Writer, kill_self, make_writer, remove, write

if TYPE_CHECKING:
    from index.indexer import Index

ADD_WAITS_S = 600.0  # how long adding files waits for an update another process is running


def update(index: Index, corpus: Path | None = None, progress: bool = True, kind: str = "update",
           wait: float = 0.0, only: Iterable[Path] | None = None) -> UpdateReport:
    """Bring the index in line with the corpus folder; unchanged files cost nothing. While another
    process updates, wait up to ``wait`` seconds for it, then refuse (``UpdateBusy``). With ``only``,
    just these corpus files, without scanning the rest (the files ``index add`` handed to a running
    watcher: at 100k chunks the scan and the other files' fingerprints were half of its update);
    where ``catalog.scan_files`` cannot tell them apart from the rest, the whole corpus as usual."""
    with UpdateLock(index.settings.home, wait):
        return run(index, corpus or index.settings.corpus, progress, kind, only)


def rebuild(index: Index, corpus: Path | None = None, progress: bool = True) -> UpdateReport:
    """Drop everything and index the corpus from scratch."""
    with UpdateLock(index.settings.home):
        rm = index.record_manager
        while keys := rm.list_keys(limit=5000):
            rm.delete_keys(keys)
        index.store.delete(sorted(index.store.ids()))
        index.db.delete_chunks(sorted(index.db.chunk_ids()))
        for b in index.db.bulletins():
            index.db.delete_bulletin(b["doc_id"])
        index.db.clear_articles()
        return run(index, corpus or index.settings.corpus, progress, "rebuild")


def repair(index: Index, progress: bool = False) -> UpdateReport | None:
    """The crash repair of ``index update``: when the last update was interrupted, update again from
    the corpus it read (written parts are kept, the rest is indexed); None: nothing to do."""
    if index.interrupted() is None:
        return None
    return update(index, index.indexed_corpus(), progress=progress, kind="repair", wait=ADD_WAITS_S)


def run(index: Index, corpus: Path, progress: bool, kind: str, only: Iterable[Path] | None = None) -> UpdateReport:
    """One update, the update lock held."""
    t0 = time.perf_counter()
    db, settings = index.db, index.settings
    report = UpdateReport(kind=kind)
    named = None if only is None else scan_files(corpus, only)
    files, skipped = (named, []) if named is not None else scan(corpus)
    if db.meta("corpus") != str(corpus.resolve()):  # what `status --verify` compares against
        db.set_meta("corpus", str(corpus.resolve()))
    known = db.sha_by_doc()
    shared = clashes(index, corpus, files, skipped, report)
    report.failed.extend((str(p), why) for p, why in skipped if p not in shared)
    catalog = read_catalog(corpus, index.seen.memo)
    dedupe.migrate(db)

    docs: list[Any] = []  # langchain_core Documents
    fresh: list[dict[str, Any]] = []
    writer: Writer | None = None  # made at the first changed file: a no-op update loads nothing
    if named is not None:  # the other files' bulletins stay as they are: never removed, their files counted
        # unchanged (one per bulletin name before any '#': a file named with a '#' may be counted twice)
        others = {holders(d)[-1] for d in known} - set(files)
        report.files = report.unchanged = len(others)
        known, catalog = ({d: m[d] for d in of_files(m, files)} for m in (known, catalog))
    report.files += len(files)
    held = by_file(known, {*files, *(doc_id_for(corpus, p) for p in shared)})  # bulletins by file
    described = by_file(catalog, files)  # catalog entries by file
    stale: list[str] = []  # bulletins a changed file no longer holds
    try:
        with db.batch():  # bulletins' articles and duplicate links: committed in batches, not one by one
            for doc_id, path in _progress(files.items(), progress and len(files) > 50, "reading"):
                try:
                    fp, data = index.seen.fingerprint(path, entries_of(catalog, doc_id, path.suffix, described),
                                                      settings)
                    owned = held.get(doc_id, [])
                    if is_current([known[d] for d in owned], fp):
                        report.unchanged += 1
                        continue
                    data = data if data is not None else path.read_bytes()
                except OSError as exc:
                    report.failed.append((str(path), f"cannot be read ({exc.strerror or exc})"))
                    continue
                try:
                    loaded = load_parts(path, data=data)
                except LoadError as exc:
                    report.failed.append((str(path), exc.reason))
                    continue
                parts, kept = parts_of(db, doc_id, path, loaded, files, owned, report)
                if not parts:
                    continue
                sha = bulletin_sha(fp, len(parts) + len(kept))
                for bulletin_id, part in parts.items():
                    file_docs, record = prepare(db, settings, bulletin_id, path, part.text, sha,
                                                part_entry(catalog, doc_id, part), report)
                    docs.extend(file_docs)
                    fresh.append(record)
                    writer = writer or make_writer(index, progress)
                    writer.plan(file_docs)  # the model starts on these while the next files are read
                fresh.extend({**old, "sha256": sha, "offsets": []} for old in kept)
                stale.extend(d for d in owned if d not in parts and d not in {k["doc_id"] for k in kept})

        removed = sorted({*held.get(None, []), *stale})
        changed = bool(docs or removed)
        dirty = settings.home / "bm25.dirty"  # set while an update that changed the stores runs
        if changed:
            dirty.touch()
        if writer:
            writer.sink.prefetch.finish()
        if docs and writer:
            write(index, writer, docs, fresh, report)
    finally:
        if writer:
            writer.close()  # stops the embedding thread, also when the update failed
        if named is None:  # for the next process too
            index.seen.save(corpus, [corpus / CATALOG])
        else:  # (without forgetting the files it did not look at)
            index.seen.save()
    remove(index, removed, report)
    report.removed_docs = removed
    if settings.crash_at == "before-bm25":
        kill_self()
    dirty.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - t0
    if changed or report.failed or kind != "update":
        db.log_update(kind, {**asdict(report), "fingerprint": index.fingerprint()})
    if changed:  # after the log: an `index add` handed to this process has its answer
        index.regroup()  # the duplicate groups `index status` and the Library read, when a pair changed
    if changed and index.bm25.due():  # (only a change grows the delta: a no-op update does not load the index)
        index.bm25.compact()
    return report


def clashes(index: Index, corpus: Path, files: dict[str, Path], skipped: list[tuple[Path, str]],
            report: UpdateReport) -> set[Path]:
    """Files sharing one doc_id (``x.txt`` beside ``x.md``): that doc_id leaves this update (its
    indexed version, if any, is kept as it was) and one error names all its files; returns them."""
    shared: dict[str, list[Path]] = {}
    for path, _ in clashing(corpus, files, skipped):
        doc_id = doc_id_for(corpus, path)
        if doc_id not in shared:
            shared[doc_id] = [files.pop(doc_id)]
        shared[doc_id].append(path)
    for doc_id, paths in shared.items():
        paths.sort(key=lambda p: (_mtime(p), p.name))  # the newest last: most likely the newcomer
        indexed = index.db.bulletin(doc_id)
        kept = (f"the index keeps '{doc_id}' as it was indexed before (from {Path(indexed['path']).name})"
                if indexed else "neither is indexed")
        report.failed.append((str(paths[-1]), f"has the same name as {' and '.join(p.name for p in paths[:-1])}"
                                              f" (bulletin '{doc_id}'); {kept}; rename or remove one of them"))
    return {p for paths in shared.values() for p in paths}


def clashing(corpus: Path, files: dict[str, Path], skipped: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """The files ``scan`` skipped because another file already has their doc_id."""
    root = corpus.resolve()
    return [(p, why) for p, why in skipped
            if supported(p.name) and not (p.is_symlink() and links_out(p, root))
            and doc_id_for(corpus, p) in files]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _progress(items: Iterable[Any], show: bool, desc: str) -> Iterable[Any]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)


class UpdateLock:
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
