"""Repository-wide rules: the layout, the one-way import flow, the README's commands."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"theory": 0, "numeric": 1, "proofs_check": 2}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def test_top_level_layout():
    for name in ("pyproject.toml", "README.md", ".ci/run", "theory", "numeric", "proofs_check",
                 "tests", "docs", "benchmarks"):
        assert (ROOT / name).exists(), name


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_flow_one_way(package):
    """theory <- numeric <- proofs_check: a package never imports a higher layer."""
    level = LAYERS[package]
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for mod, line in _imports(path):
            if mod in LAYERS and LAYERS[mod] > level:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not offenders, offenders


def test_theory_imports_no_array_libraries():
    banned = {"numpy", "scipy", "cupy", "torch", "array_api_compat"}
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path in sorted((ROOT / "theory").rglob("*.py"))
        for mod, line in _imports(path)
        if mod in banned
    ]
    assert not offenders, offenders


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set up and test\s+```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.strip() for line in block.splitlines() if line.strip()]
    assert commands == ['pip install -e ".[test]"', "pytest"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "pytest" in [line.strip() for line in ci]
    assert any('pip install' in line and '-e ".[test]"' in line for line in ci)


def _divkit(*args):
    return subprocess.run(
        [sys.executable, "-m", "proofs_check.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def test_divkit_derive_js():
    out = _divkit("derive", "js")
    assert out.returncode == 0, out.stderr
    assert "u/(2*(u + 1))" in out.stdout  # the f-distill weight of JS


def test_divkit_derive_expression_json():
    import json

    out = _divkit("derive", "--f", "(sqrt(u)-1)**2", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["weighting"]["text"] == "sqrt(u)/2"
    assert payload["policy_map"]["text"] == "(t - 1)**(-2)"


def test_divkit_derive_errors_are_clear():
    out = _divkit("derive", "kll")
    assert out.returncode == 2 and "did you mean: kl" in out.stderr
    assert "Traceback" not in out.stderr
    out = _divkit("derive", "--f", "__import__('os')")
    assert out.returncode == 2 and "refused" in out.stderr and "Traceback" not in out.stderr
    out = _divkit("derive", "alpha", "--param", "alpha=1/3", "--latex")
    assert out.returncode == 0 and "\\frac" in out.stdout


def test_api_page_lists_exactly_all():
    """docs/api.md names exactly the ``__all__`` of every public module (no drift)."""
    import importlib

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## `([\w.]+)`\n\n((?:- .*\n)+)", page, re.M)
    assert sections, "docs/api.md has no module sections"
    for module, body in sections:
        listed = re.findall(r"^- `(\w+)`", body, re.M)
        assert listed == list(importlib.import_module(module).__all__), module
    for module in ("theory", "numeric", "proofs_check"):
        assert module in dict(sections), module


def test_api_page_is_generated():
    """docs/api.md is exactly what docs/make_api_page.py prints: the names and summaries,
    and the backend table of numeric.registry (so dispatch and docs cannot drift)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_api_page", ROOT / "docs" / "make_api_page.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == mod.page()


def test_the_product_cites_only_what_ships():
    """Code, docs and benchmarks cite papers and files of the repository, never the team's
    private notes (design and style notes, reference summaries) that users do not have."""
    pattern = re.compile(r"DESIGN\.md|STYLE\.md|STYLE point|references/(?:papers|peers|gpu)")
    hits = []
    for top in ("theory", "numeric", "proofs_check", "docs", "benchmarks"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix in (".py", ".md", ".h", ".c", ".cu") and path.is_file():
                for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{i}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not hits and not pattern.search(readme), hits
