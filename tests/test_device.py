"""The device: ``MEDLAB_DEVICE`` parsing, models and batches moved to it, and no ``.numpy()`` on
a tensor that may live on a GPU. No GPU is needed: the moves are checked with spies on ``.to``
and a patched :func:`medlab.utils.device` (a CPU device object followed by identity)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import medlab.utils as U
from medlab.data import Split
from medlab.models import SmallCNN
from medlab.train import fit, make_optimizer, predict, train_steps
from medlab.utils import device, on_device, seed_everything

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as CI sees it, whatever it has: no CUDA, no MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(U, "_mps_available", lambda: False)


def _split(n: int = 40, name: str = "train") -> Split:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Split("x", name, images, torch.arange(n) % 2, "binary-class", {0: "a", 1: "b"})


# ---------------------------------------------------------------------------- MEDLAB_DEVICE


@pytest.mark.parametrize("value", [None, "", "auto", " AUTO "])
def test_auto_is_the_cpu_without_a_gpu(no_gpu, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("MEDLAB_DEVICE", raising=False)
    else:
        monkeypatch.setenv("MEDLAB_DEVICE", value)
    assert device() == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("MEDLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(U, "_mps_available", lambda: True)
    assert device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device() == torch.device("mps")


def test_cpu_and_an_explicit_name(no_gpu, monkeypatch):
    monkeypatch.setenv("MEDLAB_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    monkeypatch.setenv("MEDLAB_DEVICE", "cuda")  # an explicit name wins over the variable
    assert device("cpu") == torch.device("cpu")


def test_cuda_n_is_checked_against_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("MEDLAB_DEVICE", "cuda:1")
    assert device() == torch.device("cuda", 1)
    monkeypatch.setenv("MEDLAB_DEVICE", "cuda:2")
    with pytest.raises(ValueError, match=r"has 2 CUDA devices \(cuda:0..cuda:1\)"):
        device()


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "tpu", "cpu:0"])
def test_a_bad_value_names_the_valid_ones(no_gpu, monkeypatch, value):
    monkeypatch.setenv("MEDLAB_DEVICE", value)
    with pytest.raises(
        ValueError, match="MEDLAB_DEVICE must be one of auto, cpu, cuda, cuda:N, mps"
    ):
        device()


@pytest.mark.parametrize("value", ["cuda", "cuda:0", "mps"])
def test_an_unavailable_device_says_what_to_set(no_gpu, monkeypatch, value):
    monkeypatch.setenv("MEDLAB_DEVICE", value)
    with pytest.raises(ValueError, match="set MEDLAB_DEVICE=auto") as err:
        device()
    assert f"MEDLAB_DEVICE={value!r}" in str(err.value)
    assert ("torch.cuda.is_available() is False" if "cuda" in value else "no MPS") in str(err.value)


def test_fit_refuses_an_unavailable_device_before_training(no_gpu, monkeypatch):
    monkeypatch.setenv("MEDLAB_DEVICE", "cuda")
    model = SmallCNN(1, 2, width=4)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="no CUDA device"):
        fit(model, _split(), None, epochs=1)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_seed_everything_seeds_cuda_and_deterministic_cublas(monkeypatch):
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seed_everything(7)
    assert seeded == [7]
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_seed_everything_turns_on_deterministic_kernels_without_loading_the_compiler():
    """The switch is on (warn only) after seed_everything, in a fresh interpreter that never
    imported torch._dynamo (torch.use_deterministic_algorithms would: 2-4 s per kernel); with
    the compiler loaded, its flag is set too."""
    import subprocess
    import sys

    code = (
        "import sys, torch; from medlab.utils import seed_everything, deterministic; "
        "seed_everything(0); "
        "print(torch.are_deterministic_algorithms_enabled(), "
        "torch.is_deterministic_algorithms_warn_only_enabled(), 'torch._dynamo' in sys.modules); "
        "import torch._inductor.config as c; deterministic(True); "
        "print(c.deterministic, torch.is_deterministic_algorithms_warn_only_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "True", "False"]


def test_provenance_records_the_device(no_gpu, monkeypatch):
    from medlab.results import provenance

    monkeypatch.setenv("MEDLAB_DEVICE", "cpu")
    assert provenance()["device"] == "cpu"


# ---------------------------------------------------------------------------- the moves


class _Spy:
    """Records ``nn.Module.to`` and ``torch.Tensor.to`` calls whose first argument is ``dev``
    (by identity), and every call of ``nn.Module.to``."""

    def __init__(self, monkeypatch, dev: torch.device) -> None:
        self.dev, self.modules, self.tensors = dev, [], []
        module_to, tensor_to = nn.Module.to, torch.Tensor.to

        def m_to(mod, *a, **k):
            self.modules.append((mod, a[0] if a else k.get("device")))
            return module_to(mod, *a, **k)

        def t_to(t, *a, **k):
            if a and a[0] is dev:
                self.tensors.append((t.dtype, len(t) if t.ndim else None))
            return tensor_to(t, *a, **k)

        monkeypatch.setattr(nn.Module, "to", m_to)
        monkeypatch.setattr(torch.Tensor, "to", t_to)

    def moved(self, model: nn.Module) -> list[bool]:
        """For each ``model.to`` call: was it to ``dev``?"""
        return [d is self.dev for m, d in self.modules if m is model]

    def sizes(self, dtype: torch.dtype) -> list[int | None]:
        """The lengths of the tensors of ``dtype`` moved to ``dev``, in order."""
        return [n for d, n in self.tensors if d == dtype]


@pytest.fixture
def fake_device(monkeypatch):
    """:func:`medlab.utils.device` patched to return one device object, followed by identity."""
    dev = torch.device("cpu")
    monkeypatch.setattr(U, "device", lambda name=None: dev)
    return dev


def test_fit_moves_the_model_and_every_batch_and_brings_the_model_back(fake_device, monkeypatch):
    model, train = SmallCNN(1, 2, width=4), _split(40)
    spy = _Spy(monkeypatch, fake_device)
    fit(model, train, None, epochs=2, batch_size=16, sample_weight=np.ones(40))
    assert spy.moved(model) == [True, False]  # to the device, then back where it was
    per_epoch = [16, 16, 8]  # batch sizes; two epochs
    assert spy.sizes(torch.uint8) == 2 * per_epoch  # images, moved as uint8
    assert spy.sizes(torch.int64) == 2 * per_epoch  # labels
    assert spy.sizes(torch.float32) == 2 * per_epoch  # sample weights


def test_predict_moves_the_model_and_every_batch(fake_device, monkeypatch):
    model, test = SmallCNN(1, 2, width=4), _split(50, "test")
    spy = _Spy(monkeypatch, fake_device)
    p = predict(model, test, batch_size=20)
    assert p.shape == (50, 2)
    assert spy.moved(model) == [True, False]
    # the empty slice that check_model sees, then every batch
    assert spy.sizes(torch.uint8) == [0, 20, 20, 10]


def test_train_steps_moves_each_batch_to_the_model(monkeypatch):
    """Batches follow the model (whose device ``model_device`` reports); the model stays."""
    dev = torch.device("cpu")
    import medlab.train.loop as loop

    monkeypatch.setattr(loop, "model_device", lambda m: dev)
    model = SmallCNN(1, 2, width=4)
    opt, _ = make_optimizer(model, total_steps=2)
    spy = _Spy(monkeypatch, dev)
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    y, w = torch.arange(8) % 2, torch.ones(8)
    train_steps(model, [(x, y), (x, y, w)], opt, 2)
    assert spy.moved(model) == []
    assert spy.sizes(torch.uint8) == [8, 8] and spy.sizes(torch.int64) == [8, 8]
    assert spy.sizes(torch.float32) == []  # w is made on the loss's device directly


def test_batches_augmentation_and_the_ddpm_loss_follow_the_device():
    """On torch's meta device (shapes, no values) a CPU tensor mixed into a computation raises:
    batches made on a device, their augmentation and the DDPM's draws must all land there."""
    from medlab.synthetic.ddpm import DDPM
    from medlab.train import BatchAugment, batches

    src = batches(_split(10), batch_size=4, augment=BatchAugment(), device="meta")
    x, y = next(src)
    assert x.device.type == y.device.type == "meta" and x.shape == (4, 1, 28, 28)
    ddpm = DDPM(1, 2, steps=10, width=8).to("meta").train()
    gen = torch.Generator().manual_seed(0)
    loss = ddpm.loss(
        torch.zeros(3, 1, 28, 28, device="meta"), torch.tensor([0, 1, 0]), generator=gen
    )
    assert loss.device.type == "meta" and loss.shape == (3,)


