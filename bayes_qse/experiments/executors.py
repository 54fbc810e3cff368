"""Executors: who runs the units of an experiment or a sweep.  No scheduler of our own.

- ``local`` (default): ``workers = 1`` runs the units one after another in this process;
  ``workers > 1`` hands them to a :class:`concurrent.futures.ProcessPoolExecutor` of
  ``workers`` processes, each pinned to one core (:func:`pin_threads`).  The workers are
  forked from a fork server that has imported the library once, before any JAX backend
  exists (:mod:`bayes_qse._workers`; elsewhere, or under another environment, they are
  started with ``spawn``).  They share the persistent compilation cache
  (:mod:`bayes_qse._cache`), so a warm cache spares every worker its compilation.
  Inside a unit the seeds run ``vmap``-ped, as :mod:`bayes_qse.learners.runner` does.
- ``ray``: each unit is a Ray task (``num_cpus=1``, XLA pinned to one thread).  With
  ``address`` (e.g. ``"auto"``, ``"HOST:6379"``) the sweep joins an existing cluster (the
  address is checked first, with a bounded wait); without, it starts a local one with
  ``workers`` CPUs (or uses the one this process already initialised).  The driver's
  bayes_qse and JAX settings (``BAYES_QSE_*``, ``JAX_*``, ``XLA_FLAGS``) reach the tasks
  through Ray's ``runtime_env``; a task refuses to run where bayes_qse or jax differs from
  the driver's.  Tasks compute in a scratch directory of their node and return their
  arrays; the driver alone writes the output directory (:mod:`bayes_qse.experiments.units`),
  so a cluster needs neither a shared file system nor the driver's paths.  A task's error
  arrives as one line (its cause, not Ray's wrapper); its notices are shown by the driver.

A unit's result does not depend on the executor (:mod:`bayes_qse.experiments.units`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from types import ModuleType
from typing import Any

from .._workers import PRELOAD, pinned_xla_flags, pool_context
from ..errors import ConfigError
from ..progress import progress as progress_bar
from ..run_options import EXECUTORS
from .store import RunStore, library_versions
from .units import (
    WORKER_VERSION_KEYS,
    Unit,
    UnitParts,
    compute_unit,
    deliver,
    load_units,
    open_unit,
    scan_unit,
    scratch_token,
    unit_dir,
    unit_keys,
)

#: Seconds to wait for a Ray cluster's address to answer before giving up.
ADDRESS_TIMEOUT = 5.0
#: Environment variables of the driver forwarded to Ray tasks (by prefix or name).
FORWARDED_PREFIXES = ("BAYES_QSE_", "JAX_")
FORWARDED_NAMES = ("XLA_FLAGS",)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
    allow_mixed: bool = False,
    on_idle: Callable[[], object] | None = None,
) -> list[str]:
    """Run the unfinished units of ``units`` (the whole grid) into ``out_dir`` with
    ``executor``; returns their keys in completion order.  Finished units are skipped and
    counted as done by the progress bar (labelled ``desc``), which counts over the grid.

    Every saved part is read first (:func:`~.units.scan_unit`): damaged parts are set aside
    and recomputed; parts of other versions or platforms are refused unless
    ``allow_mixed``.

    ``on_idle`` (a process pool only) is called once, in this process, as soon as a worker
    has no unit left to take while others still run theirs: work for the core that idles
    until the last unit ends (a sweep imports its gathering's libraries there).

    Raises:
        ConfigError: a bad ``executor``, ``workers`` or ``address`` (:func:`check_executor`).
        ValueError: two units have the same key (:func:`~.units.unit_keys`).
    Both before anything runs."""
    check_executor(executor, workers, address)
    unit_keys(units)
    out_dir = str(Path(out_dir).resolve())
    total = len(units)
    pending = [(u, todo) for u in units if (todo := scan_unit(out_dir, u, allow_mixed))]
    bar = _bar(total, total - len(pending), progress, desc)
    finished: list[str] = []
    try:
        if not pending:
            pass
        elif executor == "ray":
            finished = _run_ray(pending, out_dir, workers, address, bar if progress else None)
        elif workers == 1 or len(pending) <= 1:
            for unit, todo in pending:
                compute_unit(unit, todo, str(unit_dir(out_dir, unit)), progress=progress)
                finished.append(unit.key)
                _tick(bar, progress)
        else:
            finished = _run_pool(pending, out_dir, workers, bar if progress else None, on_idle)
    finally:
        if progress:
            bar.close()
    return finished


def run_experiment_units(
    units: Sequence[Unit],
    store: RunStore,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, UnitParts]:
    """An experiment's units, run and loaded: :func:`run_units` of the unfinished ``units``
    into the directory of the experiment's open ``store`` (whose lock the caller holds), with
    ``executor``, ``workers``, ``address`` and ``progress`` as there and the bar labelled
    ``desc`` (default: the store's experiment); then every unit's parts,
    ``{unit.key: [(arrays, meta), ...]}`` in the order of ``units`` whatever order they
    finished in, each unit's parts in ``unit.parts()`` order (:func:`~.units.load_units`).

    Raises:
        ConfigError, ValueError: as :func:`run_units`, before anything runs.
    """
    run_units(
        units,
        store.out_dir,
        executor=executor,
        workers=workers,
        address=address,
        progress=progress,
        desc=store.experiment if desc is None else desc,
    )
    return load_units(store.out_dir, units)


def run_experiment_module(
    experiment: ModuleType,
    config: Mapping[str, Any],
    out_dir: Path,
    *,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
) -> Path:
    """Run (or resume) an experiment into ``out_dir``: the one ``run`` of every experiment
    (each module's ``run``, made by :func:`experiment_run`, is this with the module itself;
    bsuite's shape).

    ``experiment`` is the experiment's module; it provides ``NAME``, ``Config`` (its
    :class:`~.config.ExperimentConfig`), ``make_units(config) -> list[Unit]`` and
    ``write_results(store, config, units, loaded) -> Path`` (the results files, from the
    loaded parts).  The config is read through ``Config`` (its one-line checks) and the
    engine settings are checked (:func:`check_executor`) before the output directory is
    opened; the units run through :func:`run_experiment_units` (``executor``, ``workers``,
    ``address``, ``progress`` as there), finished units being skipped and unfinished ones
    resuming from their checkpoints.  Returns what ``write_results`` returns (the
    ``results.npz`` path).

    Raises:
        ConfigError: a bad config key or engine setting, before anything is written.
    """
    config = experiment.Config.from_mapping(config).to_mapping()
    check_executor(executor, workers, address)
    with RunStore(Path(out_dir), experiment.NAME, config) as store:
        units = experiment.make_units(config)
        loaded = run_experiment_units(
            units, store, executor=executor, workers=workers, address=address, progress=progress
        )
        return experiment.write_results(store, config, units, loaded)


def experiment_run(module_name: str) -> Callable[..., Path]:
    """The ``run`` of the experiment module ``module_name`` (its line ``run =
    experiment_run(__name__)``): ``run(config, out_dir, *, progress=True, executor="local",
    workers=1, address=None) -> Path`` is :func:`run_experiment_module` with that module (a
    :func:`functools.partial`; the module's names are looked up when it runs, so a name
    patched on the module is the one used)."""
    run = functools.partial(run_experiment_module, sys.modules[module_name])
    run.__module__ = module_name
    run.__doc__ = (
        f"Run (or resume) :mod:`{module_name}` into ``out_dir``; returns the ``results.npz`` "
        "path.  The one runner of every experiment, "
        ":func:`bayes_qse.experiments.executors.run_experiment_module`, with this module: "
        "its ``Config``, ``make_units`` and ``write_results``; ``progress``, ``executor``, "
        "``workers`` and ``address`` as there."
    )
    return run


def check_executor(executor: str, workers: int, address: str | None) -> None:
    """:class:`ConfigError` naming a bad ``executor``, ``workers`` or ``address``."""
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: must be one of {EXECUTORS}, got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: must be an integer >= 1, got {workers!r}")
    if address is not None and executor != "ray":
        raise ConfigError("address: only with --executor ray")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ConfigError(f"address: must be 'auto' or HOST:PORT, got {address!r}")


def check_address(address: str, timeout: float = ADDRESS_TIMEOUT) -> None:
    """Check that a Ray cluster's ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) answers
    within ``timeout`` seconds; ``"auto"`` and ``"local"`` are left to Ray.

    Raises:
        ConfigError: a malformed address, or none answering (one line, naming it)."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"address: must be 'auto' or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConfigError(
            f"address: no Ray cluster at {address} ({reason} within {timeout:g} s); start one "
            "with 'ray start --head' or pass the address it printed"
        ) from None


def pin_threads(threads: int = 1, counter=None) -> None:
    """Pin this process's XLA to ``threads`` threads (:func:`pinned_xla_flags`: effective only
    before JAX starts its backend, so the pool's workers also get it in their environment) and,
    with a shared ``counter`` (a pool worker's initializer), every thread of the process to
    its own ``threads`` cores (the ``counter``-th group, where the OS allows it)."""
    os.environ["XLA_FLAGS"] = pinned_xla_flags(threads)
    if counter is None or not hasattr(os, "sched_setaffinity"):
        return
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) <= threads:
        return
    start = (index * threads) % len(cores)
    mine = cores[start : start + threads] or cores[:threads]
    try:  # every thread of the process (JAX may have started its own already)
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, mine)
        except OSError:  # a thread that ended meanwhile
            pass


