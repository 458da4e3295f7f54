"""Read side, ``index status`` and ``index status --verify``: what the index holds, whether its
stores agree (record manager, Chroma, BM25, chunk table), whether it reflects its corpus folder
(files it lacks or holds in an older version), and whether the last update was killed before it
finished (its pid left in ``update.lock``, or ``bm25.dirty`` left behind)."""

from __future__ import annotations

import fcntl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.catalog import by_file, entries_of, read_catalog, scan
from index.fingerprint import file_fingerprint, is_current
from index.read import duplicate_groups, kept_groups

if TYPE_CHECKING:
    from index.indexer import Index

REPAIR = "run 'stdnews index update'"
LISTED = 20  # bulletins and duplicate groups `index status` lists without --all
MEMBERS = 6  # articles shown of each of those groups (a syndicated story can have hundreds)


@dataclass
class CorpusCheck:
    """``mismatches``: the index does not reflect the corpus (an update would change it);
    ``refused``: files an update already tried and refused, unchanged since (an update would
    refuse them again: fix or remove the file). One line each, naming the file."""

    mismatches: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def fingerprint(index: Index) -> str:
    """Identifies the indexed content: the chunk ids' hashes summed (``ChunkDB.id_sum``, one lookup:
    the answers of the chat window carry it), as 12 hex digits."""
    return f"{index.db.id_sum():016x}"[:12]


def _where(index: Index) -> dict[str, Any]:
    """What ``status`` and ``summary`` both say first: the data directory, the store, the fingerprint
    and the last update."""
    last = index.db.updates(1)
    return {"home": str(index.settings.home),
            "store": index.settings.chroma_url or str(index.settings.chroma_path),
            "fingerprint": fingerprint(index), "last_update": last[0] if last else None}


def status(index: Index) -> dict[str, Any]:
    bulletins = index.db.bulletins()
    return {
        **_where(index),
        "bulletins": len(bulletins),
        "articles": sum(len(b["articles"]) for b in bulletins),
        "chunks": sum(b["chunks"] for b in bulletins),
        "duplicates": duplicate_groups(index, bulletins),
        "documents": bulletins,
    }


def headline(index: Index) -> dict[str, Any]:
    """``status`` without its lists: where the index is, its counts and last update (a server's
    status line at start; from SQL counts, not every bulletin's article list)."""
    n_bulletins, n_articles, n_chunks = index.db.counts()
    return {**_where(index), "bulletins": n_bulletins, "articles": n_articles, "chunks": n_chunks}


def summary(index: Index, listed: int = LISTED) -> dict[str, Any]:
    """``status`` for people, at any size: the counts, the ``listed`` most recently indexed bulletins
    and the first ``MEMBERS`` articles of the ``listed`` largest duplicate groups (``"more"``: how many
    bulletins and groups were left out; ``"group_sizes"``: how many articles each listed group has).
    ``status`` reads every bulletin's article list (the Library and ``--json`` want them all: 0.19 s at
    100k chunks, and 6,355 lines that nobody reads)."""
    db = index.db
    head = headline(index)
    groups = kept_groups(index)
    shown = [g[:MEMBERS] for g in groups[:listed]]  # the leads with the most partners first
    info = db.article_info({m for g in shown for m in g})
    return {
        **head,
        "duplicate_groups": len(groups),
        "duplicates": [[{"doc_id": d, "article": a, "title": "?", "date": None, "publisher": None,
                         **info.get((d, a), {})} for d, a in g] for g in shown],
        "group_sizes": [len(g) for g in groups[:listed]],  # members of each listed group, shown or not
        "documents": db.bulletins(newest=listed),
        "more": {"documents": max(0, head["bulletins"] - listed), "duplicates": max(0, len(groups) - listed)},
    }


def indexed_corpus(index: Index) -> Path:
    """The corpus folder the last update read (``settings.corpus`` before any, or when it is gone)."""
    recorded = index.db.meta("corpus")
    return Path(recorded) if recorded and Path(recorded).is_dir() else index.settings.corpus


