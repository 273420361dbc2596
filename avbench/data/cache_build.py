"""Filling the feature cache: decode a chunk of files and commit it as one shard, here or in
worker processes (each worker commits its own shards, so several processes fill the cache at
once and a killed build keeps every finished chunk).

Workers are spawned, not forked: forking a process whose torch/OpenMP thread pools have run
can deadlock the child. Each worker uses one intra-op thread (the features are small; N
workers × N threads would only fight over the cores) and ignores Ctrl-C, which the parent
handles: it cancels the chunks not started and lets the running ones commit what they did.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import secrets
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from avbench.errors import DatasetError, DecodeError

SHARD_BYTES = 64 << 20  # rows per shard are capped so a worker's chunk stays small in memory
IN_PROCESS_ROWS = 512
PROBE_FILES = 8  # decoded in-process first, to time the extractor before starting workers


class Extractor(Protocol):
    """What the cache needs of a feature: a name, a settings key, a row shape and a decoder."""

    name: str
    shape: tuple[int, ...]
    dtype: type
    worker_start_s: float  # a fresh worker's imports before its first file, to judge if workers pay

    def key_fields(self) -> dict: ...

    def __call__(self, path: Path) -> np.ndarray: ...


@dataclass
class ChunkResult:
    shard: str | None
    attempted: int
    failures: list[tuple[str, str, str]]  # (key, path, reason)


def build_chunk(
    extractor: Extractor,
    directory: Path,
    paths: Sequence[Path],
    keys: Sequence[str],
    *,
    stop_at_failure: bool = False,
    on_file: Callable[[], None] | None = None,
) -> ChunkResult:
    """Decode `paths` and commit them as one shard. Whatever was decoded is committed even
    when this stops early (a failure with `stop_at_failure`, Ctrl-C): nothing done is lost."""
    rows = np.empty((len(paths), *extractor.shape), dtype=extractor.dtype)
    good: list[tuple[str, str]] = []
    failures: list[tuple[str, str, str]] = []
    attempted = 0
    try:
        for path, key in zip(paths, keys, strict=True):
            attempted += 1
            try:
                rows[len(good)] = extractor(Path(path))
                good.append((key, str(path)))
            except DecodeError as exc:
                failures.append((key, str(path), exc.reason))
            except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # one odd file must not stop the build
                failures.append((key, str(path), _describe(exc)))
            if on_file is not None:
                on_file()
            if stop_at_failure and failures:
                break
    finally:
        shard = _write_shard(directory, extractor, rows[: len(good)], good, failures)
    return ChunkResult(shard, attempted, failures)


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _write_shard(directory: Path, extractor: Extractor, rows: np.ndarray, good, failures) -> str | None:
    if not good and not failures:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    settings = directory / "settings.json"
    if not settings.exists():
        _replace_atomically(settings, json.dumps(extractor.key_fields(), indent=1).encode())
    shard = f"{time.time_ns():x}-{os.getpid()}-{secrets.token_hex(3)}"
    entry: dict = {"rows": [list(g) for g in good], "failures": [list(f) for f in failures]}
    if good:
        # The index is the shard's commit and carries its length and checksum, so a truncated or
        # damaged .npy is found (and rebuilt) instead of failing every run that reads it.
        entry["npy_bytes"], entry["sha256"] = _replace_atomically(directory / f"{shard}.npy", rows)
    _replace_atomically(directory / f"{shard}.json", json.dumps(entry).encode())
    return shard


def _replace_atomically(target: Path, content: bytes | np.ndarray) -> tuple[int, str]:
    """Write under a temporary name, sync, rename; returns the file's size and sha256. A failed
    write (a full disk) removes its temporary file."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            if isinstance(content, np.ndarray):
                np.save(handle, content)
            else:
                handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        digest = file_sha256(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target.stat().st_size, digest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_rows(extractor: Extractor, count: int, workers: int) -> int:
    """Rows per shard. Workers get enough chunks each to stay busy and move the bar; in-process
    chunks are large (fewer shards), since every file moves the bar anyway. Capped at SHARD_BYTES."""
    row_bytes = max(int(np.prod(extractor.shape)) * np.dtype(extractor.dtype).itemsize, 1)
    wanted = -(-count // (workers * 4)) if workers > 1 else IN_PROCESS_ROWS
    return int(min(max(wanted, PROBE_FILES), max(SHARD_BYTES // row_bytes, 1)))


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def build_in_pool(jobs: list, workers: int, stats: dict, strict: bool, tracker, record: Callable) -> None:
    """Decode every job's files (FeatureCache's pending requests) in `workers` processes;
    `tracker` moves the progress bar and `record` merges each finished chunk, raising to stop."""
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
    )
    futures = {}
    try:
        for job in jobs:
            size = chunk_rows(job.extractor, len(job.paths), workers)
            for start in range(0, len(job.paths), size):
                chunk = slice(start, start + size)
                future = executor.submit(build_chunk, job.extractor, job.directory, job.paths[chunk], job.keys[chunk])
                futures[future] = job
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise DatasetError(
                    "a feature-cache worker process died (out of memory, or a decoder crashed); finished chunks "
                    "are kept: re-run, or set data.cache_workers=1 to find the file"
                ) from None
            tracker.advance(result.attempted)
            record(futures[future], result, stats, strict)
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
