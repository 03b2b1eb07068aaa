"""The rest of optax.contrib against optax 0.2.8: 100 float64 steps on the nested pytree to
rel 1e-9 with the same state key paths, half-precision dtypes (traced, not compiled), and
hyperparameter checks. Where optax is imprecise, an independent float64 NumPy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib as oc
import pytest

import gradxform as gx
from gradxform import contrib as gxc
from paired import assert_same_trajectory, compiled_call
from reference import assert_trees_close, grad_fn, loss, max_gap, nested_params, run


def _state_paths(state):
    return [
        (jax.tree_util.keystr(path), jnp.shape(x), jnp.result_type(x))
        for path, x in jax.tree_util.tree_leaves_with_path(state)
    ]


def _matrices(params):
    """A weight-decay mask: leaves of rank >= 2 only."""
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def _galore_dims(module):
    """Project the rank-3 leaf as (2) x (3 * 2) and the matrices transposed."""

    def dims(params):
        def leaf(x):
            if x.ndim == 3:
                return module.GaLoreDimensionNumbers(0, (1, 2))
            return module.GaLoreDimensionNumbers(1, 0) if x.ndim == 2 else None

        return jax.tree.map(leaf, params)

    return dims


# name -> (gradxform builder, optax builder); both sides get the same arguments.
CASES = {
    "cocob": (lambda: gxc.cocob(), lambda: oc.cocob()),
    "cocob_options": (
        lambda: gxc.cocob(0.5, alpha=10.0, eps=1e-6, weight_decay=0.01, mask=_matrices),
        lambda: oc.cocob(0.5, alpha=10.0, eps=1e-6, weight_decay=0.01, mask=_matrices),
    ),
    "dog": (lambda: gxc.dog(), lambda: oc.dog()),
    "dog_learning_rate_init": (
        lambda: gxc.dog(0.5, ("learning_rate", 0.01), weight_decay=0.01, mask=_matrices),
        lambda: oc.dog(0.5, ("learning_rate", 0.01), weight_decay=0.01, mask=_matrices),
    ),
    "dowg": (lambda: gxc.dowg(), lambda: oc.dowg()),
    "dowg_options": (
        lambda: gxc.dowg(0.5, 0.1, weight_decay=0.01),
        lambda: oc.dowg(0.5, 0.1, weight_decay=0.01),
    ),
    "acprop": (lambda: gxc.acprop(0.01), lambda: oc.acprop(0.01)),
    "acprop_options": (
        lambda: gxc.acprop(0.02, 0.8, 0.99, 1e-8, 1e-10, 0.01, _matrices),
        lambda: oc.acprop(0.02, 0.8, 0.99, 1e-8, 1e-10, 0.01, _matrices),
    ),
    "dadapt_adamw": (lambda: gxc.dadapt_adamw(), lambda: oc.dadapt_adamw()),
    "dadapt_adamw_options": (
        lambda: gxc.dadapt_adamw(0.5, (0.8, 0.99), 1e-6, 1e-4, 0.01),
        lambda: oc.dadapt_adamw(0.5, (0.8, 0.99), 1e-6, 1e-4, 0.01),
    ),
    "mechanize_adam": (
        lambda: gxc.mechanize(gx.adam(0.01)),
        lambda: oc.mechanize(optax.adam(0.01)),
    ),
    "mechanize_sgd_options": (
        lambda: gxc.mechanize(gx.sgd(0.01, 0.9), 0.1, 1e-6, 1e-4, 3),
        lambda: oc.mechanize(optax.sgd(0.01, 0.9), 0.1, 1e-6, 1e-4, 3),
    ),
    "sam": (
        lambda: gxc.sam(gx.sgd(0.05), gx.chain(gxc.normalize(), gx.scale(0.05))),
        lambda: oc.sam(optax.sgd(0.05), optax.chain(oc.normalize(), optax.scale(0.05))),
    ),
    "sam_three_steps_keep_state": (
        lambda: gxc.sam(gx.adam(0.02), gx.chain(gx.adam(0.01), gx.scale(0.5)), 3, False),
        lambda: oc.sam(optax.adam(0.02), optax.chain(optax.adam(0.01), optax.scale(0.5)), 3, False),
    ),
    "galore": (
        lambda: gxc.galore(0.01, rank=2, update_proj_gap=10),
        lambda: oc.galore(0.01, rank=2, update_proj_gap=10),
    ),
    "galore_options": (
        lambda: gxc.galore(
            0.01,
            1,
            7,
            0.5,
            gx.scale_by_adam(b1=0.8),
            0.01,
            weight_dimension_numbers=_galore_dims(gxc),
        ),
        lambda: oc.galore(
            0.01,
            1,
            7,
            0.5,
            optax.scale_by_adam(b1=0.8),
            0.01,
            weight_dimension_numbers=_galore_dims(oc),
        ),
    ),
}


def _per_example_grads(params):
    """Three "examples" per step: the loss's gradient scaled by 1, -0.5 and 3."""
    weights = jnp.asarray([1.0, -0.5, 3.0])
    return jax.tree.map(lambda g: g[None] * weights.reshape((3,) + (1,) * g.ndim), grad_fn(params))


