"""mkdocs hooks for the gradxform site.

* The API reference is generated at build time from the package itself: every public name
  at ``gradxform.<name>`` is grouped by the module that defines it and rendered by
  mkdocstrings from its docstring, and so is every public member of the namespaces
  ``gradxform.tree``, ``.schedules``, ``.projections``, ``.torch_optim``, ``.contrib`` and
  ``.sharding``.
  A name added to the package appears in the reference without editing the docs.
* Nav entries whose page has not been written yet are left out of the nav (with a log
  line), so the site builds with ``--strict`` while the guides are being written.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import types

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.gradxform")

API_DIR = "api"

# (page slug, title, intro, test on the defining module's dotted name)
TOP_LEVEL_GROUPS = [
    (
        "optimizers",
        "Optimizers",
        "Complete optimizers: each is a short `chain` of the transforms on the next pages.",
        lambda m: m.startswith("gradxform._src.optimizers"),
    ),
    (
        "transforms",
        "Transforms",
        (
            "The primitives optimizers are made of: moment estimates, preconditioners, clipping, "
            "weight decay, scaling."
        ),
        lambda m: m.startswith("gradxform._src.transforms"),
    ),
    (
        "combinators",
        "Core types and combinators",
        (
            "The `GradientTransformation` type, `apply_updates`, and the combinators that compose, "
            "mask, partition, accumulate or wrap transformations."
        ),
        lambda m: True,
    ),  # everything not claimed by a group below or above
    (
        "schedules",
        "Schedules",
        (
            "Pure `step -> value` functions, usable wherever a learning rate or another scalar "
            "hyperparameter is accepted; also importable from `gradxform.schedules`."
        ),
        lambda m: m.startswith(("gradxform._src.schedules", "gradxform.schedules")),
    ),
    (
        "second_order",
        "Second-order methods and line search",
        "Newton's method, L-BFGS, line searches, the Polyak step and projected methods.",
        lambda m: m.startswith("gradxform._src.second_order"),
    ),
    (
        "numerics",
        "Numerics",
        "Numerically safe helpers used by the transforms.",
        lambda m: m.startswith("gradxform._src.numerics"),
    ),
    (
        "states",
        "State types",
        (
            "The named tuples transformations keep as state. They are pytrees: they `jit`, shard "
            "and checkpoint like any other tree of arrays."
        ),
        None,
    ),  # chosen by name, see _is_state
]
CLAIM_ORDER = [
    "states",
    "optimizers",
    "transforms",
    "schedules",
    "second_order",
    "numerics",
    "combinators",
]

# The core page opens with the types and functions every user meets first.
CORE_FIRST = [
    f"gradxform.{n}"
    for n in (
        "GradientTransformation",
        "apply_updates",
        "chain",
        "named_chain",
        "divide",
        "identity",
        "set_to_zero",
        "stateless",
        "stateless_with_tree_map",
        "elementwise",
        "as_transformation",
        "Params",
        "Updates",
        "OptState",
        "Schedule",
        "ScalarOrSchedule",
    )
]

NAMESPACES = [
    ("tree", "gradxform.tree", "Arithmetic on pytrees, leaf by leaf."),
    (
        "projections",
        "gradxform.projections",
        "Euclidean projections onto convex sets, for pytrees; use them with `gradxform.projected`.",
    ),
    (
        "torch_optim",
        "gradxform.torch_optim",
        (
            "PyTorch's `torch.optim` optimizers and learning-rate schedulers, "
            "with torch's argument names, defaults and numerics."
        ),
    ),
    (
        "contrib",
        "gradxform.contrib",
        (
            "Frontier optimizers, as `optax.contrib` has them: "
            "the same names, signatures, defaults and state layout."
        ),
    ),
    (
        "sharding",
        "gradxform.sharding",
        "Optimizer state under `jax.sharding`: layouts for `jit` and ZeRO-1 partitioning.",
    ),
    (
        "microbatching",
        "gradxform.microbatching",
        (
            "Functions of a batch computed over microbatches and accumulated, "
            "as `optax.microbatching`."
        ),
    ),
]


def _module_of(obj) -> str:
    return getattr(obj, "__module__", None) or ""


def _is_state(name: str, obj) -> bool:
    return (
        inspect.isclass(obj)
        and _module_of(obj).startswith("gradxform")
        and (name.endswith(("State", "Info")))
    )


def _public_names(module) -> list[str]:
    """Public members of a module: its ``__all__``, or the names it defines or re-exports
    from gradxform (not those it imports from elsewhere), minus submodules."""
    if hasattr(module, "__all__"):
        return sorted(module.__all__)
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if not (callable(obj) or inspect.isclass(obj)):
            continue
        if _module_of(obj).startswith("gradxform"):
            names.append(name)
    return sorted(names)


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    return first.replace("|", "\\|")


def _page(title: str, intro: str, qualified: list[tuple[str, object]]) -> str:
    lines = [f"# {title}", "", intro, "", "| name | summary |", "| --- | --- |"]
    for path, obj in qualified:
        short = path.split(".")[-1]
        lines.append(f"| [`{short}`](#{path}) | {_summary(obj)} |")
    lines.append("")
    for path, _ in qualified:
        lines += [f"::: {path}", ""]
    return "\n".join(lines)


def _top_level_pages() -> dict[str, tuple[str, str]]:
    import gradxform

    groups: dict[str, list[tuple[str, object]]] = {slug: [] for slug, *_ in TOP_LEVEL_GROUPS}
    tests = {slug: test for slug, _, _, test in TOP_LEVEL_GROUPS}
    for name in sorted(vars(gradxform)):
        obj = getattr(gradxform, name)
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        module = _module_of(obj)
        for slug in CLAIM_ORDER:
            if slug == "states":
                if _is_state(name, obj):
                    break
            elif tests[slug](module):
                break
        groups[slug].append((f"gradxform.{name}", obj))
    rank = {name: i for i, name in enumerate(CORE_FIRST)}
    groups["combinators"].sort(key=lambda item: (rank.get(item[0], len(rank)), item[0]))
    pages = {}
    for slug, title, intro, _ in TOP_LEVEL_GROUPS:
        if groups[slug]:
            pages[f"{API_DIR}/{slug}.md"] = (title, _page(title, intro, groups[slug]))
    return pages


def _namespace_pages() -> dict[str, tuple[str, str]]:
    pages = {}
    for slug, dotted, intro in NAMESPACES:
        try:
            module = importlib.import_module(dotted)
        except ImportError:
            log.info("%s cannot be imported yet: left out of the API reference", dotted)
            continue
        members = [(f"{dotted}.{n}", getattr(module, n)) for n in _public_names(module)]
        if members:
            pages[f"{API_DIR}/{slug}.md"] = (f"`{dotted}`", _page(f"`{dotted}`", intro, members))
    return pages


def _api_pages() -> dict[str, tuple[str, str]]:
    return {**_top_level_pages(), **_namespace_pages()}


def _index_page(pages: dict[str, tuple[str, str]]) -> str:
    lines = [
        "# API reference",
        "",
        (
            "Generated from the docstrings of the installed package. Every public name lives at "
            "`gradxform.<name>`; the namespaces group the rest."
        ),
        "",
    ]
    for uri, (title, _) in pages.items():
        lines.append(f"- [{title}]({uri.split('/', 1)[1]})")
    return "\n".join(lines) + "\n"


_PAGES: dict[str, tuple[str, str]] = {}


def _missing(page: str, docs_dir: str) -> bool:
    """Whether the nav's markdown ``page`` is neither generated nor written in ``docs_dir``."""
    return page not in _PAGES and not os.path.exists(os.path.join(docs_dir, page))


