"""The data layer's errors: each one a :class:`DataError` (a ``ValueError``) whose message names
the fix, plus the warning for an official name loaded from an unofficial copy."""

from __future__ import annotations

__all__ = [
    "DataError",
    "DataNotFoundError",
    "DataLayoutError",
    "DataChecksumError",
    "DataDirError",
    "DataArgumentError",
    "DataIndexError",
    "UnknownDatasetError",
    "UnofficialDataWarning",
]


class DataError(ValueError):
    """Base class for every data problem medlab reports."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The file is not on disk and could not be downloaded."""


class DataLayoutError(DataError):
    """The file exists but is not a MedMNIST-layout npz (or contradicts the official one)."""


class DataChecksumError(DataError):
    """A file's md5/sha256 is not the one it must have (official md5, or its data card's sha256)."""


class DataDirError(DataError):
    """The data folder cannot be used: it is a file, or cannot be created or written."""


class DataArgumentError(DataError, TypeError):
    """An argument has the wrong type (``size=28.0``, ``name=None``, a bare string for a list)."""


class UnknownDatasetError(DataError):
    """The name is neither an official 2D MedMNIST dataset nor a registered custom one."""


class DataIndexError(DataError, IndexError):
    """:meth:`Split.subset` got a row index outside the split."""


class UnofficialDataWarning(UserWarning):
    """A file loaded under an official name whose MD5 is not the official one."""
