"""RAVDESS: 24 actors (odd male, even female) speak two statements in 8 emotions.

Files are `Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,mp4}`: modality (01 audio-video, 02 video only,
03 audio only), vocal channel (01 speech, 02 song), emotion (01 neutral … 08 surprised),
intensity (01 normal, 02 strong; neutral has no strong), statement, repetition, actor. The
speech recordings are used: audio from the 03 WAV (48 kHz), video from the 01 MP4 of the same
clip when present (or audio from that MP4 when the WAV was not downloaded). The split is by
actor, as CREMA-D's, so no voice is both learnt and tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avbench.config import DataConfig
from avbench.data.audio import EMPTY_WAV_BYTES
from avbench.registry import register_task
from avbench.spec import Item, Task
from avbench.tasks import standin, synth, synth_av
from avbench.tasks.splits import split_speakers

SAMPLE_RATE = 48000
# The stand-in's speech is synthesised at 16 kHz and resampled to the published 48 kHz: half
# the cost (benchmarks/standins.py), and the class cues all lie below 8 kHz.
_VOICE_RATE = 16000
VIDEO_FPS = 30
VIDEO_HEIGHT, VIDEO_WIDTH = 72, 128  # 16:9 like the real 1280×720, small enough to write fast
ACTORS = 24
_NAME = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")
_SUFFIX = {".wav": ("03",), ".mp4": ("01", "02")}


@dataclass(frozen=True)
class _Clip:
    """One performance: what a file name says, less the modality."""

    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: str
    actor: str

    def stem(self, modality: str) -> str:
        fields = (modality, self.channel, self.emotion, self.intensity, self.statement, self.repetition, self.actor)
        return "-".join(fields)


def parse_name(path: Path, folder_actor: str) -> tuple[str, _Clip] | str:
    """(modality, clip), or the reason `path` is not a RAVDESS file of its actor folder."""
    match = _NAME.match(path.stem)
    if match is None:
        return "name is not MM-VV-EE-II-SS-RR-AA (seven two-digit fields)"
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    if modality not in _SUFFIX.get(path.suffix.lower(), ()):
        return f"modality {modality} cannot be a {path.suffix} file"
    if not 1 <= int(actor) <= ACTORS:
        return f"actor {actor} is not 01–{ACTORS}"
    if actor != folder_actor:
        return f"actor {actor} is in the folder of actor {folder_actor}"
    if emotion == "01" and intensity == "02":
        return "neutral has no strong intensity"
    return modality, _Clip(channel, emotion, intensity, statement, repetition, actor)


@register_task("ravdess")
class Ravdess(Task):
    title = "RAVDESS"
    classes = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    modalities = ("audio", "video")
    data_defaults = {"root": "data/ravdess", "clip_seconds": 3.5}
    layout = "ROOT/Actor_XX/MM-VV-EE-II-SS-RR-AA.wav (03-…, 48 kHz) and optional .mp4 (01-… audio-video)"
    data_options = frozenset({"fold", "folds"})
    # (actors, clips per actor and emotion); None = every real performance (60 per actor).
    sizes = {"tiny": (10, 1), "small": (24, 4), "medium": (24, 6), "full": (24, None)}

    def __init__(self) -> None:
        self.skipped: list[tuple[Path, str]] = []

    @classmethod
    def actor_dirs(cls, root: Path) -> list[Path]:
        """Actor_XX folders at the root or one level down (the audio and video zips each
        extract into a folder of their own)."""
        found: list[Path] = []
        for pattern in ("Actor_*", "*/Actor_*"):
            found.extend(p for p in Path(root).glob(pattern) if p.is_dir() and _ACTOR_DIR.match(p.name))
        return sorted(found)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return bool(cls.actor_dirs(root))

    def items(self, root: Path, data: DataConfig) -> list[Item]:
        """The speech performances with audio, each with its actor's split and its video."""
        self.check_data_options(data)
        root = Path(root)
        self.skipped = []
        if not root.is_dir():
            raise self.missing(f"{root} does not exist")
        folders = self.actor_dirs(root)
        if not folders:
            raise self.missing(f"no Actor_XX folder in {root}")
        files: dict[_Clip, dict[str, Path]] = {}
        for folder in folders:
            try:
                entries = sorted(folder.iterdir())
            except OSError as exc:
                self.skipped.append((folder, f"unreadable folder: {exc.strerror}"))
                continue
            for path in entries:
                if path.suffix.lower() not in _SUFFIX or not path.is_file():
                    continue
                parsed = parse_name(path, folder.name[-2:])
                if isinstance(parsed, str):
                    self.skipped.append((path, parsed))
                elif path.stat().st_size <= EMPTY_WAV_BYTES:
                    self.skipped.append((path, "empty file"))
                else:
                    modality, clip = parsed
                    if modality in files.setdefault(clip, {}):
                        self.skipped.append((path, f"duplicate of {files[clip][modality]}"))
                    else:
                        files[clip][modality] = path
        speech = {clip: paths for clip, paths in files.items() if clip.channel == "01"}
        usable = {clip: paths for clip, paths in speech.items() if "03" in paths or "01" in paths}
        if not usable:
            raise self.missing(f"no speech recording with audio (03-01-….wav or 01-01-….mp4) under {root}")
        splits, folds = split_speakers([clip.actor for clip in usable], data)
        out = []
        for clip in sorted(usable, key=lambda c: c.stem("03")):
            paths = usable[clip]
            out.append(
                Item(
                    audio=paths.get("03", paths.get("01")),
                    label=int(clip.emotion) - 1,
                    speaker=clip.actor,
                    split=splits[clip.actor],
                    video=paths.get("01"),
                    fold=folds[clip.actor],
                )
            )
        return out

    def synthesize(
        self, out: Path, *, size: str = "small", seed: int = 0, video: bool = True, workers: int | None = None
    ) -> int:
        """Write the stand-in: per performance a 03 WAV (48 kHz, 16-bit mono) and, with `video`,
        the 01 MP4 (H.264 + AAC) and 02 MP4 (H.264 only) of a face speaking it."""
        actors, per_emotion = standin.resolve_size(self.name, self.sizes, size)
        out = Path(out)
        standin.reset_output(out, self.name, [f"Actor_{a:02d}" for a in range(1, ACTORS + 1)])
        jobs: list[_Job] = []
        for actor in range(1, actors + 1):
            speaker = _speaker(seed, actor)
            (out / f"Actor_{actor:02d}").mkdir()
            for label in range(len(self.classes)):
                plan_rng = np.random.default_rng([seed, actor, label, 1])
                for clip in _plan(label, actor, per_emotion, plan_rng):
                    jobs.append(_Job(out, seed, speaker, label, clip, video))
        standin.run_jobs(_write_clip, jobs, workers)
        standin.write_marker(out, self.name, size, seed, len(jobs), video=video)
        return len(jobs)


