"""Is a feature-cache shard what its index says? Used by every scan of the cache (length and
header: cheap, so a truncated shard is found by the next run) and by `avbench cache verify`
(also the checksum: reads every byte)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from avbench.data.cache_build import file_sha256

LAST_USED = ".last-used"  # touched whenever a run reads a settings folder (see avbench cache prune)


def shard_problem(npy: Path, entry: dict, *, checksum: bool = False) -> str | None:
    """Why the shard `npy` does not match its index entry, or None when it does."""
    rows = entry.get("rows") or []
    if not rows:
        return None  # an index of failures only has no array
    if not npy.is_file():
        return "its array is missing"
    size = npy.stat().st_size
    if "npy_bytes" in entry and size != entry["npy_bytes"]:
        return f"{size} bytes where its index says {entry['npy_bytes']}"
    try:
        array = np.load(npy, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        return f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if array.shape[:1] != (len(rows),):
        return f"{array.shape[0] if array.ndim else 0} rows where its index lists {len(rows)}"
    if checksum and "sha256" in entry and file_sha256(npy) != entry["sha256"]:
        return "checksum mismatch"
    return None


def discard_shard(directory: Path, shard: str, entry: dict, problem: str) -> None:
    """Remove a damaged shard (index first, so no reader takes it up again) and say so once:
    its files are simply decoded again by whoever asks for them next."""
    (directory / f"{shard}.json").unlink(missing_ok=True)
    (directory / f"{shard}.npy").unlink(missing_ok=True)
    count = len(entry.get("rows") or [])
    sys.stderr.write(f"cache shard {directory / shard}.npy damaged ({problem}): rebuilding {count} file(s)\n")
