"""Progress bars on stderr, shared by the learners' episode loop and the experiments."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str | None = None,
    enabled: bool = True,
) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar on stderr (a no-op when ``enabled`` is False)."""
    if not enabled:
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


__all__ = ["progress"]