def _prune_nav(items, docs_dir):
    """Drops nav entries whose markdown file does not exist (and is not generated)."""
    kept = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                value = _prune_nav(value, docs_dir)
                if value:
                    kept.append({title: value})
                continue
            if isinstance(value, str) and value.endswith(".md") and _missing(value, docs_dir):
                log.info("nav: %s is not written yet; left out of the nav", value)
                continue
            kept.append(item)
        elif isinstance(item, str) and item.endswith(".md"):
            if _missing(item, docs_dir):
                log.info("nav: %s is not written yet; left out of the nav", item)
            else:
                kept.append(item)
        else:
            kept.append(item)
    return kept


def on_config(config):
    _PAGES.clear()
    _PAGES.update(_api_pages())
    _PAGES[f"{API_DIR}/index.md"] = ("API reference", _index_page(dict(_PAGES)))
    api_nav = [{"Overview": f"{API_DIR}/index.md"}] + [
        {title.strip("`"): uri}
        for uri, (title, _) in _PAGES.items()
        if uri != f"{API_DIR}/index.md"
    ]
    nav = []
    for item in config["nav"] or []:
        if isinstance(item, dict) and list(item) == ["API reference"]:
            nav.append({"API reference": api_nav})
        else:
            nav.append(item)
    config["nav"] = _prune_nav(nav, config["docs_dir"])
    return config


def on_files(files, config):
    for uri, (_, content) in _PAGES.items():
        files.append(File.generated(config, uri, content=content))
    return files
