"""The directory of a sweep: one sub-directory per unit, so that many workers can write it.

Layout::

    DIR/sweep.json                 the normalised spec, its fingerprint, library versions
    DIR/units/<unit key>/          a RunStore (bayes_qse.experiments.store) of one unit:
        manifest.json, .lock       the unit's config; the worker that is running it
        checkpoints/run/seed<s>.npz  each seed's state and records after every chunk
        units/result.npz           the finished unit (written atomically, last)
    DIR/results.nc, results.json   the gathered dataset and summary (bayes_qse.sweeps.gather)

A unit directory is written by one worker at a time (its lock); different units by any number
of workers, processes or hosts.  A rerun skips the units whose ``result`` exists and resumes
the others from their per-seed checkpoints (a killed worker loses at most the chunk it was
playing).  A directory bound to one spec refuses another (:func:`bind`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..experiments.store import RunStore, library_versions
from ..io import atomic_write_json
from .spec import Sweep, Unit

SWEEP_FILE = "sweep.json"
UNITS = "units"
RESULT = "result"
UNIT_EXPERIMENT = "sweep-unit"


def bind(sweep: Sweep, out_dir: str | Path) -> Path:
    """Bind ``out_dir`` to ``sweep``'s spec (first use) or check that it is bound to it.

    Raises:
        ConfigError: ``out_dir`` holds a sweep of a different spec (or is not a directory).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} exists and is not a directory")
    path = out / SWEEP_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"out: {path} is unreadable ({exc})") from None
        if old.get("fingerprint") != sweep.fingerprint:
            differ = sorted(
                k
                for k in set(old.get("spec", {})) | set(sweep.spec)
                if old.get("spec", {}).get(k) != sweep.spec.get(k)
            )
            raise ConfigError(
                f"out: {out} holds a sweep of a different spec (differs in: "
                f"{', '.join(differ) or 'the spec'}); use another --out directory"
            )
        return out
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"out: {out} is not empty and holds no sweep; choose another --out")
    atomic_write_json(
        path,
        {"spec": sweep.spec, "fingerprint": sweep.fingerprint, "versions": library_versions()},
    )
    return out


def read_sweep(out_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` of a sweep directory; :class:`ConfigError` if there is none."""
    path = Path(out_dir) / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{out_dir}: not a sweep directory (no {SWEEP_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def unit_dir(out_dir: str | Path, unit: Unit) -> Path:
    return Path(out_dir) / UNITS / unit.key


def unit_config(unit: Unit) -> dict[str, Any]:
    """What a unit directory is bound to (its RunStore config)."""
    return {"unit": unit.key, "config": unit.config, "record": list(unit.record),
            "seeds": list(unit.seeds)}  # fmt: skip


def open_unit(out_dir: str | Path, unit: Unit) -> RunStore:
    """The unit's :class:`RunStore` (holds the unit's lock until closed)."""
    return RunStore(unit_dir(out_dir, unit), UNIT_EXPERIMENT, unit_config(unit))


def is_done(out_dir: str | Path, unit: Unit) -> bool:
    """Whether the unit's result is saved (no lock taken: a finished file is final)."""
    return (unit_dir(out_dir, unit) / UNITS / f"{RESULT}.npz").is_file()


def load_result(out_dir: str | Path, unit: Unit) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(arrays, meta)`` of a finished unit: arrays ``[seeds, T]`` per recorded field."""
    path = unit_dir(out_dir, unit) / UNITS / f"{RESULT}.npz"
    if not path.is_file():
        raise ConfigError(f"{out_dir}: unit {unit.key} has not finished (run the sweep first)")
    return RunStore._read(path)


__all__ = ["bind", "is_done", "load_result", "open_unit", "read_sweep", "unit_dir"]
