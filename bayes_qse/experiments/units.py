"""Units of work: what every ported experiment and every sweep runs, one directory per unit.

A *unit* is one piece of an experiment grid that one worker runs alone (an online
``(game, learner, T, eta, radius)`` with all its seeds, an offline ``(game, behaviour,
seed)``, the set widths at one ``eta``).  Each kind is a frozen dataclass, defined by the
experiment that owns it, with:

- ``kind`` (``"online"``, ``"offline"``, ``"width"``) and ``key`` (its directory name);
- ``parts()``: the names of the results it saves (one per seed for an online unit, so that
  seeds can be added later; ``("result",)`` otherwise);
- ``store_config()``: what its directory is bound to (a ``"seeds"`` entry may change);
- ``run(store, todo, progress)``: compute the parts ``todo`` and save each with
  ``store.save_unit`` (checkpoints, if any, in the same store).

A kind with one part (:data:`RESULT`) takes ``parts()`` and ``store_config()`` from
:class:`OnePartUnit`.  An experiment's ``run`` hands its units to
:func:`~bayes_qse.experiments.executors.run_experiment_units`, which runs them and returns
their parts (:func:`load_units`).

The engine itself knows no experiment, so it sits below them (docs/architecture.md).  Units
are pickled by reference to their class, so a process-pool or Ray worker imports the module
that defines the kind.  Layout of the output directory (written by the *driver*, the process
that runs the sweep)::

    DIR/units/<unit key>/          a RunStore (bayes_qse.experiments.store) of one unit
        manifest.json, .lock       the unit's store_config; who is writing it
        checkpoints/...            the unit's checkpoints while it runs (local executors)
        units/<part>.npz           its finished parts, each with the versions and platform
                                   that computed it (written atomically)
        units/.set-aside/          damaged parts, moved aside and recomputed

**The driver is the only writer of the output directory.**  A task (:func:`compute_unit`)
computes a unit in a *scratch* store where it runs and returns the parts (small arrays):

- the local executors (one process, a process pool: same host) use the unit's own
  directory as the scratch store, so their checkpoints sit beside the results and a killed
  run resumes from them;
- a Ray task uses a directory of its node (:func:`scratch_root`), named by a token the
  driver gives (never the output directory): the driver writes the returned parts.  A
  cluster therefore needs no shared file system; a node that dies takes its checkpoints with
  it, which costs recomputation only (Ray retries the task elsewhere).

Locks: the scratch store's lock is an ``flock`` on the node's own file system (released by
the operating system when the process or the node dies); the driver holds the unit
directory's lock while the unit is in flight.  No lock lives on a shared file system, so a
node crash cannot strand a unit.

Before running, the driver reads every saved part (:func:`scan_unit`): a part that cannot be
read (truncated, damaged) is set aside with one :class:`~.locks.RunNotice` and recomputed;
a part computed with other versions or on another platform (:data:`VERSION_KEYS`) is refused
with one line naming the difference, unless mixing is allowed explicitly (then gathering
records the versions, :func:`distinct_versions`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..errors import ConfigError
from .locks import RunNotice
from .store import MANIFEST, SET_ASIDE, UNITS, RunStore, library_versions

UNIT_EXPERIMENT = "sweep-unit"
#: The one part of a unit kind with a single result (:class:`OnePartUnit`).
RESULT = "result"
#: One unit's saved parts, ``[(arrays, meta)]`` in ``unit.parts()`` order (:func:`load_parts`).
UnitParts = list[tuple[dict[str, Any], dict[str, Any]]]
#: Entries of :func:`~.store.library_versions` that must agree for parts to be resumed or
#: gathered together (results are bit-identical only under the same ones).
VERSION_KEYS = ("bayes_qse", "jax", "numpy", "numpyro", "python", "platform")
#: Entries a worker must share with the driver (checked by every task before it runs).
WORKER_VERSION_KEYS = ("bayes_qse", "jax")
#: Environment variable naming a node's scratch directory (:func:`scratch_root`).
SCRATCH_ENV = "BAYES_QSE_SCRATCH"


class Unit(Protocol):
    """The interface of a unit kind (module docstring)."""

    kind: str
    key: str

    def parts(self) -> tuple[str, ...]: ...

    def store_config(self) -> dict[str, Any]: ...

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None: ...


class OnePartUnit:
    """Mixin of a unit kind whose result is one part, :data:`RESULT`; the kind is a frozen
    dataclass with the fields ``key`` and ``config`` (the settings its unit runs with).

    :meth:`store_config` binds the unit's directory to its key, its ``config`` less the keys
    named in ``unbound`` (settings its result does not depend on: a run that changes only
    those reuses the finished unit) and the fields named in ``bound`` (e.g. ``("seed",)``),
    in that order: ``{"unit": key, "config": {...}, **{field: value}}``.
    """

    unbound: ClassVar[tuple[str, ...]] = ()
    bound: ClassVar[tuple[str, ...]] = ()

    def parts(self) -> tuple[str, ...]:
        return (RESULT,)

    def store_config(self) -> dict[str, Any]:
        config = {k: v for k, v in self.config.items() if k not in self.unbound}
        extra = {name: getattr(self, name) for name in self.bound}
        return {"unit": self.key, "config": config, **extra}


@dataclasses.dataclass
class Computed:
    """What a task returns: the unit's ``key``, its computed ``parts`` (``part -> (arrays,
    meta)``, empty when the task wrote them in place), the ``notices`` it raised (one line
    each) and the ``host`` it ran on."""

    key: str
    parts: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    notices: list[str]
    host: str


def unit_dir(out_dir: str | Path, unit: Unit) -> Path:
    """The unit's directory, ``out_dir/units/<key>``."""
    return Path(out_dir) / UNITS / unit.key


