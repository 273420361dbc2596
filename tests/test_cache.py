"""The feature cache: shared across processes, trials and experiments; per-file, so it rebuilds
only what changed; atomic, so concurrent or interrupted builds never leave a partial entry."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avbench.data.cache import FeatureCache
from avbench.data.features import LogMelExtractor, LogMelSettings
from avbench.errors import DecodeError
from avbench.results.records import iter_records
from tests.conftest import BUILTIN, REPO, TINY, TINY_VALUES

SETTINGS = LogMelSettings(clip_seconds=0.5, n_mels=16)


@pytest.fixture
def wavs(synthetic_data, tmp_path) -> list[Path]:
    """24 real clips copied, so a test may change them."""
    folder = tmp_path / "wavs"
    folder.mkdir()
    for wav in sorted((synthetic_data / "cremad-tiny" / "AudioWAV").glob("*.wav"))[:24]:
        shutil.copy(wav, folder / wav.name)
    return sorted(folder.glob("*.wav"))


def fetch(root: Path, paths, extractor=None, **options):
    cache = FeatureCache(root, workers=options.pop("workers", 1), pool_after_s=options.pop("pool_after_s", None))
    return cache.fetch({"audio": (extractor or LogMelExtractor(SETTINGS), paths)}, **options)["audio"]


def as_array(feature_set) -> np.ndarray:
    return np.stack([np.asarray(feature_set.rows[i]) for i in range(len(feature_set.rows))])


def shards(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.npy"))


def test_hits_after_a_build_and_rows_are_memory_mapped(wavs, tmp_path):
    progress = []
    first = fetch(tmp_path / "c", wavs, progress=lambda done, total: progress.append((done, total)))
    assert first.stats.as_dict() == {"hits": 0, "misses": 24, "decoded": 24, "failed": 0, "hit_rate": 0.0}
    assert progress[0] == (0, 24) and progress[-1] == (24, 24)
    again = fetch(tmp_path / "c", wavs)
    assert again.stats.as_dict()["hit_rate"] == 1.0 and again.stats.decoded == 0
    assert isinstance(again.rows[0], np.memmap)
    np.testing.assert_array_equal(as_array(first), as_array(again))
    np.testing.assert_array_equal(again.rows[3], LogMelExtractor(SETTINGS)(wavs[3]))
    # A DataLoader worker gets the shard names, not a copy of the data.
    copy = pickle.loads(pickle.dumps(again.rows))
    assert len(pickle.dumps(again.rows)) < 4000
    np.testing.assert_array_equal(copy[5], again.rows[5])


def test_a_changed_file_or_a_new_split_decodes_only_what_is_new(wavs, tmp_path):
    before = as_array(fetch(tmp_path / "c", wavs[:20]))
    shutil.copy(wavs[0], wavs[1])  # wavs[1] now holds other audio
    after = fetch(tmp_path / "c", wavs)  # and wavs[20:] are new
    assert (after.stats.hits, after.stats.decoded) == (19, 5)
    array = as_array(after)
    np.testing.assert_array_equal(array[2:20], before[2:20])
    np.testing.assert_array_equal(array[1], array[0])
    assert not np.array_equal(array[1], before[1])


def test_two_processes_building_the_same_key_get_identical_arrays(wavs, tmp_path):
    script = (
        "import json, sys, time, numpy as np\nfrom pathlib import Path\n"
        "from avbench.data.cache import FeatureCache\n"
        "from avbench.data.features import LogMelExtractor, LogMelSettings\n"
        "root, out, paths = Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]\n"
        "(out.parent / f'ready-{out.stem}').touch()\n"
        "while len(list(out.parent.glob('ready-*'))) < 2: time.sleep(0.01)\n"  # start together
        "cache = FeatureCache(root)\n"
        "got = cache.fetch({'audio': (LogMelExtractor(LogMelSettings(clip_seconds=0.5, n_mels=16)), paths)})['audio']\n"
        "np.save(out, np.stack([np.asarray(got.rows[i]) for i in range(len(got.rows))]))\n"
        "print(json.dumps(got.stats.as_dict()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "c"), str(tmp_path / f"{n}.npy"), *map(str, wavs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in ("a", "b")
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    stats = [json.loads(out) for out, _ in outputs]
    assert sum(s["decoded"] for s in stats) == len(wavs)  # one built, the other waited and read it
    assert not list((tmp_path / "c").rglob("*.tmp"))  # no partial file left behind
    for shard in shards(tmp_path / "c"):
        assert np.load(shard).shape[1:] == SETTINGS.row_shape
    np.testing.assert_array_equal(as_array(fetch(tmp_path / "c", wavs)), np.load(tmp_path / "a.npy"))


def test_worker_processes_build_the_same_features(wavs, tmp_path):
    wavs[5].write_bytes(b"RIFF" + bytes(300))  # a failure must travel back from a worker too
    parallel = fetch(tmp_path / "pool", wavs, workers=2, pool_after_s=0)
    serial = fetch(tmp_path / "here", wavs)
    np.testing.assert_array_equal(as_array(parallel), as_array(serial))
    assert parallel.failures == serial.failures and list(parallel.failures) == [wavs[5]]
    writers = {int(shard.stem.split("-")[1]) for shard in shards(tmp_path / "pool")}
    assert writers - {os.getpid()}, "no shard was written by a worker process"
    assert (parallel.stats.decoded, parallel.stats.failed) == (len(wavs) - 1, 1)


def test_small_builds_stay_in_process(wavs, tmp_path):
    """24 log-mels take a fraction of a second here: not worth starting torch in two workers."""
    fetch(tmp_path / "c", wavs, workers=2)
    assert {int(shard.stem.split("-")[1]) for shard in shards(tmp_path / "c")} == {os.getpid()}


def test_a_progress_bar_only_on_a_terminal():
    from io import StringIO

    from rich.console import Console

    from avbench.display import feature_progress

    with feature_progress(Console(file=StringIO())) as callback:
        assert callback is None  # logs and pipes: no bar, nothing printed
    screen = StringIO()
    with feature_progress(Console(file=screen, force_terminal=True, width=80)) as callback:
        callback(0, 40)
        callback(40, 40)
    assert "40/40" in screen.getvalue()
    # A sweep shows it as a third bar under its trial and epoch bars, while a trial decodes.
    from avbench.display import SweepDisplay

    display = SweepDisplay(Console(file=StringIO(), force_terminal=True, width=100), 3, 0, 2)
    with display:
        display.features(5, 40)
        assert len(display.progress.tasks) == 3
        display.features(40, 40)
        assert len(display.progress.tasks) == 2


class InterruptedAt(LogMelExtractor):
    """The real extractor, but Ctrl-C arrives while decoding file number `stop`."""

    def __init__(self, settings, stop: int):
        super().__init__(settings)
        self.stop, self.calls = stop, 0

    def __call__(self, path):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return super().__call__(path)


def test_an_interrupted_build_keeps_the_files_it_finished(wavs, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fetch(tmp_path / "c", wavs, extractor=InterruptedAt(SETTINGS, stop=15))
    resumed = fetch(tmp_path / "c", wavs)
    assert (resumed.stats.hits, resumed.stats.decoded) == (14, 10)


def test_strict_stops_at_a_bad_file_and_keeps_the_work_done(wavs, tmp_path):
    wavs[10].write_bytes(b"RIFF" + bytes(500))
    with pytest.raises(DecodeError, match=f"{wavs[10].name}: not decodable"):
        fetch(tmp_path / "c", wavs, strict=True)
    relaxed = fetch(tmp_path / "c", wavs)
    # The 10 good files before it and its failure were kept: nothing is decoded twice.
    assert (relaxed.stats.hits, relaxed.stats.decoded) == (11, 13)
    assert list(relaxed.failures) == [wavs[10]] and len(relaxed.rows) == 23
    # The failure is remembered: a later strict run names the same file at once.
    with pytest.raises(DecodeError, match=wavs[10].name):
        fetch(tmp_path / "c", wavs, strict=True)


def test_a_damaged_cache_is_rebuilt_not_fatal(wavs, tmp_path):
    fetch(tmp_path / "c", wavs)
    index = [path for path in sorted((tmp_path / "c").glob("*/*.json")) if path.name != "settings.json"]
    assert len(index) >= 2
    lost = [len(json.loads(path.read_text())["rows"]) for path in index[:2]]
    index[0].write_text("{not json")  # a garbled index
    index[1].with_suffix(".npy").unlink()  # rows deleted under their index
    again = fetch(tmp_path / "c", wavs)
    assert (again.stats.hits, again.stats.decoded) == (len(wavs) - sum(lost), sum(lost))
    np.testing.assert_array_equal(as_array(again), as_array(fetch(tmp_path / "fresh", wavs)))


def test_a_second_experiment_with_the_same_features_decodes_nothing(cli, workspace):
    source = (BUILTIN / "experiments" / "spectrogram-cnn-cremad.yaml").read_text()
    (workspace / "experiments" / "other-cremad.yaml").write_text(source.replace("drop_rate: 0.2", "drop_rate: 0.5"))
    one_epoch = ("--set", "train.epochs=1", "--no-wandb")
    cli("run", "spectrogram-cnn-cremad", *TINY, *TINY_VALUES, *one_epoch)
    cli("run", "other-cremad", *TINY, *TINY_VALUES, *one_epoch)
    records = {r.experiment: r for r in iter_records(workspace / "results")}
    first, second = records["spectrogram-cnn-cremad"], records["other-cremad"]
    assert first.cache["decoded"] == sum(first.data_sizes.values()) and first.cache["hit_rate"] == 0.0
    assert second.cache["decoded"] == 0 and second.cache["hit_rate"] == 1.0
    assert second.cache["by_modality"]["audio"]["hits"] == sum(second.data_sizes.values())
