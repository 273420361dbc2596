"""What the feature cache's extractors share: settings that give the row shape and the cache
key, and a transform built on first use that a pickled copy (for a cache worker) leaves out."""

from __future__ import annotations

from typing import Any


class SettingsExtractor:
    """Base of an extractor made from one settings object. `lazy` names the attribute that holds
    a transform built on first use (torch's, which a worker process builds for itself)."""

    lazy: str | None = None

    def __init__(self, settings: Any):
        self.settings = settings
        self.shape = settings.row_shape
        if self.lazy:
            setattr(self, self.lazy, None)

    def key_fields(self) -> dict:
        return self.settings.key_fields()

    def __getstate__(self) -> dict:
        return {**self.__dict__, self.lazy: None} if self.lazy else dict(self.__dict__)
