"""The old ESC-10 / ESC-50 layout that auDeep's tutorial checks out: one folder per class,
named `NNN - Class` (ESC-10: `001 - Dog bark` … `010 - Fire crackling`; ESC-50: `101 - Dog` …
`510 - Hand saw`), holding `.ogg` clips whose names start with their fold (`1-100038-A.ogg`).

The classes are mapped onto ESC-50's targets, so a model sees the same labels (and the same
order) as on today's `audio/*.wav` + `meta/esc50.csv` layout: ESC-10 folders by their names,
ESC-50 folders by their number (major category × 10 + minor − 1).
"""

from __future__ import annotations

import re
from pathlib import Path

from avbench.spec import Item
from avbench.tasks.splits import fold_split

CLASS_DIR = re.compile(r"^(\d{3}) - (.+)$")
CLIP_NAME = re.compile(r"^([1-5])-([^-]+)")
SUFFIXES = (".ogg", ".wav")
FOLDS = 5
# The old ESC-10 repository's folder names → ESC-50 targets.
ESC10_FOLDERS = {
    "dog bark": 0,
    "rooster": 1,
    "rain": 10,
    "sea waves": 11,
    "fire crackling": 12,
    "baby cry": 20,
    "person sneeze": 21,
    "clock tick": 38,
    "helicopter": 40,
    "chainsaw": 41,
}


def class_dirs(root: Path) -> list[Path]:
    """The `NNN - Class` folders under root (sorted), or [] when any visible folder is named otherwise."""
    try:
        folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    if not folders or not all(CLASS_DIR.match(p.name) for p in folders):
        return []
    return folders


def folder_target(folder: Path) -> int | None:
    """The ESC-50 target a class folder holds, or None when its name is no ESC class."""
    number, name = CLASS_DIR.match(folder.name).groups()
    code = int(number)
    if code <= len(ESC10_FOLDERS):
        return ESC10_FOLDERS.get(name.strip().lower())
    major, minor = divmod(code, 100)
    if 1 <= major <= 5 and 1 <= minor <= 10:
        return (major - 1) * 10 + minor - 1
    return None


def legacy_items(root: Path, targets: tuple[int, ...], test_fold: int, skipped: list) -> list[Item]:
    """Every clip of the classes in `targets` (label = its index there), split by fold;
    folders of other classes are left out, unusable files go to `skipped` with the reason."""
    out: list[Item] = []
    for folder in class_dirs(root):
        target = folder_target(folder)
        if target is None:
            skipped.append((folder, "class folder names no ESC class"))
            continue
        if target not in targets:
            continue  # an ESC-50 class in ESC-10's task
        for path in sorted(folder.iterdir()):
            match = CLIP_NAME.match(path.name)
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() not in SUFFIXES:
                skipped.append((path, f"not an audio clip ({', '.join(SUFFIXES)})"))
            elif match is None:
                skipped.append((path, "name does not start with its fold (1-5) and '-'"))
            else:
                fold = int(match[1])
                out.append(
                    Item(
                        audio=path,
                        label=targets.index(target),
                        speaker=match[2],
                        split=fold_split(fold, test_fold, FOLDS),
                        fold=fold,
                    )
                )
    return out
