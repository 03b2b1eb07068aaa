"""Muon for matrices, with AdamW for every other leaf."""

from __future__ import annotations

from typing import Any

import jax

from gradxform._src import base, validate
from gradxform._src.combine import chain
from gradxform._src.optimizers.adam import adamw
from gradxform._src.partition import MaskedNode, multi_transform
from gradxform._src.transforms.orthogonalize import (
    DEFAULT_NS_COEFFS,
    NS_COEFFS_PRESETS,
    MuonDimensionNumbers,
    is_dimension_numbers,
    resolve_dimension_numbers,
    scale_by_muon,
    scale_by_shape,
)
from gradxform._src.transforms.scaling import scale_by_learning_rate
from gradxform._src.transforms.weight_decay import add_decayed_weights


def muon(
    learning_rate: base.ScalarOrSchedule,
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: jax.typing.ArrayLike = 0.95,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 0.0,
    weight_decay_mask: base.MaskOrFn = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: jax.typing.ArrayLike = 0.9,
    adam_b2: jax.typing.ArrayLike = 0.999,
    adam_eps_root: jax.typing.ArrayLike = 0.0,
    adam_weight_decay: jax.typing.ArrayLike = 0.0,
    adam_learning_rate: base.ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformation:
    """Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks").

    On the Muon leaves (by default every matrix, i.e. rank-2 leaf; otherwise those with
    ``MuonDimensionNumbers`` in ``muon_weight_dimension_numbers``, ``None`` marking the
    others): ``m <- beta m + (1 - beta) g``; ``O = NS(m_hat)`` (Newton-Schulz
    orthogonalisation, Nesterov ``m_hat`` by default); ``O <- sqrt(max(1, fan_out /
    fan_in)) O`` (or ``consistent_rms sqrt(max(fan_in, fan_out)) O``);
    ``x <- x - lr (O + weight_decay x)``. Every other leaf: ``adamw(adam_learning_rate or
    learning_rate, adam_b1, adam_b2, eps, adam_eps_root, weight_decay=adam_weight_decay,
    nesterov=nesterov)``. Defaults ``ns_coeffs=(3.4445, -4.7750, 2.0315)`` (or a preset
    name, ``"standard"`` or ``"dion"``), ``ns_steps=5, beta=0.95, eps=1e-8,
    weight_decay=0, nesterov=True``.

    Args:
        learning_rate: ``lr`` of the Muon leaves, a number ``>= 0`` or a schedule of the
            step count.
        ns_coeffs: the Newton-Schulz polynomial's ``(a, b, c)``, shape ``(3,)`` or one row
            per step ``(ns_steps, 3)``, or a preset name (``"standard"``, ``"dion"``).
            Default ``(3.4445, -4.7750, 2.0315)``.
        ns_steps: Newton-Schulz iterations, ``>= 1``. Default 5.
        beta: momentum decay of the Muon leaves, in ``[0, 1)``. Default 0.95.
        eps: Newton-Schulz normalisation term and AdamW's ``eps``, ``>= 0``. Default 1e-8.
        weight_decay: decoupled weight decay of the Muon leaves; any finite number.
            Default 0.0.
        weight_decay_mask: which Muon leaves are decayed: a tree of bools or a function
            of the params returning one; ``None`` (default) decays them all.
        mu_dtype: dtype of the momenta (both branches); ``None`` (default) keeps the
            params'.
        nesterov: Nesterov momentum in both branches. Default True.
        adaptive: scale the orthogonalised update by ``<m_hat, O>`` (its dual norm).
            Default False.
        preconditioning: how the Newton-Schulz input is normalised: ``"frobenius"``
            (default), ``"spectral"``, ``"aol"`` or ``"schatten"``.
        adam_b1: AdamW's first-moment decay on the other leaves, in ``[0, 1)``.
            Default 0.9.
        adam_b2: AdamW's second-moment decay, in ``[0, 1)``. Default 0.999.
        adam_eps_root: AdamW's ``eps_root``, ``>= 0``. Default 0.0.
        adam_weight_decay: AdamW's decoupled weight decay; any finite number. Default 0.0.
        adam_learning_rate: AdamW's learning rate (number ``>= 0`` or schedule); ``None``
            (default) uses ``learning_rate``.
        muon_weight_dimension_numbers: which leaves are Muon's and how they are matrices:
            a ``MuonDimensionNumbers`` for every leaf, a tree of them with ``None`` for
            AdamW's leaves, or a function of the params returning such a tree; ``None``
            (default) gives Muon every rank-2 leaf.
        consistent_rms: ``r >= 0`` scales ``O`` by ``r sqrt(max(fan_in, fan_out))``
            instead of ``sqrt(max(1, fan_out / fan_in))``; ``None`` (default) keeps the
            latter.

    Returns:
        A ``multi_transform`` ``GradientTransformation`` with state ``PartitionState``:
        ``inner_states["muon"]`` (``MuonState``, then the shape scaling's, the decay's and
        the learning rate's) and ``inner_states["adam"]`` (AdamW's), each masked to its
        own leaves.
    """
    validate.finite("weight_decay", weight_decay)
    validate.decay("adam_b1", adam_b1)
    validate.decay("adam_b2", adam_b2)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    if isinstance(ns_coeffs, str):
        validate.one_of("ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]

    # A constant zero decay is left out, not added as 0 * x: besides the wasted work, the
    # extra term changes how XLA fuses the scaling and rounds it (1 ulp per step, which
    # Muon's normalisation can grow over long runs).
    no_decay = isinstance(weight_decay, (int, float)) and weight_decay == 0
    decay = base.identity() if no_decay else add_decayed_weights(weight_decay, weight_decay_mask)

    if muon_weight_dimension_numbers is None:
        dims_spec: Any = MuonDimensionNumbers()

        def labels(params):
            return jax.tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)

    else:
        dims_spec = muon_weight_dimension_numbers

        def labels(params):
            dims = resolve_dimension_numbers(dims_spec, params)
            return jax.tree.map(
                lambda d, sub: jax.tree.map(lambda _: "adam" if d is None else "muon", sub),
                dims,
                params,
                is_leaf=lambda x: x is None or is_dimension_numbers(x),
            )

    def muon_dims(tree):
        # Dimension numbers on the Muon leaves, MaskedNode elsewhere: the Muon branch sees
        # the tree with its other leaves masked out.
        dims = resolve_dimension_numbers(dims_spec, tree)
        mask = jax.tree.map(lambda label: label == "muon", labels(tree))
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda m: d if m else MaskedNode(), sub),
            dims,
            mask,
            is_leaf=lambda x: x is None or is_dimension_numbers(x) or isinstance(x, MaskedNode),
        )

    return multi_transform(
        {
            "muon": chain(
                scale_by_muon(
                    ns_coeffs,
                    ns_steps,
                    beta,
                    eps,
                    mu_dtype,
                    nesterov=nesterov,
                    adaptive=adaptive,
                    preconditioning=preconditioning,
                    weight_dimension_numbers=muon_dims,
                ),
                scale_by_shape(muon_dims, consistent_rms),
                decay,
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(
                adam_learning_rate,
                adam_b1,
                adam_b2,
                eps,
                adam_eps_root,
                mu_dtype,
                adam_weight_decay,
                nesterov=nesterov,
            ),
        },
        labels,
    )
