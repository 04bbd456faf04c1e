"""The docs describe what exists: every repository path and every dotted divkit name that
README.md or a page under docs/ mentions resolves (a renamed module or a deleted file fails
here, not in a reader's terminal)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
TOP = ("theory", "numeric", "proofs_check", "tests", "docs", "benchmarks", ".ci")
# a path: starts at a top-level folder, plain characters, an extension or a trailing slash
_TOPS = "|".join(re.escape(t) for t in TOP)
_PATH = re.compile(rf"(?<![\w./-])((?:{_TOPS})/[\w./*-]*[\w/*])")
# a dotted name in code spans: theory.fdiv.get, numeric.codegen.source, proofs_check.verify
_NAME = re.compile(r"`((?:theory|numeric|proofs_check)(?:\.[A-Za-z_]\w*)+)")
# links to local files: [text](path) without a scheme
_LINK = re.compile(r"\]\(((?![a-z]+:)[^)#\s]+)")


def _paths(text: str) -> set[str]:
    found = set(_PATH.findall(text))
    return {p.rstrip(".") for p in found if "<" not in p}


def _exists(path: str) -> bool:
    """A path, or a glob pattern that matches at least one file."""
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_paths_and_links_exist(page):
    text = page.read_text(encoding="utf-8")
    missing = sorted(p for p in _paths(text) if not _exists(p))
    missing += sorted(ln for ln in set(_LINK.findall(text))
                      if not (page.parent / ln).exists() and not (ROOT / ln).exists())
    assert not missing, f"{page.name} mentions paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_dotted_names_resolve(page):
    text = page.read_text(encoding="utf-8")
    missing = sorted(n for n in set(_NAME.findall(text)) if not _resolves(n))
    assert not missing, f"{page.name} mentions names that do not exist: {missing}"
