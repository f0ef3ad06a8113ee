"""The privacy lesson's experiment: its settings (:func:`lesson_config`), the population of
patients (:func:`population`), the target's members, one row of the privacy-utility grid
(:func:`run_point`: utility, the minority's TPR gap, both attacks, the accountant's numbers), and
the HCM thread in words (:func:`who_pays`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.data import Split
from medlab.experiments import Lesson, Settings
from medlab.fairness import SHORT, decision_threshold, hcm_metrics
from medlab.privacy.membership import attack_metrics, lira_offline, loss_scores, true_class_logit
from medlab.privacy.shadows import train_target
from medlab.scenario import disease_scores, hcm
from medlab.stats import PairedEffect, binomial_se, hanley_mcneil_se, paired_effect
from medlab.train import evaluate
from medlab.utils import check_int, check_scalar

__all__ = [
    "EPSILONS",
    "HCM_SHARE",
    "setting_name",
    "lesson_config",
    "Population",
    "population",
    "member_mask",
    "attacks",
    "run_point",
    "hcm_gap",
    "who_pays",
]

#: The lesson's settings, weakest privacy last: target epsilons, then the non-private model.
EPSILONS: tuple[float, ...] = (1.0, 3.0, 8.0)
#: The minority's share of the HCM population in this lesson.
HCM_SHARE = 0.05  # notebook 03's default: one minority share throughout the HCM thread


def setting_name(epsilon: float | None) -> str:
    """``None`` -> ``"nondp"``, 3.0 -> ``"eps3"``, 0.5 -> ``"eps0_5"`` (record-key segments):
    the shortest decimal that reads back as the same float, so two epsilons never share one."""
    if epsilon is None:
        return "nondp"
    eps = check_scalar(
        "epsilon", epsilon, kind=float, lo=0, lo_inclusive=False,
        fix="a DP setting has a finite target epsilon > 0 (e.g. 3.0); None is the non-private model",
    )  # fmt: skip
    return "eps" + np.format_float_positional(eps, trim="-").replace(".", "_")


def lesson_config(data: Any, lesson: Lesson) -> Settings:
    """How every model of the privacy lesson is trained (one place, shared by the notebook, the
    tests and the benchmark), as the lesson's :class:`~medlab.experiments.Settings`. Quick: a
    300-image population, width-8 CNNs, 4 shadow models, DP shadows (2) only at epsilon 3;
    full: 600 images, 16 shadows, 8 DP shadows at every epsilon. Targets train on a random half
    of the population; up to ``n_extra`` other training images are extra non-members."""
    if not isinstance(lesson, Lesson):
        raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
    n_pop = min(300 if lesson.quick else 600, len(data.train))
    return lesson.settings(
        n_pop=n_pop,
        width=8,
        epochs=40,  # non-private: no augmentation, no dropout: overfits
        batch_size=32,
        lr=5e-3,
        n_extra=1000 if lesson.quick else 2000,  # more non-members: lower FPRs resolved
        n_shadows=4 if lesson.quick else 16,
        n_dp_shadows=2 if lesson.quick else 8,
        dp_shadow_epsilons=(3.0,) if lesson.quick else EPSILONS,
        dp_epochs=15 if lesson.quick else 20,
        dp_batch_size=50,
        dp_lr=0.1,  # SGD with momentum 0.9 (train_dp's default)
        max_grad_norm=1.0,
        epsilons=EPSILONS,
        share=HCM_SHARE,
        probe_batch_size=256,  # the DP probe on public features: large batches, few weights
        probe_epochs=15 if lesson.quick else 30,
        probe_lr=1.0,
        probe_clip=1.0,
    )


@dataclass
class Population:
    """The lesson's patients: ``split`` holds ``n_pop`` training images of the HCM scenario
    (``groups``: 0 majority, 1 minority); targets train on a random half (the members), the
    other half are the non-members; shadow models train on other random halves. ``extra``:
    more training images of the scenario outside the population, never trained on by any
    model: extra non-members, so that a low FPR allows some false positives."""

    scenario: Any
    split: Split
    groups: np.ndarray
    extra: Split | None = None

    def __len__(self) -> int:
        return len(self.split)

    def attack_split(self) -> Split:
        """The images every attack scores: the population, then the extra non-members."""
        if self.extra is None or len(self.extra) == 0:
            return self.split
        return Split(self.split.name, self.split.split, torch.cat([self.split.images,
                     self.extra.images]), torch.cat([self.split.labels, self.extra.labels]),
                     self.split.task, self.split.label_names)  # fmt: skip

    def is_member(self, members: np.ndarray) -> np.ndarray:
        """bool (N + extra,): ``members`` over the population, False for every extra image."""
        n_extra = 0 if self.extra is None else len(self.extra)
        return np.r_[np.asarray(members, dtype=bool), np.zeros(n_extra, dtype=bool)]


def population(data: Any, cfg: Any, *, seed: int = 0) -> Population:
    """The HCM scenario of ``data`` (:func:`medlab.scenario.hcm`, minority share
    ``cfg["share"]``) and ``cfg["n_pop"]`` of its training images, drawn with ``seed``; up to
    ``cfg["n_extra"]`` (default 0) of the others are the extra non-members."""
    sc = hcm(data, cfg["share"], seed=seed)
    perm = np.random.default_rng(seed).permutation(len(sc.train))
    idx, rest = perm[: cfg["n_pop"]], perm[cfg["n_pop"] :][: dict(cfg).get("n_extra", 0)]
    extra = sc.train.subset(rest) if len(rest) else None
    return Population(sc, sc.train.subset(idx), np.asarray(sc.groups["train"])[idx], extra)


def member_mask(n: int, *, seed: int) -> np.ndarray:
    """bool (n,): a random half of the population, True = member of the target's training set."""
    n = check_int("n", n, 2)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(10_000 + seed).permutation(n)[: n // 2]] = True
    return mask


def attacks(
    model: nn.Module,
    pop: Population,
    members: np.ndarray,
    shadows: tuple[np.ndarray, ...],
    *,
    loss_score: Callable[..., np.ndarray] | None = None,
    lira_score: Callable[..., np.ndarray] | None = None,
) -> dict[str, dict[str, Any]]:
    """The loss-threshold attack and offline LiRA (with ``shadows``, from
    :func:`~medlab.privacy.shadows.train_shadows`) on ``model``: its members against the other
    half of the population and the extra non-members; ``loss_score`` / ``lira_score`` default
    to the module's :func:`loss_threshold_scores` / :func:`lira_scores`. Returns
    ``{"loss": attack_metrics(...), "lira": attack_metrics(...)}``."""
    images, is_in = pop.attack_split(), pop.is_member(members)
    loss = loss_scores(model, images, score=loss_score)
    lira = lira_offline(true_class_logit(model, images), *shadows, score=lira_score)
    return {
        "loss": attack_metrics(loss[is_in], loss[~is_in]),
        "lira": attack_metrics(lira[is_in], lira[~is_in]),
    }


def _utility(model: nn.Module, pop: Population) -> dict[str, Any]:
    """Utility on the scenario's test patients and the minority's TPR gap (majority - minority)
    at the validation-chosen threshold."""
    sc = pop.scenario
    m = evaluate(model, sc.test)
    thr = decision_threshold(model, sc)
    gm = hcm_metrics(sc.test_y, disease_scores(model, sc), sc.groups["test"], threshold=thr)
    return {
        "test_auc": m["auc"],
        "test_acc": m["acc"],
        "minority_tpr_gap": gm.row(SHORT)["tpr_gap"],
        "tpr_maj": gm.row(SHORT)["tpr_maj"],
        "tpr_min": gm.row(SHORT)["tpr_min"],
    }


def _attack_row(att: dict[str, Any], misspec: dict[str, Any] | None) -> dict[str, Any]:
    """The grid's attack columns: AUCs, TPRs at the FPRs the non-members resolve (NaN at one
    they do not), and LiRA with non-DP shadows on a DP target (mis-specified; else NaN)."""
    lira, loss = att["lira"], att["loss"]
    row = {"attack_loss_auc": loss["auc"], "attack_lira_auc": lira["auc"],
           "n_members": lira["n_members"], "n_nonmembers": lira["n_nonmembers"]}  # fmt: skip
    for name, f in (("fpr1", 0.01), ("fpr0_1", 0.001)):
        for a, m in (("loss", loss), ("lira", lira)):
            row[f"attack_{a}_tpr_at_{name}"] = m["tpr_at_fpr"][f] if f in m["resolved"] else np.nan
    row["attack_lira_misspec_auc"] = np.nan if misspec is None else misspec["auc"]
    return row


def run_point(
    setting: str,
    seed: int,
    *,
    pop: Population,
    cfg: Any,
    shadows: dict[str, tuple[np.ndarray, np.ndarray]] | tuple[np.ndarray, np.ndarray],
    cache: Any = None,
    step: Callable[..., None] | None = None,
    loss_score: Callable[..., np.ndarray] | None = None,
    lira_score: Callable[..., np.ndarray] | None = None,
) -> dict[str, Any]:
    """One target model (``setting`` "nondp" or "eps<E>" for E in ``cfg["epsilons"]``) for one
    seed: utility on the scenario's test patients, the minority's TPR gap, both attacks and, for
    DP, the accountant's numbers. One row for :func:`medlab.run_grid`. ``shadows``: {"nondp":
    non-DP shadows, "eps<E>": DP shadows at E, ...} (a tuple: non-DP shadows only); LiRA uses
    the shadows trained like the target when there are some (``lira_shadows`` says which), and
    on a DP target also the non-DP ones (``attack_lira_misspec_auc``: the attacker assumed the
    wrong training). ``step``, ``loss_score`` and ``lira_score`` default to the module's copies
    of notebook 06's functions."""
    eps = {setting_name(e): e for e in cfg["epsilons"]}
    if setting != "nondp" and setting not in eps:
        raise ValueError(f"setting must be 'nondp' or one of {sorted(eps)}, got {setting!r}")
    shadows = shadows if isinstance(shadows, dict) else {"nondp": shadows}
    members = member_mask(len(pop), seed=seed)
    model, info = train_target(
        pop, cfg, members, seed=seed, epsilon=eps.get(setting), cache=cache, step=step
    )
    row = _utility(model, pop)
    own = shadows.get(setting, shadows["nondp"])
    att = attacks(model, pop, members, own, loss_score=loss_score, lira_score=lira_score)
    misspec = None
    if setting != "nondp":
        misspec = attacks(model, pop, members, shadows["nondp"], loss_score=loss_score,
                          lira_score=lira_score)["lira"]  # fmt: skip
    row.update(_attack_row(att, misspec))
    row["lira_shadows"] = "DP" if setting in shadows and setting != "nondp" else "non-DP"
    for k in ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epsilon_rdp"):
        row[k] = float(info[k]) if k in info else float("nan")
    row["accountant"] = info.get("accountant", "")
    row["message"] = info.get("message", "")
    return row


def _diseased(pop: Population) -> tuple[int, int]:
    """The diseased test patients of group A and of group B: the TPRs' denominators."""
    y, g = pop.scenario.test_y, np.asarray(pop.scenario.groups["test"])
    return int(((y == 1) & (g == 0)).sum()), int(((y == 1) & (g == 1)).sum())


def hcm_gap(rows: Any, pop: Population, setting: str, *, minus: str | None = None) -> PairedEffect:
    """The minority's TPR gap (group A minus group B) of ``setting`` over the grid's seeds
    (``rows`` from :func:`run_point`), or with ``minus`` its change against that setting, paired
    by seed. Its SE is the larger of the seeds' and the binomial SE of the few diseased test
    patients of each group (:func:`medlab.stats.paired_effect`)."""
    n_a, n_b = _diseased(pop)
    r = rows[rows.setting == setting].set_index("seed")
    props, per_seed = [(r.tpr_maj, n_a), (r.tpr_min, n_b)], r.minority_tpr_gap
    if minus is not None:
        o = rows[rows.setting == minus].set_index("seed").loc[r.index]
        props += [(o.tpr_maj, n_a), (o.tpr_min, n_b)]
        per_seed = per_seed - o.minority_tpr_gap
    return paired_effect(per_seed, binomial=binomial_se(*props, laplace=True))


def _tprs(rows: Any, setting: str) -> str:
    """The two groups' mean TPRs of a setting, in words."""
    r = rows[rows.setting == setting]
    return f"TPR A {r.tpr_maj.mean():.2f}, B {r.tpr_min.mean():.2f}"


def _word(e: PairedEffect, up: str, down: str, neither: str) -> str:
    """``up`` when ``e`` is clearly above 0 (beyond 2 SE), ``down`` when clearly below."""
    return up if e.clear() else down if e.reversed() else neither


def who_pays(rows: Any, pop: Population) -> list[str]:
    """The HCM thread in words, from the grid's ``rows``: whether there is a gap without DP,
    then what each DP setting did to it. A gap counts beyond two standard errors
    (:func:`hcm_gap`); DP "narrows" or "widens" only a gap that was clear without DP, and a DP
    model whose test AUC is within two standard errors of 0.5 is said to be near chance."""
    n_a, n_b = _diseased(pop)
    t = pop.scenario.test_y
    chance = 2 * hanley_mcneil_se(0.5, int(t.sum()), int((1 - t).sum()))
    base = hcm_gap(rows, pop, "nondp")
    on = f"on {n_b} diseased group-B and {n_a} group-A test patients"
    if base.clear():
        out = [f"Without DP the model misses group B more often: TPR gap (A - B) {base}; "
               f"{_tprs(rows, 'nondp')}; {on}."]  # fmt: skip
    elif base.reversed():
        out = [f"Without DP group B's TPR is *higher* than group A's: gap (A - B) {base}, {on}."]
    else:
        out = [f"Without DP this run shows **no clear gap** (A - B: {base}, {on}): there is no "
               "gap here for DP to narrow or widen."]  # fmt: skip
    for s in [x for x in dict.fromkeys(rows.setting) if x != "nondp"]:
        gap, auc = hcm_gap(rows, pop, s), float(rows[rows.setting == s].test_auc.mean())
        if base.clear():
            ch = hcm_gap(rows, pop, s, minus="nondp")
            verb = _word(ch, "widens", "narrows", "does not clearly change")
            text = f"DP at {s} {verb} it: gap {gap.mean:+.3f} ({_tprs(rows, s)}), change {ch}"
        else:
            what = _word(gap, "a clear gap against group B appears",
                         "group B's TPR is clearly higher", "no clear gap either")  # fmt: skip
            text = f"DP at {s}: {what} (gap {gap}; {_tprs(rows, s)})"
        if auc - 0.5 <= chance:
            text += (f"; its test AUC {auc:.3f} is near chance: it fails both groups alike, so its "
                     "gap says little")  # fmt: skip
        out.append(text + ".")
    return out
