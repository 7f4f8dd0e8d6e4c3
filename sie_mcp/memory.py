"""Bounding the process's heap growth under load (glibc only; elsewhere a no-op).

glibc gives each thread that allocates concurrently its own malloc arena, up to 8 per core, and an arena's
freed memory is rarely returned to the system. The server's threads (the event loop, the device thread,
tokenizer and anyio worker threads, OpenMP's team) each allocate megabytes per batch, so under 64 clients
RSS grew by about 1 GB per arena set for a 45 MB model (issue 17). `M_ARENA_MAX` caps the arenas; measured
in `bench/bench_reliability.py` (docs/reliability.md). Set at start-up, before the engine's threads exist.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("sie_mcp")

_M_ARENA_MAX = -8  # <malloc.h>


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def bound_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at `arenas` (0: leave glibc's default). Returns whether it was applied."""
    if arenas <= 0:
        return False
    libc = _libc()
    if libc is None or libc.mallopt(_M_ARENA_MAX, arenas) != 1:
        log.info("malloc arenas left as they are (not glibc)")
        return False
    return True
