"""Muon's primitive: momentum orthogonalised by a Newton-Schulz iteration.

A weight matrix's update ``M`` is replaced by (approximately) ``U V^T`` from its SVD
``M = U S V^T``: every singular value is pushed to about 1, so the step has the same
size in every direction of the matrix' input and output spaces. Tensors of higher rank
are seen, through ``MuonDimensionNumbers``, as a batch of matrices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradxform import tree as tree_ops
from gradxform._src import base, numerics, validate
from gradxform._src.dtypes import canonicalize_dtype

DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# Per-step coefficients from the Dion paper (Ahn et al. 2025): faster early contraction.
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
NS_COEFFS_PRESETS = {"standard": DEFAULT_NS_COEFFS, "dion": DION_NS_COEFFS}
_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a tensor are a matrix' input (``reduction_axis``) and output
    (``output_axis``); all other axes are batch axes, each slice orthogonalised alone.

    The input axes are flattened into the matrix' rows (fan-in ``m``, their sizes'
    product) and the output axes into its columns (fan-out ``n``). Negative axes count
    from the end; the two sets must not overlap.

    Attributes:
        reduction_axis: the input axis, an int or a sequence of ints. Default 0.
        output_axis: the output axis, an int or a sequence of ints. Default 1.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def is_dimension_numbers(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def _axes(x: jax.Array, dim_nums: MuonDimensionNumbers) -> tuple[tuple[int, ...], tuple[int, ...]]:
    as_tuple = lambda a: (a,) if isinstance(a, int) else tuple(a)
    reduction = tuple(a % x.ndim for a in as_tuple(dim_nums.reduction_axis))
    output = tuple(a % x.ndim for a in as_tuple(dim_nums.output_axis))
    return reduction, output


def _as_matrices(x: jax.Array, dim_nums: MuonDimensionNumbers):
    """``(reshape, inverse)``: ``x`` to a ``(batch, fan_in, fan_out)`` stack and back."""
    if x.ndim < 2:
        raise ValueError(f"Muon needs parameters of rank >= 2, got shape {x.shape}")
    reduction, output = _axes(x, dim_nums)
    if set(reduction) & set(output):
        raise ValueError(
            f"reduction axes {reduction} and output axes {output} overlap for shape {x.shape}"
        )
    batch = tuple(sorted(set(range(x.ndim)) - set(reduction) - set(output)))
    order = batch + reduction + output
    inverse_order = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = lambda axes: tuple(x.shape[a] for a in axes)
    flat = (math.prod(sizes(batch)), math.prod(sizes(reduction)), math.prod(sizes(output)))
    unflat = sizes(batch) + sizes(reduction) + sizes(output)
    return (
        lambda y: y.transpose(order).reshape(flat),
        lambda y: y.reshape(unflat).transpose(inverse_order),
    )


def _fans(x: jax.Array, dim_nums: MuonDimensionNumbers) -> tuple[int, int]:
    reduction, output = _axes(x, dim_nums)
    return math.prod(x.shape[a] for a in reduction), math.prod(x.shape[a] for a in output)


def _ns_step(x: jax.Array, c: jax.Array) -> jax.Array:
    """One quintic Newton-Schulz step ``X <- a X + (b A + c A^2) X``, ``A = X X^H``."""
    a = x @ x.T.conj()
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def _aol_first_step(x: jax.Array, c: jax.Array, eps: float = 1e-8) -> jax.Array:
    """First step with almost-orthogonal-layer rescaling: ``X <- D X`` with
    ``D = diag(1 / sqrt(sum_j |A_ij|))``, which bounds ``||D X||_2 <= 1``."""
    a = x @ x.T.conj()
    s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
    x, a = x * s, a * s * s.transpose(-1, -2)
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def _schatten_first_step(x: jax.Array, c: jax.Array, eps: float = 1e-8) -> jax.Array:
    """First step scaled by the Schatten-4 norm, ``X <- X / ||X X^T||_F^{1/2}``."""
    a = x @ x.T
    s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro"), min=eps)), (0, -1))
    x, a = x * s, a * s**2
    return c[0] * x + (c[1] * a + c[2] * a @ a) @ x


def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: jax.Array,
    ns_steps: int = 5,
    preconditioning: str = "frobenius",
    eps: jax.typing.ArrayLike = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    """Approximately ``U V^T`` for ``x = U S V^T`` (Jordan et al. 2024, "Muon").

    ``X_0 = x / (||x|| + eps)`` (Frobenius norm; ``"spectral"``: the 2-norm; ``"aol"`` and
    ``"schatten"`` rescale inside the first step instead), then ``ns_steps`` times
    ``X <- a X + (b A + c A^2) X`` with ``A = X X^H`` and ``(a, b, c) = ns_coeffs``
    (shape ``(3,)``; or ``(n, 3)``: one row per step, ``n`` steps). The iteration runs on
    the wide orientation (``X`` transposed if it has more rows than columns). ``x`` is a
    matrix, or any tensor with ``dimension_numbers`` naming its matrix axes. With the
    default coefficients the result is ``U S' V^T`` with ``S'`` near 1, not at it: the
    quintic is tuned to grow small singular values fast, not to converge.

    Args:
        x: the array to orthogonalise, of rank 2, or of any rank ``>= 2`` with
            ``dimension_numbers``.
        ns_coeffs: the quintic's ``(a, b, c)``, an array of shape ``(3,)`` used at every
            step, or of shape ``(n, 3)``, one row per step (``ns_steps`` is then ignored).
            ``DEFAULT_NS_COEFFS`` is ``(3.4445, -4.7750, 2.0315)``.
        ns_steps: the number of Newton-Schulz steps for ``(3,)`` coefficients, a
            positive int. Default 5.
        preconditioning: how ``X_0`` is scaled so that its singular values are at most
            1: ``"frobenius"`` (default), ``"spectral"``, ``"aol"`` (almost-orthogonal
            layer rescaling, ``X <- D X`` with ``D = diag(1 / sqrt(sum_j |A_ij|))``, in
            the first step) or ``"schatten"`` (``X <- X / ||X X^T||_F^{1/2}`` in the first
            step); any other value raises ``ValueError``.
        eps: added to the norm of ``"frobenius"`` and ``"spectral"``, ``>= 0``.
            Default 1e-8. (``"aol"`` and ``"schatten"`` floor their norms at 1e-8.)
        dimension_numbers: a ``MuonDimensionNumbers`` naming the matrix axes of ``x``;
            ignored for a matrix, required otherwise (``ValueError`` without).

    Returns:
        An array of the shape and dtype of ``x``: each of its matrices orthogonalised.
    """
    if x.ndim == 2:
        dimension_numbers = MuonDimensionNumbers(0, 1)
    elif not isinstance(dimension_numbers, MuonDimensionNumbers):
        raise ValueError(
            f"expected a matrix or dimension_numbers, got shape {x.shape} and {dimension_numbers}"
        )
    validate.one_of("preconditioning", preconditioning, _PRECONDITIONINGS)
    ns_coeffs = jnp.asarray(ns_coeffs)
    if ns_coeffs.ndim > 2 or ns_coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {ns_coeffs.shape}")
    first_step = {"aol": _aol_first_step, "schatten": _schatten_first_step}.get(
        preconditioning, _ns_step
    )

    def step(i, y, c):
        if first_step is _ns_step:
            return _ns_step(y, c)
        return jax.lax.cond(i == 0, lambda z: first_step(z, c), lambda z: _ns_step(z, c), y)

    def orthogonalize(y):
        wide = y.shape[0] <= y.shape[1]
        y = y if wide else y.T
        if preconditioning == "frobenius":
            y = y / (jnp.linalg.norm(y, ord="fro") + eps)
        elif preconditioning == "spectral":
            y = y / (jnp.linalg.norm(y, ord=2) + eps)
        coeffs = ns_coeffs.astype(y.dtype)
        if coeffs.ndim == 1:
            # Unrolled, so that the loop composes cheaply with vmap.
            y = jax.lax.fori_loop(0, ns_steps, lambda i, z: step(i, z, coeffs), y, unroll=True)
        else:

            def body(carry, c):
                i, z = carry
                return (i + 1, step(i, z, c)), None

            (_, y), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), y), coeffs)
        return y if wide else y.T

    to_matrices, back = _as_matrices(x, dimension_numbers)
    return back(jax.vmap(orthogonalize)(to_matrices(x)))


WeightDimNums = Any  # MuonDimensionNumbers, a tree of them (None: not Muon), or a function


def resolve_dimension_numbers(weight_dimension_numbers: Any, updates: Any) -> Any:
    """The dimension numbers for ``updates``: the given ones, or the function's result."""
    if callable(weight_dimension_numbers) and not is_dimension_numbers(weight_dimension_numbers):
        return weight_dimension_numbers(updates)
    return weight_dimension_numbers


