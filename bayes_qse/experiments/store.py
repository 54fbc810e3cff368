"""Resumable, atomic storage of an experiment run (docs/math.md §7: "runs resumable").

A run lives in one directory::

    out_dir/
      manifest.json          experiment name, config, library versions, creation time
      units/<key>.npz        one finished unit of work (e.g. one seed of one learner)
      checkpoints/<key>.npz  the state of an unfinished unit (e.g. an online run mid-way)
      checkpoints/<key>/<part>.npz   ... or of one part of it (e.g. one seed)
      checkpoints/.set-aside/        checkpoints that did not match, kept for inspection
      results.npz/.json      the combined results (written last)
      .lock                  who is writing the directory (pid, host, start time)

Every file is written atomically (write to a temporary file, fsync, rename; see
:mod:`bayes_qse.io`), so a run killed at any moment leaves either the old file or the new one.
An experiment's ``run`` opens a :class:`RunStore`, skips the units it already ``has``, resumes
an unfinished unit from its checkpoint, and saves each unit as soon as it is done: a rerun of an
interrupted command neither loses nor repeats work.

Reopening a directory with a *different* configuration raises :class:`ConfigError` naming the
keys that differ (results from two configurations must not be mixed), unless ``resume=False``,
which discards the old units.  The one exception is ``seeds``: growing or shrinking the number
of seeds keeps the finished units (they are keyed by seed) and updates the manifest.

A checkpoint is never a fatal error: one that cannot be read or does not match the state it
should restore (another shape, another run length, a file of an older version) is *set aside*
(moved to ``checkpoints/.set-aside/``, with a one-line :class:`RunNotice` warning) and the
unit is recomputed.

One writer at a time: a :class:`RunStore` holds the directory's lock
(:class:`~.locks.OutputLock`, an exclusive ``flock`` on ``.lock``, which records the holder's
pid, host and start time) until :meth:`RunStore.close` (or the end of a ``with`` block, or of
the process).  A second writer gets a :class:`ConfigError` naming the holder.  The operating
system releases the lock of a process that dies, so a lock left by a killed run is taken
over, with a notice naming it.  Stores of the same directory in the *same* process share the
lock (it is re-entrant).

The lock itself and the run notices live in :mod:`bayes_qse.experiments.locks`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._version import __version__
from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_npz, to_jsonable
from .locks import LOCK, OutputLock, RunNotice, now_iso

MANIFEST = "manifest.json"
UNITS = "units"
CHECKPOINTS = "checkpoints"
SET_ASIDE = ".set-aside"
_META = "__meta__"
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")
#: Config keys that may change between a run and its resumption (units are keyed by them).
RESUMABLE_KEYS = frozenset({"seeds"})


def _normalise(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain JSON values (tuples -> lists, arrays -> lists), for comparison."""
    return json.loads(json.dumps(to_jsonable(dict(config)), sort_keys=True))


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Sorted keys whose values differ between two configs (missing on one side counts); a
    table present on both sides is compared key by key (``learner.delta``, ``linear.eta``)."""
    a, b = _normalise(old), _normalise(new)
    out = []
    for k in set(a) | set(b):
        x, y = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(x, dict) and isinstance(y, dict):
            out += [f"{k}.{sub}" for sub in config_diff(x, y)]
        elif x != y:
            out.append(k)
    return sorted(out)


def library_versions() -> dict[str, str]:
    """Versions of bayes_qse and of the numerical libraries a result depends on, and the
    platform (backend, CPU): what must agree for two results to be bit-identical.  Computed
    once per process."""
    if not _VERSIONS:
        _VERSIONS.update(_library_versions())
    return dict(_VERSIONS)


_VERSIONS: dict[str, str] = {}


def _library_versions() -> dict[str, str]:
    versions = {"bayes_qse": __version__, "jax": jax.__version__, "numpy": np.__version__}
    versions["numpyro"] = importlib.metadata.version("numpyro")  # not imported: ~1 s
    versions["python"] = sys.version.split()[0]
    versions["platform"] = f"{jax.default_backend()}: {cpu_description()}"
    return versions


def cpu_description() -> str:
    """The CPU model and the vector extensions XLA compiles for (``/proc/cpuinfo`` on Linux,
    ``platform.processor()`` elsewhere): floating-point results are bit-identical only on the
    same platform, so a manifest records it."""
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    simd = [f for f in ("avx512f", "avx2", "fma", "neon", "asimd") if f in flags]
    return f"{model or platform.machine()} ({' '.join(simd) or 'no avx'})"


#: What a run directory may hold before its manifest is written.
_RUN_PARTS = frozenset({LOCK, UNITS, CHECKPOINTS, SET_ASIDE})


def check_run_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse to write a run into a directory that is not a run's: one that exists, holds
    something besides a run's own parts (``.lock``, ``units/``, ``checkpoints/``,
    ``.set-aside/``: a killed run's, or units the engine saved first) and no
    ``manifest.json`` -- a user's own files, a sweep directory (``sweep.json``), the current
    or home directory.  Returns ``out_dir``.

    Raises:
        ConfigError: ``out_dir`` is such a directory, or exists and is not a directory.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} exists and is not a directory")
    if not out.is_dir() or (out / MANIFEST).exists():
        return out
    try:
        others = sorted(p.name for p in out.iterdir() if p.name not in _RUN_PARTS)
    except OSError as exc:
        raise ConfigError(f"out: cannot read {out} ({exc.strerror})") from None
    if others:
        what = "a sweep (sweep.json)" if "sweep.json" in others else "no run (no manifest.json)"
        raise ConfigError(
            f"out: {out} is not empty and holds {what}; refusing to write into it "
            f"(it holds {others[0]!r}{' and more' if len(others) > 1 else ''}); "
            "choose another --out"
        )
    return out


class RunStore:
    """Atomic, resumable storage for one experiment run in ``out_dir``.

    Args:
        out_dir: the run directory (created if needed).
        experiment: the experiment's registry name (e.g. ``"online_regret"``).
        config: the full configuration (JSON-able values); stored in the manifest and in
            every unit's metadata.
        resume: if ``True`` (default) reopen an existing run with the same config; a different
            config raises :class:`ConfigError`.  If ``False`` discard any previous units,
            checkpoints and results in ``out_dir`` and start afresh.

    The store holds the directory's :class:`OutputLock` from its creation until
    :meth:`close` (also the end of a ``with`` block, or when the store is garbage-collected).

    Raises:
        ConfigError: another process is writing ``out_dir`` (the message names its pid, host
            and start time), the directory holds a run of another experiment or another
            config, or its manifest is unreadable.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        experiment: str,
        config: Mapping[str, Any],
        resume: bool = True,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.experiment = str(experiment)
        self.config = _normalise(config)
        check_run_dir(self.out_dir)  # before the lock file is made
        self.lock = OutputLock(self.out_dir, self.experiment).acquire()
        try:
            self._open(config, resume)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, config: Mapping[str, Any], resume: bool) -> None:
        manifest_path = self.out_dir / MANIFEST
        old = self._read_manifest(manifest_path) if manifest_path.exists() else None
        if old is None:
            check_run_dir(self.out_dir)  # again under the lock
        if old is not None and resume:
            if old.get("experiment") != self.experiment:
                raise ConfigError(
                    f"out: {self.out_dir} holds a run of experiment {old.get('experiment')!r}, "
                    f"not {self.experiment!r}; choose another --out directory"
                )
            differ = [k for k in config_diff(old.get("config", {}), self.config)]
            blocking = [k for k in differ if k not in RESUMABLE_KEYS]
            if blocking:
                raise ConfigError(
                    f"config: {self.out_dir} was run with a different configuration "
                    f"(keys differ: {', '.join(blocking)}); use another --out directory "
                    "or start afresh (resume=False / --restart)"
                )
            self.manifest = dict(old)
            if differ:
                self.manifest["config"] = self.config
                self.manifest["updated"] = now_iso()
                atomic_write_json(manifest_path, self.manifest)
        else:
            if old is not None or not resume:
                self._discard()
            self.manifest = {
                "experiment": self.experiment,
                "config": self.config,
                "versions": library_versions(),
                "created": now_iso(),
            }
            atomic_write_json(manifest_path, self.manifest)

    def close(self) -> None:
        """Release the directory's lock (the store's files stay readable)."""
        self.lock.release()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- helpers ---------------------------------------------------------------------
    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: unreadable manifest ({exc})") from None
        if not isinstance(manifest, dict):
            raise ConfigError(f"{path}: manifest must be a JSON object")
        return manifest

    def _discard(self) -> None:
        for sub in (UNITS, CHECKPOINTS):
            shutil.rmtree(self.out_dir / sub, ignore_errors=True)
        for name in ("results.npz", "results.json", "results.nc"):
            (self.out_dir / name).unlink(missing_ok=True)

    @staticmethod
    def _check_key(key: str) -> str:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ConfigError(
                f"key: {key!r} is not a valid unit key (letters, digits and _ . = + - only)"
            )
        return key

    def _unit_path(self, key: str) -> Path:
        return self.out_dir / UNITS / f"{self._check_key(key)}.npz"

    def _checkpoint_path(self, key: str, part: str | None = None) -> Path:
        if part is None:
            return self.out_dir / CHECKPOINTS / f"{self._check_key(key)}.npz"
        return self.out_dir / CHECKPOINTS / self._check_key(key) / f"{self._check_key(part)}.npz"

    def _write(self, path: Path, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
        if _META in arrays:
            raise ConfigError(f"arrays: the name {_META!r} is reserved")
        payload = {str(k): np.asarray(v) for k, v in arrays.items()}
        for k, v in payload.items():
            if v.dtype == object:
                raise ConfigError(f"arrays: {k!r} is not a numeric or string array")
        payload[_META] = np.array(json.dumps(to_jsonable(dict(meta)), sort_keys=True))
        return atomic_write_npz(path, payload)

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.array(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ConfigError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
        meta = json.loads(str(arrays.pop(_META))) if _META in arrays else {}
        return arrays, meta

    # ---- finished units --------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether the unit ``key`` has been saved."""
        return self._unit_path(key).is_file()

    def keys(self) -> list[str]:
        """Sorted keys of the saved units."""
        folder = self.out_dir / UNITS
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.npz") if not p.name.startswith("."))

    def save_unit(
        self, key: str, arrays: Mapping[str, Any], meta: Mapping[str, Any] | None = None
    ) -> Path:
        """Atomically save a finished unit: ``arrays`` plus ``meta`` (JSON, with the config).

        Put the unit's seed in ``meta`` (e.g. ``{"seed": 3, "learner": "greedy"}``); the
        experiment name, config, key and :func:`library_versions` are added.  Returns the file path.
        """
        full_meta = {**dict(meta or {}), "key": key, "experiment": self.experiment}
        full_meta["config"] = self.config
        full_meta["versions"] = library_versions()
        return self._write(self._unit_path(key), arrays, full_meta)

    def write_unit(self, key: str, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
        """Atomically write a unit saved by :meth:`save_unit` in another store (another
        process or host), ``meta`` as it was saved there (its versions included)."""
        return self._write(self._unit_path(key), arrays, meta)

    def load_unit(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, meta)`` of a saved unit; :class:`ConfigError` if absent or unreadable."""
        path = self._unit_path(key)
        if not path.is_file():
            raise ConfigError(f"key: no saved unit {key!r} in {self.out_dir}")
        return self._read(path)

    def iter_units(self) -> Iterator[tuple[str, dict[str, np.ndarray], dict[str, Any]]]:
        """Yield ``(key, arrays, meta)`` for every saved unit, in key order."""
        for key in self.keys():
            arrays, meta = self.load_unit(key)
            yield key, arrays, meta

    # ---- checkpoints of unfinished units ---------------------------------------------
    def save_checkpoint(
        self,
        key: str,
        pytree: Any,
        meta: Mapping[str, Any] | None = None,
        part: str | None = None,
    ) -> Path:
        """Atomically save the state of an unfinished unit (any pytree of arrays).

        JAX typed PRNG keys (``jax.random.key``) are stored as their key data and restored.
        Put the progress (e.g. ``{"episode": 200}``) in ``meta``.  With ``part`` (e.g.
        ``"seed3"``) the checkpoint is one of several of the unit
        (``checkpoints/<key>/<part>.npz``), saved and restored independently.
        """
        leaves = jax.tree_util.tree_leaves(pytree)
        arrays: dict[str, Any] = {}
        impls: list[str | None] = []
        for i, leaf in enumerate(leaves):
            if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
                leaf.dtype, jax.dtypes.prng_key
            ):
                arrays[f"leaf_{i}"] = np.asarray(jax.random.key_data(leaf))
                impls.append(str(jax.random.key_impl(leaf)))
            else:
                arrays[f"leaf_{i}"] = np.asarray(leaf)
                impls.append(None)
        full_meta = {**dict(meta or {}), "key": key, "n_leaves": len(leaves), "key_impls": impls}
        if part is not None:
            full_meta["part"] = part
        return self._write(self._checkpoint_path(key, part), arrays, full_meta)

    def has_checkpoint(self, key: str, part: str | None = None) -> bool:
        """Whether a checkpoint of ``key`` (or of its ``part``) exists."""
        return self._checkpoint_path(key, part).is_file()

    def checkpoint_parts(self, key: str) -> list[str]:
        """Sorted names of the saved parts of ``key``'s checkpoint."""
        folder = self.out_dir / CHECKPOINTS / self._check_key(key)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.npz") if not p.name.startswith("."))

    def set_aside_checkpoint(self, key: str, reason: str, part: str | None = None) -> Path | None:
        """Move a checkpoint that cannot be used to ``checkpoints/.set-aside/`` (renamed with
        a time stamp, never deleted) and warn with a one-line :class:`RunNotice` naming it and
        ``reason``.  Returns the new path (``None`` if there was no such checkpoint)."""
        path = self._checkpoint_path(key, part)
        if not path.is_file():
            return None
        aside = self.out_dir / CHECKPOINTS / SET_ASIDE
        aside.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = key if part is None else f"{key}.{part}"
        target = aside / f"{name}.{stamp}.npz"
        os.replace(path, target)
        warnings.warn(
            f"checkpoint: set aside {path.relative_to(self.out_dir)} ({reason}); "
            f"recomputing it (the old file is {target.relative_to(self.out_dir)})",
            RunNotice,
            stacklevel=2,
        )
        return target

    def load_checkpoint(
        self, key: str, like: Any, part: str | None = None
    ) -> tuple[Any, dict[str, Any]] | None:
        """Restore a checkpoint into the structure of ``like``; ``None`` if there is none.

        Leaves come back with the dtype and shape they were saved with, as JAX arrays where
        the corresponding leaf of ``like`` is a JAX array and NumPy arrays otherwise.

        A checkpoint that is unreadable or does not match ``like`` (number of arrays, shapes)
        is set aside (:meth:`set_aside_checkpoint`, a :class:`RunNotice`) and ``None`` is
        returned: the caller recomputes the unit.  Never raises for a bad checkpoint.
        """
        path = self._checkpoint_path(key, part)
        if not path.is_file():
            return None
        try:
            arrays, meta = self._read(path)
        except (ConfigError, json.JSONDecodeError) as exc:
            self.set_aside_checkpoint(key, f"unreadable: {exc}", part)
            return None
        like_leaves, treedef = jax.tree_util.tree_flatten(like)
        n = meta.get("n_leaves")
        if n != len(like_leaves):
            self.set_aside_checkpoint(
                key, f"it holds {n} arrays, the state has {len(like_leaves)}", part
            )
            return None
        impls = meta.get("key_impls", [None] * n)
        leaves = []
        for i, ref in enumerate(like_leaves):
            value = arrays.get(f"leaf_{i}")
            if value is None or (np.shape(value) != np.shape(ref) and impls[i] is None):
                got = "missing" if value is None else f"shape {value.shape}"
                self.set_aside_checkpoint(
                    key, f"array {i} has {got}, the state expects {np.shape(ref)}", part
                )
                return None
            if impls[i] is not None:
                leaves.append(jax.random.wrap_key_data(value, impl=impls[i]))
            elif isinstance(ref, jax.Array):
                leaves.append(jax.numpy.asarray(value))
            else:
                leaves.append(value)
        for extra in ("n_leaves", "key_impls"):
            meta.pop(extra, None)
        return jax.tree_util.tree_unflatten(treedef, leaves), meta

    def delete_checkpoint(self, key: str) -> None:
        """Remove a unit's checkpoint and all its parts (call after the unit is saved)."""
        self._checkpoint_path(key).unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / CHECKPOINTS / self._check_key(key), ignore_errors=True)

    # ---- combined results ------------------------------------------------------------
    def write_results(self, name: str = "results", data: Mapping[str, Any] | None = None) -> Path:
        """Atomically write the combined results: ``<name>.npz`` and ``<name>.json``.

        Values of ``data`` that are arrays of rank >= 1 go to the ``.npz``; everything else
        (scalars, strings, lists, dicts) goes to the ``.json``, together with the manifest
        (experiment, config, versions) and the list of array names.  Returns the ``.npz`` path.
        """
        if not isinstance(name, str) or not _KEY_RE.match(name):
            raise ConfigError(f"name: {name!r} is not a valid results name")
        arrays: dict[str, np.ndarray] = {}
        summary: dict[str, Any] = {}
        for k, v in (data or {}).items():
            if isinstance(v, np.ndarray | jax.Array) and np.ndim(v) >= 1:
                arrays[str(k)] = np.asarray(v)
            else:
                summary[str(k)] = v
        npz = atomic_write_npz(self.out_dir / f"{name}.npz", arrays)
        doc = {
            **{k: self.manifest[k] for k in ("experiment", "config", "versions", "created")},
            "written": now_iso(),
            "arrays": {k: list(v.shape) for k, v in arrays.items()},
            "summary": summary,
        }
        atomic_write_json(self.out_dir / f"{name}.json", doc)
        return npz


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a run directory; :class:`ConfigError` if there is none."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{out_dir}: not a results directory (no {MANIFEST})")
    return RunStore._read_manifest(path)


__all__ = [
    "RunStore",
    "check_run_dir",
    "config_diff",
    "library_versions",
    "read_manifest",
]
