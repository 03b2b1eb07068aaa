"""The ``preconditioners`` section: Shampoo, PSGD-Kron and SOAP against their references.

``gx.shampoo`` runs against precondition-opt's ``distributed_shampoo`` and ``gx.psgd_kron``
against psgd-jax's ``kron``, both JAX, jitted and donated the same way in one process on
the ``transformer`` tree (float32). SOAP's reference, pytorch-optimizer's ``SOAP``, is
PyTorch: it is timed beside ``gx.soap`` as an eager CPU torch step on the same shapes and
gradients, labelled as such, with no compile time and no ratio (different frameworks).

Both sides of a pair get the same settings (``SETTINGS``, printed with the table). The
references run unchanged apart from two import aliases for APIs that jax and optax have
since removed (``jax.tree_map`` & co. for precondition-opt, ``optax._src.clipping`` for
psgd-jax); neither touches their maths. A reference that is not installed is reported
as missing and the section goes on.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import numpy as np

import gradxform as gx

SECTION = "preconditioners"
WORKLOAD = "transformer"

# One setting per line, both sides of each pair. The largest preconditioned dimension is
# 4096 for all three (Shampoo's default skip_preconditioning_dim_size_gt): the 8192-row
# embedding is left to the diagonal/graft path everywhere.
SETTINGS: dict[str, dict[str, Any]] = {
    "shampoo": dict(
        learning_rate=1e-3,
        block_size=128,
        beta1=0.9,
        beta2=0.999,
        start_preconditioning_step=5,
        preconditioning_compute_steps=1,
        statistics_compute_steps=1,
        graft_type="sgd",
        skip_preconditioning_dim_size_gt=4096,
    ),
    "psgd_kron": dict(
        learning_rate=1e-3,
        b1=0.9,
        preconditioner_update_probability=1.0,
        max_size_triangular=4096,
        min_ndim_triangular=2,
        preconditioner_lr=0.1,
    ),
    "soap": dict(
        learning_rate=3e-3,
        b1=0.95,
        b2=0.95,
        eps=1e-8,
        weight_decay=0.01,
        precondition_frequency=10,
        max_precond_dim=4096,
    ),
}

REFERENCE = {
    "shampoo": "precondition-opt",
    "psgd_kron": "psgd-jax",
    "soap": "pytorch-optimizer (torch CPU, eager)",
}


def _shampoo_reference():
    for name in ("tree_map", "tree_flatten", "tree_unflatten"):
        if not hasattr(jax, name):  # removed from jax, still called by precondition-opt
            setattr(jax, name, getattr(jax.tree_util, name))
    from precondition import distributed_shampoo as ds

    kw = dict(SETTINGS["shampoo"])
    kw["graft_type"] = ds.GraftingType[kw["graft_type"].upper()]
    return ds.distributed_shampoo(**kw)


def _psgd_reference():
    import optax.transforms._clipping

    # psgd-jax imports this module (unused) under its pre-0.2.8 optax name.
    sys.modules.setdefault("optax._src.clipping", optax.transforms._clipping)
    from psgd_jax import kron

    return kron.kron(**SETTINGS["psgd_kron"])


def jax_contenders() -> dict:
    """``optimizer -> {contender: build() -> transformation}``, gradxform first."""
    return {
        "shampoo": {
            "gradxform": lambda: gx.shampoo(**SETTINGS["shampoo"]),
            REFERENCE["shampoo"]: _shampoo_reference,
        },
        "psgd_kron": {
            "gradxform": lambda: gx.psgd_kron(**SETTINGS["psgd_kron"]),
            REFERENCE["psgd_kron"]: _psgd_reference,
        },
        "soap": {"gradxform": lambda: gx.soap(**SETTINGS["soap"])},
    }


def torch_soap_runner(params, grads):
    """``(step, state_bytes)`` for pytorch-optimizer's SOAP on CPU torch tensors holding
    the same values; ``step(grads)`` sets the gradients and takes one ``opt.step()``.

    Its first ``step`` only builds the statistics (the params do not move); it is taken
    here, untimed, as ``gx.soap``'s first update is taken by the section's warm-up.
    """
    import torch
    from pytorch_optimizer.optimizer.soap import SOAP

    kw = dict(SETTINGS["soap"])
    tensors = [torch.tensor(np.asarray(p)) for p in jax.tree.leaves(params)]
    torch_grads = [torch.tensor(np.asarray(g)) for g in jax.tree.leaves(grads)]
    for t, g in zip(tensors, torch_grads):
        t.grad = g
    opt = SOAP(
        tensors,
        lr=kw["learning_rate"],
        betas=(kw["b1"], kw["b2"]),
        eps=kw["eps"],
        weight_decay=kw["weight_decay"],
        precondition_frequency=kw["precondition_frequency"],
        max_precondition_dim=kw["max_precond_dim"],
    )

    @torch.no_grad()
    def step(_grads):
        opt.step()
        return ()

    step(None)
    state_bytes = sum(v.numel() * v.element_size() for s in opt.state.values() for v in _tensors(s))
    return step, state_bytes


def _tensors(x):
    import torch

    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)