def forwarded_env(local_cluster: bool = False) -> dict[str, str]:
    """The driver's environment a Ray task gets (``BAYES_QSE_*``, ``JAX_*``, ``XLA_FLAGS``
    pinned to one thread; ``PYTHONPATH`` too when the cluster is a local one this process
    started)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES
    }
    env["XLA_FLAGS"] = pinned_xla_flags(1)
    if local_cluster and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _tick(bar, enabled: bool) -> None:
    if enabled:
        bar.update(1)


@contextlib.contextmanager
def _environ(**values: str):
    """Set environment variables of this process for the ``with`` block (the processes it
    starts meanwhile inherit them), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pick_next(groups: Sequence[Hashable], last: Hashable, running: Sequence[Hashable]) -> int:
    """Which pending unit a pool worker takes next, by the units' :func:`affinity` groups
    (``groups``, in submission order): the first of ``last`` (the group of the unit the worker
    just finished: it has traced that group's programs); else the first of the group with the
    most pending units that no worker is running; else the first of the largest group.
    ``last`` is ``None`` for a worker's first unit.  Units without a group (``None``) go in
    their order."""
    if last is not None and last in groups:
        return groups.index(last)
    counts = Counter(groups)  # in order of first appearance
    free = [g for g in counts if g not in running] or list(counts)
    return groups.index(max(free, key=counts.__getitem__))


