"""The public namespaces: ``__all__`` is exactly what each one offers, and nothing else leaks.

A public module is ``gradxform`` or any module below it with no ``_``-prefixed part. Each
has an ``__all__`` that names exactly its public attributes, so ``from gradxform import *``,
``dir()`` and the API reference agree, and none of them hands out what it imports for its
own use (``jax``, ``jnp``, ``np``, ``functools``, ``Any``).
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil

import pytest

import gradxform

PUBLIC_MODULES = [
    "gradxform",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(gradxform.__path__, "gradxform.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ),
]

# Public modules that still implement their functions in place (and so expose their
# imports); each leaves this list when its code moves under gradxform._src.
NOT_YET_RE_EXPORTS: set[str] = set()

OWN_IMPORTS = ("jax", "jnp", "np", "functools", "Any")


def _public_attributes(module) -> set[str]:
    # `from __future__ import annotations` binds `annotations`, a compiler flag, not an export.
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, __future__._Feature)
    }


def _module_param(name: str):
    if name in NOT_YET_RE_EXPORTS:
        reason = f"{name} still implements its functions in place"
        return pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=True))
    return name


def test_the_walk_finds_every_namespace():
    # Guards the parametrization below against a walk that silently finds nothing.
    for name in (
        "gradxform.contrib",
        "gradxform.projections",
        "gradxform.schedules",
        "gradxform.sharding",
        "gradxform.torch_optim",
        "gradxform.tree",
    ):
        assert name in PUBLIC_MODULES


@pytest.mark.parametrize("name", [_module_param(n) for n in PUBLIC_MODULES])
def test_all_names_exactly_the_public_attributes(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(set(exported)) == len(exported), "a name is listed twice"
    assert set(exported) == _public_attributes(module), (
        f"only in __all__: {sorted(set(exported) - _public_attributes(module))}; "
        f"not in __all__: {sorted(_public_attributes(module) - set(exported))}"
    )
    leaked = [n for n in OWN_IMPORTS if hasattr(module, n)]
    assert not leaked, f"{name} exposes its imports {leaked}"
