"""Time-to-accuracy of medlab's default model versus the official MedMNIST v2 recipe, one run.

For each dataset this script, in the same process and on the same cores:

1. trains medlab's baseline model (``SmallCNN(**medlab.models.BASELINE)``: width 16, BatchNorm)
   with its one training loop for 2, 4, 8, ... epochs (complete runs)
   until its test AUC reaches the paper's ResNet-18 (28) AUC - 0.01 or a run would take more
   than ``--budget`` seconds (time-to-accuracy), and
2. times the official recipe, ResNet-18 (28) with Adam (lr 1e-3), batch 128, no augmentation, on
   ``--resnet-batches`` batches, and extrapolates to its 100 epochs.

It prints both side by side with the ratio, and the paper's ResNet-18 (28) test AUC with the
target (paper AUC - 0.01). Usage (from the repo root)::

    MEDLAB_DATA_DIR=../shared/medmnist python benchmarks/bench_training.py \
        --datasets breastmnist pneumoniamnist_balanced_subset

``--official-run`` (opt-in) also *trains* the official recipe in the same run: ResNet-18 (28),
Adam 1e-3, batch 128, 100 epochs with the learning rate x0.1 after epochs 50 and 75, the epoch
chosen on validation AUC, as MedMNIST v2's training script does, and prints its test AUC beside
medlab's: a target the official recipe itself does not reach on a copy is stated as such. On 2
CPU cores that costs about 9 s per epoch on BreastMNIST (15 min); ``--device cuda`` runs it on a GPU
(the recipe's result, not its time, is what the comparison needs).

``--ablations`` also trains the variants that led to that model (:data:`ABLATIONS`: the former
default, width 32 with GroupNorm, then one change at a time: test-time flips, label smoothing,
width, epochs, BatchNorm, and an ensemble of two shorter runs) on every ``--seeds`` seed, and
prints each one's test AUC per seed, its smallest, its training seconds and whether every seed
reached the target.

Results on unofficial copies are labelled as such: they are not the official benchmark.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from typing import NamedTuple

import torch

import medlab
from medlab import cards
from medlab.data import UnofficialDataWarning
from medlab.models import BASELINE, ResNet18, SmallCNN
from medlab.train import evaluate, fit, predict, to_input
from medlab.utils import seed_everything, set_threads

#: fit's settings for medlab's model here, as in notebook 01 (the rest are fit's defaults)
FIT: dict[str, float] = {"batch_size": 64, "lr": 3e-3, "weight_decay": 5e-2}


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


def official_run(
    data: medlab.data.MedMNISTData, *, epochs: int, seed: int, device: str
) -> dict[str, float]:
    """Train MedMNIST v2's recipe: ResNet-18 (28), Adam 1e-3, batch 128, ``epochs`` epochs with
    the learning rate x0.1 after 50 % and 75 % of them, cross-entropy, no augmentation; keep the
    epoch with the best validation AUC and report its test ACC/AUC and the training seconds."""
    from medlab.metrics import medmnist_metrics

    seed_everything(seed)
    dev = torch.device(device)
    model = ResNet18(data.n_channels, data.n_classes).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[epochs // 2, 3 * epochs // 4], gamma=0.1
    )
    multilabel = data.train.multilabel
    loss_fn = torch.nn.BCEWithLogitsLoss() if multilabel else torch.nn.CrossEntropyLoss()
    x, y = to_input(data.train.images).to(dev), data.train.labels.to(dev)
    gen = torch.Generator().manual_seed(seed)

    def scores(split: medlab.data.Split) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            xs = to_input(split.images).to(dev)
            out = torch.cat([model(xs[i : i + 512]) for i in range(0, len(xs), 512)])
            prob = torch.sigmoid(out) if multilabel else torch.softmax(out, 1)
        return medmnist_metrics(split.labels.numpy(), prob.cpu().numpy(), split.task)

    best = {"val_auc": -1.0}
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(128):
            idx = idx.to(dev)
            target = y[idx].float() if multilabel else y[idx].long().view(-1)
            loss = loss_fn(model(x[idx]), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        val = scores(data.val)
        if val["auc"] > best["val_auc"]:
            test = scores(data.test)
            best = {
                "val_auc": val["auc"],
                "epoch": epoch,
                "test_auc": test["auc"],
                "test_acc": test["acc"],
            }
    return {**best, "seconds": time.perf_counter() - t0}


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
        model = SmallCNN(data.n_channels, data.n_classes, **BASELINE)
        hist = fit(
            model,
            data.train,
            data.val,
            epochs=epochs,
            seed=seed,
            desc=f"{data.name} small CNN, {epochs} epochs",
            **FIT,
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


class Variant(NamedTuple):
    """One ``--ablations`` variant: SmallCNN options, epochs, test-time flips, label smoothing,
    and the models averaged (an ensemble of ``members`` runs, each ``epochs`` long)."""

    model: dict[str, object]
    epochs: int
    tta: bool = False
    smoothing: float = 0.0
    members: int = 1


_OLD, _GN16 = {"width": 32, "norm": "group"}, {"width": 16, "norm": "group"}

#: The variants ``--ablations`` trains, from the model medlab used before (width 32, GroupNorm)
#: one change at a time towards :data:`medlab.models.BASELINE`, with fit's other settings
#: :data:`FIT` as in :func:`time_to_accuracy` (the default augmentation, best epoch on
#: validation AUC). The last one averages two shorter BASELINE runs.
ABLATIONS: dict[str, Variant] = {
    "width 32, GroupNorm, 64 ep (old)": Variant(_OLD, 64),
    "  + flip test-time augmentation": Variant(_OLD, 64, tta=True),
    "  + label smoothing 0.1": Variant(_OLD, 64, smoothing=0.1),
    "width 16, GroupNorm, 64 ep": Variant(_GN16, 64),
    "width 16, GroupNorm, 128 ep": Variant(_GN16, 128),
    "width 32, BatchNorm, 64 ep": Variant({"width": 32, "norm": "batch"}, 64),
    "width 16, BatchNorm, 64 ep": Variant(dict(BASELINE), 64),
    "width 16, BatchNorm, 128 ep": Variant(dict(BASELINE), 128),
    "BASELINE, 2 x 64 ep, mean of both": Variant(dict(BASELINE), 64, members=2),
}


def ablation(data: medlab.data.MedMNISTData, name: str, seed: int) -> tuple[float, float]:
    """Train the variant ``name`` of :data:`ABLATIONS` once (member m of an ensemble with seed
    ``seed + 1000 * m``): (test AUC of the mean probabilities, training seconds)."""
    v = ABLATIONS[name]
    probs, seconds = [], 0.0
    for m in range(v.members):
        s = seed + 1000 * m
        seed_everything(s)
        model = SmallCNN(data.n_channels, data.n_classes, **v.model)
        hist = fit(model, data.train, data.val, epochs=v.epochs, seed=s, desc=name.strip(),
                   label_smoothing=v.smoothing, **FIT)  # fmt: skip
        seconds += hist.seconds
        prob = predict(model, data.test)
        if v.tta:  # the mean over the image and its mirror image
            prob = (prob + predict(model, data.test.images.flip(-1))) / 2
        probs.append(prob)
    return evaluate(model, data.test, scores=sum(probs) / len(probs))["auc"], seconds


def print_ablations(datas: dict, seeds: list[int], only: list[str] | None = None) -> None:
    """Each variant of :data:`ABLATIONS` on every dataset and seed: test AUC per seed, the
    smallest, and whether every seed reached the target (paper AUC - 0.01); ``only``: the
    variants whose name contains one of these texts."""
    for name, data in datas.items():
        paper = cards.paper_benchmark(name)
        target = paper["auc"] - 0.01 if paper else None
        head = f"{'variant':<40}{'test AUC per seed':>26}{'min':>7}{'s/run':>7}{'all met':>9}"
        print(f"\nAblations on {name} (target {target if target else float('nan'):.3f}):")
        print(head)
        print("-" * len(head))
        for variant in ABLATIONS:
            if only and not any(t in variant for t in only):
                continue
            runs = [ablation(data, variant, s) for s in seeds]
            aucs = [a for a, _ in runs]
            met = "n/a" if target is None else "yes" if min(aucs) >= target else "no"
            print(f"{variant:<40}{' '.join(f'{a:.3f}' for a in aucs):>26}{min(aucs):>7.3f}"
                  f"{sum(t for _, t in runs) / len(runs):>7.1f}{met:>9}", flush=True)  # fmt: skip


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
    ap.add_argument(
        "--official-run",
        action="store_true",
        help="also train the official recipe for --official-epochs (slow on a CPU: opt-in)",
    )
    ap.add_argument("--official-epochs", type=int, default=100)
    ap.add_argument("--device", default="cpu", help="device of the official run (cpu, cuda)")
    ap.add_argument(
        "--ablations",
        action="store_true",
        help="also train the variants that led to medlab.models.BASELINE, on every seed",
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="TEXT",
        help="with --ablations: only the variants whose name contains one of these",
    )
    args = ap.parse_args()
    if args.variants and not args.ablations:
        ap.error("--variants selects among the --ablations: add --ablations")
    if args.official_epochs < 4:
        ap.error("--official-epochs must be at least 4 (the recipe decays at 50 % and 75 %)")
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
    results, datas = [], {}
    for name in args.datasets:
        data = datas[name] = medlab.load(name, data_dir=args.data_dir)
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
            results.append((name, origin, seed, r, target))
    print(
        "\nmedlab s = training time of the first run that met the target, else of the last run; "
        "epochs = that run's epochs. "
    )
    print(
        "ratio = official recipe's 100 epochs (extrapolated) / medlab s, both "
        "measured in this run. 'paper AUC' is MedMNIST v2's ResNet-18 (28) test AUC on the "
        "official split; on an unofficial copy or subset the comparison is indicative only."
    )
    if args.ablations:
        print_ablations(datas, args.seeds, args.variants)
    if args.official_run:
        print_official(args, datas, results)


def print_official(args: argparse.Namespace, datas: dict, results: list) -> None:
    """Train the official recipe on each dataset and print it beside medlab's run."""
    head = (
        f"{'dataset':<32}{'data':<11}{'seed':>5}{'official AUC':>13}{'ACC':>7}{'epoch':>6}"
        f"{'seconds':>9}{'medlab AUC':>11}{'target':>8}{'official met':>13}{'medlab met':>11}"
    )
    print(
        f"\nThe official recipe trained in this run ({args.official_epochs} epochs, "
        f"device {args.device}, epoch chosen on validation AUC):"
    )
    print(head)
    print("-" * len(head))
    for name, origin, seed, r, target in results:
        o = official_run(datas[name], epochs=args.official_epochs, seed=seed, device=args.device)
        met = "n/a" if target is None else ("yes" if o["test_auc"] >= target else "no")
        print(
            f"{name:<32}{origin:<11}{seed:>5}{o['test_auc']:>13.3f}{o['test_acc']:>7.3f}"
            f"{o['epoch']:>6}{o['seconds']:>9.0f}{r['test_auc']:>11.3f}"
            f"{target if target else float('nan'):>8.3f}{met:>13}"
            f"{'yes' if r['seconds_to_target'] is not None else 'no':>11}",
            flush=True,
        )
    print(
        "A target the official recipe does not reach on this copy ('official met' = no) is "
        "beyond what the paper's own recipe achieves on these files, not a medlab shortfall."
    )


if __name__ == "__main__":
    main()
