"""Shared fixtures. Real data comes from MEDLAB_TEST_DATA_DIR (default: ../shared/medmnist next to
the repo, the CI's copy of real MedMNIST files). Without it the official files are downloaded
(needs internet) into MEDLAB_DATA_DIR / ~/.medmnist."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

import medlab
from medlab.data import MedMNISTData, UnofficialDataWarning

os.environ.setdefault("MEDLAB_QUIET", "1")  # no progress bars in test logs

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "medmnist"


def _shared_data_dir() -> Path | None:
    env = os.environ.get("MEDLAB_TEST_DATA_DIR")
    if env:
        return Path(env).resolve()
    return SHARED if SHARED.exists() else None


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: the CPUs this process may use (as ``medlab.utils.default_threads``), not
    psutil's count of the host's cores, which a container limited to 2 of them does not see."""
    from medlab.utils import default_threads

    return default_threads()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The notebook runs go first (in their modules' order): they are the longest chains, and
    pytest-xdist (pyproject's ``--dist loadfile --no-loadscope-reorder``) hands out whole modules
    in this order, so the two datasets' chains start at once on the two workers and the short
    modules fill in around them."""
    items.sort(key=lambda item: item.get_closest_marker("notebook") is None)  # stable


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One model cache for all notebook runs, as in `medlab reproduce`: notebook 04 explains the
    very models notebook 03 trained (a dataset's notebooks run in order, in one module)."""
    return tmp_path_factory.mktemp("model-cache")


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


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Unit tests train tiny models on two shared cores: one torch thread is as fast and does
    not fight other processes; the count is restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The model cache in a temporary folder (also the default one, via MEDLAB_CACHE_DIR)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(folder))
    return folder


def data_slice(
    data: MedMNISTData, n: tuple[int, int, int] = (80, 40, 100), *, seed: int = 0
) -> MedMNISTData:
    """A small random (class-mixed) slice of a real dataset: n train/val/test images."""
    g = torch.Generator().manual_seed(seed)
    tr, va, te = (
        data[s].subset(torch.randperm(len(data[s]), generator=g)[:k])
        for s, k in zip(("train", "val", "test"), n, strict=True)
    )
    return MedMNISTData(
        data.name,
        tr,
        va,
        te,
        data.task,
        dict(data.label_names),
        data.n_channels,
        data.size,
        data.license,
        "",
        dict(data.provenance),
    )


def tiny_notebook(path, source: str, *, title: str | None = None, dataset: str = "x") -> None:
    """Write a minimal curriculum-style notebook for harness tests: an optional title cell, a
    ``parameters`` cell (quick, seed, dataset, data_dir) and one code cell with ``source``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    head = (
        [nbformat.v4.new_markdown_cell(f"# {title}\n\nA notebook for a harness test.")]
        if title
        else []
    )
    nb.cells = head + [
        nbformat.v4.new_code_cell(
            f"quick = True\nseed = 0\ndataset = {dataset!r}\ndata_dir = None",
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(source),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
