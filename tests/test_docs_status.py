"""The docs say what exists: both status tables list every public subpackage.

README.md's "What works today" table and the one in docs/index.rst name each public
subpackage of ``src/sketchlearn`` by its import name (``sketchlearn.thinning``), and
no page calls anything "planned" or "not implemented". The files are read from the
repository checkout; nothing is imported, so the check is fast.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sketchlearn"
README = ROOT / "README.md"
DOCS = ROOT / "docs"

if not (README.is_file() and (DOCS / "index.rst").is_file() and PACKAGE.is_dir()):
    pytest.skip(
        "README.md, docs/index.rst or src/sketchlearn is not next to tests/ "
        "(an installed-package run): the docs checks need the repository checkout",
        allow_module_level=True,
    )

# Pages whose prose must describe what exists. docs/api holds the hand-written API
# index; its generated/ pages and docs/auto_examples are build output.
PAGES = [
    README,
    *sorted(DOCS.glob("*.rst")),
    *sorted((DOCS / "user_guide").glob("*.rst")),
    *sorted((DOCS / "api").glob("*.rst")),
]
# "planned", "not implemented", "not yet implemented": every public subpackage is
# implemented, so these words only ever described a state that is gone. What has
# not happened yet is said precisely instead ("not yet run on a GPU").
STALE = re.compile(r"\bplanned\b|\bnot\s+(?:yet\s+)?implemented\b", re.IGNORECASE)


def _all_names(init: Path) -> list[str]:
    """The names in ``__all__`` of a package's ``__init__.py`` (literal lists only)."""
    names: list[str] = []
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if value is not None and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        ):
            names = (names if isinstance(node, ast.AugAssign) else []) + list(
                ast.literal_eval(value)
            )
    return names


def public_subpackages() -> list[str]:
    """Import names of the subpackages with an ``__init__.py`` and a non-empty ``__all__``."""
    found = []
    for init in PACKAGE.rglob("__init__.py"):
        parts = init.parent.relative_to(PACKAGE).parts
        if not parts or any(part.startswith("_") for part in parts):
            continue
        if _all_names(init):
            found.append(".".join(("sketchlearn", *parts)))
    return sorted(found)


SUBPACKAGES = public_subpackages()
ROOT_NAMES = set(_all_names(PACKAGE / "__init__.py"))


def readme_table() -> str:
    """The rows of the table under README.md's "## What works today"."""
    lines = README.read_text(encoding="utf-8").splitlines()
    if "## What works today" not in lines:
        return ""
    start = lines.index("## What works today") + 1
    section = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        section.append(line)
    return "\n".join(line for line in section if line.startswith("|"))


def index_table() -> str:
    """The ``list-table`` under docs/index.rst's "What works today" heading."""
    lines = (DOCS / "index.rst").read_text(encoding="utf-8").splitlines()
    if "What works today" not in lines:
        return ""
    start = lines.index("What works today") + 2
    table: list[str] = []
    for line in lines[start:]:
        if line.startswith(".. list-table::"):
            table.append(line)
        elif table and (not line.strip() or line.startswith(" ")):
            table.append(line)
        elif table or re.fullmatch(r"[=\-~^]{3,}", line):
            break  # the end of the table, or the next heading before any table
    return "\n".join(table)


TABLES = {"README.md": readme_table, "docs/index.rst": index_table}


def names_module(text: str, module: str) -> bool:
    """Whether ``text`` names ``module`` itself (not just one of its attributes)."""
    return re.search(rf"(?<![\w.]){re.escape(module)}(?![\w.])", text) is not None


def test_public_subpackages_are_found():
    assert SUBPACKAGES, f"no subpackage with a non-empty __all__ under {PACKAGE}"
    assert all(not part.startswith("_") for name in SUBPACKAGES for part in name.split("."))


@pytest.mark.parametrize("page", sorted(TABLES))
def test_status_table_names_every_public_subpackage(page):
    table = TABLES[page]()
    assert table, f"no table under the 'What works today' heading of {page}"
    missing = [name for name in SUBPACKAGES if not names_module(table, name)]
    assert not missing, (
        f"the 'What works today' table of {page} has no row naming {missing}; "
        "add a row with the module's import name"
    )


@pytest.mark.parametrize("page", sorted(TABLES))
def test_status_table_names_only_existing_modules(page):
    table = TABLES[page]()
    known = {name.split(".")[1] for name in SUBPACKAGES} | ROOT_NAMES
    unknown = sorted(
        {
            m.group(0)
            for m in re.finditer(r"(?<![\w.])sketchlearn\.(\w+)", table)
            if m.group(1) not in known
        }
    )
    assert not unknown, (
        f"the 'What works today' table of {page} names {unknown}, "
        "which are not public subpackages or names in sketchlearn.__all__"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_calls_anything_planned(page):
    text = page.read_text(encoding="utf-8")
    stale = [
        f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for m in STALE.finditer(text)
    ]
    assert not stale, (
        "pages must describe what exists (public subpackages: "
        f"{', '.join(SUBPACKAGES)}); stale wording at {stale}"
    )
