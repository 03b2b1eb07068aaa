"""The API reference: every public callable documents each parameter, and its examples run.

(a) For every public function and class reachable from ``gradxform`` and its namespaces,
the Google-style ``Args:`` section of its docstring (``Attributes:`` for a class) names each
parameter of its signature (``*args`` and ``**extra`` by those names, stars included).
(b) The ``>>>`` examples of every public docstring run as doctests under JAX's default
float32 configuration, and their printed output must match exactly.
"""

import doctest
import enum
import importlib
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform

NAMESPACES = (
    "gradxform",
    "gradxform.tree",
    "gradxform.schedules",
    "gradxform.projections",
    "gradxform.torch_optim",
    "gradxform.sharding",
    "gradxform.contrib",
    "gradxform.microbatching",
)

# Defining modules whose docstrings do not document every parameter yet. This list only
# shrinks: a module leaves it once its public names are documented, and never comes back.
NOT_YET_DOCUMENTED: set[str] = set()


def _public(namespace):
    module = importlib.import_module(namespace)
    if hasattr(module, "__all__"):
        names = module.__all__
    else:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", "").startswith("gradxform"):
            yield f"{namespace}.{name}", obj


def _public_callables():
    """``{id: (dotted name, object)}``, one entry per object however often it is exported."""
    found = {}
    for namespace in NAMESPACES:
        # An alias (InjectHyperparamsState) yields to the name the object was defined under.
        entries = sorted(_public(namespace), key=lambda e: e[0].rsplit(".", 1)[1] != e[1].__name__)
        for dotted, obj in entries:
            found.setdefault(id(obj), (dotted, obj))
    return sorted(found.values(), key=lambda item: item[0])


PUBLIC = _public_callables()

_SECTION = re.compile(r"^(Args|Arguments|Attributes):\s*$")
_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:")


def documented_names(doc):
    """The names of the entries of the ``Args:`` (or ``Attributes:``) sections of ``doc``."""
    names, lines, i = set(), doc.splitlines(), 0
    while i < len(lines):
        if not _SECTION.match(lines[i]):
            i += 1
            continue
        i += 1
        indent = None
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            line = lines[i]
            if line.strip():
                width = len(line) - len(line.lstrip())
                indent = width if indent is None else indent
                match = _ENTRY.match(line.strip())
                if width == indent and match:
                    names.add(match.group(1))
            i += 1
    return names


def parameter_names(obj):
    """The names ``Args:`` must list: every parameter but ``self``, variadics with stars
    (for an enum, whose signature is Enum's functional API, its members)."""
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        return list(obj.__members__)
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    names = []
    for p in signature.parameters.values():
        if p.name in ("self", "cls"):
            continue
        stars = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(stars + p.name)
    return names


def missing_parameters(obj):
    return [n for n in parameter_names(obj) if n not in documented_names(inspect.getdoc(obj) or "")]


def test_parser_reads_google_sections():
    doc = (
        "Summary.\n\nArgs:\n  a: first.\n    continued, b: not an entry.\n  *args (int): rest.\n"
        "  **extra: keywords.\n\nReturns:\n  x: not an argument.\n"
    )
    assert documented_names(doc) == {"a", "*args", "**extra"}

    def f(a, b=1, *args, **extra):
        """Summary.

        Args:
            a: first.
            *args: rest.
            **extra: keywords.
        """

    assert missing_parameters(f) == ["b"]


def test_not_yet_documented_lists_real_modules():
    modules = {obj.__module__ for _, obj in PUBLIC}
    assert modules >= NOT_YET_DOCUMENTED, sorted(NOT_YET_DOCUMENTED - modules)


def test_every_parameter_is_documented():
    gaps = []
    for dotted, obj in PUBLIC:
        if obj.__module__ in NOT_YET_DOCUMENTED:
            continue
        missing = missing_parameters(obj)
        if missing:
            gaps.append(f"{dotted} ({obj.__module__}): {', '.join(missing)}")
    assert not gaps, "Args: does not name these parameters:\n" + "\n".join(gaps)


def _doctests():
    finder = doctest.DocTestFinder(recurse=False)
    globs = {"gx": gradxform, "jax": jax, "jnp": jnp, "np": np}
    tests = []
    for dotted, obj in PUBLIC:
        tests += [t for t in finder.find(obj, dotted, globs=dict(globs)) if t.examples]
    return tests


DOCTESTS = _doctests()
NUMPY_PRINT_DEFAULTS = dict(
    precision=8,
    threshold=1000,
    edgeitems=3,
    linewidth=75,
    suppress=False,
    floatmode="maxprec",
    sign="-",
    legacy=False,
)


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = []
    # The suite runs in float64; the examples show JAX's default float32, printed with
    # NumPy's default options whatever another test may have set.
    with jax.enable_x64(False), np.printoptions(**NUMPY_PRINT_DEFAULTS):
        result = runner.run(test, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
