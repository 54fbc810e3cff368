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