def test_on_device_brings_the_model_back_when_the_block_raises(monkeypatch):
    dev = torch.device("cpu")
    model = SmallCNN(1, 2, width=4)
    spy = _Spy(monkeypatch, dev)
    with pytest.raises(RuntimeError, match="inside"):
        with on_device(model, dev) as got:
            assert got is dev
            raise RuntimeError("inside")
    assert spy.moved(model) == [True, False]


def test_on_device_leaves_a_meta_model_for_check_model_and_refuses_a_non_module():
    meta = SmallCNN(1, 2, width=4).to("meta")
    with on_device(meta, "cpu"):
        assert next(meta.parameters()).device.type == "meta"
    with pytest.raises(ValueError, match="'meta' device"):
        predict(meta, _split(4, "test"))
    with pytest.raises(TypeError, match="nn.Module"):
        with on_device(lambda x: x, "cpu"):
            pass


def test_the_model_cache_saves_cpu_weights_and_loads_them_with_map_location(tmp_path, monkeypatch):
    """A GPU-trained model's weights load on any machine; the key names no device."""
    from medlab.experiments.cache import ModelCache

    store = ModelCache(tmp_path)
    key = store.key("k", data="d", train=_split(4), seed=0)
    assert "cpu" not in key and "cuda" not in key
    path = store.put(key, SmallCNN(1, 2, width=4), {"n": 1})
    assert {t.device.type for t in torch.load(path, weights_only=True)["state"].values()} == {"cpu"}
    load, where = torch.load, []

    def spy(*a, **k):
        where.append(k.get("map_location"))
        return load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    assert store.get(key, SmallCNN(1, 2, width=4)) == {"n": 1}
    assert where == ["cpu"]


