"""Executors: who runs the units of an experiment or a sweep.  No scheduler of our own.

- ``local`` (default): ``workers = 1`` runs the units one after another in this process;
  ``workers > 1`` hands them to a :class:`concurrent.futures.ProcessPoolExecutor` of
  ``workers`` processes (started with ``spawn``: JAX does not survive ``fork``).  Inside a
  unit the seeds run ``vmap``-ped, as :mod:`bayes_qse.learners.runner` does.
- ``ray``: each unit is a Ray task (``num_cpus=1``).  With ``address`` (e.g. ``"auto"``)
  the sweep joins an existing cluster; without, it starts a local one with ``workers`` CPUs
  (or uses the one this process already initialised).  Workers must see the same
  ``bayes_qse`` and the output directory (a shared file system on a multi-host cluster).

A unit's result does not depend on the executor (:mod:`bayes_qse.experiments.units`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..errors import ConfigError
from ..progress import progress as progress_bar
from .units import Unit, is_done, run_unit

EXECUTORS = ("local", "ray")


def _bar(total: int, initial: int, enabled: bool, desc: str):
    bar = progress_bar(iter(()), total=total, desc=desc, enabled=enabled)
    if enabled:
        bar.update(initial)
    return bar


def run_units(
    units: Sequence[Unit],
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
    desc: str = "units",
) -> list[str]:
    """Run the unfinished units of ``units`` (the whole grid) into ``out_dir`` with
    ``executor``; returns their keys in completion order.  Finished units are skipped and
    counted as done by the progress bar (labelled ``desc``), which counts over the grid."""
    check_executor(executor, workers, address)
    out_dir = str(Path(out_dir).resolve())
    total = len(units)
    units = [u for u in units if not is_done(out_dir, u)]
    bar = _bar(total, total - len(units), progress, desc)
    finished: list[str] = []
    try:
        if not units:
            pass
        elif executor == "ray":
            finished = _run_ray(units, out_dir, workers, address, bar if progress else None)
        elif workers == 1 or len(units) <= 1:
            for unit in units:
                finished.append(run_unit(unit, out_dir, progress=progress))
                _tick(bar, progress)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = [pool.submit(run_unit, unit, out_dir) for unit in units]
                for future in as_completed(futures):
                    finished.append(future.result())
                    _tick(bar, progress)
    finally:
        if progress:
            bar.close()
    return finished


def check_executor(executor: str, workers: int, address: str | None) -> None:
    """:class:`ConfigError` naming a bad ``executor``, ``workers`` or ``address``."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: must be one of {EXECUTORS}, got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: must be an integer >= 1, got {workers!r}")
    if address is not None and executor != "ray":
        raise ConfigError("address: only with --executor ray")


def _tick(bar, enabled: bool) -> None:
    if enabled:
        bar.update(1)


def _run_ray(units: Sequence[Unit], out_dir: str, workers: int, address: str | None, bar):
    try:
        import ray  # lazy: an optional dependency (the sweep extra), only for --executor ray
    except ImportError:
        raise ConfigError(
            "executor: ray is not installed; pip install 'bayes_qse[sweep]' (or ray>=2.40)"
        ) from None

    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            env = {k: os.environ[k] for k in ("PYTHONPATH", "JAX_PLATFORMS") if k in os.environ}
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": env} if env else None,
            )
        started = True
    try:
        task = ray.remote(num_cpus=1)(run_unit)
        pending = [task.remote(unit, out_dir) for unit in units]
        finished: list[str] = []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finished.extend(ray.get(ready))
            if bar is not None and hasattr(bar, "update"):
                bar.update(len(ready))
        return finished
    finally:
        if started:
            ray.shutdown()


__all__ = ["EXECUTORS", "check_executor", "run_units"]