def _map_with_dims(f: Callable, updates: Any, dim_nums: Any) -> Any:
    if dim_nums is None:
        # Without dimension numbers every leaf must be a matrix.
        return jax.tree.map(lambda u: f(u, MuonDimensionNumbers(0, 1)), updates)
    if is_dimension_numbers(dim_nums):
        return jax.tree.map(lambda u: f(u, dim_nums), updates)
    return jax.tree.map(f, updates, dim_nums, is_leaf=is_dimension_numbers)


def scale_by_shape(
    weight_dimension_numbers: WeightDimNums | None = None,
    consistent_rms: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformation:
    """Muon's shape factor per matrix (fan-in ``m``, fan-out ``n``).

    ``u <- sqrt(max(1, n / m)) u`` (Jordan et al.'s width transfer), or with
    ``consistent_rms = r``: ``u <- r sqrt(max(m, n)) u``, which gives an orthogonal update
    an RMS of about ``r`` (Liu et al. 2025, "Muon is Scalable for LLM Training", with
    ``r = 0.2`` to match AdamW's update RMS). Stateless.

    Args:
        weight_dimension_numbers: which axes of each leaf are its fan-in and fan-out: a
            ``MuonDimensionNumbers`` for every leaf, a tree of them like the updates, or
            a function of the updates returning either; ``None`` (default) treats every
            leaf as a matrix ``(m, n)``.
        consistent_rms: ``r``, the target RMS of an orthogonal update, ``>= 0``;
            ``None`` (default) uses the width-transfer factor instead.

    Returns:
        A stateless ``GradientTransformation`` (state ``EmptyState()``).
    """
    if consistent_rms is not None:
        validate.non_negative("consistent_rms", consistent_rms)

    def factor(u, dim_nums):
        fan_in, fan_out = _fans(u, dim_nums)
        if consistent_rms is not None:
            return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms * u
        return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * u

    def scale_tree(updates, params):
        del params
        dims = resolve_dimension_numbers(weight_dimension_numbers, updates)
        return _map_with_dims(factor, updates, dims)

    return base.stateless(scale_tree)


class MuonState(NamedTuple):
    """The state of ``scale_by_muon`` (optax's).

    Attributes:
        count: int32 scalar, the number of updates made so far.
        mu: the momentum ``m``, a tree like the params (in ``mu_dtype`` when given).
        ns_coeffs: the Newton-Schulz coefficients, shape ``(3,)``, or ``(n, 3)`` with
            ``n <= ns_steps``: the given rows' last ``ns_steps``.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    mu: Any
    ns_coeffs: jax.Array


def scale_by_muon(
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: jax.typing.ArrayLike = 0.95,
    eps: jax.typing.ArrayLike = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: WeightDimNums | None = None,
) -> base.GradientTransformation:
    """Muon's scaling (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural
    networks"; Bernstein & Newhouse 2024, "Old Optimizer, New Norm").

    ``m <- beta m + (1 - beta) g``; ``m_hat = m / (1 - beta^t)``, or with ``nesterov``
    ``m_hat = beta m / (1 - beta^{t+1}) + (1 - beta) g / (1 - beta^t)``;
    ``u <- NS(m_hat)`` (``orthogonalize_via_newton_schulz``), and with ``adaptive``
    ``u <- <m_hat, u> u`` (scaled by the dual norm, Pethick et al. 2025), ``t`` counting
    this update. The output is not scaled by the matrix shape: ``scale_by_shape`` does
    that, and ``gx.contrib.muon`` chains both.

    Args:
        ns_coeffs: the Newton-Schulz quintic's ``(a, b, c)``: a triple used at every step,
            or a sequence of ``n <= ns_steps`` triples, one per step (then ``n`` steps
            run). Default ``(3.4445, -4.7750, 2.0315)``; ``DION_NS_COEFFS`` holds the
            five per-step rows of Ahn et al. 2025. Another shape raises ``ValueError``
            at ``init``.
        ns_steps: the number of Newton-Schulz steps, a positive int. Default 5.
        beta: decay of the momentum ``m``, in ``[0, 1)``. Default 0.95.
        eps: added to the norm that scales ``m_hat`` before the iteration, ``>= 0``.
            Default 1e-8.
        mu_dtype: storage dtype of ``m``; ``None`` (default) keeps the params'.
        nesterov: orthogonalise Nesterov's look-ahead ``m_hat`` as above. Default True.
        adaptive: scale each orthogonalised leaf by ``<m_hat, u>``. Default False.
        preconditioning: the scaling of the iteration's start, as in
            ``orthogonalize_via_newton_schulz``: ``"frobenius"`` (default),
            ``"spectral"``, ``"aol"`` or ``"schatten"``.
        weight_dimension_numbers: which axes of each leaf form its matrix: a
            ``MuonDimensionNumbers`` for every leaf, a tree of them like the params, or
            a function of the updates returning either; ``None`` (default) requires
            every leaf to be a matrix.

    Returns:
        A ``GradientTransformation`` whose state is optax's
        ``MuonState(count, mu, ns_coeffs)``.
    """
    validate.decay("beta", beta)
    validate.non_negative("eps", eps)
    validate.positive_int("ns_steps", ns_steps)
    validate.one_of("preconditioning", preconditioning, _PRECONDITIONINGS)
    mu_dtype = canonicalize_dtype(mu_dtype)

    def init(params):
        base.check_float_leaves(params, "scale_by_muon")
        coeffs = jnp.asarray(ns_coeffs)
        if coeffs.ndim > 2 or coeffs.shape[-1] != 3:
            raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}")
        if coeffs.ndim == 2:
            if coeffs.shape[0] > ns_steps:
                raise ValueError(f"{coeffs.shape[0]} rows of ns_coeffs for ns_steps={ns_steps}")
            coeffs = coeffs[-ns_steps:]
        return MuonState(
            count=jnp.zeros([], jnp.int32),
            mu=tree_ops.zeros_like(params, dtype=mu_dtype),
            ns_coeffs=coeffs,
        )

    def update(updates, state, params=None, **extra):
        del params, extra
        base.check_same_structure(updates, state.mu, "momentum")
        mu = tree_ops.update_moment(updates, state.mu, beta, 1)
        count = numerics.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: beta * m + (1 - beta) * g,
                tree_ops.bias_correction(mu, beta, numerics.safe_increment(count)),
                tree_ops.bias_correction(updates, beta, count),
            )
        else:
            mu_hat = tree_ops.bias_correction(mu, beta, count)
        out = _map_with_dims(
            lambda x, d: orthogonalize_via_newton_schulz(
                x, state.ns_coeffs, ns_steps, preconditioning, eps, d
            ),
            mu_hat,
            resolve_dimension_numbers(weight_dimension_numbers, updates),
        )
        if adaptive:
            out = jax.tree.map(lambda m, o: jnp.sum(m.conj() * o) * o, mu_hat, out)
        mu = tree_ops.cast_like(mu, state.mu)
        return out, MuonState(count=count, mu=mu, ns_coeffs=state.ns_coeffs)

    return base.GradientTransformation(init, update)
