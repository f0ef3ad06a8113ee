"""A fresh virtual environment for install tests (tests/test_colab.py, tests/test_binder.py),
without downloading torch and the rest: a .pth line adds this environment's site-packages to the
new one as a plain folder. Python does not process the .pth files inside a folder added that way,
so medlab's editable install (a .pth finder) is *not* importable there, while its dependencies
are. pip run in the new environment installs into it only: it leaves a distribution it finds in
this environment's folder alone ("outside environment")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: settings that would point pip, Python, Jupyter or medlab somewhere else than the test means
_DROP = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")
_DROP_PIP = (
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_USER",
    "PIP_CONSTRAINT",
    "PIP_REQUIREMENT",
)
_DROP_PREFIX = ("MEDLAB_", "JUPYTER", "XDG_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROP + _DROP_PIP and not k.startswith(_DROP_PREFIX)
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1", **extra)
    return env


def make_venv(folder: Path) -> Path:
    """A venv (with its own pip) in ``folder`` that sees this environment's packages but not
    medlab; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    host = sysconfig.get_paths()["purelib"]
    (site_packages(python) / "medlab-test-host.pth").write_text(host + "\n")
    return python


def site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    return Path(out.stdout.strip())


def checkout_copy(dst: Path) -> Path:
    """This checkout without build outputs, caches or environments: pip builds a local folder in
    place (build/, *.egg-info), which must not land in the working tree."""
    anywhere = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".*_cache")
    top = {"outputs", "build", "dist", "data"}  # only at the root: medlab/data/ is a package

    def skip(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder).resolve() == ROOT.resolve()
        return set(anywhere(folder, names)) | (top & set(names) if at_root else set())

    shutil.copytree(ROOT, dst, ignore=skip, symlinks=True)
    return dst


def run_python(python: Path | str, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` in ``cwd`` (not the checkout: its medlab/ folder would be importable
    from there), with :func:`clean_env`."""
    return subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )
