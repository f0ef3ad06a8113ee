"""Secure aggregation by pairwise additive masking, a teaching version of Bonawitz et al. 2017:
each client's masked update alone looks uniformly random to the server, and the masks cancel in
the sum of a majority of the clients.

What this toy omits against the protocol (notebook 05 says it too): no self-masks (a client
declared dropped by a dishonest server can be unmasked from the pair seeds the survivors
reveal), no key agreement (pair seeds come from a public ``seed``), no Shamir secret sharing of
the seeds, and no defence against a malicious server or colluding clients. The threshold below
is the one safeguard it keeps: the server never unmasks a sum of fewer than a majority of the
clients, so it cannot isolate one client's update by declaring all others dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medlab.utils import check_scalar

__all__ = [
    "FIXED_BITS",
    "flatten_state",
    "unflatten_state",
    "check_update",
    "check_masked",
    "check_survivors",
    "min_survivors_default",
    "secure_fedavg",
    "mask_update",
    "unmask_sum",
]


#: Fixed-point scale of masked aggregation: values are sent as round(x * 2**FIXED_BITS) in the
#: integers modulo 2**64 (numpy uint64 arithmetic wraps modulo 2**64 by itself).
FIXED_BITS = 24


def flatten_state(state: Mapping[str, torch.Tensor]) -> np.ndarray:
    """A state dict as one float64 vector (D,), in key order."""
    return np.concatenate([v.detach().double().reshape(-1).cpu().numpy() for v in state.values()])


def unflatten_state(vector: np.ndarray, like: Mapping[str, torch.Tensor]) -> dict:
    """The inverse of :func:`flatten_state`, shaped and typed like ``like``."""
    out, i = {}, 0
    for k, v in like.items():
        n = v.numel()
        out[k] = torch.from_numpy(np.asarray(vector[i : i + n])).reshape(v.shape).to(v.dtype)
        i += n
    if i != len(vector):
        raise ValueError(f"the vector has {len(vector)} values but the state dict needs {i}")
    return out


def _client_id(client: Any, n_clients: int) -> int:
    return check_scalar(
        "client id", client, lo=0, hi=n_clients - 1,
        fix=f"clients are numbered 0..n_clients-1 = 0..{n_clients - 1}",
    )  # fmt: skip


def check_update(vector: Any, client: Any, n_clients: Any) -> tuple[np.ndarray, int, int]:
    """:func:`mask_update`'s inputs checked: (vector as float64, client id, number of clients)."""
    n_clients = check_scalar("n_clients", n_clients, lo=2, fix="secure aggregation needs 2+")
    client = _client_id(client, n_clients)
    vector = np.asarray(vector, dtype=np.float64)
    if vector.ndim != 1 or not np.isfinite(vector).all():
        raise ValueError("vector must be a finite 1-D float vector (flatten_state(state))")
    return vector, client, n_clients


def check_masked(masked: Any, n_clients: Any) -> tuple[dict[int, np.ndarray], int, int]:
    """:func:`unmask_sum`'s inputs checked: (masked updates by client id, number of clients,
    vector length). Fewer survivors than a majority is refused (:func:`check_survivors`)."""
    if not masked:
        raise ValueError("no client sent an update: nothing to aggregate")
    n_clients = check_scalar("n_clients", n_clients, lo=2, fix="secure aggregation needs 2+")
    masked = {_client_id(i, n_clients): np.asarray(y) for i, y in masked.items()}
    check_survivors(len(masked), n_clients, min_survivors_default(n_clients))
    d = len(next(iter(masked.values())))
    if any(y.dtype != np.uint64 or y.shape != (d,) for y in masked.values()):
        raise ValueError("every masked update must be a uint64 vector of one length (mask_update)")
    return masked, n_clients, d


