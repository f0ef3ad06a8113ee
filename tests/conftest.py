"""Shared fixtures. Real data comes from MEDLAB_TEST_DATA_DIR (default: ../shared/medmnist next to
the repo, the CI's copy of real MedMNIST files). Without it the official files are downloaded
(needs internet) into MEDLAB_DATA_DIR / ~/.medmnist."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import medlab
from medlab.data import UnofficialDataWarning

os.environ.setdefault("MEDLAB_QUIET", "1")  # no progress bars in test logs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "medmnist"


def _shared_data_dir() -> Path | None:
    env = os.environ.get("MEDLAB_TEST_DATA_DIR")
    if env:
        return Path(env).resolve()
    return SHARED if SHARED.exists() else None


@pytest.fixture(scope="session")
def data_dir() -> Path | None:
    return _shared_data_dir()


@pytest.fixture(scope="session")
def breast(data_dir):
    """BreastMNIST (the shared re-saved copy, or the official file downloaded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        return medlab.load("breastmnist", data_dir=data_dir)


@pytest.fixture(scope="session")
def pneumonia(data_dir):
    """The balanced PneumoniaMNIST subset if present, else the official PneumoniaMNIST."""
    if data_dir is not None and (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        return medlab.load("pneumoniamnist_balanced_subset", data_dir=data_dir)
    return medlab.load("pneumoniamnist", data_dir=data_dir)
