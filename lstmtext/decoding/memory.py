"""The C allocator's settings for the NumPy runtimes: freed batch arrays stay in the process for the next batch.

A batch of the NumPy runtimes allocates and frees arrays of a few hundred
kilobytes to tens of megabytes (input products, gate pre-activations, output
sequences). glibc's ``malloc`` gives such memory back to the kernel when it
is freed (``mmap`` for large blocks, trimming the heap's top for the rest), so
the next batch takes it again page by page: on a 2-core virtual machine,
tagging the CoNLL-2003 validation file faulted in about 35,000 pages (140 MB)
per pass and beam search on Multi30k about 50,000, a sixth of the wall time.
:func:`keep_freed_memory` raises the two thresholds once per process, so freed
blocks are reused instead. Peak memory is unchanged; what the process holds
after its largest batch is not handed back until it exits (at most
:data:`TRIM_THRESHOLD` above what is in use).

It does nothing on other C libraries, when ``LSTMTEXT_MALLOC=0`` is set, or
when the environment already sets glibc's own ``MALLOC_*`` tunables (the
user's choice wins).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap (glibc's most, on 64-bit: 32 MiB).
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free memory kept at the heap's top before it is given back.
TRIM_THRESHOLD = 256 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's ``malloc`` to keep freed batch arrays (once per process); whether the settings are in effect."""
    if (not sys.platform.startswith("linux") or os.environ.get("LSTMTEXT_MALLOC", "1") == "0"
            or any(name.startswith(("MALLOC_", "GLIBC_TUNABLES")) for name in os.environ)):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl and others have no mallopt thresholds
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
