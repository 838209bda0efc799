"""The process's C allocator: glibc's malloc arenas capped before any thread starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ARENA_LIMIT", "limit_malloc_arenas"]

# glibc gives each thread that allocates an arena of its own (up to 8 per core), and an arena keeps what was freed
# in it: the argon2 hash of the first operator's password (memory cost 19 MiB, on its own thread) left ~20 MB
# resident for the process's lifetime, the SQLite writer's arena a few MB more. The threads are few and mostly
# wait on the GIL; one shared arena measured no slower (docs/bench.md, "peak RSS at 5,000 devices").
ARENA_LIMIT = 1
_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(limit: int = ARENA_LIMIT) -> bool:
    """Cap glibc's malloc arenas at ``limit`` (unless ``MALLOC_ARENA_MAX`` is set); False where not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # the operator's own setting, already read by glibc at start, wins
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_ARENA_MAX, limit))
