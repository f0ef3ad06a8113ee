"""The privacy lesson's explorer: sliders for DP-SGD's noise multiplier, clipping norm and
epochs and a Train button; each press trains one DP model (cached) and shows its epsilon, test
AUC and both attacks (a slider alone trains nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medlab.privacy.figures import roc_figure
from medlab.privacy.lesson import Population, attacks, member_mask
from medlab.privacy.shadows import train_target
from medlab.train import evaluate

__all__ = ["explorer"]


def _updater(
    pop: Population, cfg: Any, shadows: Any, *, seed: int,
    step: Callable[..., None] | None, loss_score: Callable[..., np.ndarray] | None,
    lira_score: Callable[..., np.ndarray] | None,
) -> Callable[[float, float, int], tuple[Any, Any]]:  # fmt: skip
    """``update(noise, clip, epochs) -> (table, figure)`` for the seed's members."""
    import pandas as pd

    members = member_mask(len(pop), seed=seed)
    shadows = shadows["nondp"] if isinstance(shadows, dict) else shadows  # the sliders' noise

    def update(noise: float, clip: float, epochs: int) -> tuple[Any, Any]:
        model, info = train_target(
            pop, cfg, members, seed=seed, noise_multiplier=float(noise),
            max_grad_norm=float(clip), dp_epochs=int(epochs), step=step,
        )  # fmt: skip
        att = attacks(model, pop, members, shadows, loss_score=loss_score, lira_score=lira_score)
        auc = evaluate(model, pop.scenario.test)["auc"]
        table = pd.DataFrame(
            {
                "noise multiplier": [float(noise)],
                "clipping norm": [float(clip)],
                "epochs": [int(epochs)],
                "epsilon": [info["epsilon"]],
                "delta": [info["delta"]],
                "test AUC": [auc],
                "loss attack AUC": [att["loss"]["auc"]],
                "LiRA AUC (non-DP shadows)": [att["lira"]["auc"]],
            }
        ).round(4)
        fig = roc_figure(
            {"loss threshold": att["loss"], "LiRA-lite (non-DP shadows)": att["lira"]},
            title=f"Attacks on DP-SGD (noise {noise:g}, clip {clip:g}, {int(epochs)} epochs): "
            f"epsilon {info['epsilon']:.2f}, test AUC {auc:.3f}",
        )
        return table, fig

    return update


def explorer(
    pop: Population,
    cfg: Any,
    shadows: Any,
    *,
    seed: int = 0,
    step: Callable[..., None] | None = None,
    loss_score: Callable[..., np.ndarray] | None = None,
    lira_score: Callable[..., np.ndarray] | None = None,
) -> tuple[Any, Any]:
    """Sliders for DP-SGD's noise multiplier, clipping norm and epochs, and a **Train** button:
    only a press trains (or reads from the cache) one DP model on the seed's members and shows
    its accountant epsilon, test AUC and both attacks' ROC (LiRA with the non-DP shadows of
    ``shadows``: no DP shadows are trained for every setting, so that attack is mis-specified);
    moving a slider trains nothing. Returns ``(widget, update)``; ``update(noise, clip, epochs)``
    returns ``(table, figure)`` and runs without a browser. ``step``, ``loss_score`` and
    ``lira_score`` are as in :func:`~medlab.privacy.lesson.run_point`."""
    import ipywidgets as widgets
    from IPython.display import display

    update = _updater(pop, cfg, shadows, seed=seed, step=step, loss_score=loss_score,
                      lira_score=lira_score)  # fmt: skip
    noise_w = widgets.FloatSlider(value=1.0, min=0.3, max=3.0, step=0.1, description="noise")
    clip_w = widgets.FloatLogSlider(
        value=1.0, base=10, min=-1, max=1, step=0.25, description="clip norm"
    )
    epochs_w = widgets.IntSlider(
        value=cfg["dp_epochs"], min=1, max=2 * cfg["dp_epochs"], description="epochs"
    )
    button = widgets.Button(description="Train", icon="play", tooltip="train one DP model")
    status = widgets.Label("Set the sliders, then press Train (a slider alone trains nothing).")
    out = widgets.Output()

    def on_press(_: Any = None) -> None:
        status.value = "Training ..."
        table, fig = update(noise_w.value, clip_w.value, epochs_w.value)
        out.clear_output(wait=True)
        with out:
            display(table, fig)
        status.value = "Done. Change a slider and press Train again."

    def on_move(_: Any = None) -> None:
        status.value = "Settings changed: press Train to train a model with them."

    button.on_click(on_press)
    for w in (noise_w, clip_w, epochs_w):
        w.observe(on_move, names="value")
    controls = widgets.HBox([noise_w, clip_w, epochs_w, button])
    return widgets.VBox([controls, status, out]), update
