"""OpenAV spoken commands: recordings in the dataset's own train/val/test folders.

`ROOT/<split>/<class>/<file>`, or with a speaker (or group) level between split and class,
`ROOT/<split>/<speaker>/<class>/<file>`: the folder that directly holds the files is the
class, the level between split and class, if any, is the speaker (`data.speaker_regex` on
the file name overrides it). OpenAV's recordings are video files (lip crops) with sound;
their audio is read from the container unless a WAV of the same name lies next to them.
Class names may be non-ASCII (`1_Левая`); labels follow their natural order, or the order of
`data.classes` (OpenAV's `classes`: folders of other classes are skipped, case is ignored).
`data.subfolders` renames the split folders (OpenAV's `subfolders`, e.g. {val: dev}).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from avbench.config import DataConfig
from avbench.registry import register_task
from avbench.spec import SPLITS, UNKNOWN_SPEAKER, Item, Task
from avbench.tasks import folders, standin, synth, synth_av, synth_shift
from avbench.tasks.splits import split_actors

SAMPLE_RATE = 16000
VIDEO_FPS = 25
LIP_SIZE = 88  # OpenAV's lip crops are 88×88
SPEAKER_REGEX = r"^(s\d{3})_"  # the stand-in's file names: <speaker>_<take>.mp4


@register_task("commands")
class Commands(Task):
    title = "commands"
    # The stand-in's classes; a real dataset's come from its folders.
    classes: tuple[str, ...] = ("1_Левая", "2_Правая", "3_Вперёд", "4_Назад", "5_Стоп", "6_Старт", "7_Вверх", "8_Вниз")
    modalities = ("audio", "video")
    data_defaults = {"root": "data/commands", "clip_seconds": 1.5}
    layout = "ROOT/{train,val,test}/[<speaker>/]<class>/<file>.{mp4,wav} (OpenAV layout)"
    data_options = frozenset({"speaker_regex", "subfolders", "classes"})
    # (speakers, recordings per speaker and class)
    sizes = {"tiny": (10, 2), "small": (30, 3), "medium": (60, 4), "full": (120, 6)}
    shifts_domain = True  # synthesize(domain_shift=True): its test speakers come from another "corpus"

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        present = [split for split in SPLITS if (Path(root) / split).is_dir()]
        return len(present) >= 2 and any(folders.visible_dirs(Path(root) / split, []) for split in present)

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """Every recording in the split folders; sets `self.classes` from `data.classes` (the
        label order, matched ignoring case) or else from the class folders."""
        root, regex = folders.start_listing(self, root, data)
        found: list[tuple[str, str, str | None, list[Path]]] = []  # split, class, speaker folder, files
        for split in SPLITS:
            split_dir = root / data.subfolders.get(split, split)
            if not split_dir.is_dir():
                self.skipped.append((split_dir, f"missing {split} folder"))
                continue
            for path in folders.media_files(split_dir, self.skipped, recursive=False):
                self.skipped.append((path, "file outside a class folder"))
            for child in folders.visible_dirs(split_dir, self.skipped):
                found.extend(self._class_folders(split, child))
        if not found:
            raise self.missing(f"no class folder with recordings under {root}")
        found = self._label_order(found, data.classes)
        out = [item for entry in found for item in self._recordings(*entry, regex)]
        if not out:
            raise self.missing(f"no usable recording under {root}")
        return out

    def _label_order(self, found: list, wanted: list[str]) -> list:
        """Set `self.classes`; keep the class folders that are one of them (named in `self.classes`' spelling)."""
        if not wanted:
            self.classes = tuple(sorted({name for _, name, _, _ in found}, key=folders.natural_key))
            return found
        self.classes = tuple(folders.class_name(name) for name in wanted)
        by_folded = {name.casefold(): name for name in self.classes}
        kept = []
        for split, name, speaker_dir, files in found:
            if name.casefold() in by_folded:
                kept.append((split, by_folded[name.casefold()], speaker_dir, files))
            else:
                self.skipped.append((files[0].parent, f"class '{name}' is not in data.classes"))
        if not kept:
            raise self.missing(f"no class folder is one of data.classes ({', '.join(wanted[:3])}, ...)")
        return kept

    def _recordings(
        self, split: str, name: str, speaker_dir: str | None, files: list[Path], regex: re.Pattern[str] | None
    ) -> list[Item]:
        """One class folder's recordings (a video and a WAV of the same name are one)."""
        out = []
        for stem, group in _by_stem(files).items():
            audio = next((p for p in group if p.suffix.lower() in folders.AUDIO_SUFFIXES), None)
            video = next((p for p in group if p.suffix.lower() in folders.VIDEO_SUFFIXES), None)
            speaker = speaker_dir or UNKNOWN_SPEAKER
            if regex is not None:
                speaker = folders.speaker_of(group[0], regex)
                if speaker is None:
                    self.skipped.append((group[0], f"data.speaker_regex does not match '{stem}'"))
                    continue
            label = self.classes.index(name)
            out.append(Item(audio=audio or video, label=label, speaker=speaker, split=split, video=video))
        return out

    def _class_folders(self, split: str, child: Path) -> list[tuple[str, str, str | None, list[Path]]]:
        """`child` of a split folder is a class (it holds files) or a speaker (it holds classes)."""
        problems: list[tuple[Path, str]] = []
        files = folders.media_files(child, problems, recursive=False)
        if files:
            self.skipped.extend(problems)
            return [(split, folders.class_name(child.name), None, files)]
        found = []
        for grandchild in folders.visible_dirs(child, self.skipped):
            files = folders.media_files(grandchild, self.skipped, recursive=False)
            if files:
                found.append((split, folders.class_name(grandchild.name), child.name, files))
            else:
                self.skipped.append((grandchild, "class folder holds no recording"))
        if not found:
            self.skipped.append((child, "class folder holds no recording"))
        return found

    def synthesize(
        self, out: Path, *, size: str = "small", seed: int = 0, workers: int | None = None, domain_shift: bool = False
    ) -> int:
        """Write the stand-in: `<split>/<class>/<speaker>_<take>.mp4`, 88×88 lip crops at 25 fps
        (H.264) with the spoken command as AAC (16 kHz mono); speakers split 70/10/20. With
        `domain_shift` the test speakers are recorded as another corpus would (avbench.tasks.synth)."""
        speakers, takes = standin.resolve_size(self.name, self.sizes, size)
        out = Path(out)
        standin.reset_output(out, self.name, SPLITS)
        names = [f"s{number:03d}" for number in range(1, speakers + 1)]
        splits = split_actors(names, seed)
        jobs = []
        for number, speaker_name in enumerate(names, start=1):
            speaker = synth.speaker_profile(np.random.default_rng([seed, number]))
            shifted = domain_shift and splits[speaker_name] == "test"
            if shifted:
                speaker = synth_shift.shifted_speaker(speaker)
            for label, name in enumerate(type(self).classes):
                folder = out / splits[speaker_name] / name
                folder.mkdir(parents=True, exist_ok=True)
                for take in range(1, takes + 1):
                    path = folder / f"{speaker_name}_{take:02d}.mp4"
                    jobs.append(standin.SpeakerTake(path, seed, number, speaker, label, take, shifted))
        standin.run_jobs(_write_clip, jobs, workers)
        shift = {"domain_shift": True} if domain_shift else {}
        standin.write_marker(out, self.name, size, seed, len(jobs), speaker_regex=SPEAKER_REGEX, **shift)
        return len(jobs)


def _by_stem(files: list[Path]) -> dict[str, list[Path]]:
    """Files of one class grouped by name without suffix: a.mp4 and a.wav are one recording."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(path.stem, []).append(path)
    return groups


def _write_clip(job: standin.SpeakerTake) -> None:
    rng = np.random.default_rng([job.seed, job.number, job.label, job.take])
    talker = synth.Talker.of(job.label, len(Commands.classes), job.speaker)
    seconds = float(rng.uniform(0.9, 1.4))
    wave = talker.speech(rng, sample_rate=SAMPLE_RATE, seconds=seconds, rhythm_seed=job.label)
    if job.shifted:
        wave = synth_shift.through_other_channel(wave, rng, SAMPLE_RATE)
    face = talker.face(rng, wave, sample_rate=SAMPLE_RATE, fps=VIDEO_FPS, size=2 * LIP_SIZE)
    synth_av.write_mp4(job.path, synth_av.mouth_crop(face, LIP_SIZE), wave, fps=VIDEO_FPS, sample_rate=SAMPLE_RATE)
