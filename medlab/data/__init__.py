"""One data layer for the whole curriculum: MedMNIST files in, uint8 tensors with provenance out.

>>> data = load("breastmnist", data_dir="../shared/medmnist")      # doctest: +SKIP
>>> data.train.images.shape, data.train.images.dtype                # (546, 1, 28, 28) uint8
>>> data.provenance["official"]                                     # False for a re-saved copy

Metadata (task, label names, channels, licence, official MD5 and split sizes) is read from
``medmnist.INFO``, never retyped. Official files are downloaded with pooch and verified by MD5;
pooch writes to a temporary file and only moves it into place once the hash matches, so a failed
download never leaves a partial file behind (temporary files left by a killed download are
removed by the next download into the same folder). A file already on disk is never replaced:
:func:`download` refuses one whose MD5 is not the official one, while :func:`load` loads it and
marks it unofficial. Registered custom datasets (data cards with ``kind: custom``) are checked
against their card's sha256 and split sizes.

The data directory is, in order: the ``data_dir`` argument, the ``MEDLAB_DATA_DIR`` environment
variable, or ``~/.medmnist`` (the folder medmnist itself uses, so existing downloads are reused).
A relative path is relative to the current working directory. Only :func:`download` creates it.

Every problem is reported as a :class:`DataError` (a ``ValueError``) whose message names the fix.

One idea per module: :mod:`~medlab.data.registry` (names and official facts),
:mod:`~medlab.data.folders` (the data folder), :mod:`~medlab.data.digests` (MD5, SHA-256,
bundle manifests), :mod:`~medlab.data.npz` (reading a file), :mod:`~medlab.data.splits`
(:class:`Split`, :class:`MedMNISTData`), :mod:`~medlab.data.build` (file to dataset),
:mod:`~medlab.data.downloads` (official downloads), :mod:`~medlab.data.custom` (your own files)
and :mod:`~medlab.data.loading` (:func:`load`, :func:`available`).
"""

from __future__ import annotations

import os as os  # medlab.data.os: tests patch os.access through it

from medmnist import INFO as INFO

# names outside __all__ are written `x as x`: kept reachable as medlab.data.x for medlab.harness.kit
# and the tests (private helpers included)
from medlab.data.build import _warned_unofficial as _warned_unofficial
from medlab.data.custom import load_custom
from medlab.data.digests import _RACY_NS as _RACY_NS
from medlab.data.digests import MANIFEST, check_manifest, file_md5, file_sha256, read_manifest
from medlab.data.digests import _digest_cache as _digest_cache
from medlab.data.downloads import download
from medlab.data.errors import (
    DataArgumentError,
    DataChecksumError,
    DataDirError,
    DataError,
    DataIndexError,
    DataLayoutError,
    DataNotFoundError,
    UnknownDatasetError,
    UnofficialDataWarning,
)
from medlab.data.folders import ENV_VAR as ENV_VAR
from medlab.data.folders import _make_folder as _make_folder
from medlab.data.folders import _remove_empty as _remove_empty
from medlab.data.folders import resolve_data_dir
from medlab.data.loading import available, load
from medlab.data.registry import OFFICIAL_2D, SIZES, SPLITS, check_custom_name, check_names
from medlab.data.registry import TASKS as TASKS
from medlab.data.registry import _check_name as _check_name
from medlab.data.registry import _official_file as _official_file
from medlab.data.splits import MedMNISTData, Split

__all__ = [
    "SPLITS",
    "SIZES",
    "OFFICIAL_2D",
    "DataError",
    "DataNotFoundError",
    "DataLayoutError",
    "DataChecksumError",
    "DataDirError",
    "DataArgumentError",
    "DataIndexError",
    "UnknownDatasetError",
    "UnofficialDataWarning",
    "Split",
    "MedMNISTData",
    "resolve_data_dir",
    "file_md5",
    "file_sha256",
    "check_names",
    "available",
    "load",
    "load_custom",
    "download",
    "MANIFEST",
    "read_manifest",
    "check_custom_name",
    "check_manifest",
]
