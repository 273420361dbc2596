"""Split leak checks: what would let a model be tested on what it learnt.

Three checks run on a task's items (`avbench data inspect` reports them, `avbench run` warns
or, with `data.strict`, stops):

- `same_file`: one file listed in two splits (a test clip also listed for training);
- `speaker`: a known speaker with clips in two splits (the split is not speaker-independent);
- `content`: two files with the same audio in two splits, however encoded. Each file is decoded
  to mono and a quarter second from its middle, resampled to 4 kHz, is compared by normalised
  correlation (gain-, bit-depth-, codec- and sample-rate-independent) between
  files of about the same duration, so WAV → FLAC, 16 → 24 bit and gain-scaled copies match.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avbench.errors import DatasetError, DecodeError
from avbench.spec import SPLITS, UNKNOWN_SPEAKER, Item

CHECKS = ("same_file", "speaker", "content")
SIGNATURE_RATE = 4000  # Hz: the excerpt keeps what every copy of a recording shares
SIGNATURE_SAMPLES = 1024  # a quarter second: enough that two distinct recordings never correlate
DURATION_TOLERANCE_S = 0.02
MATCH = 0.98  # normalised correlation above which two excerpts are one recording
MAX_LAG = 2  # samples (at SIGNATURE_RATE) a resampled copy may shift by
HASH_TABLES, HASH_BITS = 6, 16  # candidate buckets: an exact copy shares all, a near copy most
PATHS_SHOWN = 10  # per split and finding: a mislabelled split can put thousands of files in one
_SIGNATURES: dict[tuple[Path, int, int], tuple[float, np.ndarray] | None] = {}


@dataclass(frozen=True)
class Leak:
    """One finding: which check, what leaked (the file, speaker or recording) and its paths per split."""

    check: str
    subject: str
    paths: dict[str, list[str]]
    files: int  # how many files the finding covers (paths lists at most PATHS_SHOWN per split)

    def line(self) -> str:
        splits = " and ".join(self.paths)
        first = next(iter(self.paths.values()))[0]
        what = {"same_file": "file", "speaker": "speaker", "content": "recording"}[self.check]
        return f"{what} {self.subject} is in {splits} ({self.files} file(s), e.g. {first})"


@dataclass
class LeakReport:
    checks: list[str] = field(default_factory=list)  # the checks that ran
    leaks: list[Leak] = field(default_factory=list)
    unreadable: int = 0  # files the content check could not decode (listed as problems elsewhere)

    def as_dict(self) -> dict:
        return {"checks": self.checks, "leaks": [asdict(leak) for leak in self.leaks], "unreadable": self.unreadable}


def find_leaks(items: list[Item], root: Path, *, content: bool = True, workers: int = 8) -> LeakReport:
    """Every leak among `items` (paths shown relative to `root`)."""
    report = LeakReport(checks=["same_file", "speaker"])
    by_path: dict[Path, set[str]] = defaultdict(set)
    for item in items:
        by_path[item.audio].add(item.split)
    for path, splits in by_path.items():
        if len(splits) > 1:
            report.leaks.append(_leak("same_file", _relative(path, root), {s: [path] for s in splits}, root, 1))
    by_speaker: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        if item.speaker != UNKNOWN_SPEAKER:
            by_speaker[item.speaker][item.split].append(item.audio)
    for speaker, splits in sorted(by_speaker.items()):
        if len(splits) > 1:
            report.leaks.append(_leak("speaker", speaker, splits, root, sum(map(len, splits.values()))))
    if content:
        report.checks.append("content")
        _content_leaks(by_path, root, report, workers)
    return report


def summary_lines(checks: list[str], leaks: list[dict]) -> list[str]:
    """What `avbench data inspect` prints about leaks (from the report's plain-data form)."""
    if not leaks:
        return [f"no split leaks ({', '.join(checks)} checked)"]
    return [f"{len(leaks)} split leak(s) ({', '.join(checks)} checked):"] + [
        f"  {Leak(**leak).line()}" for leak in leaks
    ]


def check_leaks(items: list[Item], root: Path, *, strict: bool) -> LeakReport:
    """A run's leak checks: a warning per run that leaks, or with `strict` one line that stops it."""
    report = find_leaks(items, root)
    if report.leaks:
        more = f" (+{len(report.leaks) - 1} more; `avbench data inspect` lists them)" if len(report.leaks) > 1 else ""
        if strict:
            raise DatasetError(f"split leak: {report.leaks[0].line()}{more}; data.strict stops on leaks")
        print(f"warning: split leak: {report.leaks[0].line()}{more}", file=sys.stderr)
    return report


def _content_leaks(by_path: dict[Path, set[str]], root: Path, report: LeakReport, workers: int) -> None:
    paths = sorted(by_path)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        signatures = list(pool.map(_remembered_signature, paths))
    found = [(path, sig) for path, sig in zip(paths, signatures, strict=True) if sig is not None]
    report.unreadable += len(paths) - len(found)
    groups = _duplicate_groups(found)
    for group in groups:
        splits: dict[str, list[Path]] = defaultdict(list)
        for path in group:
            for split in by_path[path]:
                splits[split].append(path)
        if len(splits) > 1:
            report.leaks.append(_leak("content", _relative(group[0], root), splits, root, len(group)))


def _duplicate_groups(found: list[tuple[Path, tuple[float, np.ndarray]]]) -> list[list[Path]]:
    """Sets of files whose excerpts match. Candidates come from random-hyperplane hashes of the
    excerpts (one copy's excerpt is the other's, so they share every hash), so a dataset of
    equal-length clips is not compared pair by pair; a candidate pair must match in duration too."""
    if not found:
        return []
    excerpts = np.stack([np.pad(sig, (0, SIGNATURE_SAMPLES - len(sig))) for _, (_, sig) in found])
    planes = np.random.default_rng(0).standard_normal((HASH_TABLES, HASH_BITS, SIGNATURE_SAMPLES)).astype(np.float32)
    bits = np.einsum("tbs,ns->ntb", planes, excerpts) > 0
    parent = list(range(len(found)))

    def root_of(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for table in range(HASH_TABLES):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i in range(len(found)):
            buckets[np.packbits(bits[i, table]).tobytes()].append(i)
        for members in buckets.values():
            for position, i in enumerate(members):
                for j in members[position + 1 :]:
                    if root_of(i) != root_of(j) and _same_recording(found[i][1], found[j][1]):
                        parent[root_of(j)] = root_of(i)
    groups: dict[int, list[Path]] = defaultdict(list)
    for i, (path, _) in enumerate(found):
        groups[root_of(i)].append(path)
    return [sorted(members) for members in groups.values() if len(members) > 1]


def _remembered_signature(path: Path) -> tuple[float, np.ndarray] | None:
    """signature(), once per file version in this process: a sweep's trials check the same data."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _SIGNATURES:
        _SIGNATURES[key] = signature(path)
    return _SIGNATURES[key]


def signature(path: Path) -> tuple[float, np.ndarray] | None:
    """(duration in seconds, unit-norm excerpt at SIGNATURE_RATE from the middle of the file),
    or None when the file does not decode or the excerpt is silent. The middle, in seconds, is
    the same sample in every lossless copy and about the same in a resampled one."""
    from avbench.data.audio import read_mono

    try:
        wave, rate = read_mono(path)
    except DecodeError:
        return None
    span = int(np.ceil(SIGNATURE_SAMPLES * rate / SIGNATURE_RATE))
    start = max(0, (len(wave) - span) // 2)
    excerpt = _band_limited(wave[start : start + span], rate)[:SIGNATURE_SAMPLES]
    excerpt = excerpt - excerpt.mean()
    norm = float(np.linalg.norm(excerpt))
    if norm < 1e-6:
        return None
    return len(wave) / rate, (excerpt / norm).astype(np.float32)


def _band_limited(wave: np.ndarray, rate: int) -> np.ndarray:
    """`wave` at SIGNATURE_RATE by keeping its spectrum below the new Nyquist (numpy only, so
    `avbench data inspect` stays without torch)."""
    length = max(1, round(len(wave) * SIGNATURE_RATE / rate))
    spectrum = np.fft.rfft(wave.astype(np.float64))[: length // 2 + 1]
    return np.fft.irfft(spectrum, length).astype(np.float32)


def _same_recording(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> bool:
    if abs(a[0] - b[0]) > DURATION_TOLERANCE_S:
        return False
    x, y = a[1], b[1]
    length = min(len(x), len(y))
    if length < SIGNATURE_SAMPLES // 4:
        return False
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        u, v = (x[lag:length], y[: length - lag]) if lag >= 0 else (x[: length + lag], y[-lag:length])
        denominator = float(np.linalg.norm(u) * np.linalg.norm(v))
        if denominator and float(np.dot(u, v)) / denominator > MATCH:
            return True
    return False


def _leak(check: str, subject: str, splits: dict[str, Iterable[Path]], root: Path, files: int) -> Leak:
    ordered = {split: sorted(splits[split]) for split in SPLITS if split in splits}
    return Leak(
        check, subject, {s: [_relative(p, root) for p in paths[:PATHS_SHOWN]] for s, paths in ordered.items()}, files
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)