@dataclass(frozen=True)
class _Job:
    out: Path
    seed: int
    speaker: synth.SpeakerProfile
    label: int
    clip: _Clip
    video: bool


def _speaker(seed: int, actor: int) -> synth.SpeakerProfile:
    """An actor's voice; odd actors are male (f0 < 155 Hz), even ones female (f0 > 165 Hz)."""
    rng = np.random.default_rng([seed, actor])
    while True:
        speaker = synth.speaker_profile(rng)
        if (speaker.f0 < 155.0) == (actor % 2 == 1) and not 155.0 <= speaker.f0 <= 165.0:
            return speaker


def _plan(label: int, actor: int, per_emotion: int | None, rng: np.random.Generator) -> list[_Clip]:
    """The performances one actor gives of an emotion: 2 statements × 2 repetitions × the
    intensities (neutral: normal only), or `per_emotion` of them."""
    intensities = ("01",) if label == 0 else ("01", "02")
    options = [
        _Clip("01", f"{label + 1:02d}", intensity, statement, repetition, f"{actor:02d}")
        for intensity in intensities
        for statement in ("01", "02")
        for repetition in ("01", "02")
    ]
    if per_emotion is None or per_emotion >= len(options):
        return options
    return [options[i] for i in sorted(rng.choice(len(options), size=per_emotion, replace=False))]


def _write_clip(job: _Job) -> None:
    clip = job.clip
    folder = job.out / f"Actor_{clip.actor}"
    rng = np.random.default_rng([job.seed, int(clip.actor), job.label, int(clip.stem("00").replace("-", ""))])
    talker = synth.Talker.of(job.label, len(Ravdess.classes), job.speaker)
    seconds = float(rng.uniform(3.0, 4.0))
    intensity = 0.7 if clip.intensity == "01" else 1.0
    voice = talker.speech(
        rng, sample_rate=_VOICE_RATE, seconds=seconds, intensity=intensity, rhythm_seed=int(clip.statement)
    )
    wave = _upsample(voice, SAMPLE_RATE // _VOICE_RATE)
    sf.write(folder / f"{clip.stem('03')}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
    if not job.video:
        return
    frames = talker.face(rng, wave, sample_rate=SAMPLE_RATE, fps=VIDEO_FPS, size=VIDEO_HEIGHT)
    frames = synth_av.widen(frames, VIDEO_WIDTH)
    synth_av.write_mp4(folder / f"{clip.stem('01')}.mp4", frames, wave, fps=VIDEO_FPS, sample_rate=SAMPLE_RATE)
    synth_av.copy_video_track(folder / f"{clip.stem('01')}.mp4", folder / f"{clip.stem('02')}.mp4")


def _upsample(wave: np.ndarray, factor: int) -> np.ndarray:
    """Band-limited resampling by an integer factor (zero-extended spectrum), float32 in ±0.99."""
    n = len(wave)
    size = 1 << max(n - 1, 0).bit_length()
    longer = np.zeros(size * factor // 2 + 1, dtype=np.complex128)
    longer[: size // 2 + 1] = np.fft.rfft(wave, size)
    out = np.fft.irfft(longer, size * factor)[: n * factor] * factor
    return np.clip(out, -0.99, 0.99).astype(np.float32)
