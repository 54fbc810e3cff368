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

:func:`run_unit` dispatches on the unit's kind by calling its ``run``; the engine itself
knows no experiment, so it sits below them (docs/architecture.md).  Units are pickled by
reference to their class, so a process-pool or Ray worker imports the module that defines
the kind.  Layout::

    DIR/units/<unit key>/          a RunStore (bayes_qse.experiments.store) of one unit
        manifest.json, .lock       the unit's store_config; the worker running it
        checkpoints/...            the unit's checkpoints while it runs
        units/<part>.npz           its finished parts (written atomically)

A unit directory is written by one worker at a time (its lock); different units by any
number of workers, processes or hosts.  A rerun skips the units whose parts all exist and
resumes the others (a killed worker loses at most the chunk it was playing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .store import UNITS, RunStore

UNIT_EXPERIMENT = "sweep-unit"


class Unit(Protocol):
    """The interface of a unit kind (module docstring)."""

    kind: str
    key: str

    def parts(self) -> tuple[str, ...]: ...

    def store_config(self) -> dict[str, Any]: ...

    def run(self, store: RunStore, todo: list[str], progress: bool) -> None: ...


def unit_dir(out_dir: str | Path, unit: Unit) -> Path:
    """The unit's directory, ``out_dir/units/<key>``."""
    return Path(out_dir) / UNITS / unit.key


def open_unit(out_dir: str | Path, unit: Unit) -> RunStore:
    """The unit's :class:`RunStore` (holds the unit's lock until closed)."""
    return RunStore(unit_dir(out_dir, unit), UNIT_EXPERIMENT, unit.store_config())


def is_done(out_dir: str | Path, unit: Unit) -> bool:
    """Whether every part of the unit is saved (no lock taken: a finished file is final)."""
    folder = unit_dir(out_dir, unit) / UNITS
    return all((folder / f"{part}.npz").is_file() for part in unit.parts())


def load_parts(out_dir: str | Path, unit: Unit) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(arrays, meta)`` of each part of a finished unit, in ``unit.parts()`` order.

    Raises:
        ConfigError: a part is missing (the unit has not finished).
    """
    folder = unit_dir(out_dir, unit) / UNITS
    out = []
    for part in unit.parts():
        path = folder / f"{part}.npz"
        if not path.is_file():
            raise ConfigError(f"{out_dir}: unit {unit.key} has not finished (run it first)")
        out.append(RunStore._read(path))
    return out


def run_unit(unit: Unit, out_dir: str | Path, progress: bool = False) -> str:
    """Run (or resume, or skip if finished) ``unit`` in ``out_dir``; returns its key.  The
    unit's kind does the work (``unit.run``) on the parts not yet saved."""
    if is_done(out_dir, unit):
        return unit.key
    with open_unit(out_dir, unit) as store:
        todo = [part for part in unit.parts() if not store.has(part)]
        if todo:
            unit.run(store, todo, progress)
    return unit.key


__all__ = ["UNIT_EXPERIMENT", "Unit", "is_done", "load_parts", "open_unit", "run_unit", "unit_dir"]
