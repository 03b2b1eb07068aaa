"""Checks on hyperparameters, run once when a transformation is built.

A value that is a schedule (callable) or a traced array is accepted unchecked: it is only
known at run time. Concrete numbers outside their domain raise ``ValueError`` naming the
argument and the allowed range; values that are not numbers raise ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _concrete(name: str, value: Any) -> float | None:
    """The value as a float, or ``None`` when it cannot be checked now."""
    if value is None or callable(value):
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got the bool {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        if np.ndim(value) != 0:
            return None
        # jnp.issubdtype, not np's: it knows bfloat16 and the other ml_dtypes floats.
        if not jnp.issubdtype(value.dtype, jnp.number) or jnp.issubdtype(value.dtype, jnp.bool_):
            raise TypeError(f"{name} must be a number, got an array of dtype {value.dtype}")
        x = np.asarray(value)
        return float(x.real if np.iscomplexobj(x) else x.astype(np.float64))
    raise TypeError(f"{name} must be a number or a schedule, got {type(value).__name__}")


def in_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raises unless ``low <= value <= high`` (``<`` on an open end); NaN always fails."""
    x = _concrete(name, value)
    if x is None:
        return
    ok = not math.isnan(x)
    ok = ok and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")


def decay(name: str, value: Any) -> None:
    """A decay rate or beta: ``[0, 1)``."""
    in_range(name, value, 0.0, 1.0, high_open=True)


def adam(b1: Any, b2: Any, eps: Any, eps_root: Any = 0.0) -> None:
    """Adam's hyperparameters: ``b1``, ``b2`` in ``[0, 1)``; ``eps``, ``eps_root`` >= 0."""
    decay("b1", b1)
    decay("b2", b2)
    non_negative("eps", eps)
    non_negative("eps_root", eps_root)


def unit_interval(name: str, value: Any) -> None:
    """A fraction in ``[0, 1]``."""
    in_range(name, value, 0.0, 1.0)


def non_negative(name: str, value: Any) -> None:
    """A value in ``[0, inf)``."""
    in_range(name, value, 0.0)


def positive(name: str, value: Any) -> None:
    """A value in ``(0, inf)``."""
    in_range(name, value, 0.0, low_open=True)


def finite(name: str, value: Any) -> None:
    """Any finite real number."""
    in_range(name, value, -math.inf, math.inf, low_open=True, high_open=True)


def positive_int(name: str, value: Any) -> None:
    """An integer ``>= 1`` (a Python or NumPy int, or a concrete 0-d integer array)."""
    if (
        isinstance(value, (np.ndarray, jax.Array))
        and not isinstance(value, jax.core.Tracer)
        and np.ndim(value) == 0
        and jnp.issubdtype(value.dtype, jnp.integer)
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def int_at_least(name: str, value: Any, low: int) -> None:
    """An integer ``>= low``; a bool or a non-integral number raises ``TypeError``, and a
    schedule or traced value passes unchecked, as in ``in_range``."""
    if isinstance(value, bool) or (
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Integral)
    ):
        raise TypeError(f"{name} must be an int, got {value!r}")
    in_range(name, value, low)


def one_of(name: str, value: Any, allowed: tuple) -> None:
    """One of a fixed set of options."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
