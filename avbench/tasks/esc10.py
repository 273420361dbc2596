"""ESC-10: the ten-class subset of ESC-50 (the rows with esc10 True), same files, same folds.

Labels are 0..9 in the order of the ESC-50 targets (dog 0, rooster 1, rain 10, sea_waves 11,
crackling_fire 12, crying_baby 20, sneezing 21, clock_tick 38, helicopter 40, chainsaw 41).
"""

from __future__ import annotations

from pathlib import Path

from avbench.errors import DatasetError
from avbench.registry import register_task
from avbench.tasks import esc_legacy
from avbench.tasks.esc50 import CATEGORIES, ESC10_TARGETS, ESC50, META, MetaRow, read_meta


@register_task("esc10")
class ESC10(ESC50):
    title = "ESC-10"
    classes = tuple(CATEGORIES[target] for target in ESC10_TARGETS)
    targets = ESC10_TARGETS
    layout = (
        "ROOT/audio/<fold>-<src_file>-<take>-<target>.wav (5 s, 44.1 kHz) and ROOT/meta/esc50.csv "
        "(rows with esc10 True), or the old ESC-10 checkout ROOT/<NNN - Class>/<fold>-….ogg"
    )
    sizes = {"tiny": 2, "small": 4, "medium": 8, "full": 8}

    @classmethod
    def keeps(cls, row: MetaRow) -> bool:
        return row.esc10

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """Only the ESC-10 stand-in (or a trimmed copy) lists nothing but ESC-10 rows; the old
        ESC-10 checkout has only ESC-10 class folders (001 - Dog bark …)."""
        folders = esc_legacy.class_dirs(Path(root))
        if folders:
            return all(esc_legacy.folder_target(f) in ESC10_TARGETS for f in folders)
        try:
            rows = [row for row in read_meta(Path(root) / META) if not isinstance(row, str)]
        except DatasetError:
            return False
        return (Path(root) / "audio").is_dir() and bool(rows) and all(row.esc10 for row in rows)