def _complex_params():
    """The nested tree with every leaf but one made complex128."""
    params = jax.tree.map(lambda x: x + 0.5j * jnp.flip(x), nested_params())
    params["dense"]["b"] = jnp.real(params["dense"]["b"])
    return params


def _complex_grads(params):
    """The conjugate gradient (JAX's convention for real losses) of a real loss."""

    def real_loss(z):
        return loss(jax.tree.map(lambda a: jnp.real(a) + 0.5 * jnp.imag(a) ** 2, z))

    return jax.tree.map(jnp.conj, jax.grad(real_loss)(params))


# name -> (ours, theirs, params, grads(params)): other inputs than the nested real tree.
INPUT_CASES = {
    "dpsgd": (
        lambda: gxc.dpsgd(0.01, 1.0, 0.1, 3),
        lambda: oc.dpsgd(0.01, 1.0, 0.1, 3),
        nested_params,
        _per_example_grads,
    ),
    "dpsgd_nesterov": (
        lambda: gxc.dpsgd(0.01, 1.0, 0.1, 3, 0.9, True),
        lambda: oc.dpsgd(0.01, 1.0, 0.1, 3, 0.9, True),
        nested_params,
        _per_example_grads,
    ),
    "differentially_private_aggregate": (
        lambda: gx.chain(
            gxc.differentially_private_aggregate(0.5, 0.2, jax.random.key(5)), gx.scale(-0.01)
        ),
        lambda: optax.chain(
            oc.differentially_private_aggregate(0.5, 0.2, jax.random.key(5)), optax.scale(-0.01)
        ),
        nested_params,
        _per_example_grads,
    ),
    "split_real_and_imaginary": (
        lambda: gxc.split_real_and_imaginary(gx.adam(0.01)),
        lambda: oc.split_real_and_imaginary(optax.adam(0.01)),
        _complex_params,
        _complex_grads,
    ),
}

