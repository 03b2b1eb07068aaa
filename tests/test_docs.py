"""The documentation site builds with ``mkdocs build --strict``, documents every public
name, and the Python code on its guide pages runs.

The build test skips only when mkdocs itself is not installed (the ``docs`` extra); with
mkdocs present, a missing theme or plugin fails the build and so the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import gradxform

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Guide pages whose ```python blocks form one runnable program each.
RUNNABLE_PAGES = ["getting_started.md", "concepts.md", "optax_migration.md", "ecosystem.md"]

pytestmark = pytest.mark.slow


def _env():
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONUNBUFFERED="1")
    env.pop("JAX_ENABLE_X64", None)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_site_builds_with_every_page(site):
    for page in [
        "index.html",
        "getting_started/index.html",
        "concepts/index.html",
        "optax_migration/index.html",
        "ecosystem/index.html",
        "examples/index.html",
        "api/index.html",
        "api/optimizers/index.html",
    ]:
        assert (site / page).is_file(), page
    # Every markdown page under docs/ was rendered (none silently excluded).
    for md in DOCS.glob("*.md"):
        assert (site / md.stem / "index.html").is_file() or md.name == "index.md", md.name
    # The figures the examples page shows were copied into the site.
    for image in re.findall(r"\]\((images/[^)]+)\)", (DOCS / "examples.md").read_text()):
        assert (site / image).is_file(), image


def _public_names(module: types.ModuleType) -> list[str]:
    return sorted(
        name
        for name in vars(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType)
    )


def test_api_reference_documents_every_public_name(site):
    html = "\n".join(p.read_text() for p in (site / "api").rglob("*.html"))
    anchors = set(re.findall(r'id="(gradxform\.[\w.]+)"', html))
    missing = [
        f"gradxform.{n}" for n in _public_names(gradxform) if f"gradxform.{n}" not in anchors
    ]
    assert not missing, missing
    # Docstrings were rendered, not just headings: the Adam entry carries its equation.
    optimizers = (site / "api" / "optimizers" / "index.html").read_text()
    assert "Kingma" in optimizers
    assert "m_hat" in optimizers
    for namespace in ("tree", "projections", "torch_optim", "contrib", "sharding"):
        module = getattr(gradxform, namespace, None)
        if module is None:
            continue
        names = getattr(module, "__all__", None) or []
        absent = [n for n in names if f"gradxform.{namespace}.{n}" not in anchors]
        assert not absent, (namespace, absent)


def test_api_reference_shows_every_documented_parameter(site):
    """Each parameter a documented module's ``Args:`` names appears in the rendered table."""
    from test_docstrings import NOT_YET_DOCUMENTED, PUBLIC, parameter_names

    html = "\n".join(p.read_text() for p in (site / "api").rglob("*.html"))
    absent, checked = [], 0
    for dotted, obj in PUBLIC:
        if obj.__module__ in NOT_YET_DOCUMENTED:
            continue
        checked += 1
        start = html.find(f'id="{dotted}"')
        end = html.find('class="doc doc-heading"', start + len(dotted) + 40)
        section = html[start:end]
        absent.extend(
            f"{dotted}: {name}"
            for name in parameter_names(obj)
            if f">{name.lstrip('*')}</" not in section  # a table cell, or a link in one
        )
    assert checked
    assert not absent, absent


def _python_blocks(page: str) -> str:
    text = (DOCS / page).read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, f"no python code in {page}"
    return "\n\n".join(blocks)


@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_guide_code_runs(page, tmp_path):
    """The page's code blocks, run in order as one program, as a reader would paste them
    (in a fresh process, so in JAX's default float32)."""
    script = tmp_path / (Path(page).stem + ".py")
    script.write_text(_python_blocks(page))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{page}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
