"""The model cache: trained weights on disk, keyed by the kind of model, the dataset's MD5, a
hash of the exact training (and validation) images and labels, the seed, a hash of the
settings, medlab's version and a hash of the model-changing source code
(:func:`~medlab.experiments.source.source_hash`); read back with ``weights_only=True``.

Weights are saved as CPU tensors and read back with ``map_location="cpu"`` into the model
wherever it is. Weights trained on a GPU (or MPS) get a key of their own (the device type is
part of it; CPU keys are unchanged), so a CPU run never reuses GPU-trained weights: the same
seed gives the same numbers on the CPU whatever ran before in a shared cache."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab import __version__
from medlab.experiments.source import source_hash
from medlab.results import output_dir
from medlab.utils import check_int, device, seed_everything

__all__ = ["cache_dir", "fingerprint", "ModelCache", "cached_model"]


def cache_dir() -> Path:
    """``$MEDLAB_CACHE_DIR``, else ``<output folder>/cache`` (``medlab reproduce`` shares one
    cache between the notebooks of a run and across runs)."""
    env = os.environ.get("MEDLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return (output_dir() / "cache").resolve()


def fingerprint(*arrays: Any) -> str:
    """SHA-256 of tensors/arrays (dtype, shape and bytes), e.g. of training images and labels."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        if isinstance(a, torch.Tensor):  # the same bytes from any device
            arr = a.detach().contiguous().cpu().numpy()
        else:
            arr = np.ascontiguousarray(np.asarray(a))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _label(name: str, limit: int = 60) -> str:
    """A readable, file-name-safe label for ``name`` (at most ``limit`` characters). Labels are
    for people only: different names can share one; :meth:`ModelCache.path` adds the digest."""
    s = re.sub(r"[^A-Za-z0-9_+-]+", "_", str(name)).strip("_")[:limit].strip("_")
    return s or "x"


def _key_digest(key: str) -> str:
    """The whole SHA-256 (64 hex digits) of a cache key's exact characters."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ModelCache:
    """Trained weights on disk, one ``.pt`` file per key (see :func:`cached_model`).

    A key's file is ``<label>-<SHA-256 of the key>.pt``: a readable label cut to 60 characters
    plus the whole 64-digit digest of the exact key, so two different keys never share a file,
    whatever their length or characters. Files hold ``{"key": key, "state": state_dict, "info":
    json}`` and are read with ``torch.load(weights_only=True)``; a file whose stored key is not
    the requested one (or that stores none) is a miss. Paths always stay inside ``folder``.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder).expanduser().resolve() if folder is not None else cache_dir()

    def key(
        self,
        kind: str,
        *,
        data: Any,
        train: Any,
        seed: int,
        settings: Mapping[str, Any] | None = None,
        val: Any = None,
        weights: Any = None,
    ) -> str:
        """The cache key: kind, dataset name and MD5, fingerprints of the exact training (and
        validation) images, labels and sample weights, seed, settings, medlab's version and a
        hash of its model-changing source code (:func:`~medlab.experiments.source_hash`)."""
        prov = getattr(data, "provenance", None) or {}
        parts = {
            "kind": str(kind),
            "dataset": getattr(data, "name", str(data)),
            "md5": prov.get("md5"),
            "train": fingerprint(*_split_arrays(train)),
            "val": fingerprint(*_split_arrays(val)) if val is not None else None,
            "weights": fingerprint(weights) if weights is not None else None,
            "seed": check_int("seed", seed, 0),
            "settings": json.dumps(dict(settings or {}), sort_keys=True, default=str),
            "medlab": __version__,
            "source": source_hash(),
            "torch": torch.__version__,
        }
        where = device().type
        if where != "cpu":  # GPU numbers may differ a little: never mix them into CPU runs
            parts["device"] = where
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        # readable labels, then the whole digest of every part (the raw names included)
        return f"{_label(kind)}-{_label(parts['dataset'])}-seed{parts['seed']}-{digest}"

    def path(self, key: str) -> Path:
        """The file of ``key``: ``folder/<label>-<SHA-256 of key>.pt`` (see the class)."""
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"a cache key must be a non-empty str, got {key!r}; make keys with "
                "ModelCache.key(...)"
            )
        p = (self.folder / f"{_label(key)}-{_key_digest(key)}.pt").resolve()
        if p.parent != self.folder:  # pragma: no cover - the name has no separator
            raise ValueError(f"cache key {key!r} would leave the cache folder {self.folder}")
        return p

    def get(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load the weights of ``key`` into ``model`` and return their info, or None when the
        file is missing or unreadable (a corrupt file is reported and ignored)."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
            stored = blob.get("key") if isinstance(blob, dict) else None
            if stored != key:
                warnings.warn(
                    f"ignoring cached model {p.name}: it was saved for another key "
                    f"({stored!r}, not {key!r}); it will be retrained and replaced",
                    stacklevel=2,
                )
                return None
            state, info = blob["state"], json.loads(blob["info"])
            mine = model.state_dict()
            shapes = {k: tuple(v.shape) for k, v in state.items()}
            if shapes != {k: tuple(v.shape) for k, v in mine.items()}:
                raise ValueError("its tensors do not match the model's names and shapes")
            model.load_state_dict(state)  # checked first: a mismatch never half-loads
            return info
        except Exception as exc:  # corrupt file, other architecture: retrain
            warnings.warn(
                f"ignoring unreadable cached model {p.name} ({type(exc).__name__}: "
                f"{exc}); it will be retrained and replaced",
                stacklevel=2,
            )
            return None

    def put(self, key: str, model: nn.Module, info: Mapping[str, Any]) -> Path:
        """Save ``model``'s weights and ``info`` (JSON-able) atomically; returns the path."""
        p = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the model cache folder {self.folder} ({exc}); set "
                "MEDLAB_CACHE_DIR to a writable folder"
            ) from exc
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=self.folder)
        os.close(fd)
        try:
            blob = {"key": key, "state": state, "info": json.dumps(dict(info), default=str)}
            torch.save(blob, tmp)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return p


