"""Update step 2, fingerprint: what a corpus file's indexed bulletins must match to count as
current (its bytes, its catalog entries and the chunker's settings). ``index status --verify``
compares with the same fingerprint, so both sides import it from here."""

from __future__ import annotations

import hashlib
import json
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
