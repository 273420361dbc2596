"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""


class AvbenchError(Exception):
    """Base class: a problem with the user's input (config, data, arguments)."""


class ConfigError(AvbenchError):
    """An experiment file or override is malformed, unknown or of the wrong type."""


class DatasetError(AvbenchError):
    """A dataset is missing, or not in the layout its task expects."""


class StorageError(AvbenchError):
    """A sweep storage URL is malformed, unsupported or cannot be opened."""
