"""Sharded optimizer state on 8 host CPU devices, checked against single-device runs.

Run by tests/test_sharding.py in a subprocess (it needs
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX starts). Prints one
JSON line, ``SUMMARY {...}``, with what was measured; the test asserts on it. Each
optimizer is set up from the same params

- on an Explicit 4x2 ("data", "model") mesh with plain ``jax.jit(tx.init)``;
- on an Auto 4x2 mesh with plain ``jax.jit(tx.init)`` (the state must follow the params'
  shardings by propagation alone) and with ``state_shardings(tx, params)``;
- on the Explicit mesh under ``partition_state(tx, mesh, "data")``;

and the state layouts, before and after an update, are checked against the params'.
Optimizers in ``NUMERICS``, and those that need ``with_auto_axes`` on the Explicit mesh,
are also run for ``STEPS`` compiled steps in each setting and compared with an unsharded,
op-by-op run on one device; for the others the update is traced, not compiled
(``GX_SHARDING_ALL_NUMERICS=1`` compiles them all).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for optimizer_cases and reference

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

jax.config.update("jax_enable_x64", True)

import gradxform as gx
from gradxform import sharding as gxs
from optimizer_cases import ALL_OPTIMIZERS
from reference import loss

STEPS = 4

SPECS = {
    "dense": {"w": P("data", "model"), "b": P("model")},
    "proj": P(None, "model"),
    "conv": P(None, None, None, "model"),
    "embed": P(("data", "model")),
    "gain": P(),
    "odd": P(),
}

# Run on the Auto mesh too (the others: Explicit mesh and ZeRO only), to keep compiles few.
AUTO_NUMERICS = {"adam", "adafactor_factored", "clip_by_global_norm+adam", "lamb", "lars"}
# Compiled runs compared with the reference (the rest: layouts and types only, which need
# no compile of the step). Set GX_SHARDING_ALL_NUMERICS=1 to compile every optimizer.
NUMERICS = AUTO_NUMERICS | {"sgd_momentum", "adafactor", "sm3", "noisy_sgd", "prodigy"}


def make_params():
    rng = np.random.default_rng(0)
    a = lambda *s: 0.5 * rng.normal(size=s)
    return {
        "dense": {"w": a(8, 8), "b": a(8)},
        "proj": a(16, 4),
        "conv": a(2, 3, 4, 4),
        "embed": a(16),
        "gain": a(),
        "odd": a(5, 3),
    }


def extra_cases():
    """Global reductions the catalogue table does not isolate: clipping, factored moments."""
    return {
        "clip_by_global_norm+adam": lambda: gx.chain(gx.clip_by_global_norm(0.5), gx.adam(1e-2)),
        # Small enough a threshold that every matrix here gets row and column moments.
        "adafactor_factored": lambda: gx.adafactor(1e-2, min_dim_size_to_factor=2),
    }


def make_step(tx):
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value, grad=grads, value_fn=loss)
        return gx.apply_updates(params, updates), state

    return step


def run(tx, params, init, step, steps=STEPS):
    state = init(params)
    first = state
    for _ in range(steps):
        # One step in flight at a time: queued steps whose collectives block XLA's small
        # CPU thread pool can starve the simulated devices.
        params, state = jax.block_until_ready(step(params, state))
    return first, params, state


def max_rel_diff(actual, expected):
    """``max |a - e| / max(1, |e|)`` over every element of two trees of equal structure."""
    if jax.tree.structure(actual) != jax.tree.structure(expected):
        return float("inf")
    worst = 0.0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        a, e = host(a), host(e)
        if a.shape != e.shape or a.dtype != e.dtype:
            return float("inf")
        if a.size:
            a64, e64 = a.astype(np.complex128), e.astype(np.complex128)
            both_nan = np.isnan(a64) & np.isnan(e64)
            both_inf = np.isinf(a64) & (a64 == e64)
            diff = np.where(
                both_nan | both_inf, 0.0, np.abs(a64 - e64) / np.maximum(1, np.abs(e64))
            )
            worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
    return worst


def host(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def moved(before, after):
    return max(
        (
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before))
            if np.size(a)
        ),
        default=0.0,
    )


def key_names(path):
    return tuple(str(k) for k in path)


def layout_report(state, params, mesh, others_free=False):
    """Checks state leaves against the params' shardings, found by key path, not by API.

    A state leaf whose key path ends with a parameter's path and whose shape is the
    parameter's must carry that parameter's NamedSharding; any other 0-d leaf (a counter)
    must be replicated; every leaf must be a NamedSharding on ``mesh``, except, with
    ``others_free``, a leaf of neither kind (a factored moment), which is only reported.
    """
    param_paths = [(key_names(p), leaf) for p, leaf in jax.tree_util.tree_leaves_with_path(params)]
    report = {"per_param": 0, "counters": 0, "other": {}, "errors": []}
    leaves = jax.tree_util.tree_leaves_with_path(state, is_leaf=lambda x: isinstance(x, Placed))
    for path, leaf in leaves:
        keys = key_names(path)
        where = jax.tree_util.keystr(path)
        sharding = leaf.sharding
        match = [
            p
            for k, p in param_paths
            if len(keys) >= len(k) and keys[-len(k) :] == k and p.shape == leaf.shape
        ]
        if others_free and not match and leaf.ndim and not isinstance(sharding, NamedSharding):
            report["other"][where] = f"{leaf.shape} {sharding}"
            continue
        if not isinstance(sharding, NamedSharding) or sharding.mesh != mesh:
            report["errors"].append(f"{where}: {sharding} is not a NamedSharding on the mesh")
            continue
        if match:
            report["per_param"] += 1
            want = match[0].sharding
            if not sharding.is_equivalent_to(want, leaf.ndim):
                report["errors"].append(f"{where}: {sharding.spec} != parameter's {want.spec}")
        elif leaf.ndim == 0:
            report["counters"] += 1
            if not sharding.is_fully_replicated:
                report["errors"].append(f"{where}: counter not replicated: {sharding.spec}")
        else:
            report["other"][where] = f"{leaf.shape} {sharding.spec}"
    return report


def same_layout(arrays, other):
    """Key paths where ``arrays`` and ``other`` (arrays, abstract arrays from
    ``jax.eval_shape``, or shardings) differ in partition spec."""
    is_sharding = lambda x: isinstance(x, NamedSharding)
    a = jax.tree_util.tree_leaves_with_path(arrays, is_leaf=is_sharding)
    b = jax.tree.leaves(other, is_leaf=is_sharding)
    if len(a) != len(b):
        return [f"{len(a)} leaves vs {len(b)}"]

    def spec(x, ndim):
        sharding = x if is_sharding(x) else getattr(x, "sharding", None)
        if sharding is not None and not hasattr(sharding, "spec"):
            return (type(sharding).__name__,) + (None,) * ndim
        entries = tuple(sharding.spec) if sharding is not None else ()
        return entries + (None,) * (ndim - len(entries))

    diffs = []
    for (path, x), y in zip(a, b):
        ndim = max(len(getattr(x, "shape", ())), len(getattr(y, "shape", ())))
        sx, sy = spec(x, ndim), spec(y, ndim)
        if sx[:ndim] != sy[:ndim] or len(sx) != len(sy):
            diffs.append(f"{jax.tree_util.keystr(path)}: {sx} vs {sy}")
    return diffs


def state_bytes(state):
    """Largest number of state bytes held on any one device, from the addressable shards."""
    per_device = {}
    for leaf in jax.tree.leaves(state):
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values(), default=0)


def advance(tx, params, state, numerics):
    """``STEPS`` compiled steps from ``(params, state)``, or with ``numerics=False`` one
    abstract step: the types, layouts included, that ``jit`` would produce, uncompiled."""
    step = make_step(tx)
    if not numerics:
        return jax.eval_shape(step, params, state)
    jstep = jax.jit(step)
    for _ in range(STEPS):
        params, state = jax.block_until_ready(jstep(params, state))
    return params, state


def check_optimizer(name, factory, host_params, mesh_e, mesh_a, numerics):
    """Layouts for every optimizer; with ``numerics``, also the numbers of compiled runs."""
    out = {"numerics": numerics}
    tx = factory()
    if numerics:
        # The reference runs op by op on one device: no compile of its own per optimizer.
        p0 = jax.device_put(host_params, jax.devices()[0])
        _, ref_params, ref_state = run(tx, p0, tx.init, make_step(tx))
        out["moved"] = moved(p0, ref_params)
        diff = lambda p, st: max(max_rel_diff(p, ref_params), max_rel_diff(st, ref_state))

    # Explicit mesh: plain jit, layout carried by the types.
    with jax.sharding.set_mesh(mesh_e):
        shardings = jax.tree.map(lambda s: NamedSharding(mesh_e, s), SPECS)
        pe = jax.device_put(host_params, shardings)
        first = jax.jit(tx.init)(pe)
        out["explicit_layout"] = layout_report(first, pe, mesh_e)
        out["state_shardings_vs_jit"] = same_layout(first, gxs.state_shardings(tx, pe))
        try:
            params, state = advance(tx, pe, first, numerics)
        except Exception as e:  # noqa: BLE001 - a sharding type error; the test names the allowed ones
            out["explicit_update_error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            if numerics:
                relaxed = gxs.with_auto_axes(tx)
                params, state = advance(relaxed, pe, jax.jit(relaxed.init)(pe), True)
                out["auto_axes_drift"] = same_layout(state, first)
                out["auto_axes_params_layout"] = same_layout(params, pe)
                out["auto_axes_diff"] = diff(params, state)
        else:
            out["explicit_drift"] = same_layout(state, first)
            out["explicit_params_layout"] = same_layout(params, pe)
            if numerics:
                out["explicit_diff"] = diff(params, state)

    if "explicit_update_error" in out and not numerics:
        # Such optimizers take the special paths, so their numbers are always checked.
        return check_optimizer(name, factory, host_params, mesh_e, mesh_a, True)

    # Auto mesh: plain jit, layout found by sharding propagation from the params; and
    # layouts fixed at the jit boundary by state_shardings.
    shardings = jax.tree.map(lambda s: NamedSharding(mesh_a, s), SPECS)
    pa = jax.device_put(host_params, shardings)
    plain = jax.jit(tx.init)(pa)
    out["auto_jit_layout"] = layout_report(plain, pa, mesh_a, others_free=True)
    ssh = gxs.state_shardings(tx, pa)
    # Leaves shaped like no parameter (factored moments) may be laid out otherwise.
    out["auto_jit_vs_state_shardings"] = [
        d for d in same_layout(plain, ssh) if d.split(":")[0] not in out["auto_jit_layout"]["other"]
    ]
    out["auto_layout"] = layout_report(
        jax.tree.map(Placed, ssh, jax.eval_shape(tx.init, pa)), pa, mesh_a
    )
    out["state_shardings_forms_agree"] = same_layout(
        ssh, gxs.state_shardings(tx, shardings, params=host_params)
    )
    if name in AUTO_NUMERICS or "explicit_update_error" in out:
        # The state of the plain jit(init) above, stepped by plain jit.
        _, params, state = run(tx, pa, lambda p: plain, jax.jit(make_step(tx)))
        out["auto_diff"] = diff(params, state)
        out["auto_drift"] = same_layout(state, plain)

    # ZeRO-1 over "data" on top of the model-parallel layout.
    with jax.sharding.set_mesh(mesh_e):
        shardings = jax.tree.map(lambda s: NamedSharding(mesh_e, s), SPECS)
        pe = jax.device_put(host_params, shardings)
        ztx = gxs.partition_state(tx, mesh_e, "data")
        zfirst = jax.jit(ztx.init)(pe)
        params, zstate = advance(ztx, pe, zfirst, numerics)
        if numerics:
            out["zero_diff"] = diff(params, zstate)
        out["zero_drift"] = same_layout(zstate, zfirst)
        out["zero_params_layout"] = same_layout(params, pe)
        out["zero_state_shardings_vs_jit"] = same_layout(zfirst, gxs.state_shardings(ztx, pe))
        out["zero_bytes"] = state_bytes(zfirst)
        out["plain_bytes"] = state_bytes(first)
        # Every leaf with a dimension divisible by the "data" size must hold "data".
        out["zero_unsplit"] = [
            f"{jax.tree_util.keystr(path)} {leaf.shape} {leaf.sharding.spec}"
            for path, leaf in jax.tree_util.tree_leaves_with_path(zfirst)
            if any(n % mesh_e.shape["data"] == 0 for n in leaf.shape)
            and "data" not in str(leaf.sharding.spec)
        ]
    return out


class Placed:
    """A shape with a sharding, standing in for an array in ``layout_report``."""

    def __init__(self, sharding, struct):
        self.sharding, self.shape, self.ndim = sharding, struct.shape, len(struct.shape)


def check_checkpoint_restore(name, factory, host_params, mesh_a):
    """Host copy of the state after 2 steps, put back with state_shardings, 2 more steps."""
    tx = factory()
    step = make_step(tx)
    shardings = jax.tree.map(lambda s: NamedSharding(mesh_a, s), SPECS)
    pa = jax.device_put(host_params, shardings)
    ssh = gxs.state_shardings(tx, shardings, params=host_params)
    init = jax.jit(tx.init, out_shardings=ssh)
    step_a = jax.jit(step, out_shardings=(shardings, ssh))
    _, straight_params, straight_state = run(tx, pa, init, step_a, steps=4)
    _, mid_params, mid_state = run(tx, pa, init, step_a, steps=2)
    host_state, host_mid = jax.device_get((mid_state, mid_params))
    restored = jax.device_put(host_state, ssh)
    layout = same_layout(restored, ssh)
    params, state = jax.device_put(host_mid, shardings), restored
    for _ in range(2):
        params, state = jax.block_until_ready(step_a(params, state))
    return {
        "layout": layout,
        "diff": max(max_rel_diff(params, straight_params), max_rel_diff(state, straight_state)),
    }


def check_zero_memory():
    """ZeRO-1 on a 1-D mesh of 8: state bytes per device, numerics, and the sharded update."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    rng = np.random.default_rng(1)
    host = {
        "w": rng.normal(size=(64, 32)),
        "b": rng.normal(size=(32,)),
        "v": rng.normal(size=(8,)),
        "s": rng.normal(size=()),
    }
    tx = gx.adam(1e-2)
    ztx = gxs.partition_state(tx, mesh, "data")
    _, ref_params, ref_state = run(
        tx, jax.device_put(host, jax.devices()[0]), jax.jit(tx.init), jax.jit(make_step(tx))
    )
    out = {}
    with jax.sharding.set_mesh(mesh):
        params = jax.device_put(host, NamedSharding(mesh, P()))
        plain = jax.jit(tx.init)(params)
        zinit = jax.jit(ztx.init)
        zstate = zinit(params)
        array_leaves = lambda t: [x for x in jax.tree.leaves(t) if x.ndim]
        out["plain_bytes"] = state_bytes(plain)
        out["zero_bytes"] = state_bytes(zstate)
        out["plain_array_bytes"] = state_bytes(array_leaves(plain))
        out["zero_array_bytes"] = state_bytes(array_leaves(zstate))
        out["helper_bytes"] = max(gxs.bytes_per_device(zstate).values())
        _, p, s = run(ztx, params, zinit, jax.jit(make_step(ztx)))
        out["diff"] = max(max_rel_diff(p, ref_params), max_rel_diff(s, ref_state))
        out["params_replicated"] = all(x.sharding.is_fully_replicated for x in jax.tree.leaves(p))

        # The optimizer arithmetic alone, replicated vs partitioned: per-device flops.
        grads = jax.device_put(jax.tree.map(np.ones_like, host), NamedSharding(mesh, P()))

        def flops(t, state):
            fn = jax.jit(lambda g, st, pr: t.update(g, st, pr))
            cost = fn.lower(grads, state, params).compile().cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            return float(cost.get("flops", 0.0))

        out["plain_update_flops"] = flops(tx, plain)
        out["zero_update_flops"] = flops(ztx, zstate)
    return out


