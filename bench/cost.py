"""What a compiled step does, counted from the program rather than timed.

Two steps that launch the same kernels and move the same bytes take the same time up to
the measurement's scatter, whatever a single timed run reads; these counts say which
rows of the table can differ at all, and by which mechanism.
"""

from __future__ import annotations

import re

import jax

# Entry-computation instructions that launch no work of their own.
_FREE = {"parameter", "tuple", "get-tuple-element", "constant", "bitcast"}
_OPCODE = re.compile(r"^\s*(?:ROOT\s+)?%\S+\s*=\s*.+?\s([a-z][a-z0-9-]*)\(", re.MULTILINE)


def kernels(compiled) -> int:
    """Instructions of the entry computation that do work: each fusion, copy, custom call
    or unfused op is one kernel the runtime dispatches per step."""
    text = compiled.as_text()
    start = text.find("\nENTRY ")
    if start < 0:
        return 0
    entry = text[start:].split("\n}\n", 1)[0]
    body = entry.split("\n", 1)[1] if "\n" in entry else ""
    return sum(op not in _FREE for op in _OPCODE.findall(body))


def compiled_cost(compiled) -> dict:
    """``{"kernels", "flops", "bytes_accessed"}`` of a compiled step, from its HLO and
    XLA's cost analysis (``None`` where the backend reports no figure)."""
    try:
        analysis = compiled.cost_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):
        analysis = None
    if isinstance(analysis, list):  # older JAX: one dict per computation
        analysis = analysis[0] if analysis else None
    analysis = analysis or {}
    flops, moved = analysis.get("flops"), analysis.get("bytes accessed")
    return {
        "kernels": kernels(compiled),
        "flops": None if flops is None else float(flops),
        "bytes_accessed": None if moved is None else float(moved),
    }
