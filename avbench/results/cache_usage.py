"""Which feature-cache settings the known experiments read, so `avbench cache prune` removes
only what none of them (built-in or the user's, with any preset) would use again."""

from __future__ import annotations

from pathlib import Path

from avbench.errors import AvbenchError


def settings_in_use(cache_root: Path) -> tuple[set[str], set[str]]:
    """(settings folder names some experiment maps to, feature names some experiment searches a
    data setting of: every folder of such a feature may be one of its trials')."""
    from avbench.catalog import list_experiments, load_experiment
    from avbench.data.cache import settings_dir
    from avbench.data.dataset import feature_extractors
    from avbench.preflight import with_model_inputs

    in_use: set[str] = set()
    protected: set[str] = set()
    for name in list_experiments():
        try:
            base = load_experiment(name)
        except AvbenchError:
            continue  # a broken file uses nothing; `avbench validate` reports it
        for preset in (None, *base.config.presets):
            try:
                loaded = base if preset is None else load_experiment(name, preset=preset)
                extractors = feature_extractors(with_model_inputs(loaded.config).data)
            except AvbenchError:
                continue
            searches_data = any(key.startswith("data.") for key in loaded.searched)
            for extractor in extractors.values():
                in_use.add(settings_dir(cache_root, extractor).name)
                if searches_data:
                    protected.add(extractor.name)
    return in_use, protected
