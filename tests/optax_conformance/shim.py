"""Redirects optax's public names to gradxform's, for running optax's own tests.

Loaded as a pytest plugin (``-p shim``) before optax's test modules are imported. Every optax
module is imported once, untouched, so optax's internals keep their own references; then each
module is replaced in ``sys.modules`` by a copy in which every *public* optax object (one
reachable from ``optax``, ``optax.tree``, ``optax.contrib``, ...) is swapped for gradxform's
namesake, or by a ``MissingName`` that raises when used if gradxform has none (the tests
that use it fail, naming it).
Private helpers the tests use (``optax._src.test_utils``, underscore names, anything not
public) stay optax's, and so do the loss functions, which are outside gradxform's scope.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
import types
from typing import Any

import optax

import gradxform

# optax namespace -> gradxform namespaces to look the same name up in, in order.
_NAMESPACES = {
    "optax": ("",),
    "optax.transforms": ("",),
    "optax.contrib": ("contrib", ""),
    "optax.schedules": ("schedules", ""),
    "optax.projections": ("projections",),
    "optax.tree": ("tree",),
    "optax.tree_utils": ("tree",),  # tree_add -> gradxform.tree.add
    "optax.microbatching": ("microbatching",),
}
# Public optax objects defined here stay optax's: gradxform has no losses or assignment.
_OUT_OF_SCOPE = (
    "optax.losses",
    "optax.assignment",
    "optax.perturbations",
    "optax.experimental",
    "optax.second_order",
    "optax._src.loss",
)
MISSING = object()


class MissingName:
    """Stands for an optax name gradxform lacks: referencing it (a test module's
    decorators and annotations do, on import) works; using it raises, so only the tests
    that use it fail, with an error that names it."""

    def __init__(self, qualified_name: str):
        self._name = qualified_name

    def _missing(self, *args, **kwargs):
        raise AttributeError(f"gradxform has no counterpart of {self._name}")

    __call__ = _missing

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._missing()

    def __repr__(self):
        return f"<missing in gradxform: {self._name}>"


def _gradxform_namespace(path: str):
    obj: Any = gradxform
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def resolve(namespace: str, name: str):
    """gradxform's object for ``<namespace>.<name>`` of optax, or ``MISSING``."""
    if namespace == "optax.tree_utils" and name.startswith("tree_"):
        name = name[len("tree_") :]
    for path in _NAMESPACES[namespace]:
        ns = _gradxform_namespace(path)
        if (
            ns is not None
            and hasattr(ns, name)
            and not isinstance(getattr(ns, name), types.ModuleType)
        ):
            return getattr(ns, name)
    return MISSING


def _import_all_of_optax() -> list[types.ModuleType]:
    for info in pkgutil.walk_packages(optax.__path__, "optax."):
        if not info.name.endswith("_test") and "_test." not in info.name:
            with contextlib.suppress(ImportError):  # an optional dependency optax guards itself
                importlib.import_module(info.name)
    return [m for n, m in sorted(sys.modules.items()) if n == "optax" or n.startswith("optax.")]


def _public_objects() -> dict[int, list[tuple[str, str]]]:
    """id(object) -> [(namespace, public name), ...] for every public optax object."""
    public: dict[int, list[tuple[str, str]]] = {}
    for namespace in _NAMESPACES:
        module = sys.modules[namespace]
        for name, value in vars(module).items():
            if name.startswith("_") or isinstance(value, types.ModuleType):
                continue
            if not (callable(value) or isinstance(value, type)):
                continue  # constants and typing aliases stay as they are
            if getattr(value, "__module__", "").startswith(_OUT_OF_SCOPE):
                continue
            public.setdefault(id(value), []).append((namespace, name))
    return public


def _choose(module_name: str, attr: str, names: list[tuple[str, str]]) -> tuple[str, str]:
    """The public name an attribute stands for: its own name, in the namespace nearest to
    the module that holds it (``optax.contrib._sam.sam`` is ``optax.contrib.sam``)."""
    same = [n for n in names if n[1] == attr or n[1] == "tree_" + attr] or names

    def nearness(n):
        return -len(n[0]) if module_name.startswith(n[0]) and n[0] != "optax" else 0

    return min(same, key=nearness)


def install() -> dict[str, list[str]]:
    """Replaces optax's modules in ``sys.modules``; returns the missing names by namespace."""
    modules = _import_all_of_optax()
    public = _public_objects()
    proxies: dict[str, types.ModuleType] = {}
    missing: dict[str, set[str]] = {}
    for module in modules:
        proxy = types.ModuleType(module.__name__, module.__doc__)
        proxy.__dict__.update(vars(module))
        for attr, value in vars(module).items():
            names = public.get(id(value))
            if not names or attr.startswith("__"):
                continue
            namespace, name = _choose(module.__name__, attr, names)
            ours = resolve(namespace, name)
            if ours is MISSING:
                proxy.__dict__[attr] = MissingName(f"{namespace}.{name}")
                missing.setdefault(namespace, set()).add(name)
            else:
                proxy.__dict__[attr] = ours
        proxies[module.__name__] = proxy
    for name, proxy in proxies.items():
        for attr, value in list(vars(proxy).items()):
            if isinstance(value, types.ModuleType) and value.__name__ in proxies:
                setattr(proxy, attr, proxies[value.__name__])
        sys.modules[name] = proxy
    return {k: sorted(v) for k, v in missing.items()}


MISSING_NAMES = install()