def _split_arrays(split: Any) -> tuple[Any, ...]:
    if split is None:
        return (None,)
    if hasattr(split, "images") and hasattr(split, "labels"):
        return split.images, split.labels
    if isinstance(split, tuple | list):
        return tuple(split)
    return (split,)


def cached_model(
    kind: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], Mapping[str, Any] | None],
    *,
    data: Any,
    train_split: Any,
    seed: int,
    settings: Mapping[str, Any] | None = None,
    val_split: Any = None,
    weights: Any = None,
    cache: ModelCache | str | os.PathLike[str] | bool | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained model from the cache, or trained now and cached.

    ``build()`` makes the untrained model; ``train(model)`` trains it in place and returns a
    JSON-able info dict (e.g. ``History.as_dict()``). The key is :meth:`ModelCache.key` of
    ``kind``, ``data``, ``train_split`` (a Split or arrays), ``val_split``, ``weights``,
    ``seed`` and ``settings``: change any and the model is retrained. ``cache=False`` never
    reads or writes. Returns ``(model in eval mode, info)``; ``info["cached"]`` says which.
    """
    seed_everything(seed)
    model = build()
    if cache is False:
        info = dict(train(model) or {})
        model.eval()
        return model, {**info, "cached": False}
    store = (
        cache
        if isinstance(cache, ModelCache)
        else ModelCache(None if cache in (None, True) else cache)
    )
    key = store.key(
        kind,
        data=data,
        train=train_split,
        seed=seed,
        settings=settings,
        val=val_split,
        weights=weights,
    )
    info = store.get(key, model)
    if info is not None:
        model.eval()
        return model, {**info, "cached": True, "key": key}
    seed_everything(seed)  # train from the seeded initialisation, whatever get() touched
    model = build()
    info = dict(train(model) or {})
    store.put(key, model, info)
    model.eval()
    return model, {**info, "cached": False, "key": key}
