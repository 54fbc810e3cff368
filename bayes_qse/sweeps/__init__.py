"""Declarative sweeps: a TOML grid of online runs, run locally or on Ray, gathered with xarray.

``run_sweep(spec, out_dir)`` expands and validates the spec (:mod:`.spec`), binds the
directory to it (:mod:`.store`), runs the unfinished units on the engine the experiments
share (:mod:`bayes_qse.experiments.executors`, :mod:`bayes_qse.experiments.units`) and
gathers ``results.nc`` / ``results.json`` (:mod:`.gather`).  See docs/howto_sweeps.md.

The package defines :func:`run_sweep` and re-exports the names a sweep needs from their
home modules (:mod:`.spec`, :mod:`.gather`, :mod:`.store`, the unit engine's
:mod:`bayes_qse.experiments.executors` and :mod:`bayes_qse.experiments.units`, and
:data:`bayes_qse.run_options.EXECUTORS`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..experiments.executors import check_executor, run_units
from ..experiments.units import Unit, run_unit
from ..run_options import EXECUTORS
from .gather import gather, normalised_score, open_results, paired_interval, write_results
from .gather import preload as _preload_gathering
from .spec import Sweep, expand, load_spec
from .store import bind


def run_sweep(
    spec: dict[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
    allow_mixed_versions: bool = False,
) -> tuple[Path, Path]:
    """Run (or resume) a sweep into ``out_dir``; returns the ``results.nc`` and
    ``results.json`` paths.  Every unit is validated before any runs; finished parts are
    skipped (a rerun with more seeds computes only the new ones), damaged ones set aside and
    recomputed, unfinished units resume from their checkpoints.  Parts computed with other
    versions or on another platform are refused unless ``allow_mixed_versions`` (then the
    gathered dataset records every version that computed it)."""
    if not isinstance(spec, dict):
        spec = load_spec(spec)
    sweep = expand(spec)
    check_executor(executor, workers, address)
    bind(sweep, out_dir)
    run_units(
        sweep.units,
        out_dir,
        executor=executor,
        workers=workers,
        address=address,
        progress=progress,
        desc="sweep units",
        allow_mixed=allow_mixed_versions,
        on_idle=_preload_gathering,
    )
    return write_results(out_dir, sweep, allow_mixed_versions)


__all__ = [
    "EXECUTORS",
    "Sweep",
    "Unit",
    "bind",
    "expand",
    "gather",
    "load_spec",
    "normalised_score",
    "open_results",
    "paired_interval",
    "run_sweep",
    "run_unit",
    "run_units",
    "write_results",
]
