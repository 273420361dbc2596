"""A feature cache on disk that every trial and every experiment with the same settings shares.

Why per-file entries in shards, not one array per dataset:
- The unit of identity is one *file* (resolved path, size, mtime, ctime) under one set of
  feature settings. A new split, a subset, another task over the same files, or one edited
  file costs only the files not seen before; one array per file list rebuilt everything.
- The unit of storage is a *shard*: the rows of a chunk of files in one .npy plus a .json
  index. A million tiny .npy files would need a million opens per epoch (or as many open
  memmaps); a few shards give few file handles and contiguous memory-mapped reads, so the
  dataset never has to fit in RAM.
- A shard is written under a temporary name and renamed; its .json is renamed last and is
  the commit. A reader never sees half a shard, and a killed build keeps every finished
  chunk. Decoding failures are recorded in the index too, so a corrupt file is tried once,
  not once per trial, and reported the same way every time.
- One process fills a settings directory at a time (an flock, released by the OS if the
  process dies); a second process waits, re-reads the index and finds its files there. The
  filling itself is parallel: worker processes decode chunks and each writes its own shard.
  Several builders without the lock (e.g. machines whose filesystem lacks flock) would only
  duplicate work: rows of the same file are identical and the first shard (by name) wins.

Layout: <root>/<feature>-<settings hash>/{settings.json, <shard>.npy, <shard>.json, .build.lock}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avbench.data.cache_build import PROBE_FILES, ChunkResult, Extractor, build_chunk, build_in_pool, chunk_rows
from avbench.data.cache_check import LAST_USED, discard_shard, shard_problem
from avbench.errors import DecodeError
from avbench.threads import capped_torch_threads


def file_key(path: Path) -> str:
    """Identity of one file's content: a changed, replaced or re-permissioned file gets a new key."""
    stat = path.stat()
    payload = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def settings_dir(root: Path, extractor: Extractor) -> Path:
    digest = hashlib.sha256(json.dumps(extractor.key_fields(), sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / f"{extractor.name}-{digest}"


@dataclass
class CacheStats:
    """hits: served without decoding here; misses: decoded here (decoded ok + failed)."""

    hits: int = 0
    misses: int = 0
    decoded: int = 0
    failed: int = 0

    def add(self, other: CacheStats) -> None:
        for name in ("hits", "misses", "decoded", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        lookups = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "decoded": self.decoded,
            "failed": self.failed,
            "hit_rate": round(self.hits / lookups, 4) if lookups else 1.0,
        }


class CachedRows:
    """A read-only sequence of feature rows held in shards, memory-mapped on first access.

    Pickles as (directory, locations): a DataLoader worker reopens the shards itself instead
    of receiving a copy of the data.
    """

    def __init__(self, directory: Path, locations: Sequence[tuple[str, int]], shape: tuple[int, ...]):
        self.directory = Path(directory)
        self.locations = list(locations)
        self.shape = tuple(shape)  # of one row
        self._arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.locations)

    def __getitem__(self, index: int) -> np.ndarray:
        shard, row = self.locations[index]
        array = self._arrays.get(shard)
        if array is None:
            array = self._arrays[shard] = np.load(self.directory / f"{shard}.npy", mmap_mode="r")
        return array[row]

    def take(self, indices: Sequence[int]) -> CachedRows:
        return CachedRows(self.directory, [self.locations[i] for i in indices], self.shape)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": {}}


@dataclass
class FeatureSet:
    """What the cache holds for one request: rows of the files that decoded, reasons for the rest."""

    rows: CachedRows  # aligned with `paths`
    paths: list[Path]
    failures: dict[Path, str] = field(default_factory=dict)
    stats: CacheStats = field(default_factory=CacheStats)


@dataclass
class _Index:
    """The merged view of a settings directory's shards."""

    rows: dict[str, tuple[str, int]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


@dataclass
class _Job:
    """A pending request: files not in the cache yet, with their keys."""

    name: str
    extractor: Extractor
    directory: Path
    paths: list[Path]
    keys: list[str]
    seconds_per_file: float = 0.0


class FeatureCache:
    def __init__(self, root: Path, workers: int = 1, pool_after_s: float | None = None):
        """`workers` processes fill the cache when that is estimated to be faster, counting their
        start-up; `pool_after_s` replaces that estimate by a threshold (0 = always, for tests)."""
        self.root = Path(root)
        self.workers = max(int(workers), 1)
        self.pool_after_s = pool_after_s
        self.stats: dict[str, CacheStats] = {}
        self._indexes: dict[Path, _Index] = {}

    def totals(self) -> dict:
        """Every lookup this cache served, for the run record: hits, misses, decoded, hit rate."""
        total = CacheStats()
        for stats in self.stats.values():
            total.add(stats)
        return {**total.as_dict(), "by_modality": {name: s.as_dict() for name, s in self.stats.items()}}

    def fetch(
        self,
        requests: Mapping[str, tuple[Extractor, Sequence[Path]]],
        *,
        strict: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, FeatureSet]:
        """Features of every requested file, decoding (in parallel) only those not cached.

        `requests` maps a name (e.g. the modality) to an extractor and its files. A file that
        cannot be decoded is a failure with a reason; with `strict`, the first one raises
        DecodeError, after every row decoded so far has been saved.
        """
        keys: dict[str, dict[Path, str]] = {}
        failures: dict[str, dict[Path, str]] = {name: {} for name in requests}
        stats = {name: CacheStats() for name in requests}
        jobs: list[_Job] = []
        for name, (extractor, paths) in requests.items():
            directory = settings_dir(self.root, extractor)
            keys[name] = {}
            for path in dict.fromkeys(Path(p) for p in paths):
                try:
                    keys[name][path] = file_key(path)
                except OSError as exc:
                    if strict:
                        raise DecodeError(path, exc.strerror or type(exc).__name__) from None
                    failures[name][path] = exc.strerror or type(exc).__name__
                    stats[name].misses += 1
                    stats[name].failed += 1
            index = self._scan(directory)
            self._raise_if_strict(strict, keys[name], index)
            missing = [p for p, k in keys[name].items() if k not in index.rows and k not in index.failures]
            stats[name].hits = len(keys[name]) - len(missing)
            if missing:
                jobs.append(_Job(name, extractor, directory, missing, [keys[name][p] for p in missing]))
        if jobs:
            self._fill(jobs, stats, strict, progress)
        for extractor, _ in requests.values():
            _mark_used(settings_dir(self.root, extractor))
        result = {}
        for name, (extractor, _) in requests.items():
            directory = settings_dir(self.root, extractor)
            index = self._indexes[directory]
            for path, key in keys[name].items():
                if key not in index.rows:
                    failures[name][path] = index.failures.get(key, "not decoded")
            good = [p for p in keys[name] if p not in failures[name]]
            rows = CachedRows(directory, [index.rows[keys[name][p]] for p in good], extractor.shape)
            result[name] = FeatureSet(rows, good, failures[name], stats[name])
            self.stats.setdefault(name, CacheStats()).add(stats[name])
        return result

    # ------------------------------------------------------------------ index

    def _scan(self, directory: Path) -> _Index:
        """Merge shards committed since the last scan (their .json exists) into the index."""
        index = self._indexes.setdefault(directory, _Index())
        if not directory.is_dir():
            return index
        for meta in sorted(directory.glob("*.json")):
            shard = meta.stem
            if shard == "settings" or shard in index.seen:
                continue
            try:
                entry = json.loads(meta.read_text())
            except OSError:
                continue  # unreadable here (permissions): its files are simply decoded again
            except ValueError:  # indexes are renamed into place whole, so this one is damaged
                entry, problem = {}, "its index is not valid JSON"
            else:
                problem = shard_problem(directory / f"{shard}.npy", entry) if isinstance(entry, dict) else "bad index"
            if problem:
                discard_shard(directory, shard, entry if isinstance(entry, dict) else {}, problem)
                continue
            index.seen.add(shard)
            for row, (key, _) in enumerate(entry.get("rows", [])):
                index.rows.setdefault(key, (shard, row))
                index.failures.pop(key, None)
            for key, _, reason in entry.get("failures", []):
                if key not in index.rows:
                    index.failures.setdefault(key, reason)
        return index

    def _raise_if_strict(self, strict: bool, keys: dict[Path, str], index: _Index) -> None:
        if strict:
            for path, key in keys.items():
                if key in index.failures and key not in index.rows:
                    raise DecodeError(path, index.failures[key])

    # ------------------------------------------------------------------ building

    def _fill(self, jobs: list[_Job], stats: dict[str, CacheStats], strict: bool, progress) -> None:
        """Decode the missing files under the directories' build locks."""
        with contextlib.ExitStack() as stack:
            for directory in sorted({job.directory for job in jobs}):
                stack.enter_context(_build_lock(directory))
            for job in jobs:
                index = self._scan(job.directory)  # another process may have filled some meanwhile
                pending = [
                    (p, k)
                    for p, k in zip(job.paths, job.keys, strict=True)
                    if k not in index.rows and k not in index.failures
                ]
                stats[job.name].hits += len(job.paths) - len(pending)
                job.paths, job.keys = [p for p, _ in pending], [k for _, k in pending]
                self._raise_if_strict(strict, dict(zip(job.paths, job.keys, strict=True)), index)
            jobs = [job for job in jobs if job.paths]
            total = sum(len(job.paths) for job in jobs)
            tracker = _Progress(total, progress)
            # Per-file features are far too small for torch's intra-op threads: on a busy machine
            # their spin-waits made a 2 s log-mel 20x slower.
            with capped_torch_threads(1):
                remaining = [self._probe(job, stats, strict, tracker) for job in jobs]
                remaining = [job for job in remaining if job.paths]
                if self._worth_a_pool(remaining):
                    build_in_pool(remaining, self.workers, stats, strict, tracker, self._record)
                else:
                    for job in remaining:
                        size = chunk_rows(job.extractor, len(job.paths), workers=1)
                        for start in range(0, len(job.paths), size):
                            chunk = slice(start, start + size)
                            result = build_chunk(
                                job.extractor,
                                job.directory,
                                job.paths[chunk],
                                job.keys[chunk],
                                stop_at_failure=strict,
                                on_file=tracker.advance,
                            )
                            self._record(job, result, stats, strict)

    def _worth_a_pool(self, jobs: list[_Job]) -> bool:
        """Workers pay off when their start-up plus a share of the work beats doing it all here."""
        if self.workers < 2 or not jobs:
            return False
        estimate = sum(job.seconds_per_file * len(job.paths) for job in jobs)
        if self.pool_after_s is not None:
            return estimate > self.pool_after_s
        start = max(getattr(job.extractor, "worker_start_s", 1.0) for job in jobs)
        return start + estimate / self.workers < estimate

    def _probe(self, job: _Job, stats: dict[str, CacheStats], strict: bool, tracker: _Progress) -> _Job:
        """Decode a few files here and time them (not the first: it pays for imports and set-up);
        returns the job with the rest of its files."""
        count = min(PROBE_FILES, len(job.paths))
        stamps = [time.perf_counter()]

        def on_file() -> None:
            stamps.append(time.perf_counter())
            tracker.advance()

        result = build_chunk(
            job.extractor, job.directory, job.paths[:count], job.keys[:count], stop_at_failure=strict, on_file=on_file
        )
        timed = stamps[2:] and (stamps[-1] - stamps[1]) / (len(stamps) - 2)
        job.seconds_per_file = timed or (stamps[-1] - stamps[0])
        self._record(job, result, stats, strict)
        job.paths, job.keys = job.paths[count:], job.keys[count:]
        return job

    def _record(self, job: _Job, result: ChunkResult, stats: dict[str, CacheStats], strict: bool) -> None:
        """Count a finished chunk and merge its shard; with `strict`, stop at its first failure."""
        stats[job.name].misses += result.attempted
        stats[job.name].decoded += result.attempted - len(result.failures)
        stats[job.name].failed += len(result.failures)
        self._scan(job.directory)
        if strict and result.failures:
            _, path, reason = result.failures[0]
            raise DecodeError(path, reason)


def _mark_used(directory: Path) -> None:
    """Touch the folder's last-used stamp, which `avbench cache prune` keeps recent folders by."""
    if directory.is_dir():
        with contextlib.suppress(OSError):
            (directory / LAST_USED).touch()


class _Progress:
    def __init__(self, total: int, callback: Callable[[int, int], None] | None):
        self.done, self.total, self.callback = 0, total, callback
        if callback is not None and total:
            callback(0, total)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