# ---------------------------------------------------------------------------- .numpy()

#: ``.numpy()`` calls allowed without ``.cpu()`` right before: (file, receiver) -> why.
NUMPY_OK = {
    # a Split's images and labels are built on the CPU (medlab.data) and never moved: batches
    # are moved, the split is not
    **dict.fromkeys(
        [
            ("medlab/data/splits.py", "self.labels"),
            ("medlab/deploy/conformal.py", "calibration.images"),
            ("medlab/deploy/conformal.py", "test.images"),
            ("medlab/fairness/figures.py", "data.test.labels"),
            ("medlab/federated/sites.py", "population.train.labels"),
            ("medlab/federated/sites.py", "tr.labels"),
            ("medlab/federated/sites.py", "data[s].labels"),
            ("medlab/federated/sites.py", "data.train.labels"),
            ("medlab/federated/sites.py", "population[s].labels"),
            ("medlab/plots.py", "split.labels"),
            ("medlab/scenario/groups.py", "data[s].labels"),
            ("medlab/scenario/population.py", "split.labels"),
            ("medlab/scenario/population.py", "self[split].labels"),
            ("medlab/synthetic/utility.py", "te.labels"),
        ],
        "a Split's tensors live on the CPU",
    ),
    # exported from the notebooks (edit them there, not here); their inputs come from
    # medlab.train.predict, which returns CPU arrays
    ("medlab/explain/deletion.py", "p[:, torch.arange(n), t].T.double()"): "notebook 04",
    ("medlab/privacy/membership.py", "loss"): "notebook 06",
}


def _bare_numpy(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, receiver) of every ``<receiver>.numpy()`` whose receiver is not a ``.cpu()`` call."""
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "numpy"
            and not node.args
        ):
            recv = node.func.value
            if not (isinstance(recv, ast.Call) and getattr(recv.func, "attr", None) == "cpu"):
                out.append((node.lineno, ast.unparse(recv)))
    return out


def test_the_numpy_scan_finds_a_bare_numpy_call():
    tree = ast.parse(
        "def f(model, x):\n"
        "    a = model(x).numpy()\n"
        "    b = model(x).detach().cpu().numpy()\n"
        "    c = model(x).cpu().double().numpy()\n"
        "    return a, b, c, np.asarray(x).sum()\n"
    )
    assert _bare_numpy(tree) == [(2, "model(x)"), (4, "model(x).cpu().double()")]


def test_no_numpy_on_a_tensor_that_may_be_on_a_gpu():
    calls = []
    for path in sorted((ROOT / "medlab").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        calls += [(rel, line, r) for line, r in _bare_numpy(ast.parse(path.read_text(), rel))]
    bad = [f"{f}:{line}: {r}.numpy()" for f, line, r in calls if (f, r) not in NUMPY_OK]
    assert not bad, (
        "call .detach().cpu().numpy() (or add the receiver to NUMPY_OK with a reason):\n"
        + "\n".join(bad)
    )
    stale = set(NUMPY_OK) - {(f, r) for f, _, r in calls}
    assert not stale, f"NUMPY_OK lists calls that are gone: {sorted(stale)}"