def check_fills(mesh_a, mesh_e):
    """``gx.tree.zeros_like`` / ``full_like`` under plain ``jit`` and outside it, on both
    meshes: each fill equal to NumPy's bit for bit (signed zeros, inf and NaN fills; a
    traced fill; an array fill) and laid out as its leaf. Returns the mismatches found."""
    import jax.numpy as jnp

    row = np.array([-0.0, 1.0, np.inf, -np.inf, 2.5, 0.0], np.float32)  # not for 0-d "s"
    fills = {repr(f): f for f in (0.0, -0.0, 1.0, -2.5, np.inf, np.nan)}
    fills["array"] = row
    dtypes = [np.float32, np.float64, jnp.bfloat16, np.complex64, np.int32]
    bad = []
    for mesh in (mesh_a, mesh_e):
        params = {
            "w": jax.device_put(
                np.ones((8, 6), np.float32), NamedSharding(mesh, P("data", "model"))
            ),
            "b": jax.device_put(np.ones((6,), np.float32), NamedSharding(mesh, P("model"))),
            "s": jax.device_put(np.ones((), np.float32), NamedSharding(mesh, P())),
        }
        vectors = {k: v for k, v in params.items() if v.ndim}
        explicit = mesh is mesh_e
        where = "Explicit" if explicit else "Auto"

        def all_fills(params, vectors, traced, dt):
            out = {
                "zeros": gx.tree.zeros_like(params, dt),
                "traced 7": gx.tree.full_like(params, traced, dt),
            }
            for label, f in fills.items():
                if dt is np.int32 and not np.all(np.isfinite(f)):
                    continue
                out[label] = gx.tree.full_like(vectors if label == "array" else params, f, dt)
            return out

        # the Auto mesh with no mesh in context: the layout comes from the params alone
        with jax.set_mesh(mesh) if explicit else contextlib.nullcontext():
            for dt in dtypes:
                jitted = jax.jit(all_fills, static_argnums=3)(params, vectors, 7.0, dt)
                eager = all_fills(params, vectors, 7.0, dt)
                for how, got_all in (("jit", jitted), ("eager", eager)):
                    for label, tree in got_all.items():
                        fill = {"zeros": 0.0, "traced 7": 7.0, **fills}[label]
                        for k, x in tree.items():
                            want = np.full(params[k].shape, fill, dt)
                            got = np.asarray(x)
                            name = f"{where} {how} {label} {np.dtype(dt).name} {k}"
                            if got.dtype != want.dtype or got.tobytes() != want.tobytes():
                                bad.append(f"{name}: values")
                            if not x.sharding.is_equivalent_to(params[k].sharding, x.ndim):
                                bad.append(f"{name}: {x.sharding}")
    return bad


