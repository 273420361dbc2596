"""How fast the synthetic stand-ins are written, and what each speed choice in their
generators buys against the obvious alternative, side by side.

Part 1, per task and size: clips, seconds of audio, wall seconds (the median of --repeats
writes), and the wall time relative to the CREMA-D tiny stand-in (the baseline, written in
the same run). Part 2: each choice against its alternative on the same input, interleaved
so a busy machine slows both alike; medians, and the ratio alternative / choice.

    python benchmarks/standins.py [--sizes tiny[,small,...]] [--tasks a,b | --tasks ""] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def audio_seconds(root: Path) -> float:
    """Seconds of audio in the stand-in's WAVs, or of its MP4s when it has no WAV."""
    wavs = list(root.rglob("*.wav"))
    if wavs:
        return sum(sf.info(str(p)).duration for p in wavs)
    import av

    total = 0.0
    for path in root.rglob("*.mp4"):
        with av.open(str(path)) as container:
            total += container.duration / 1_000_000
    return total


def stand_ins(tasks: list[str], sizes: list[str], repeats: int) -> None:
    from avbench.registry import TASKS

    print("Part 1: writing stand-ins (median of", repeats, "writes; baseline: cremad tiny)")
    print(f"{'task':12s} {'size':6s} {'clips':>6s} {'audio s':>8s} {'wall s':>7s} {'× baseline':>10s}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = median_seconds(lambda: TASKS.get("cremad")().synthesize(root / "base", size="tiny"), repeats)
        for name in tasks:
            for size in sizes:
                out = root / f"{name}-{size}"
                count = TASKS.get(name)().synthesize(out, size=size)
                wall = median_seconds(lambda n=name, s=size, o=out: TASKS.get(n)().synthesize(o, size=s), repeats)
                print(f"{name:12s} {size:6s} {count:6d} {audio_seconds(out):8.0f} {wall:7.2f} {wall / baseline:10.2f}")


def compare(label: str, choice: Callable[[], object], alternative: Callable[[], object], repeats: int) -> None:
    chosen, other = [], []
    for _ in range(repeats):
        chosen.append(median_seconds(choice, 1))
        other.append(median_seconds(alternative, 1))
    a, b = statistics.median(chosen), statistics.median(other)
    print(f"{label:58s} {1000 * a:8.1f} ms {1000 * b:8.1f} ms {b / a:6.1f}×")


def generator_choices(repeats: int) -> None:
    from avbench.tasks import synth, synth_av
    from avbench.tasks.ravdess import _upsample

    print("\nPart 2: generator choices (choice vs alternative, ratio = alternative / choice)")
    rng = np.random.default_rng(0)
    prime = 220_471  # a prime clip length (n = 5 s · 44.1 kHz minus a little)
    noise = rng.standard_normal(prime)
    compare(
        "irfft of a 5 s clip: 2^18 points vs its own (prime) length",
        lambda: np.fft.irfft(np.fft.rfft(noise, 2**18), 2**18),
        lambda: np.fft.irfft(np.fft.rfft(noise), prime),
        repeats * 3,
    )
    phase = rng.random(220_500) * 300
    phase32 = phase.astype(np.float32)
    compare(
        "5 s @ 44.1 kHz sin+cos: float32 vs float64",
        lambda: (np.sin(phase32), np.cos(phase32)),
        lambda: (np.sin(phase), np.cos(phase)),
        repeats * 5,
    )

    speaker, profile = synth.speaker_profile(rng), synth.class_profile(2, 8)
    compare(
        "RAVDESS voice: 16 kHz + upsample ×3 vs synthesised at 48 kHz",
        lambda: _upsample(
            synth.speech_like(
                np.random.default_rng(1), sample_rate=16000, seconds=3.5, profile=profile, speaker=speaker
            ),
            3,
        ),
        lambda: synth.speech_like(
            np.random.default_rng(1), sample_rate=48000, seconds=3.5, profile=profile, speaker=speaker
        ),
        repeats,
    )
    wave = synth.speech_like(np.random.default_rng(1), sample_rate=48000, seconds=3.5, profile=profile, speaker=speaker)
    faces = synth.face_frames(
        np.random.default_rng(2),
        wave,
        sample_rate=48000,
        profile=profile,
        n_classes=8,
        skin=speaker.skin,
        fps=30,
        size=72,
    )
    compare(
        "widen 72×72 → 128×72 (105 frames): edge repeat vs np.pad",
        lambda: synth_av.widen(faces, 128),
        lambda: np.pad(faces, ((0, 0), (0, 0), (28, 28), (0, 0)), mode="edge"),
        repeats * 5,
    )
    frames = synth_av.widen(faces, 128)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        compare(
            "AAC 3.5 s @ 48 kHz: aac_coder=fast vs FFmpeg's default",
            lambda: _aac(root / "fast.m4a", wave, {"aac_coder": "fast"}),
            lambda: _aac(root / "default.m4a", wave, {}),
            repeats,
        )
        synth_av.write_mp4(root / "av.mp4", frames, wave, fps=30, sample_rate=48000)
        compare(
            "RAVDESS 02 file: copy the 01 video track vs encode again",
            lambda: synth_av.copy_video_track(root / "av.mp4", root / "copy.mp4"),
            lambda: synth_av.write_mp4(root / "encoded.mp4", frames, None, fps=30),
            repeats,
        )


def _aac(path: Path, wave: np.ndarray, options: dict[str, str]) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000, options=options)
        stream.layout = "mono"
        chunk = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16)[None], format="s16", layout="mono")
        chunk.sample_rate = 48000
        container.mux(stream.encode(chunk))
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny", help="comma-separated: tiny,small,medium,full")
    parser.add_argument(
        "--tasks",
        default="cremad,esc50,esc10,ravdess,commands,audiofolder",
        help="comma-separated; empty for part 2 only",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tasks = [name for name in args.tasks.split(",") if name]
    if tasks:
        stand_ins(tasks, args.sizes.split(","), args.repeats)
    generator_choices(args.repeats)


if __name__ == "__main__":
    main()