def verify(index: Index) -> list[str]:
    """Where record manager, Chroma, BM25 and the chunk table disagree (empty: all agree)."""
    sets = {
        "record manager": set(index.record_manager.list_keys()),
        "Chroma": index.store.ids(),
        "BM25": set(index.bm25.ids),
        "chunk table": index.db.chunk_ids(),
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
    if len(index.bm25.ids) != len(set(index.bm25.ids)):
        problems.append("BM25 holds duplicate chunk ids")
    return problems


def verify_corpus(index: Index, corpus: Path | None = None) -> CorpusCheck:
    """``CorpusCheck`` of ``corpus`` (default: the one the last update read), with an interrupted
    update as a mismatch: what ``verify`` cannot see, since the stores may all agree."""
    check = check_corpus(index, corpus or indexed_corpus(index))
    if why := interrupted(index.settings.home):
        check.mismatches.insert(0, why)
    return check


def interrupted(home: Path) -> str | None:
    """Why the data directory looks half written by an update that did not finish, or None: a pid
    left in ``update.lock`` (a finished update empties it) or ``bm25.dirty`` left behind while no
    process holds the lock. An update that is running now is not an interruption."""
    lock, dirty = home / "update.lock", home / "bm25.dirty"
    try:
        pid_text = lock.read_text().strip() if lock.is_file() else ""
    except OSError:
        pid_text = ""
    pid = int(pid_text) if pid_text.isdigit() else None
    if pid is None and not dirty.exists():
        return None
    if _locked(lock):  # an update is running (it holds the lock while it lives); its writes are its own
        return None
    if pid is not None:
        return f"the last index update (pid {pid}) was interrupted before it finished; {REPAIR} to repair the index"
    if dirty.exists():
        return f"the last index update was interrupted before it finished; {REPAIR} to repair the index"
    return None


def check_corpus(index: Index, corpus: Path) -> CorpusCheck:
    """Compare ``index`` with the files of ``corpus``."""
    out = CorpusCheck()
    if not corpus.is_dir():
        out.mismatches.append(f"the corpus folder {corpus} does not exist; pass --corpus DIR")
        return out
    files, skipped = scan(corpus)
    catalog = read_catalog(corpus, index.seen.memo)  # kept by its bytes' hash: as good as parsing it again
    known = index.db.sha_by_doc()
    present = set(files) | {_doc_id(corpus, p) for p, _ in skipped}
    held = by_file(known, present)  # an e-mail file holds several bulletins
    described = by_file(catalog, files)
    failures = _logged_failures(index.db.failures(200), corpus)

    def refusal(path: Path) -> str | None:
        """What the newest update that tried ``path`` said, if the file is unchanged since."""
        if not failures:  # the usual case: no path to work out (6,356 of them: 0.08 s at 100k chunks)
            return None
        key = _key(corpus, path) if path.is_symlink() else path.relative_to(corpus).as_posix()  # scanned: no
        at, why = failures.get(key, (0.0, None))  # folder on the way is a link (resolving all: 0.7 s at 100k chunks)
        try:
            return why if why and path.stat().st_mtime <= at else None
        except OSError:
            return None

    for path, why in skipped:
        out.refused.append(f"{path}: in the corpus but not indexed: {why}")
    for doc_id, path in files.items():
        why = refusal(path)
        if doc_id not in held:
            if why:
                out.refused.append(f"{path}: in the corpus but not indexed: {why}")
            else:
                out.mismatches.append(f"{path}: in the corpus but not indexed; {REPAIR}")
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            out.refused.append(f"{path}: cannot be read ({exc.strerror or exc})")
            continue
        fp = file_fingerprint(data, entries_of(catalog, doc_id, path.suffix, described), index.settings)
        if not is_current([known[d] for d in held[doc_id]], fp):
            if why:
                out.refused.append(f"{path}: changed (or its catalog entry did) since it was indexed, and the new"
                                   f" version was refused: {why}; the index keeps the version indexed before")
            else:
                out.mismatches.append(f"{path}: changed (or its catalog entry did) since it was indexed; {REPAIR}")
    for doc_id in held.get(None, []):
        was = (index.db.bulletin(doc_id) or {}).get("path", doc_id)
        out.mismatches.append(f"{was}: indexed as '{doc_id}' but no longer in the corpus; {REPAIR}")
    return out


def _logged_failures(logs: list[tuple[float, list[list[str]]]], corpus: Path) -> dict[str, tuple[float, str]]:
    """The newest logged reason why an update could not index each file: {path key: (when, why)}."""
    out: dict[str, tuple[float, str]] = {}
    for at, failed in logs:  # newest first
        for path, why in failed:
            out.setdefault(_key(corpus, Path(path)), (at, why))
    return out


def _key(corpus: Path, path: Path) -> str:
    """A file's path relative to the corpus folder, however the update that logged it named it."""
    try:
        return path.resolve().relative_to(corpus.resolve()).as_posix()
    except (ValueError, OSError):
        return path.as_posix()


def _doc_id(corpus: Path, path: Path) -> str:
    return path.relative_to(corpus).with_suffix("").as_posix()


def _locked(lock: Path) -> bool:
    """Whether a process holds the update lock now (one whose pid this process cannot see, say)."""
    try:
        with open(lock, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:  # no lock file: no update has run here
        return False
    return False
