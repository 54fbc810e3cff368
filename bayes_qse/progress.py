"""Progress bars on stderr, shared by the learners' episode loop and the experiments."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
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


def stage(text: str, enabled: bool = True) -> None:
    """One stage line on stderr, ``  <text>`` (``compiling``, ``episode 300/1000``, ``NUTS
    warm-up 200/500``...), written between the progress bars without breaking them: what a
    step longer than a few seconds is doing.  A no-op when ``enabled`` is False; never in
    the results."""
    if enabled:
        tqdm.write(f"  {text}", file=sys.stderr)


def stage_printer(prefix: str, enabled: bool = True) -> Callable[[str], None]:
    """``say(text)``: :func:`stage` of ``f"{prefix}: {text}"`` (a no-op when disabled)."""

    def say(text: str) -> None:
        stage(f"{prefix}: {text}", enabled)

    return say


def set_postfix(bar: object, text: str) -> None:
    """Show ``text`` after a progress bar (``episode 300/1000``); nothing for a disabled bar."""
    if isinstance(bar, tqdm):
        bar.set_postfix_str(text, refresh=True)


__all__ = ["progress", "set_postfix", "stage", "stage_printer"]
