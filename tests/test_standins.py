"""What every stand-in promises: the same files for the same seed, a clean rewrite over an
older stand-in, never a write into somebody's data, the shared size names; and every task
refuses data options it would silently ignore. Parametrised over the task registry, so a new
task is tested without an edit here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avbench.config import DataConfig
from avbench.errors import DatasetError
from avbench.registry import TASKS
from avbench.spec import OPTIONAL_DATA_FIELDS, STANDIN_SIZES
from avbench.tasks.standin import MARKER

# Smaller "tiny" settings that still exercise every code path, to keep the suite fast; a task
# not listed here is tested at its own tiny size.
SMALLEST = {
    "cremad": {"sizes": {"tiny": (2, 1)}},
    "esc50": {"sizes": {"tiny": 1}, "targets": (0, 1, 2)},
    "esc10": {"sizes": {"tiny": 1}, "targets": (0, 10)},
    "ravdess": {"sizes": {"tiny": (3, 1)}},
    "commands": {"sizes": {"tiny": (3, 1)}},
    "audiofolder": {"sizes": {"tiny": (3, 1)}},
    "annotations": {"sizes": {"tiny": (3, 2)}},
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", TASKS.names())
def test_stand_in_is_deterministic_rewritable_and_safe(name: str, tmp_path: Path, monkeypatch) -> None:
    task_class = TASKS.get(name)
    for attribute, value in SMALLEST.get(name, {}).items():
        monkeypatch.setattr(task_class, attribute, value)
    first, second = tmp_path / "a", tmp_path / "b"
    count = task_class().synthesize(first, size="tiny", seed=3)
    assert task_class().synthesize(second, size="tiny", seed=3) == count
    assert snapshot(first) == snapshot(second)
    marker = json.loads((first / MARKER).read_text())
    assert (marker["task"], marker["size"], marker["seed"], marker["count"]) == (name, "tiny", 3, count)
    assert len(task_class().items(first, DataConfig())) == count

    # Over a stand-in: replaced, nothing of the old one left over.
    task_class().synthesize(first, size="tiny", seed=4)
    task_class().synthesize(tmp_path / "fresh", size="tiny", seed=4)
    assert snapshot(first) == snapshot(tmp_path / "fresh") != snapshot(second)

    (first / MARKER).write_text(json.dumps({"task": name, "writing": True}))  # an interrupted write
    assert task_class().synthesize(first, size="tiny", seed=3) == count
    assert snapshot(first) == snapshot(second)
    (first / MARKER).unlink()
    with pytest.raises(DatasetError, match="not a synthetic stand-in; refusing to overwrite"):
        task_class().synthesize(first, size="tiny", seed=3)
    with pytest.raises(DatasetError, match="unknown synthetic size 'huge'"):
        task_class().synthesize(tmp_path / "c", size="huge")


@pytest.mark.parametrize("name", TASKS.names())
def test_data_options_a_task_ignores_are_refused(name: str, tmp_path: Path) -> None:
    task = TASKS.get(name)()
    used = {
        "fold": 3,
        "folds": 5,
        "speaker_regex": "^(x)",
        "label_source": "voice",
        "subfolders": {"val": "dev"},
        "classes": ["a"],
        "split_csv": "splits",
        "audio_root": "wavs",
    }
    for field in OPTIONAL_DATA_FIELDS:
        if field in task.data_options:
            continue
        with pytest.raises(DatasetError, match=f"data.{field}=.* does not apply") as caught:
            task.items(tmp_path / "absent", DataConfig(**{field: used[field]}))
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_has_the_shared_stand_in_sizes(name: str) -> None:
    assert tuple(TASKS.get(name).sizes) == STANDIN_SIZES