def affinity(unit: Unit) -> Hashable:
    """The unit's group of units sharing programs (``unit.affinity``, e.g. an online unit's
    game), or ``None``."""
    return getattr(unit, "affinity", None)


def _run_pool(pending, out_dir: str, workers: int, bar, on_idle=None) -> list[str]:
    # Workers fork from the fork server, which has imported the units' modules once
    # (bayes_qse._workers), or are spawned.  Either way XLA's pin is in their environment
    # before JAX starts its backend.  Each worker holds one unit at a time; when it finishes
    # one, it gets the next of the same group (pick_next), whose programs it has traced.
    modules = {type(unit).__module__ for unit, _ in pending}
    context = pool_context((*PRELOAD, *sorted(modules)))
    counter = context.Value("i", 0)
    finished: list[str] = []
    queue = list(pending)
    size = min(workers, len(pending))
    with ProcessPoolExecutor(
        max_workers=size,
        mp_context=context,
        initializer=pin_threads,
        initargs=(1, counter),
    ) as pool:
        running: dict = {}

        def submit(last: Hashable) -> None:
            groups = [affinity(unit) for unit, _ in queue]
            unit, todo = queue.pop(pick_next(groups, last, [affinity(u) for u in running.values()]))
            # spawned workers start during the submissions and inherit this environment
            with _environ(XLA_FLAGS=pinned_xla_flags(1)):
                future = pool.submit(
                    compute_unit, unit, todo, str(unit_dir(out_dir, unit)), None, False, True
                )
            running[future] = unit

        for _ in range(size):
            submit(None)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                deliver(out_dir, unit, future.result())
                finished.append(unit.key)
                if bar is not None:
                    bar.update(1)
                if queue:
                    submit(affinity(unit))
            if on_idle is not None and not queue and 0 < len(running) < size:
                on_idle()  # fewer units running than workers: a core idles till the end
                on_idle = None
    return finished


