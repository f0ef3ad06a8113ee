"""Provenance: where a recorded number came from (datasets, seed, mode, software, machine,
device)."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from medlab.data import MedMNISTData
from medlab.utils import device

__all__ = ["provenance", "package_versions", "PACKAGES", "DISTRIBUTIONS"]

PACKAGES = (
    "medlab",
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "medmnist",
    "fairlearn",
    "opacus",
    "shap",
    "captum",
    "lime",
    "plotly",
    "papermill",
)
#: Distribution names that differ from the name a result's provenance shows: medlab is installed
#: as ``medlab-edu`` ("medlab" on PyPI is an unrelated project).
DISTRIBUTIONS = {"medlab": "medlab-edu"}


@cache
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour the results depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(DISTRIBUTIONS.get(name, name))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@cache
def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _device() -> dict[str, str]:
    """``{"device": "cpu"}``, or with a GPU ``{"device": "cuda", "device_name": "<its name>"}``."""
    dev = device()
    if dev.type == "cuda":
        return {"device": str(dev), "device_name": torch.cuda.get_device_name(dev)}
    return {"device": str(dev)}


def provenance(
    datasets: list[MedMNISTData] | None = None,
    *,
    seed: int | None = None,
    quick: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Where a number came from: datasets (file, md5, official?), seed, mode, software, machine,
    and the device :func:`medlab.utils.device` trains and predicts on (``cpu``, ``cuda``, ...;
    with the GPU's name), so that numbers computed on a GPU say so."""
    return {
        "datasets": {d.name: dict(d.provenance) for d in (datasets or [])},
        "seed": seed,
        "quick": quick,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        **_device(),
        "git_commit": _git_commit(),
        "utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }
