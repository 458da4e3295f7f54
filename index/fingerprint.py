"""Update step 2, fingerprint: what a corpus file's indexed bulletins must match to count as
current (its bytes, its catalog entries and the chunker's settings). ``index status --verify``
compares with the same fingerprint, so both sides import it from here."""

from __future__ import annotations

import hashlib
import json
import os
import time
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


class SeenFiles:
    """Fingerprints of the corpus files this process has hashed, reused while a file's size, times
    and inode and its catalog entry are unchanged: a running watcher or chat server checks the whole
    corpus on every update, and at 100k chunks reading and hashing its 6,350 files was most of the
    time of adding one. A file written less than ``RACY_NS`` before it was hashed is not kept (its
    times might not tell a later write within the same tick apart), as git does with racy entries."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[Any, ...], str]] = {}

    def fingerprint(self, path: Path, entry: dict[str, Any] | None, settings: Settings) -> tuple[str, bytes | None]:
        """(fingerprint, the bytes read, or None when the kept fingerprint still holds); OSError as reading."""
        st = path.stat()
        key = (*stat_key(st), json.dumps(entry or {}, sort_keys=True, default=str), settings.chunk_max_chars,
               settings.chunk_min_chars)
        kept = self._seen.get(path)
        if kept and kept[0] == key:
            return kept[1], None
        now = time.time_ns()
        data = path.read_bytes()
        fp = file_fingerprint(data, entry, settings)
        if settled(st, now):
            self._seen[path] = (key, fp)
        else:
            self._seen.pop(path, None)
        return fp, data