def one_line(text: str) -> str:
    """The first non-empty line of ``text`` without colour codes."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(text)).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def task_error(exc: BaseException, key: str) -> BaseException:
    """The exception to raise for a failed Ray task of unit ``key``: its cause (a
    :class:`ConfigError` naming the unit; another exception as it was raised, with the
    remote traceback as a note), or a one-line :class:`RuntimeError` for Ray's own errors."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ConfigError):
        return ConfigError(f"unit {key}: {one_line(str(cause))}")
    if isinstance(cause, Exception) and not isinstance(cause, type(exc)):
        remote = getattr(exc, "traceback_str", "")
        if remote and hasattr(cause, "add_note"):
            cause.add_note(_ANSI.sub("", remote))
        return cause
    return RuntimeError(f"unit {key}: {type(exc).__name__}: {one_line(str(exc))}")


def _init_ray(ray, address: str | None, workers: int) -> None:
    with warnings.catch_warnings():  # JAX's os.fork() warning: Ray forks helper processes
        warnings.filterwarnings("ignore", message=r".*os\.fork\(\)", category=RuntimeWarning)
        try:
            if address is not None:
                check_address(address)
                ray.init(address=address, log_to_driver=False)
            else:
                # "local": a new instance even where /tmp/ray names another (a stale
                # `ray start` address would otherwise be joined, refusing num_cpus).
                ray.init(
                    address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False
                )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"address: cannot join Ray ({one_line(str(exc))})") from None


def _run_ray(pending, out_dir: str, workers: int, address: str | None, bar) -> list[str]:
    try:
        import ray  # lazy: an optional dependency (the sweep extra), only for --executor ray
    except ImportError:
        raise ConfigError(
            "executor: ray is not installed; pip install 'bayes_qse[sweep]' (or ray>=2.40)"
        ) from None

    started = False
    if not ray.is_initialized():
        _init_ray(ray, address, workers)
        started = True
    expected = {k: library_versions()[k] for k in WORKER_VERSION_KEYS}
    env = forwarded_env(local_cluster=started and address is None)
    task = ray.remote(compute_unit).options(num_cpus=1, runtime_env={"env_vars": env})
    stores = {}
    try:
        refs = {}
        for unit, todo in pending:
            stores[unit.key] = open_unit(out_dir, unit)  # the driver's claim while in flight
            token = scratch_token(out_dir, unit)
            refs[task.remote(unit, todo, token, expected)] = unit
        finished: list[str] = []
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            unit = refs[ready[0]]
            try:
                computed = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                raise task_error(exc, unit.key) from None
            deliver(out_dir, unit, computed)
            stores.pop(unit.key).close()
            finished.append(unit.key)
            if bar is not None and hasattr(bar, "update"):
                bar.update(1)
        return finished
    finally:
        for store in stores.values():
            store.close()
        if started:
            ray.shutdown()


__all__ = [
    "ADDRESS_TIMEOUT",
    "affinity",
    "check_address",
    "check_executor",
    "experiment_run",
    "forwarded_env",
    "one_line",
    "pick_next",
    "pin_threads",
    "run_experiment_module",
    "run_experiment_units",
    "run_units",
    "task_error",
]
