"""The bias lesson's preset: the HCM sex-imbalance scenario (:func:`hcm`), with the per-dataset
default shift strength."""

from __future__ import annotations

import functools

from medlab import cards
from medlab.data import MedMNISTData
from medlab.scenario.groups import make_scenario
from medlab.scenario.population import Scenario
from medlab.scenario.shift import PresentationShift, apply_shift, disease_class, disease_pattern
from medlab.utils import check_int, check_scalar

__all__ = ["GROUP_NAMES", "DEFAULT_STRENGTH", "default_strength", "hcm"]


#: Group names of the HCM preset (the simulated sensitive attribute "sex").
#: neutral names: the attribute is simulated, and on some datasets (breast ultrasound of women)
#: "male" / "female" would make no sense; in the HCM story group B stands for women
GROUP_NAMES: dict[int, str] = {0: "group A (simulated majority)", 1: "group B (simulated minority)"}


#: Default minority shift strength of the HCM preset, per dataset (others: 1.0). BreastMNIST's
#: disease signal is mostly lesion shape and texture, which the average disease pattern captures
#: less than pneumonia's opacity, so the same mechanism needs a stronger setting to show.
DEFAULT_STRENGTH: dict[str, float] = {"breastmnist": 2.0}


def default_strength(data: MedMNISTData | str) -> float:
    """The HCM preset's minority shift strength for a dataset (see :data:`DEFAULT_STRENGTH`)."""
    name = data if isinstance(data, str) else data.name
    like = name
    try:
        c = cards.card(name)
        like = c.get("like", name) if c["kind"] == "custom" else name
    except KeyError:
        pass
    return DEFAULT_STRENGTH.get(name, DEFAULT_STRENGTH.get(like, 1.0))


def hcm(
    data: MedMNISTData,
    share: float = 0.05,
    *,
    strength: float | None = None,
    seed: int = 0,
    positive: int | None = None,
) -> Scenario:
    """The bias lesson's population: the HCM sex-imbalance scenario, simulated on a binary task.

    Group 0 is the simulated majority (group A; men in the HCM story), group 1 the minority
    (group B; women) at ``share`` of
    train and val (each class alike; the training set keeps all its images), 50/50 in test.
    Minority images in every split get :meth:`PresentationShift.from_strength` (``strength``;
    default :func:`default_strength`), with the *training* split's average disease pattern.

    Args:
        data: a binary-class dataset (pneumoniamnist, breastmnist, ...).
        share: the minority's share of train and val, in [0, 0.5].
        strength: shift strength in [0, 2] (0 = none, 1 = zoom 0.8 and half the pattern).
        seed: seeds the group assignment and the zoom jitter.
        positive: the disease class (default :func:`disease_class`).
    """
    if not isinstance(data, MedMNISTData):
        raise TypeError(f"data must come from medlab.load(...), got {type(data).__name__}")
    if data.task != "binary-class":
        raise ValueError(
            f"the HCM scenario needs a binary-class dataset (e.g. pneumoniamnist, "
            f"breastmnist); {data.name} is {data.task!r}"
        )
    share = check_scalar("share", share, kind=float, lo=0, hi=0.5,
                         fix="the minority is at most half")  # fmt: skip
    strength = default_strength(data) if strength is None else strength
    shift = PresentationShift.from_strength(strength)
    positive = disease_class(data) if positive is None else check_int("positive", positive, 0)
    if positive not in data.label_names:
        raise ValueError(f"positive={positive} is not a class of {data.name} ({data.label_names})")
    pattern = disease_pattern(data.train.images, data.train.labels, positive=positive)
    fn = functools.partial(apply_shift, shift=shift, positive=positive, pattern=pattern)
    info = {
        "preset": "hcm",
        "share": float(share),
        "strength": float(strength),
        "shift": {"zoom": shift.zoom, "contrast": shift.contrast},
    }
    return make_scenario(
        data,
        [1.0 - float(share), float(share)],
        names=GROUP_NAMES,
        test_shares=[0.5, 0.5],
        shifts={1: fn},
        seed=seed,
        positive=positive,
        info=info,
        pattern=pattern,
    )
