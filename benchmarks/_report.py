"""Shared by the ``bench_*.py`` scripts: each owns one ``## ...`` section of
``docs/benchmarks.md`` and replaces only that section, atomically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bayes_qse.io import atomic_write_text

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(section: str, text: str, path: Path = DOCS) -> None:
    """Replace the section titled ``section`` in ``path`` by ``text`` (append if absent)."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(section) + r".*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    atomic_write_text(path, new.rstrip("\n") + "\n")


def publish(section: str, text: str, args: Any) -> None:
    """Print a benchmark's ``text`` and, unless ``args.no_write`` or ``args.quick`` (a smoke
    test), write it as its section of ``docs/benchmarks.md``."""
    print()
    print(text)
    if not args.no_write and not args.quick:
        write_section(section, text)
