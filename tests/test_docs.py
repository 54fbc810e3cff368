"""Every ```python block in README.md and docs/*.md runs (issue 8: docs never rot).

The blocks of one file run in order in one namespace (a later block may use an earlier one's
names), in a temporary working directory.  Blocks that are not meant to run are fenced as
```text, ```bash or ```toml instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text(encoding="utf-8"))


def test_docs_exist_and_have_examples():
    names = {p.name for p in DOCS}
    assert {"README.md", "quickstart.md", "math.md", "api.md", "benchmarks.md"} <= names
    assert sum(len(python_blocks(p)) for p in DOCS) >= 5


def test_every_available_experiment_has_a_howto():
    from bayes_qse.experiments import available_experiments

    for name in available_experiments():
        howto = REPO / "docs" / f"howto_{name}.md"
        assert howto.is_file(), f"missing {howto.name}"
        assert f"bayes-qse run {name}" in howto.read_text(encoding="utf-8")


def test_fence_parser_finds_only_python_blocks():
    text = "a\n```python\nx = 1\n```\n```text\nnot run\n```\n```python\ny = x + 1\n```\n"
    assert FENCE.findall(text) == ["x = 1\n", "y = x + 1\n"]


@pytest.mark.parametrize(
    "path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_python_snippets_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for i, block in enumerate(python_blocks(path)):
        code = compile(block, f"{path.name}[python block {i + 1}]", "exec")
        exec(code, namespace)  # noqa: S102 - running our own documentation
    assert os.getcwd() == str(tmp_path)


def _repo_texts():
    """Every tracked source, test, script and document of the repository (not results)."""
    roots = ["bayes_qse", "tests", "experiments", "benchmarks", "docs"]
    for root in roots:
        for path in sorted((REPO / root).rglob("*")):
            if path.suffix in {".py", ".md", ".toml"} and "results" not in path.parts:
                yield path
    yield REPO / "README.md"


def test_the_repository_cites_only_its_own_math_page():
    """The repository stands on its own (issue 12, item 8): nothing cites the design file that
    readers do not have, and every section (§N) and equation (eq. N) cited as docs/math.md's
    exists there.  Bug caught: a docstring citing "DESIGN eq. (4)" or a section math.md lacks."""
    math = (REPO / "docs" / "math.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^\| §([0-9.]+) \|", math, re.MULTILINE))
    equations = set(re.findall(r"^## Eq\. ([0-9]+)", math, re.MULTILINE))
    assert {"1", "1.1", "1.2", "1.3", "2", "3", "4", "5", "6", "7"} <= sections
    assert {"1", "2", "3", "4", "5", "6"} <= equations
    bad, missing = [], []
    design = re.compile(r"DESIGN(\.md| eq| §|'s)")
    cite = re.compile(r"math\.md,? (§([0-9.]*[0-9])|eq\. \(?([0-9]+))")
    for path in _repo_texts():
        if path.name == "test_docs.py":
            continue
        text = path.read_text(encoding="utf-8")
        if design.search(text):
            bad.append(path.relative_to(REPO).as_posix())
        for m in cite.finditer(text):
            sec, eq = m.group(2), m.group(3)
            if (sec and sec not in sections) or (eq and eq not in equations):
                missing.append(f"{path.relative_to(REPO).as_posix()}: {m.group(0)}")
    assert not bad, f"cites the design file: {bad}"
    assert not missing, f"cites what docs/math.md does not have: {missing}"
