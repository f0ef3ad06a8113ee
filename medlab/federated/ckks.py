"""Secure aggregation by CKKS homomorphic encryption (TenSEAL), and what each way of
aggregating costs per round."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from medlab.federated.algorithms import fedavg
from medlab.federated.secagg import flatten_state, mask_update, unmask_sum

__all__ = [
    "CKKS_DEGREE",
    "ckks_contexts",
    "ckks_encrypt",
    "ckks_sum",
    "ckks_decrypt",
    "aggregation_costs",
]


#: CKKS ring dimension: 4096 slots per ciphertext, about 128-bit security with 160-bit moduli.
CKKS_DEGREE = 8192


def ckks_contexts(*, scale_bits: int = 40) -> tuple[Any, bytes]:
    """The key holder's CKKS context (with the secret key) and the public context as bytes,
    what the aggregator and the clients receive: no secret key, no Galois keys (sums need
    none, and they would make the context tens of MB)."""
    import tenseal as ts

    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=CKKS_DEGREE,
        coeff_mod_bit_sizes=[60, scale_bits, 60],
    )
    ctx.global_scale = 2**scale_bits
    public = ctx.copy()
    public.make_context_public()
    return ctx, public.serialize(save_secret_key=False, save_galois_keys=False)


def ckks_encrypt(public: bytes, vector: np.ndarray) -> list[bytes]:
    """A client encrypts a vector (D,) under the public context: a list of serialized CKKS
    ciphertexts of at most ``CKKS_DEGREE / 2`` values (slots) each."""
    import tenseal as ts

    ctx = ts.context_from(public)
    n = CKKS_DEGREE // 2
    v = np.asarray(vector, dtype=np.float64)
    return [ts.ckks_vector(ctx, v[i : i + n].tolist()).serialize() for i in range(0, len(v), n)]


def ckks_sum(public: bytes, encrypted: Sequence[Sequence[bytes]]) -> list[bytes]:
    """The aggregator adds the clients' ciphertexts chunk by chunk, holding only the public
    context (it cannot decrypt: TenSEAL refuses without the secret key)."""
    import tenseal as ts

    ctx = ts.context_from(public)
    if not encrypted:
        raise ValueError("no encrypted updates to add")
    out = []
    for chunks in zip(*encrypted, strict=True):
        acc = ts.ckks_vector_from(ctx, chunks[0])
        for c in chunks[1:]:
            acc += ts.ckks_vector_from(ctx, c)
        out.append(acc.serialize())
    return out


def ckks_decrypt(secret_ctx: Any, ciphertexts: Sequence[bytes], d: int) -> np.ndarray:
    """The key holder decrypts the summed ciphertexts into a float64 vector (d,)."""
    import tenseal as ts

    vals: list[float] = []
    for c in ciphertexts:
        vals.extend(ts.ckks_vector_from(secret_ctx, c).decrypt())
    return np.asarray(vals[:d], dtype=np.float64)


def aggregation_costs(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float], *, seed: int = 0
) -> tuple[Any, dict[str, float]]:
    """One round of the same client updates aggregated three ways: plain FedAvg, pairwise
    masking and CKKS. Returns a DataFrame (method, bytes per client, client time, server time,
    decryption time in ms, max abs error against the weighted average computed in float64) and
    the errors by method (``plain``: the float32 rounding of plain FedAvg itself)."""
    n = len(states)
    vecs = [float(w) * flatten_state(s) for s, w in zip(states, weights, strict=True)]
    total_w = float(np.sum(weights))
    exact = np.sum(vecs, axis=0) / total_w  # the weighted average in float64: the reference
    t = time.perf_counter()
    plain = flatten_state(fedavg(states, weights))
    t_plain = time.perf_counter() - t
    err_plain = float(np.abs(plain - exact).max())  # float32 rounding of plain FedAvg itself
    rows = [("plain FedAvg (float32)", vecs[0].size * 4, 0.0, t_plain, 0.0, err_plain)]
    t = time.perf_counter()
    masked = {k: mask_update(v, k, n, seed=seed) for k, v in enumerate(vecs)}
    t_client = (time.perf_counter() - t) / n
    t = time.perf_counter()
    avg = unmask_sum(masked, n, seed=seed) / total_w
    t_server = time.perf_counter() - t
    err_mask = float(np.abs(avg - exact).max())
    rows.append(("pairwise masking", masked[0].nbytes, t_client, t_server, 0.0, err_mask))
    secret, public = ckks_contexts()
    t = time.perf_counter()
    enc = [ckks_encrypt(public, v) for v in vecs]
    t_client = (time.perf_counter() - t) / n
    t = time.perf_counter()
    summed = ckks_sum(public, enc)
    t_server = time.perf_counter() - t
    t = time.perf_counter()
    avg = ckks_decrypt(secret, summed, len(plain)) / total_w
    t_dec = time.perf_counter() - t
    err_ckks = float(np.abs(avg - exact).max())
    rows.append(("CKKS (TenSEAL)", sum(map(len, enc[0])), t_client, t_server, t_dec, err_ckks))
    df = pd.DataFrame(
        rows,
        columns=[
            "method",
            "bytes per client",
            "client ms",
            "server ms",
            "decrypt ms",
            "max abs error",
        ],
    )
    for c in ("client ms", "server ms", "decrypt ms"):
        df[c] = df[c] * 1000.0
    return df, {
        "plain": err_plain,
        "mask": err_mask,
        "ckks": err_ckks,
        "public_context_bytes": float(len(public)),
    }
