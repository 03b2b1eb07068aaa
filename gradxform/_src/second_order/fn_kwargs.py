"""Routing the keyword arguments of ``update`` to the objective they belong to.

A transformation fed ``value_fn=`` also receives every other extra keyword argument of the
chain (``value=``, ``grad=``, data batches, another member's ``hvp_fn=``). Only those the
objective names in its signature are passed on to it; the rest belong to other members.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def kwargs_for(fn: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``extra`` whose key is a parameter name of ``fn``."""
    try:
        names = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature take no keywords
        return {}
    return {k: v for k, v in extra.items() if k in names}
