"""How a long-running process (``stdnews chat``, ``stdnews index watch``) keeps its memory near what
it holds: glibc's allocator, tuned once at start, and the heap a warm-up freed handed back.

Measured on the 100k-chunk index, a chat server after one add and 8 concurrent users: 855 MiB peak
as glibc comes, 797 with two arenas (glibc gives each thread its own, up to 8 per core, and each
keeps the blocks freed in it: Gradio's workers each held a question's 100k-element score arrays).
Mapping every block over 256 KiB as well (766 MiB) made each keyword search fault in fresh pages:
2.5 -> 5.3 ms per question, so not done. Written by hand: ``mallopt`` and ``malloc_trim`` are two
calls no library wraps; elsewhere than glibc they are not there and nothing changes."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def for_long_run() -> None:
    """Tune the allocator for a process that serves for hours: call first, before its threads start."""
    if (libc := _libc()) is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)


def release() -> None:
    """Hand the heap memory freed so far (a warm-up's sort buffers, rows read once) back to the system."""
    gc.collect()
    if (libc := _libc()) is not None:
        with contextlib.suppress(OSError):
            libc.malloc_trim(0)
