"""Any dataset of class folders: `ROOT/<class>/…/<file>` in a format soundfile or PyAV reads.

The top-level folder is the class, files below it at any depth belong to it. There is no
published split, so one is made: 70/10/20 within every class, seeded by `data.split_seed`.
With `data.speaker_regex` (one group, searched in the file name) the split is by speaker
instead, as CREMA-D's, so no voice is both learnt and tested; e.g. for Google Speech
Commands names `<speaker>_nohash_<n>.wav`: `^([0-9a-f]+)_nohash_`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import register_task
from avbench.spec import UNKNOWN_SPEAKER, Item, Task
from avbench.tasks import folders, standin, synth
from avbench.tasks.splits import split_speakers, stratified_split

SAMPLE_RATE = 16000
SPEAKER_REGEX = r"^([0-9a-f]{8})_nohash_"  # the stand-in's (and Speech Commands') file names


@register_task("audiofolder")
class AudioFolder(Task):
    title = "audiofolder"
    # The stand-in's classes (Speech Commands words); a real dataset's come from its folders.
    classes: tuple[str, ...] = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
    data_defaults = {"root": "data/audiofolder", "clip_seconds": 1.0}
    layout = "ROOT/<class>/<file>.{wav,flac,ogg,mp3,m4a,…} (one folder per class)"
    data_options = frozenset({"speaker_regex", "fold", "folds"})
    detect_as_fallback = True
    # (speakers, recordings per speaker and word)
    sizes = {"tiny": (12, 1), "small": (40, 2), "medium": (100, 2), "full": (250, 2)}

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Some class folder directly holds a file named like audio (names only, no reads)."""
        for child in folders.visible_dirs(Path(root), []):
            try:
                names = os.listdir(child)
            except OSError:
                continue
            if any(Path(name).suffix.lower() in folders.AUDIO_SUFFIXES for name in names):
                return True
        return False

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every audio file under a class folder, split by class or by speaker; sets
        `self.classes` from the folders."""
        root, regex = folders.start_listing(self, root, data)
        for path in folders.media_files(root, self.skipped, recursive=False):
            self.skipped.append((path, "file outside a class folder"))
        found: list[tuple[Path, str, str]] = []  # file, class, speaker
        for child in folders.visible_dirs(root, self.skipped):
            files = folders.media_files(child, self.skipped, recursive=True)
            if not files:
                self.skipped.append((child, "class folder holds no audio"))
            for path in files:
                speaker = UNKNOWN_SPEAKER
                if regex is not None:
                    speaker = folders.speaker_of(path, regex)
                    if speaker is None:
                        self.skipped.append((path, f"data.speaker_regex does not match '{path.name}'"))
                        continue
                found.append((path, folders.class_name(child.name), speaker))
        if not found:
            raise self.missing(f"no class folder with audio under {root}")
        self.classes = tuple(sorted({name for _, name, _ in found}, key=folders.natural_key))
        folds: dict[str, int | None] = {}
        if regex is not None:
            by_speaker, folds = split_speakers([speaker for _, _, speaker in found], data)
            splits = [by_speaker[speaker] for _, _, speaker in found]
        elif data.folds:
            raise DatasetError("audiofolder: data.folds splits by speaker; set data.speaker_regex too")
        else:
            splits = stratified_split([name for _, name, _ in found], data.split_seed)
        return [
            Item(audio=path, label=self.classes.index(name), speaker=speaker, split=split, fold=folds.get(speaker))
            for (path, name, speaker), split in zip(found, splits, strict=True)
        ]

    def synthesize(self, out: Path, *, size: str = "small", seed: int = 0, workers: int | None = None) -> int:
        """Write a Speech-Commands-like stand-in: `<word>/<speaker>_nohash_<n>.wav`, 1 s,
        16 kHz, 16-bit mono (the speakers are found with SPEAKER_REGEX)."""
        speakers, takes = standin.resolve_size(self.name, self.sizes, size)
        out = Path(out)
        words = type(self).classes
        standin.reset_output(out, self.name, words)
        ids = np.random.default_rng([seed, 8]).choice(16**8, size=speakers, replace=False)
        jobs = []
        for number, speaker_id in enumerate(ids, start=1):
            speaker = synth.speaker_profile(np.random.default_rng([seed, number]))
            for label, word in enumerate(words):
                (out / word).mkdir(exist_ok=True)
                for take in range(takes):
                    path = out / word / f"{int(speaker_id):08x}_nohash_{take}.wav"
                    jobs.append(standin.SpeakerTake(path, seed, number, speaker, label, take))
        standin.run_jobs(_write_clip, jobs, workers)
        standin.write_marker(out, self.name, size, seed, len(jobs), speaker_regex=SPEAKER_REGEX)
        return len(jobs)


def _write_clip(job: standin.SpeakerTake) -> None:
    rng = np.random.default_rng([job.seed, job.number, job.label, job.take])
    wave = synth.speech_like(
        rng,
        sample_rate=SAMPLE_RATE,
        seconds=1.0,
        profile=synth.class_profile(job.label, len(AudioFolder.classes)),
        speaker=job.speaker,
        rhythm_seed=job.label,
    )
    sf.write(job.path, wave, SAMPLE_RATE, subtype="PCM_16")
