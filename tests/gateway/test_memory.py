"""glibc's allocator as the gateway sets it: one arena, a fixed mmap threshold (as glibc itself reports)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

# A live thread that allocates gets an arena of its own unless the limit is reached; malloc_stats() prints one
# "Arena N:" block per arena to stderr.
_PROGRAM = """
import ctypes, ctypes.util, sys, threading
from gateway.memory import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas()
together = threading.Barrier(4)
def work():
    kept = [bytes(2048) for _ in range(2000)]
    together.wait()  # all four alive at once: no arena is handed from a finished thread to the next
    del kept
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
sys.stderr.flush()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


def _arenas(mode: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


def test_the_gateways_threads_share_one_arena() -> None:
    assert _arenas("none") > 1  # the default: the threads above each took an arena of their own
    assert _arenas("limit") == 1


def test_an_operators_malloc_arena_max_is_left_to_glibc() -> None:
    assert _arenas("limit", MALLOC_ARENA_MAX="3") == 3


# glibc raises its mmap threshold to the size of a freed mmapped block (up to 32 MiB): after a 20 MiB block, a
# 1 MiB one comes from the heap, below the program break. With the threshold fixed it is mapped on its own.
_THRESHOLD = """
import ctypes, sys
from gateway.memory import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas()
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.argtypes = [ctypes.c_ssize_t]
libc.free(libc.malloc(20 << 20))
block = libc.malloc(1 << 20)
print("heap" if block < libc.sbrk(0) else "mapped")
"""


def _where_a_1_mib_block_goes(mode: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", _THRESHOLD, mode], env=clean, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_large_block_freed_does_not_move_the_mmap_threshold() -> None:
    assert _where_a_1_mib_block_goes("none") == "heap"
    assert _where_a_1_mib_block_goes("limit") == "mapped"
