"""The directory of a sweep: bound to one spec; one sub-directory per unit.

Layout::

    DIR/sweep.json                 the normalised spec, its fingerprint, library versions
    DIR/units/<unit key>/          one unit (bayes_qse.experiments.units): its RunStore,
        checkpoints/run/seed<s>.npz  each seed's state and records after every chunk
        units/seed<s>.npz          each finished seed (written atomically)
    DIR/results.nc, results.json   the gathered dataset and summary (bayes_qse.sweeps.gather)

A directory bound to one spec refuses another (:func:`bind`), except for ``name`` and
``grid.seeds``, which are outside a sweep's identity: a rerun with more (or other) seeds
computes only the seeds not yet saved, and ``sweep.json`` then holds the new spec (what
``gather`` reads).  The units' own directories are the engine's
(:mod:`bayes_qse.experiments.units`: the driver writes them, resumable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..experiments.store import library_versions
from ..io import atomic_write_json
from .spec import Sweep, identity

SWEEP_FILE = "sweep.json"


def bind(sweep: Sweep, out_dir: str | Path) -> Path:
    """Bind ``out_dir`` to ``sweep``'s spec (first use) or check that it is bound to it.

    Raises:
        ConfigError: ``out_dir`` holds a sweep of a different spec (or is not a directory).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} exists and is not a directory")
    path = out / SWEEP_FILE
    record = {"spec": sweep.spec, "fingerprint": sweep.fingerprint, "versions": library_versions()}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"out: {path} is unreadable ({exc})") from None
        old_spec = old.get("spec", {}) if isinstance(old, dict) else {}
        before, now = identity(old_spec if isinstance(old_spec, dict) else {}), sweep.identity
        if before != now:
            differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise ConfigError(
                f"out: {out} holds a sweep of a different spec (differs in: "
                f"{', '.join(differ) or 'the spec'}); use another --out directory"
            )
        if old_spec != sweep.spec:  # other seeds or name: the directory now follows this spec
            atomic_write_json(path, {**old, **record, "versions": old.get("versions")})
        return out
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"out: {out} is not empty and holds no sweep; choose another --out")
    atomic_write_json(path, record)
    return out


def read_sweep(out_dir: str | Path) -> dict[str, Any]:
    """The ``sweep.json`` of a sweep directory; :class:`ConfigError` if there is none."""
    path = Path(out_dir) / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{out_dir}: not a sweep directory (no {SWEEP_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["bind", "read_sweep"]
