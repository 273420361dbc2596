"""ESC-50: 2000 five-second environmental recordings in 50 classes and 5 folds.

The folds are the authors' (clips cut from one source recording share a fold), so results
are comparable with the literature only when they are kept: `data.fold = k` tests on fold k,
validates on fold k mod 5 + 1 and trains on the other three. `meta/esc50.csv` is the truth
for fold, class and source; the file name repeats fold and target and is checked against it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf

from avbench.config import DataConfig
from avbench.data.audio import EMPTY_WAV_BYTES
from avbench.errors import DatasetError
from avbench.registry import register_task
from avbench.spec import Item, Task
from avbench.tasks import esc_legacy, standin, synth_events
from avbench.tasks.splits import fold_split

CATEGORIES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind", "pouring_water",
    "toilet_flush", "thunderstorm", "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps",
    "laughing", "brushing_teeth", "snoring", "drinking_sipping", "door_wood_knock", "mouse_click",
    "keyboard_typing", "door_wood_creaks", "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm",
    "clock_tick", "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine", "train",
    "church_bells", "airplane", "fireworks", "hand_saw",
)  # fmt: skip
# ESC-10: dog, rooster, rain, sea_waves, crackling_fire, crying_baby, sneezing, clock_tick, helicopter, chainsaw.
ESC10_TARGETS = (0, 1, 10, 11, 12, 20, 21, 38, 40, 41)
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
FOLDS = 5
SAMPLE_RATE = 44100
CLIP_SECONDS = 5.0
META = Path("meta") / "esc50.csv"
_NAME = re.compile(r"^(\d+)-([0-9A-Za-z]+)-([A-Z])-(\d+)$")


@dataclass(frozen=True)
class MetaRow:
    """One row of meta/esc50.csv."""

    filename: str
    fold: int
    target: int
    category: str
    esc10: bool
    src_file: str
    take: str


@register_task("esc50")
class ESC50(Task):
    title = "ESC-50"
    classes = CATEGORIES
    fold_count = FOLDS
    data_options = frozenset({"fold"})
    data_defaults = {"root": "data/ESC-50", "clip_seconds": 5.0}
    layout = (
        "ROOT/audio/<fold>-<src_file>-<take>-<target>.wav (5 s, 44.1 kHz) and ROOT/meta/esc50.csv, "
        "or the old ROOT/<NNN - Class>/<fold>-….ogg"
    )
    # The ESC-50 targets this task keeps, in label order; clips per class and fold by size.
    targets: ClassVar[tuple[int, ...]] = tuple(range(len(CATEGORIES)))
    sizes: ClassVar[dict[str, int]] = {"tiny": 1, "small": 2, "medium": 4, "full": 8}

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []

    @classmethod
    def keeps(cls, row: MetaRow) -> bool:
        """Whether this task uses a metadata row (ESC-10: only the rows with esc10 True)."""
        return True

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """ESC-50 when the metadata lists any clip outside ESC-10 (the ESC-10 stand-in lists none),
        or when the old layout's class folders are ESC-50's (101 - Dog …)."""
        folders = esc_legacy.class_dirs(Path(root))
        if folders:
            return any(esc_legacy.folder_target(f) not in ESC10_TARGETS for f in folders)
        try:
            rows = read_meta(Path(root) / META)
        except DatasetError:
            return False
        return (Path(root) / "audio").is_dir() and any(not row.esc10 for row in rows if isinstance(row, MetaRow))

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every usable clip the metadata lists, split by `data.fold`; every problem (a listed
        file that is missing or empty, an unlisted file, a name or category that contradicts
        the metadata) goes to `self.skipped`."""
        self.check_data_options(data)
        root = Path(root)
        self.skipped = []
        if not root.is_dir():
            raise self.missing(f"{root} does not exist")
        if not (root / META).is_file():
            if esc_legacy.class_dirs(root):
                return self._legacy_items(root, data)
            raise self.missing(f"no {META.as_posix()} in {root}")
        return self._meta_items(root, data)

    def _meta_items(self, root: Path, data: DataConfig) -> list[Item]:
        """Today's layout: audio/*.wav listed in meta/esc50.csv."""
        audio_dir = root / "audio"
        if not audio_dir.is_dir():
            raise self.missing(f"no audio folder in {root}")
        rows = read_meta(root / META)
        listed: set[str] = set()
        out: list[Item] = []
        for row in rows:
            if isinstance(row, str):
                self.skipped.append((root / META, row))
                continue
            path = audio_dir / row.filename
            if row.filename in listed:
                self.skipped.append((path, f"listed twice in {META.as_posix()}"))
                continue
            listed.add(row.filename)
            if not self.keeps(row):
                continue
            problem = self._check(row, path)
            if problem:
                self.skipped.append((path, problem))
                continue
            out.append(
                Item(
                    audio=path,
                    label=self.targets.index(row.target),
                    speaker=row.src_file,
                    split=fold_split(row.fold, data.fold, FOLDS),
                    fold=row.fold,
                )
            )
        try:
            present = sorted(p for p in audio_dir.iterdir() if p.suffix.lower() == ".wav")
        except OSError as exc:
            raise self.missing(f"cannot list {audio_dir}: {exc.strerror}") from None
        for path in present:
            if path.name not in listed:
                self.skipped.append((path, f"not listed in {META.as_posix()}"))
        if not out:
            raise self.missing(f"no usable clip listed in {root / META}")
        return out

    def _legacy_items(self, root: Path, data: DataConfig) -> list[Item]:
        """The old `NNN - Class/<fold>-….ogg` layout of auDeep's tutorial (avbench.tasks.esc_legacy)."""
        out = esc_legacy.legacy_items(root, self.targets, data.fold, self.skipped)
        if not out:
            raise self.missing(f"no clip of {self.display_name}'s classes in the NNN - Class folders of {root}")
        return out

    def _check(self, row: MetaRow, path: Path) -> str | None:
        """Why a metadata row cannot be used, or None."""
        if not 1 <= row.fold <= FOLDS:
            return f"fold {row.fold} is not 1–{FOLDS}"
        if not 0 <= row.target < len(CATEGORIES) or CATEGORIES[row.target] != row.category:
            return f"category '{row.category}' does not match target {row.target}"
        if row.target not in self.targets:
            return f"marked esc10 but '{row.category}' is not an ESC-10 class"
        name = _NAME.match(Path(row.filename).stem)
        if name is None or Path(row.filename).suffix.lower() != ".wav":
            return "name is not <fold>-<src_file>-<take>-<target>.wav"
        if (int(name[1]), name[2], name[3], int(name[4])) != (row.fold, row.src_file, row.take, row.target):
            return "name disagrees with its metadata row (fold, src_file, take or target)"
        if not path.is_file():
            return f"missing (listed in {META.as_posix()})"
        if path.stat().st_size <= EMPTY_WAV_BYTES:
            return "empty file"
        return None

    def synthesize(self, out: Path, *, size: str = "small", seed: int = 0, workers: int | None = None) -> int:
        """Write the stand-in: audio/*.wav (5 s, 44.1 kHz, 16-bit mono), meta/esc50.csv, marker.

        Every (class, fold) gets the same number of clips, two takes per source recording,
        each source's recording colour shared by its takes (and so by one fold only).
        """
        per_fold = standin.resolve_size(self.name, self.sizes, size)
        out = Path(out)
        standin.reset_output(out, self.name, ("audio", "meta"))
        (out / "audio").mkdir()
        (out / "meta").mkdir()
        sources_per_fold = (per_fold + 1) // 2
        source_ids = np.random.default_rng([seed, 50]).choice(
            np.arange(10_000, 300_000), size=len(self.targets) * FOLDS * sources_per_fold, replace=False
        )
        jobs: list[_Clip] = []
        for t, target in enumerate(self.targets):
            for fold in range(1, FOLDS + 1):
                for clip in range(per_fold):
                    source = int(source_ids[(t * FOLDS + fold - 1) * sources_per_fold + clip // 2])
                    jobs.append(_Clip(out / "audio", seed, fold, target, str(source), "AB"[clip % 2]))
        rows = standin.run_jobs(_write_clip, jobs, workers)
        with (out / META).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(sorted(rows))
        standin.write_marker(out, self.name, size, seed, len(rows))
        return len(rows)


@dataclass(frozen=True)
class _Clip:
    folder: Path
    seed: int
    fold: int
    target: int
    source: str
    take: str


def _write_clip(job: _Clip) -> list[str]:
    """Write one clip; return its esc50.csv row."""
    recording = synth_events.recording_profile(np.random.default_rng([job.seed, int(job.source)]))
    rng = np.random.default_rng([job.seed, int(job.source), ord(job.take)])
    wave = synth_events.sound_event(
        rng,
        sample_rate=SAMPLE_RATE,
        seconds=CLIP_SECONDS,
        profile=synth_events.event_profile(job.target, len(CATEGORIES)),
        recording=recording,
    )
    name = f"{job.fold}-{job.source}-{job.take}-{job.target}.wav"
    sf.write(job.folder / name, wave, SAMPLE_RATE, subtype="PCM_16")
    esc10 = job.target in ESC10_TARGETS
    return [name, str(job.fold), str(job.target), CATEGORIES[job.target], str(esc10), job.source, job.take]


def read_meta(path: Path) -> list[MetaRow | str]:
    """The rows of meta/esc50.csv; a row that cannot be parsed becomes the reason it cannot.
    Raises DatasetError when the file cannot be read or is not the ESC-50 CSV."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path} lacks column(s): {', '.join(missing)} (expected {','.join(COLUMNS)})")
            rows: list[MetaRow | str] = []
            for line, raw in enumerate(reader, start=2):
                try:
                    rows.append(
                        MetaRow(
                            filename=raw["filename"].strip(),
                            fold=int(raw["fold"]),
                            target=int(raw["target"]),
                            category=raw["category"].strip(),
                            esc10=raw["esc10"].strip().lower() == "true",
                            src_file=raw["src_file"].strip(),
                            take=raw["take"].strip(),
                        )
                    )
                except (TypeError, ValueError, AttributeError):
                    rows.append(f"line {line}: unparsable row {list(raw.values())}")
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not a UTF-8 CSV") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    return rows