def min_survivors_default(n_clients: int) -> int:
    """The default survivor threshold: a majority of the clients, and at least 2."""
    return max(2, n_clients // 2 + 1)


def check_survivors(survivors: int, n_clients: int, threshold: int) -> None:
    """Refuse to unmask a sum of fewer than ``threshold`` clients (of ``n_clients``)."""
    if survivors < threshold:
        raise ValueError(
            f"only {survivors} of {n_clients} clients survived, below the threshold of "
            f"{threshold} (a majority): secure aggregation refuses to unmask so small a sum (with "
            "one survivor the 'sum' is that client's own update); aggregate this round again "
            "when more clients are online"
        )


def secure_fedavg(
    states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    seed: int = 0,
    dropped: Sequence[int] = (),
    recover: bool = True,
    mask: Callable[..., np.ndarray] | None = None,
    unmask: Callable[..., np.ndarray] | None = None,
) -> dict:
    """FedAvg through pairwise masking: each client sends ``mask(n_k * w_k)``; the server
    unmasks the sum and divides by the (public) total of the surviving clients' ``n_k``.
    The server unmasks no sum of fewer than a majority of the clients (``n // 2 + 1``, at least
    2: :func:`min_survivors_default`); fewer survivors is an error, never a recovered update.
    ``mask`` / ``unmask``: the masking functions (default :func:`mask_update` and
    :func:`unmask_sum`; notebook 05 passes its own)."""
    mask = mask or mask_update
    unmask = unmask or unmask_sum
    n = len(states)
    if n < 2 or n != len(weights):
        raise ValueError("secure aggregation needs at least 2 clients and one weight per client")
    dropped = [_client_id(j, n) for j in dropped]
    twice = sorted({j for j in dropped if dropped.count(j) > 1})
    if twice:
        raise ValueError(f"dropped names client(s) {twice} more than once: name each dropout once")
    if len(set(dropped)) >= n:
        raise ValueError(f"dropped must name some (not all) of the clients 0..{n - 1}")
    check_survivors(n - len(dropped), n, min_survivors_default(n))
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.delete(w, dropped).sum() <= 0:
        raise ValueError(
            f"weights must be finite and non-negative, with a positive sum over the clients "
            f"that did not drop out (their numbers of training images), got {list(weights)}"
        )
    masked = {
        k: mask(float(weights[k]) * flatten_state(states[k]), k, n, seed=seed)
        for k in range(n)
        if k not in dropped
    }
    total_w = sum(float(weights[k]) for k in masked)
    return unflatten_state(unmask(masked, n, seed=seed, recover=recover) / total_w, states[0])


# fmt: off
# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def _pair_mask(seed: int, i: int, j: int, d: int) -> np.ndarray:
    """The mask clients i < j both derive from their shared secret (here a seeded stream; in
    a deployment, a Diffie-Hellman key agreement gives i and j the seed without the server)."""
    return np.random.default_rng([seed, i, j]).integers(0, 2**64, d, dtype=np.uint64)


def mask_update(vector: np.ndarray, client: int, n_clients: int, *, seed: int) -> np.ndarray:
    """What client ``client`` sends: its fixed-point vector plus ``mask_ij`` for every j >
    client, minus ``mask_ji`` for every j < client (mod 2**64). Alone it looks uniform."""
    vector, client, n_clients = check_update(vector, client, n_clients)
    d = len(vector)
    y = np.rint(vector * 2**FIXED_BITS).astype(np.int64).view(np.uint64).copy()
    for j in range(n_clients):
        if j > client:
            y += _pair_mask(seed, client, j, d)
        elif j < client:
            y -= _pair_mask(seed, j, client, d)
    return y
# %% end of export


# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def unmask_sum(
    masked: Mapping[int, np.ndarray], n_clients: int, *, seed: int, recover: bool = True
) -> np.ndarray:
    """The server's side: the sum of the clients' vectors from their masked vectors only.

    ``masked`` maps client ids to what they sent; clients missing from it dropped out after
    the masks were agreed. Their pair masks do not cancel; with ``recover=True`` the surviving
    clients reveal the seeds they shared with the dropped ones (as in Bonawitz et al. 2017)
    and the server removes those masks. With ``recover=False`` the result is garbage: the
    lesson's demonstration of why secure aggregation needs the recovery step.
    """
    masked, n_clients, d = check_masked(masked, n_clients)
    total = np.zeros(d, dtype=np.uint64)
    for y in masked.values():
        total += y
    dropped = [j for j in range(n_clients) if j not in masked]
    if recover:
        for j in dropped:
            for i in masked:  # survivor i's mask with j: +m if i < j, -m if i > j
                m = _pair_mask(seed, min(i, j), max(i, j), d)
                total = total - m if i < j else total + m
    return total.view(np.int64).astype(np.float64) / 2**FIXED_BITS
# %% end of export
