"""The workbench's user-facing error type (a leaf: imports nothing)."""


class DataError(ValueError):
    """Bad input data. The message names the file, segment or key and what was expected."""