# Optimizers whose update takes extra arguments: name -> (ours, theirs, extra(params)).
WITH_VALUE = lambda p: {"value": loss(p)}
EXTRA_CASES = {
    "momo": (lambda: gxc.momo(), lambda: oc.momo(), WITH_VALUE),
    "momo_adaptive_bound": (
        lambda: gxc.momo(0.5, 0.8, -1.0, 0.01, True),
        lambda: oc.momo(0.5, 0.8, -1.0, 0.01, True),
        WITH_VALUE,
    ),
    "momo_adam": (lambda: gxc.momo_adam(), lambda: oc.momo_adam(), WITH_VALUE),
    "momo_adam_adaptive_bound": (
        lambda: gxc.momo_adam(0.05, 0.8, 0.99, 1e-6, -1.0, 0.01, True),
        lambda: oc.momo_adam(0.05, 0.8, 0.99, 1e-6, -1.0, 0.01, True),
        WITH_VALUE,
    ),
    "sam_opaque": (
        lambda: gxc.sam(
            gx.adam(0.02), gx.chain(gxc.normalize(), gx.scale(0.05)), 3, opaque_mode=True
        ),
        lambda: oc.sam(
            optax.adam(0.02), optax.chain(oc.normalize(), optax.scale(0.05)), 3, opaque_mode=True
        ),
        lambda p: {"grad_fn": lambda q, i: grad_fn(q)},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_contrib(name):
    ours, theirs = (build() for build in CASES[name])
    params = nested_params()
    assert _state_paths(ours.init(params)) == _state_paths(theirs.init(params))
    assert_same_trajectory(ours, theirs)


@pytest.mark.filterwarnings("ignore:.*seed.*:DeprecationWarning")  # optax.contrib.dpsgd's own
@pytest.mark.parametrize("name", sorted(INPUT_CASES))
def test_other_inputs_match_optax_contrib(name):
    build_ours, build_theirs, make_params, grads = INPUT_CASES[name]
    ours, theirs, params = build_ours(), build_theirs(), make_params()
    assert _state_paths(ours.init(params)) == _state_paths(theirs.init(params))
    assert_same_trajectory(ours, theirs, params=params, grads=grads)


@pytest.mark.parametrize("name", sorted(EXTRA_CASES))
def test_with_extra_arguments_matches_optax_contrib(name):
    build_ours, build_theirs, extra = EXTRA_CASES[name]
    ours, theirs = build_ours(), build_theirs()
    params = nested_params()
    assert _state_paths(ours.init(params)) == _state_paths(theirs.init(params))
    traj_ours, traj_theirs = compiled_call(
        lambda p: (run(ours, p, 100, extra=extra), run(theirs, p, 100, extra=extra)), params
    )
    assert_trees_close(traj_ours, traj_theirs)
    assert max_gap(jax.tree.map(lambda x: x[-1], traj_ours), params) > 1e-3


def test_dadapt_adamw_keeps_its_estimate_through_zero_gradients():
    """optax 0.2.8 divides 0 by 0 for d while every gradient so far was zero: NaN from
    then on. Here d stays at estim_lr0 and the next non-zero gradient moves the params."""
    params = nested_params()
    zeros = jax.tree.map(jnp.zeros_like, params)

    def two_steps(tx):
        u0, s = tx.update(zeros, tx.init(params), params)
        return u0, tx.update(grad_fn(params), s, params)[0]

    (ours_0, ours_1), (_, theirs_1) = compiled_call(
        lambda: (two_steps(gxc.dadapt_adamw()), two_steps(oc.dadapt_adamw()))
    )
    assert all(np.all(np.asarray(u) == 0.0) for u in jax.tree.leaves(ours_0))
    assert all(np.all(np.isfinite(np.asarray(u))) for u in jax.tree.leaves(ours_1))
    assert max_gap(ours_1, zeros) > 0
    assert all(np.all(np.isnan(np.asarray(u))) for u in jax.tree.leaves(theirs_1))


_jit_grad = jax.jit(grad_fn)


def _numpy_madgrad(params, steps, lr, momentum, weight_decay, eps):
    """MADGRAD (Defazio & Jelassi 2021, Algorithm 1 with the reference code's eps) in
    float64 NumPy, leaf by leaf; gradients from the shared test loss."""
    leaves, treedef = jax.tree.flatten(params)
    x0 = [np.asarray(x, np.float64) for x in leaves]
    x = [a.copy() for a in x0]
    sq = [np.zeros_like(a) for a in x0]
    s = [np.zeros_like(a) for a in x0]
    out = []
    for k in range(steps):
        grads = jax.tree.leaves(_jit_grad(jax.tree.unflatten(treedef, [jnp.asarray(a) for a in x])))
        lam = (lr + eps) * np.sqrt(k + 1.0)
        for i, g in enumerate(grads):
            g = np.asarray(g) + weight_decay * x[i]
            sq[i] += lam * g * g
            s[i] += lam * g
            z = x0[i] - s[i] / (np.cbrt(sq[i]) + eps)
            x[i] = momentum * x[i] + (1 - momentum) * z
        out.append([a.copy() for a in x])
    return [np.stack([step[i] for step in out]) for i in range(len(leaves))]


def test_madgrad_matches_numpy_and_optax_up_to_its_float32_weight():
    """optax 0.2.8 forms lambda_k = (lr + eps) sqrt(k + 1) in float32 (a Python float times
    the float32 root of an int32 count), so its float64 trajectory is off by ~1e-6; this
    one matches a float64 NumPy MADGRAD to 1e-9 and optax to 1e-4."""
    params = nested_params()
    args = (0.01, 0.9, 0.01, 1e-6)
    ours = jax.jit(lambda p: run(gxc.madgrad(*args), p, 100))(params)
    theirs = jax.jit(lambda p: run(oc.madgrad(*args), p, 100))(params)
    expected = _numpy_madgrad(params, 100, *args)
    gaps = []
    for a, e, o in zip(jax.tree.leaves(ours), expected, jax.tree.leaves(theirs)):
        np.testing.assert_allclose(np.asarray(a), e, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(o), e, rtol=1e-4, atol=1e-8)
        gaps.append(np.max(np.abs(np.asarray(o) - e)))
    assert max(gaps) > 1e-10  # optax's float32 weight shows: the two references differ


# name -> (builder, extra(params)): every new optimizer once, for the half-precision checks.
HALF_PRECISION = {
    **{name: (CASES[name][0], None) for name in CASES},
    **{name: (EXTRA_CASES[name][0], EXTRA_CASES[name][2]) for name in EXTRA_CASES},
    "dpsgd_nesterov": (INPUT_CASES["dpsgd_nesterov"][0], None),
    "split_real_and_imaginary": (INPUT_CASES["split_real_and_imaginary"][0], None),
}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_half_precision_updates_and_state_keep_their_dtypes(dtype):
    """Two steps inside lax.scan, traced (not compiled): the updates come back in the
    params' dtype and scan accepts the state carry (no leaf changes dtype)."""
    params = nested_params(dtype)
    per_example = {"dpsgd_nesterov"}

    def check(name):
        build, extra = HALF_PRECISION[name]
        tx = build()

        def grads(p):
            g = jax.tree.map(lambda x: x.astype(dtype), grad_fn(p))
            if name in per_example:
                return jax.tree.map(lambda x: jnp.stack([x, -x]), g)
            return g

        def step(carry, _):
            p, s = carry
            kwargs = {} if extra is None else extra(p)
            u, s = tx.update(grads(p), s, p, **kwargs)
            return (gx.apply_updates(p, u), s), u

        def two_steps(p):
            return jax.lax.scan(step, (p, tx.init(p)), None, length=2)

        (_, state), updates = jax.eval_shape(two_steps, params)
        state0 = jax.eval_shape(tx.init, params)
        got = [u.dtype for u in jax.tree.leaves(updates)]
        assert got == [dtype] * len(got), (name, got)
        assert [x.dtype for x in jax.tree.leaves(state)] == [
            x.dtype for x in jax.tree.leaves(state0)
        ], name

    for name in sorted(HALF_PRECISION):
        check(name)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: gxc.cocob(alpha=0.0), "alpha"),
        (lambda: gxc.cocob(eps=-1.0), "eps"),
        # A kind outside the Literal, on purpose: the check must name the argument.
        (lambda: gxc.dog(init_step=("guess", 1e-6)), "init_step"),  # type: ignore[arg-type]
        (lambda: gxc.dog(init_step=("distance", -1.0)), "init_step"),
        (lambda: gxc.dowg(init_estim_sq_dist=-1.0), "init_estim_sq_dist"),
        (lambda: gxc.madgrad(0.1, momentum=1.0), "momentum"),
        (lambda: gxc.madgrad(-0.1), "learning_rate"),
        (lambda: gxc.acprop(0.1, b2=1.0), "b2"),
        (lambda: gxc.dadapt_adamw(betas=(0.9, 1.5)), "betas"),
        (lambda: gxc.dadapt_adamw(estim_lr0=0.0), "estim_lr0"),
        (lambda: gxc.mechanize(gx.adam(0.1), num_betas=0), "num_betas"),
        (lambda: gxc.mechanize(gx.adam(0.1), s_init=0.0), "s_init"),
        (lambda: gxc.momo(beta=1.0), "beta"),
        (lambda: gxc.momo_adam(weight_decay=-1.0), "weight_decay"),
        (lambda: gxc.sam(gx.sgd(0.1), gx.sgd(0.1), sync_period=0), "sync_period"),
        (lambda: gxc.galore(0.1, rank=0), "rank"),
        (lambda: gxc.galore(0.1, update_proj_gap=0), "update_proj_gap"),
        (lambda: gxc.dpsgd(0.1, -1.0, 0.1, 0), "l2_norm_clip"),
        (lambda: gxc.differentially_private_aggregate(1.0, -0.1, 0), "noise_multiplier"),
    ],
)
def test_bad_hyperparameters_are_refused_naming_them(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


def test_momo_needs_the_loss_and_sam_opaque_needs_grad_fn():
    params = {"w": jnp.ones(3)}
    tx = gxc.momo()
    with pytest.raises(ValueError, match="value"):
        tx.update(params, tx.init(params), params)
    tx = gxc.sam(gx.sgd(0.1), gx.sgd(0.1), opaque_mode=True)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(params, tx.init(params), params)
