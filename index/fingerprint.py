"""Update step 2, fingerprint: what a corpus file's indexed bulletins must match to count as
current (its bytes, its catalog entries and the chunker's settings). ``index status --verify``
compares with the same fingerprint, so both sides import it from here."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from index.chunk import CHUNKER_VERSION
from index.settings import Settings


def file_fingerprint(data: bytes, entry: dict[str, Any] | None, settings: Settings) -> str:
    """The fingerprint of a corpus file's content ``data`` with its catalog ``entry``."""
    h = hashlib.sha256(data)
    h.update(json.dumps([entry or {}, CHUNKER_VERSION, settings.chunk_max_chars, settings.chunk_min_chars],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


def bulletin_sha(fp: str, n: int) -> str:
    """What each bulletin record of a file of ``n`` bulletins stores: the file's fingerprint, with the
    count when there are several, so that a file whose records were not all written reads as changed."""
    return fp if n == 1 else f"{fp}:{n}"


def is_current(shas: list[str], fp: str) -> bool:
    """Whether the records of a file's bulletins (their ``sha256``) all come from the version ``fp``."""
    return bool(shas) and all(s == bulletin_sha(fp, len(shas)) for s in shas)


RACY_NS = 2_000_000_000  # a file written this close to being read may change again within its times' tick


def stat_key(st: os.stat_result) -> tuple[int, ...]:
    """What tells that a file was not written since: size, modification and change times, inode."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def settled(st: os.stat_result, read_at_ns: int) -> bool:
    """Whether what was read at ``read_at_ns`` may be kept under ``stat_key(st)`` (not racy)."""
    return max(st.st_mtime_ns, st.st_ctime_ns) < read_at_ns - RACY_NS


class FileMemo:
    """Values derived from files (a fingerprint, a parsed catalog), kept while the file's
    ``stat_key`` holds: in memory, and with ``db`` in the chunk table's ``file_memo`` too, so that
    a fresh process (``stdnews index update``, ``index add``) need not read and hash the corpus
    again (at 100k chunks: 6,350 files, 0.3 s, and 0.4 s to parse the catalog). A value read less
    than ``RACY_NS`` after its file was written is not kept (its times might not tell a later write
    within the same tick apart), as git does with racy entries. What is kept is a function of the
    file's bytes alone: a stale row can only cost a read, never pass a changed file as current."""

    def __init__(self, db: Any = None) -> None:
        self._db = db  # index.chunkdb.ChunkDB, or None: this process only
        self._kept: dict[str, tuple[str, str]] | None = None if db is not None else {}
        self._dirty: dict[str, tuple[str, str] | None] = {}

    def _rows(self) -> dict[str, tuple[str, str]]:
        if self._kept is None:
            self._kept = self._db.file_memo()
        return self._kept

    def get(self, name: str, key: str) -> str | None:
        kept = self._rows().get(name)
        return kept[1] if kept and kept[0] == key else None

    def put(self, name: str, key: str, value: str, st: os.stat_result, read_at_ns: int) -> None:
        if settled(st, read_at_ns):
            self._rows()[name] = self._dirty[name] = (key, value)
        elif self._rows().pop(name, None) is not None:
            self._dirty[name] = None

    def put_content(self, name: str, digest: str, value: str) -> None:
        """Keep a value derived from the file's bytes under their hash ``digest``: never racy."""
        self._rows()[name] = self._dirty[name] = (digest, value)

    def forget_others(self, folder: Path, names: set[str]) -> None:
        """Forget the values of files under ``folder`` other than ``names`` (files that left it)."""
        root = os.path.join(os.path.abspath(folder), "")
        for name in [n for n in self._rows() if n.startswith(root) and n not in names]:
            del self._rows()[name]
            self._dirty[name] = None

    def save(self) -> None:
        """Write what changed since the last save to the chunk table (nothing without ``db``)."""
        if self._db is not None and self._dirty:
            self._db.keep_file_memo(self._dirty)
        self._dirty = {}


class SeenFiles:
    """Fingerprints of the corpus files already hashed (``FileMemo``), reused while a file's size,
    times and inode and its catalog entry are unchanged: a running watcher or chat server checks the
    whole corpus on every update, and at 100k chunks reading and hashing its 6,350 files was most of
    the time of adding one."""

    def __init__(self, db: Any = None) -> None:
        self.memo = FileMemo(db)
        self._looked: set[str] = set()  # the files looked up since the last save (``memo`` names)

    def fingerprint(self, path: Path, entry: dict[str, Any] | None, settings: Settings) -> tuple[str, bytes | None]:
        """(fingerprint, the bytes read, or None when the kept fingerprint still holds); OSError as reading."""
        st = os.stat(path)
        name = os.path.abspath(path)
        self._looked.add(name)
        key = (f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {settings.chunk_max_chars}"
               f" {settings.chunk_min_chars} {CHUNKER_VERSION} {json.dumps(entry or {}, sort_keys=True, default=str)}")
        kept = self.memo.get(name, key)
        if kept is not None:
            return kept, None
        now = time.time_ns()
        data = path.read_bytes()
        fp = file_fingerprint(data, entry, settings)
        self.memo.put(name, key, fp, st, now)
        return fp, data

    def save(self, corpus: Path | None = None, also: Iterable[Path] = ()) -> None:
        """Keep what was read for the next process; with ``corpus``, forget its files that were not
        looked up since the last save, but ``also``."""
        if corpus is not None:
            self.memo.forget_others(corpus, self._looked | {os.path.abspath(f) for f in also})
        self._looked = set()
        self.memo.save()
