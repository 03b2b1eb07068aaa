"""Saves optimizer state mid-run and resumes it, possibly in another process.

The test runs ``save_all`` in its own process, then ``python checkpoint_worker.py DIR TABLE``
in a fresh one; both continue the same trajectories, which must agree bit for bit. ``TABLE``
names one of ``TABLES``, the catalogue or ``gradxform.torch_optim``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import gradxform as gx
from optimizer_cases import OPTIMIZERS, TORCH_OPTIMIZERS
from paired import fast_jit
from reference import grad_fn, nested_params

TABLES = {"catalogue": OPTIMIZERS, "torch_optim": TORCH_OPTIMIZERS}
FIRST_STEPS = 4
MORE_STEPS = 4
try:
    import orbax.checkpoint as ocp
except ImportError:  # orbax-checkpoint is in the test extra; without it, two formats
    ocp = None

FORMATS = ("pickle", "npz") + (("orbax",) if ocp is not None else ())


def start_params():
    return nested_params(dtype=jnp.float32, seed=3)


def make_step(tx):
    # Compile time is the cost here; the uninterrupted and the resumed runs compile alike.
    @fast_jit
    def step(params, state):
        updates, state = tx.update(grad_fn(params), state, params)
        return gx.apply_updates(params, updates), state

    return step


def advance(step, params, state, n):
    for _ in range(n):
        params, state = step(params, state)
    return params, state


def leaves_bytes(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _is_key(x):
    return jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)


def to_host(tree):
    """Plain numpy leaves; typed PRNG keys are stored as their raw key data."""
    return jax.tree.map(
        lambda x: np.asarray(jax.random.key_data(x)) if _is_key(x) else np.asarray(x), tree
    )


def from_host(host, template):
    """Inverse of ``to_host``: the template (a fresh init) says which leaves are keys."""
    return jax.tree.map(
        lambda h, t: (
            jax.random.wrap_key_data(h, impl=jax.random.key_impl(t))
            if _is_key(t)
            else jnp.asarray(h)
        ),
        host,
        template,
    )


def template(tx):
    params = start_params()
    return params, tx.init(params)


def save(directory, name, params, state):
    host = to_host((params, state))
    with open(os.path.join(directory, f"{name}.pkl"), "wb") as f:
        pickle.dump(host, f)
    leaves = {f"leaf_{i}": x for i, x in enumerate(jax.tree.leaves(host))}
    np.savez(os.path.join(directory, f"{name}.npz"), **leaves)
    if ocp is not None:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(os.path.join(directory, f"{name}.orbax"), host)
            checkpointer.wait_until_finished()


def load(directory, name, fmt, tx):
    like = template(tx)
    if fmt == "pickle":
        with open(os.path.join(directory, f"{name}.pkl"), "rb") as f:
            return from_host(pickle.load(f), like)
    if fmt == "orbax":
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_host(like))
        with ocp.StandardCheckpointer() as checkpointer:
            host = checkpointer.restore(os.path.join(directory, f"{name}.orbax"), abstract)
        return from_host(host, like)
    # np.savez keeps only leaves: the structure comes from a fresh init, which is stable.
    with np.load(os.path.join(directory, f"{name}.npz")) as data:
        leaves = [data[f"leaf_{i}"] for i in range(len(data.files))]
    return from_host(jax.tree.unflatten(jax.tree.structure(like), leaves), like)


def save_all(directory, table):
    """Runs FIRST_STEPS, saves, runs MORE_STEPS; returns the uninterrupted final params."""
    finals = {}
    for name, factory in TABLES[table].items():
        tx = factory()
        step = make_step(tx)
        params = start_params()
        params, state = advance(step, params, tx.init(params), FIRST_STEPS)
        save(directory, name, params, state)
        params, _ = advance(step, params, state, MORE_STEPS)
        finals[name] = leaves_bytes(params)
    return finals


def resume_all(directory, table):
    """In a fresh process: loads every checkpoint and runs MORE_STEPS."""
    out = {}
    for name, factory in TABLES[table].items():
        tx = factory()
        step = make_step(tx)
        for fmt in FORMATS:
            params, state = load(directory, name, fmt, tx)
            params, _ = advance(step, params, state, MORE_STEPS)
            np.savez(
                os.path.join(directory, f"{name}.{fmt}.resumed.npz"),
                *[np.asarray(x) for x in jax.tree.leaves(params)],
            )
            out[f"{name}/{fmt}"] = True
    with open(os.path.join(directory, "resumed.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    resume_all(sys.argv[1], sys.argv[2])
