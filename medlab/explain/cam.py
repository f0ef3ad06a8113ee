"""Grad-CAM (Selvaraju et al. 2017), written out in notebook 04 (the cell below is its copy):
the target logit's mean gradient over each channel of a conv layer weights that channel's
activations; the weighted sum is upsampled to the image. Equal to captum's ``LayerGradCam`` with
``LayerAttribution.interpolate`` (tests/test_explain.py)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.explain.common import (
    Images,
    Target,
    as_input,
    as_maps,
    conv_layer,
    eval_mode,
    layer_output,
    target_classes,
)

__all__ = ["gradcam"]


# fmt: off
# %% exported from notebooks/04_glass_box.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def gradcam(
    model: nn.Module,
    images: Images,
    target: Target = None,
    *,
    layer: nn.Module | None = None,
    relu: bool = False,
    interpolate_mode: str = "bilinear",
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of ``layer`` (default ``model.last_conv``) for the
    ``target`` class of each image; ``relu=True``: positive evidence only. (N, H, W) float32."""
    x = as_input(images)  # uint8 -> the model's [-1, 1] scale
    t = target_classes(model, x, target)  # None: the model's prediction
    with eval_mode(model), torch.enable_grad(), layer_output(conv_layer(model, layer)) as acts:
        y_c = model(x).gather(1, t[:, None]).sum()  # the target logit y_c of every image
        grads = torch.autograd.grad(y_c, acts[0])[0]  # dy_c / dA^k: (N, K, h, w)
    alpha = grads.mean(dim=(2, 3), keepdim=True)  # alpha_k: the mean gradient of channel k
    cam = (alpha * acts[0]).sum(dim=1, keepdim=True)  # sum_k alpha_k A^k: (N, 1, h, w)
    cam = F.relu(cam) if relu else cam
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode=interpolate_mode)  # h x w -> H x W
    return as_maps(cam, *x.shape[-2:])
# %% end of export
# fmt: on
