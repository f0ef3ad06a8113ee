"""Time-to-accuracy of medlab's default model versus the official MedMNIST v2 recipe, one run.

For each dataset this script, in the same process and on the same cores:

1. trains medlab's SmallCNN with its one training loop for 2, 4, 8, ... epochs (complete runs)
   until its test AUC reaches the paper's ResNet-18 (28) AUC - 0.01 or a run would take more
   than ``--budget`` seconds (time-to-accuracy), and
2. times the official recipe, ResNet-18 (28) with Adam (lr 1e-3), batch 128, no augmentation, on
   ``--resnet-batches`` batches, and extrapolates to its 100 epochs.

It prints both side by side with the ratio, and the paper's ResNet-18 (28) test AUC with the
target (paper AUC - 0.01). Usage (from the repo root)::

    MEDLAB_DATA_DIR=../shared/medmnist python benchmarks/bench_training.py \
        --datasets breastmnist pneumoniamnist_balanced_subset

Results on unofficial copies are labelled as such: they are not the official benchmark.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

import medlab
from medlab import cards
from medlab.data import UnofficialDataWarning
from medlab.models import ResNet18, SmallCNN
from medlab.train import evaluate, fit, to_input
from medlab.utils import seed_everything, set_threads


def time_official_epoch(data: medlab.data.MedMNISTData, batches: int, seed: int) -> float:
    """Seconds for one epoch of the paper's recipe (ResNet-18 (28), Adam 1e-3, batch 128),
    measured on ``batches`` batches after one warm-up batch and scaled to the training split."""
    seed_everything(seed)
    model = ResNet18(data.n_channels, data.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = to_input(data.train.images), data.train.labels
    loss_fn = torch.nn.BCEWithLogitsLoss() if data.train.multilabel else torch.nn.CrossEntropyLoss()
    model.train()
    n_batches = math.ceil(len(data.train) / 128)
    batches = min(batches, n_batches)
    times = []
    for i in range(batches + 1):
        idx = (torch.arange(128) + i * 128) % len(x)
        t0 = time.perf_counter()
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first batch is warm-up
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times) * n_batches


def time_to_accuracy(
    data: medlab.data.MedMNISTData, budget: float, seed: int, target: float | None
) -> dict[str, float | None]:
    """Time-to-accuracy of SmallCNN: train complete runs of 2, 4, 8, ... epochs (each with its
    full learning-rate schedule, model chosen by val AUC) until the test AUC reaches ``target``
    or a run would exceed ``budget`` seconds. Reports the first run that reached the target
    (its training seconds) and the last run's test AUC/ACC."""
    result: dict[str, float | None] = {"seconds_to_target": None, "epochs_to_target": None}
    epochs, spent = 2, 0.0
    while True:
        seed_everything(seed)
        model = SmallCNN(data.n_channels, data.n_classes)
        hist = fit(
            model,
            data.train,
            data.val,
            epochs=epochs,
            batch_size=64,
            lr=3e-3,
            weight_decay=5e-2,
            seed=seed,
            desc=f"{data.name} small CNN, {epochs} epochs",
        )
        test = evaluate(model, data.test)
        spent += hist.seconds
        result.update(
            train_s=hist.seconds,
            epochs=epochs,
            test_auc=test["auc"],
            test_acc=test["acc"],
            total_s=spent,
        )
        if target is not None and test["auc"] >= target and result["seconds_to_target"] is None:
            result.update(seconds_to_target=hist.seconds, epochs_to_target=epochs)
            return result
        per_epoch = hist.seconds / epochs
        if per_epoch * epochs * 2 > budget:
            return result
        epochs *= 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--datasets", nargs="+", default=["breastmnist", "pneumoniamnist_balanced_subset"]
    )
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per dataset")
    ap.add_argument("--resnet-batches", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    warnings.simplefilter("ignore", UnofficialDataWarning)
    print(f"torch {torch.__version__}, {threads} threads; budget {args.budget:.0f} s per run\n")
    header = (
        f"{'dataset':<32}{'data':<11}{'seed':>5}{'medlab s':>10}{'epochs':>7}"
        f"{'test AUC':>9}{'paper AUC':>10}{'target':>8}{'met':>5}"
        f"{'official s/ep':>14}{'official 100ep s':>17}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in args.datasets:
        data = medlab.load(name, data_dir=args.data_dir)
        paper = cards.paper_benchmark(name)
        target = paper["auc"] - 0.01 if paper else None
        official_epoch = time_official_epoch(data, args.resnet_batches, args.seeds[0])
        for seed in args.seeds:
            r = time_to_accuracy(data, args.budget, seed, target)
            ratio = 100 * official_epoch / (r["seconds_to_target"] or r["train_s"])
            origin = "official" if data.official else "unofficial"
            print(
                f"{name:<32}{origin:<11}{seed:>5}{r['train_s']:>10.1f}{r['epochs']:>7}"
                f"{r['test_auc']:>9.3f}{paper['auc'] if paper else float('nan'):>10.3f}"
                f"{target if target else float('nan'):>8.3f}"
                f"{'yes' if r['seconds_to_target'] is not None else 'no':>5}"
                f"{official_epoch:>14.1f}{100 * official_epoch:>17.0f}{ratio:>7.0f}x",
                flush=True,
            )
    print(
        "\nmedlab s = training time of the first run that met the target, else of the last run; "
        "epochs = that run's epochs. "
    )
    print(
        "ratio = official recipe's 100 epochs (extrapolated) / medlab s, both "
        "measured in this run. 'paper AUC' is MedMNIST v2's ResNet-18 (28) test AUC on the "
        "official split; on an unofficial copy or subset the comparison is indicative only."
    )


if __name__ == "__main__":
    main()
