"""The process's C allocator: glibc's malloc arenas and mmap threshold fixed before any thread starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ARENA_LIMIT", "MMAP_THRESHOLD", "limit_malloc_arenas"]

# glibc gives each thread that allocates an arena of its own (up to 8 per core), and an arena keeps what was freed
# in it: the argon2 hash of the first operator's password (memory cost 19 MiB, on its own thread) left ~20 MB
# resident for the process's lifetime, the SQLite writer's arena a few MB more. The threads are few and mostly
# wait on the GIL; one shared arena measured no slower (docs/bench.md, "peak RSS at 5,000 devices").
ARENA_LIMIT = 1
# glibc's default threshold moves up to the largest block freed (that 19 MiB hash): every block below it then comes
# from the heap, which is trimmed only past twice that. Fixed at glibc's initial 128 KiB: ~7 MB less at 5,000
# devices, no slower measured.
MMAP_THRESHOLD = 128 * 1024
# From glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def limit_malloc_arenas(limit: int = ARENA_LIMIT, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Cap glibc's malloc arenas at ``limit`` and fix its mmap threshold, each unless its ``MALLOC_*`` environment
    variable is set; False where not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    # The operator's own settings, already read by glibc at start, win.
    if "MALLOC_ARENA_MAX" not in os.environ and not mallopt(_M_ARENA_MAX, limit):
        return False
    return "MALLOC_MMAP_THRESHOLD_" in os.environ or bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