def main():
    t0 = time.perf_counter()
    assert len(jax.devices()) == 8, jax.devices()
    host_params = make_params()
    mesh_e = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    mesh_a = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    cases = dict(ALL_OPTIMIZERS)
    cases.update(extra_cases())
    only = os.environ.get("GX_SHARDING_ONLY")
    if only:
        cases = {k: v for k, v in cases.items() if k in only.split(",")}
    summary = {"optimizers": {}, "errors": {}, "timings": {}}
    for name, factory in sorted(cases.items()):
        t = time.perf_counter()
        try:
            numerics = name in NUMERICS or bool(os.environ.get("GX_SHARDING_ALL_NUMERICS"))
            summary["optimizers"][name] = check_optimizer(
                name, factory, host_params, mesh_e, mesh_a, numerics
            )
        except Exception:  # noqa: BLE001 - reported to the test, which fails naming it
            summary["errors"][name] = traceback.format_exc(limit=-6)
        summary["timings"][name] = round(time.perf_counter() - t, 2)
    summary["restore"] = {}
    for name in ("adam", "adafactor_factored"):
        if name in cases:
            try:
                summary["restore"][name] = check_checkpoint_restore(
                    name, cases[name], host_params, mesh_a
                )
            except Exception:  # noqa: BLE001 - reported to the test, which fails naming it
                summary["errors"]["restore:" + name] = traceback.format_exc(limit=-6)
    try:
        summary["zero_memory"] = check_zero_memory()
    except Exception:  # noqa: BLE001 - reported to the test, which fails naming it
        summary["errors"]["zero_memory"] = traceback.format_exc(limit=-6)
    try:
        t = time.perf_counter()
        summary["fills"] = check_fills(mesh_a, mesh_e)
        summary["timings"]["fills"] = round(time.perf_counter() - t, 2)
    except Exception:  # noqa: BLE001 - reported to the test, which fails naming it
        summary["errors"]["fills"] = traceback.format_exc(limit=-6)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
