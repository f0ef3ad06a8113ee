"""The cost of DP-SGD: one DP epoch against one plain epoch, in the same run, per Opacus
``grad_sample_mode`` (Opacus's "hooks", "functorch", "ghost" fast gradient clipping, and
medlab's "vmap": one ``torch.func.vmap`` over the whole model), with a profile of one step.

For each dataset and mode, in the same process and on the same cores:

1. the plain epoch: medlab's :func:`~medlab.train.train_steps` over a ``DataLoader`` with the
   lesson's DP batch size and optimizer (SGD with momentum), no Opacus;
2. the DP epoch: the same loop over :func:`medlab.privacy.train_dp`'s wrapped model, optimizer and
   Poisson-sampled loader (noise multiplier 1.0, clipping norm 1.0); for "vmap",
   the same loop with :func:`medlab.privacy.persample.vmap_step`'s step, over the same optimizer
   and loader.

Epoch times are the median of ``--repeats`` interleaved measurements (plain, hooks, functorch,
ghost, vmap, plain, ...) over the first ``--n-train`` training images, each after a warm-up
epoch; the ratio is DP / plain. vmap's per-sample gradients are compared with Opacus's hooks on
one batch. A profile (torch.profiler) of ten plain and ten hooks steps shows where the time
goes. Each mode also trains ``--seeds`` complete DP models (the lesson's DP recipe) to check
that the modes give the same epsilon and the same test AUC within the seed spread. Usage (from
the repo root)::

    MEDLAB_DATA_DIR=../shared/medmnist cpu python benchmarks/bench_privacy.py \
        --datasets pneumoniamnist_balanced_subset breastmnist

Results on unofficial copies are labelled as such: they are not the official benchmark.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import medlab
from medlab import privacy
from medlab.data import UnofficialDataWarning
from medlab.models import SmallCNN
from medlab.privacy.persample import per_sample_gradients, vmap_step
from medlab.stats import sd
from medlab.train import evaluate, make_optimizer, to_input, train_steps
from medlab.utils import seed_everything

MODES = privacy.GRAD_SAMPLE_MODES


def _loader(split: medlab.data.Split, batch_size: int, seed: int) -> DataLoader:
    ds = TensorDataset(to_input(split.images), split.labels)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


def _epoch(model, loader, opt, steps_kw) -> float:
    t0 = time.perf_counter()
    train_steps(model, loader, opt, None, **steps_kw)
    return time.perf_counter() - t0


def _setup(mode: str | None, split, cfg, width: int, seed: int):
    """(model, loader, optimizer, train_steps's keywords) ready for epochs: plain when ``mode``
    is None."""
    from opacus import PrivacyEngine

    seed_everything(seed)
    model = SmallCNN(split.images.shape[1], len(split.label_names), width=width, dropout=0.0)
    loader = _loader(split, cfg["dp_batch_size"], seed)
    opt, _ = make_optimizer(model, total_steps=1000, lr=cfg["dp_lr"], algorithm="sgd")
    if mode is None:
        return model, loader, opt, {}
    kw = dict(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        grad_sample_mode="hooks" if mode == "vmap" else mode,
        noise_generator=torch.Generator().manual_seed(seed),
    )
    if mode == "ghost":
        gsm, dp_opt, crit, dp_loader = PrivacyEngine().make_private(
            **kw, criterion=torch.nn.CrossEntropyLoss()
        )
        return gsm, dp_loader, dp_opt, {"loss_fn": privacy._GhostLoss(crit)}
    gsm, dp_opt, dp_loader = PrivacyEngine().make_private(**kw)
    privacy.dpsgd._use_step(dp_opt, privacy.dp_sgd_step)  # the step train_dp runs
    if mode == "vmap":  # train_dp's vmap mode: the plain model, one vmap per step
        gsm._close()
        return gsm._module, dp_loader, dp_opt, {"step": vmap_step(gsm._module)}
    return gsm, dp_loader, dp_opt, {}


def vmap_matches_opacus(split, cfg, width: int, seed: int) -> float:
    """Largest |vmap - Opacus hooks| per-sample gradient on one batch, relative to the largest
    hooks value: the vmap mode computes what Opacus computes."""
    gsm, loader, _, _ = _setup("hooks", split, cfg, width, seed)
    x, y = next(b for b in loader if len(b[0]))
    gsm.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(gsm(x), y).backward()
    ref = {n: p.grad_sample.clone() for n, p in gsm._module.named_parameters()}
    gsm._close()
    ours, _ = per_sample_gradients(gsm._module)(x, y)
    top = max(float(r.abs().max()) for r in ref.values())
    return max(float((ours[n] - ref[n]).abs().max()) for n in ref) / top


def time_epochs(split, cfg, *, width: int, repeats: int, seed: int) -> dict[str, list[float]]:
    """Interleaved epoch times (seconds) for plain training and each mode."""
    runs = {"plain": _setup(None, split, cfg, width, seed)}
    runs.update({m: _setup(m, split, cfg, width, seed) for m in MODES})
    epochs = {k: functools.partial(_epoch, *run) for k, run in runs.items()}
    times: dict[str, list[float]] = {k: [] for k in epochs}
    for epoch in epochs.values():  # warm-up
        epoch()
    for _ in range(repeats):
        for k, epoch in epochs.items():
            times[k].append(epoch())
    return times


def profile_step(split, cfg, *, width: int, seed: int, steps: int = 10, top: int = 6) -> None:
    """Where one step's time goes, plain and DP (hooks): torch.profiler's operators by self CPU
    time over ``steps`` steps, and the share of the step spent outside them (Python)."""
    from torch.profiler import ProfilerActivity, profile

    # kineto, the profiler's library, prints "USDT ... profiler_start"-style lines (and, on a CUDA
    # build without a GPU, "gpuGetDeviceCount failed") to stderr at every profile; level 6 keeps
    # it quiet. Read at the first profile; set KINETO_LOG_LEVEL yourself to see them.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    for mode in (None, "hooks"):
        model, loader, opt, steps_kw = _setup(mode, split, cfg, width, seed)
        _epoch(model, loader, opt, steps_kw)  # warm-up
        batches = [b for b, _ in zip(loader, range(steps), strict=False)]
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_steps(model, batches, opt, None, **steps_kw)
        wall = time.perf_counter() - t0
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        in_ops = sum(e.self_cpu_time_total for e in ops) / 1e6
        print(f"profile, {mode or 'plain'}: {wall / steps * 1e3:.1f} ms per step (profiled); "
              f"{100 * (1 - in_ops / wall):.0f} % outside torch operators")  # fmt: skip
        for e in ops[:top]:
            print(f"  {e.key:<40} {e.self_cpu_time_total / 1e3 / steps:8.2f} ms per step")


def check_modes(data, pop, cfg, seeds: list[int], epsilon: float) -> dict[str, dict[str, float]]:
    """Per mode: mean/SD over seeds of the accountant epsilon and the test AUC of complete DP
    models (target ``epsilon``) trained on the seeds' member halves."""
    out = {}
    for mode in MODES:
        eps, auc = [], []
        for s in seeds:
            members = privacy.member_mask(len(pop), seed=s)
            model, info = privacy.train_target(
                pop, cfg, members, seed=s, epsilon=epsilon, grad_sample_mode=mode, cache=False
            )
            eps.append(info["epsilon"])
            auc.append(evaluate(model, pop.scenario.test)["auc"])
        out[mode] = dict(
            epsilon=float(np.mean(eps)),
            epsilon_sd=sd(eps),
            test_auc=float(np.mean(auc)),
            test_auc_sd=sd(auc),
        )
    return out


def print_models(res: dict, epsilon: float, n_seeds: int) -> None:
    """check_modes' epsilon and test AUC per mode: mean ± sample SD, or the one seed's values."""
    spread = n_seeds > 1  # a sample SD needs two seeds
    print(
        f"complete DP models at target epsilon {epsilon}, {n_seeds} seed(s)"
        + (" (mean ± sample SD):" if spread else ":")
    )
    for mode, r in res.items():
        eps, auc = f"{r['epsilon']:.4f}", f"{r['test_auc']:.3f}"
        if spread:
            eps, auc = f"{eps} ± {r['epsilon_sd']:.4f}", f"{auc} ± {r['test_auc_sd']:.3f}"
        print(f"{mode:<10} epsilon {eps}   test AUC {auc}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["pneumoniamnist_balanced_subset"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per mode")
    ap.add_argument("--seeds", type=int, default=3, help="complete DP models per mode")
    ap.add_argument("--epsilon", type=float, default=3.0)
    ap.add_argument("--n-train", type=int, default=1000, help="images per timed epoch")
    ap.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="expected batch sizes to time (default: the lesson's DP batch size)",
    )
    ap.add_argument("--full", action="store_true", help="the lesson's full-mode population")
    args = ap.parse_args(argv)
    for text in (*privacy._QUIET, "Optimal order is the largest alpha"):
        warnings.filterwarnings("ignore", message=text)
    L = medlab.lesson(not args.full, 0)
    print(f"torch threads {torch.get_num_threads()}, opacus modes {MODES}")
    for name in args.datasets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnofficialDataWarning)
            data = medlab.load(name, data_dir=args.data_dir)
        cfg = privacy.lesson_config(data, L)
        pop = privacy.population(data, cfg, seed=0)
        timed = data.train.subset(range(min(args.n_train, len(data.train))))
        tag = "" if data.official else " (unofficial copy)"
        for bs in args.batch_sizes or [cfg["dp_batch_size"]]:
            print(
                f"\n{name}{tag}: epochs over {len(timed)} training images, batch {bs}, "
                f"SmallCNN width {cfg['width']}"
            )
            times = time_epochs(
                timed,
                {**cfg, "dp_batch_size": bs},
                width=cfg["width"],
                repeats=args.repeats,
                seed=0,
            )
            plain = statistics.median(times["plain"])
            rel = vmap_matches_opacus(timed, {**cfg, "dp_batch_size": bs}, cfg["width"], 0)
            print(f"vmap per-sample gradients vs Opacus hooks: max relative difference {rel:.1e}")
            print(f"{'mode':<10} {'epoch s (median)':>17} {'min':>7} {'max':>7} {'DP / plain':>11}")
            for k, v in times.items():
                med = statistics.median(v)
                print(f"{k:<10} {med:>17.3f} {min(v):>7.3f} {max(v):>7.3f} {med / plain:>11.2f}")
        profile_step(timed, cfg, width=cfg["width"], seed=0)
        seeds = list(range(args.seeds))
        res = check_modes(data, pop, cfg, seeds, args.epsilon)
        print_models(res, args.epsilon, len(seeds))


if __name__ == "__main__":
    main()