def open_unit(out_dir: str | Path, unit: Unit) -> RunStore:
    """The unit's :class:`RunStore` (holds the unit's lock until closed)."""
    return RunStore(unit_dir(out_dir, unit), UNIT_EXPERIMENT, unit.store_config())


def scratch_root() -> Path:
    """Where a Ray task keeps the units it computes on its node: ``$BAYES_QSE_SCRATCH``,
    else ``<temporary directory>/bayes_qse-scratch-<uid>``."""
    explicit = os.environ.get(SCRATCH_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"bayes_qse-scratch-{uid}"


def scratch_token(out_dir: str | Path, unit: Unit) -> str:
    """A node-local name for ``unit`` of the sweep in ``out_dir`` (a hash of the driver's
    host, the directory and the unit's config, then the key): two sweeps never share one."""
    config = json.dumps(
        {k: v for k, v in unit.store_config().items() if k != "seeds"}, sort_keys=True, default=str
    )
    text = f"{socket.gethostname()}\n{Path(out_dir).resolve()}\n{config}"
    return f"{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}-{unit.key}"


def version_difference(have: dict[str, Any], want: dict[str, Any], keys=VERSION_KEYS) -> str:
    """The entries of ``keys`` where two version records differ (``"jax 0.4.30 (this run:
    0.4.31)"``, joined by ``; ``), ``""`` when none do."""
    return "; ".join(
        f"{k} {have.get(k, '?')} (this run: {want.get(k, '?')})"
        for k in keys
        if have.get(k) != want.get(k)
    )


def check_worker(expected: dict[str, Any] | None) -> None:
    """Refuse to run on a worker whose bayes_qse or jax differs from the driver's
    (``expected``; ``None``: no check)."""
    if not expected:
        return
    mine = library_versions()
    diff = [
        f"{k} {mine.get(k)} (driver: {expected.get(k)})"
        for k in WORKER_VERSION_KEYS
        if mine.get(k) != expected.get(k)
    ]
    if diff:
        raise ConfigError(
            f"worker {socket.gethostname()}: {'; '.join(diff)}; install the driver's "
            "versions on every node"
        )


def _read_part(path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        return RunStore._read(path)
    except (ConfigError, ValueError, json.JSONDecodeError):
        return None


def _manifest_versions(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("versions") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def part_versions(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The versions a part records (older parts: those of their unit's manifest)."""
    return meta.get("versions") or _manifest_versions(folder)


def scan_unit(out_dir: str | Path, unit: Unit, allow_mixed: bool = False) -> list[str]:
    """The parts of ``unit`` still to compute: the missing ones and the damaged ones (set
    aside to ``units/.set-aside/``, one :class:`RunNotice` each).  Reads every saved part.

    Raises:
        ConfigError: a part was computed with other versions or on another platform than
            this process (:data:`VERSION_KEYS`), unless ``allow_mixed``.
    """
    folder = unit_dir(out_dir, unit)
    mine = library_versions()
    todo = []
    for part in unit.parts():
        path = folder / UNITS / f"{part}.npz"
        if not path.is_file():
            todo.append(part)
            continue
        read = _read_part(path)
        if read is None:
            _set_aside(path, folder)
            todo.append(part)
            continue
        diff = version_difference(part_versions(read[1], folder), mine)
        if diff and not allow_mixed:
            raise ConfigError(
                f"versions: {path} was computed with {diff}; rerun into another --out, or "
                "allow mixing them (--allow-mixed-versions)"
            )
    return todo


def _set_aside(path: Path, folder: Path) -> None:
    aside = folder / UNITS / SET_ASIDE
    aside.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = aside / f"{path.stem}.{stamp}.npz"
    try:
        os.replace(path, target)
    except FileNotFoundError:  # another run set it aside first
        return
    warnings.warn(
        f"part: set aside {path} (unreadable: damaged or truncated); recomputing it (the old "
        f"file is {target})",
        RunNotice,
        stacklevel=3,
    )


def compute_unit(
    unit: Unit,
    todo: list[str],
    scratch: str,
    expected: dict[str, Any] | None = None,
    progress: bool = False,
    capture: bool | None = None,
) -> Computed:
    """The task: compute the parts ``todo`` of ``unit`` in the scratch store ``scratch``.

    ``scratch``: an absolute path (a local executor: the unit's own directory, whose parts
    are then final and are not returned) or a token (:func:`scratch_token`) under this
    node's :func:`scratch_root` (a Ray task: the parts are returned and the scratch store
    removed).  ``expected``: the driver's versions (:func:`check_worker`).  Parts already
    in the scratch store (a retried task on the same node) are not recomputed.  ``capture``
    (default: not ``local``): return the task's :class:`RunNotice` lines for the driver to
    show instead of printing them here.
    """
    check_worker(expected)
    local = os.path.isabs(scratch)
    path = Path(scratch) if local else scratch_root() / scratch
    capture = not local if capture is None else capture
    with warnings.catch_warnings(record=capture) as caught:
        if capture:
            warnings.simplefilter("always", RunNotice)
        with RunStore(path, UNIT_EXPERIMENT, unit.store_config()) as store:
            missing = [part for part in todo if not store.has(part)]
            if missing:
                unit.run(store, missing, progress)
            parts = {} if local else {part: store.load_unit(part) for part in todo}
    notices = [str(w.message) for w in caught or [] if issubclass(w.category, RunNotice)]
    if not local:
        shutil.rmtree(path, ignore_errors=True)
    return Computed(unit.key, parts, notices, socket.gethostname())


def deliver(out_dir: str | Path, unit: Unit, computed: Computed) -> None:
    """The driver's half: write the parts a task returned into the unit's directory (each
    with the meta, versions included, the task saved) and show the task's notices."""
    for notice in computed.notices:
        warnings.warn(f"{computed.host}: {notice}", RunNotice, stacklevel=2)
    if computed.parts:
        with open_unit(out_dir, unit) as store:
            for part, (arrays, meta) in computed.parts.items():
                store.write_unit(part, arrays, meta)


def is_done(out_dir: str | Path, unit: Unit) -> bool:
    """Whether every part of the unit is saved (no lock taken: a finished file is final)."""
    folder = unit_dir(out_dir, unit) / UNITS
    return all((folder / f"{part}.npz").is_file() for part in unit.parts())


def distinct_versions(metas: list[dict[str, Any]], allow_mixed: bool = False) -> list[dict]:
    """The distinct version records (:data:`VERSION_KEYS`) of the parts' ``metas`` (as
    :func:`load_parts` returns them), in order of appearance.

    Raises:
        ConfigError: more than one, naming the first difference, unless ``allow_mixed``.
    """
    seen: list[dict] = []
    for meta in metas:
        v = {k: meta["versions"].get(k) for k in VERSION_KEYS}
        if v not in seen:
            seen.append(v)
    if len(seen) > 1 and not allow_mixed:
        diff = version_difference(seen[1], seen[0]).replace("this run", "other parts")
        raise ConfigError(
            f"versions: the parts were computed with different versions or platforms ({diff}); "
            "gather them only with --allow-mixed-versions"
        )
    return seen


def load_parts(out_dir: str | Path, unit: Unit) -> UnitParts:
    """``(arrays, meta)`` of each part of a finished unit, in ``unit.parts()`` order; each
    meta's ``versions`` filled in (:func:`part_versions`).

    Raises:
        ConfigError: a part is missing (the unit has not finished).
    """
    folder = unit_dir(out_dir, unit)
    out = []
    for part in unit.parts():
        path = folder / UNITS / f"{part}.npz"
        if not path.is_file():
            raise ConfigError(f"{out_dir}: unit {unit.key} has not finished (run it first)")
        arrays, meta = RunStore._read(path)
        meta["versions"] = part_versions(meta, folder)
        out.append((arrays, meta))
    return out


def unit_keys(units: Sequence[Unit]) -> list[str]:
    """The keys of ``units``, in their order.

    Raises:
        ValueError: a key stands twice (two units would share one directory, the second
            overwriting or refusing the first)."""
    keys = [unit.key for unit in units]
    if len(set(keys)) < len(keys):
        twice = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"units: two units have the key {twice!r} (one directory each)")
    return keys


def load_units(out_dir: str | Path, units: Sequence[Unit]) -> dict[str, UnitParts]:
    """Every part of the finished ``units``: ``{unit.key: load_parts(out_dir, unit)}``, in
    the order of ``units`` (each unit's parts in ``unit.parts()`` order, :func:`load_parts`).

    Raises:
        ValueError: two units have the same key (:func:`unit_keys`), before anything is read.
        ConfigError: a unit has not finished.
    """
    unit_keys(units)
    return {unit.key: load_parts(out_dir, unit) for unit in units}


def run_unit(unit: Unit, out_dir: str | Path, progress: bool = False) -> str:
    """Run (or resume, or skip if finished) ``unit`` in ``out_dir`` in this process; returns
    its key (:func:`scan_unit`, then :func:`compute_unit` in the unit's directory)."""
    todo = scan_unit(out_dir, unit)
    if todo:
        compute_unit(unit, todo, str(unit_dir(out_dir, unit).resolve()), progress=progress)
    return unit.key


__all__ = [
    "SCRATCH_ENV",
    "UNIT_EXPERIMENT",
    "VERSION_KEYS",
    "WORKER_VERSION_KEYS",
    "RESULT",
    "Computed",
    "OnePartUnit",
    "Unit",
    "UnitParts",
    "check_worker",
    "compute_unit",
    "deliver",
    "distinct_versions",
    "is_done",
    "load_parts",
    "load_units",
    "open_unit",
    "part_versions",
    "run_unit",
    "scan_unit",
    "scratch_root",
    "scratch_token",
    "unit_dir",
    "unit_keys",
    "version_difference",
]
