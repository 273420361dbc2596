"""A feature cache on disk, so a sweep decodes each file once, not once per trial.

Key = hash(feature settings + per-file fingerprint (path, size, mtime)). A changed file or
setting gives a new key; the old entry is simply never read again. Entries are one .npy
array per (file list, settings), written to a temporary name and renamed, so a reader never
sees half an entry and two writers cannot corrupt each other. Reads are memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def file_fingerprint(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(paths: Sequence[Path], settings: dict) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        digest.update(json.dumps(file_fingerprint(path)).encode())
    return digest.hexdigest()[:24]


class FeatureCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def entry_path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def get_or_build(
        self,
        paths: Sequence[Path],
        settings: dict,
        extract: Callable[[Path], np.ndarray],
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """A memory-mapped [N, ...] array of features for `paths`, built on a miss."""
        key = cache_key(paths, settings)
        target = self.entry_path(key)
        if target.exists():
            self.hits += 1
            return np.load(target, mmap_mode="r")
        self.misses += 1
        first = extract(paths[0])
        stacked = np.empty((len(paths), *first.shape), dtype=first.dtype)
        stacked[0] = first
        for index in range(1, len(paths)):
            stacked[index] = extract(paths[index])
            if progress is not None:
                progress(index + 1, len(paths))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, stacked)
        os.replace(tmp, target)
        (self.root / f"{key}.json").write_text(json.dumps({"settings": settings, "files": len(paths)}))
        return np.load(target, mmap_mode="r")
