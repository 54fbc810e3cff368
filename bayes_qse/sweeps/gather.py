"""Gather a finished sweep into one labelled dataset, with paired intervals and scores.

:func:`gather` builds an :class:`xarray.Dataset` with one variable per recorded field, dims
``(*axes, seed, episode)`` (``axes`` the swept ones of ``game, learner, T, eta, radius``;
``episode`` runs to the largest ``T``, shorter units padded with NaN) and ``optimal_value``
over the axes (an offline sweep: ``suboptimality, value, lower_bound, seconds,
lower_bound_holds`` over ``(game, behaviour, seed, size, learner)``, :func:`summarise_offline`);
:func:`write_results` saves it as ``results.nc`` (netCDF, h5netcdf) with the
JSON summary ``results.json``.

Statistics (docs/math.md, "Sweeps"):

- :func:`paired_interval`: the t interval of the mean of the per-seed differences
  ``d_s = R_X(s) - R_Y(s)`` of two leaders' final cumulative regrets on the same seeds, with
  Welch's half width (the pairing ignored) beside it.  Under common random numbers the noise
  a pair shares cancels in ``d_s``; how much that narrows the interval depends on how strongly
  the two leaders' outcomes are correlated (docs/math.md, "Sweeps": little for the regret of
  two learners whose paths diverge).
- :func:`normalised_score`: ``(R_uniform - R_X) / (R_uniform - R_best)``, ``R`` the mean final
  cumulative regret, ``R_best`` the smallest among the learners other than ``oracle``: 0 is the
  uniform leader, 1 the best leader of the slice.

xarray and SciPy's special functions are imported inside the functions
that use them: a sweep's driver imports this module before its units run, and its import is
the one part of a sweep that no process pool shares out (``benchmarks/bench_sweep.py``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..experiments import offline_suboptimality as offline
from ..experiments.units import UnitParts, distinct_versions, load_units
from ..io import atomic_write, atomic_write_json
from .spec import Sweep, expand
from .store import read_sweep

RESULTS_NC = "results.nc"
RESULTS_JSON = "results.json"


def paired_interval(x: Any, y: Any, level: float = 0.95) -> dict[str, float]:
    """Mean and ``level`` t interval of the paired differences ``x[s] - y[s]``.

    Args:
        x, y: ``[n]`` one value per seed for leaders X and Y (same seeds, same order).

    Returns:
        ``{"mean", "low", "high", "n", "independent_half_width"}``; ``low = high = mean`` when
        all differences are equal, NaN bounds when ``n < 2``.  ``independent_half_width``: the
        half width of Welch's interval, which ignores the pairing (what the comparison would
        cost without common random numbers).
    """
    # scipy.stats.t.ppf(q, dof) is stdtrit(dof, q), called here without importing
    # scipy.stats (see the module doc); a test compares the two.
    from scipy.special import stdtrit  # lazy (see the module doc)

    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ConfigError(f"paired_interval: need two equal-length 1-D arrays, got {d.shape}")
    n, mean = d.size, float(d.mean())
    if n < 2:
        nan = float("nan")
        return {"mean": mean, "low": nan, "high": nan, "n": n, "independent_half_width": nan}
    half = float(stdtrit(n - 1, 0.5 + level / 2) * d.std(ddof=1) / np.sqrt(n))
    vx, vy = np.var(x, ddof=1) / n, np.var(y, ddof=1) / n
    dof = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (n - 1)) if vx + vy > 0 else n - 1
    welch = float(stdtrit(dof, 0.5 + level / 2) * np.sqrt(vx + vy))
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "n": n,
        "independent_half_width": welch,
    }


def normalised_score(final: dict[str, float]) -> dict[str, float]:
    """``(R_uniform - R_X) / (R_uniform - R_best)`` per learner (module docstring).

    ``final``: mean final cumulative regret per learner; needs ``"uniform"`` and one other
    learner besides ``oracle`` (else ``{}``).  NaN when the best equals the uniform leader."""
    if "uniform" not in final:
        return {}
    others = [v for k, v in final.items() if k != "oracle"]
    best, uniform = min(others), final["uniform"]
    span = uniform - best
    return {k: (uniform - v) / span if span > 0 else float("nan") for k, v in final.items()}


def gather(out_dir: str | Path, sweep: Sweep | None = None, allow_mixed: bool = False):
    """The sweep's results as an :class:`xarray.Dataset` (module docstring), for the seeds of
    ``sweep`` (default: the spec the directory holds, its latest seeds).

    The dataset's ``versions`` attribute (JSON) lists the distinct versions and platforms
    (:data:`~bayes_qse.experiments.units.VERSION_KEYS`) that computed its parts, and
    ``mixed_versions`` whether there was more than one.

    Raises:
        ConfigError: a unit has not finished, or the parts were computed with different
            versions or on different platforms (unless ``allow_mixed``).
    """
    if sweep is None:
        sweep = expand(read_sweep(out_dir)["spec"])
    loaded = load_units(out_dir, sweep.units)  # each part once
    if sweep.kind == "offline":
        ds = _gather_offline(sweep, loaded)
    else:
        ds = _gather_online(sweep, loaded)
    metas = [meta for parts in loaded.values() for _, meta in parts]
    versions = distinct_versions(metas, allow_mixed)
    ds.attrs.update(
        versions=json.dumps(versions, sort_keys=True), mixed_versions=int(len(versions) > 1)
    )
    return ds


def _gather_online(sweep: Sweep, loaded: dict[str, list[tuple[dict, dict]]]):
    """An online sweep's dataset from ``loaded[unit key]``, each unit's
    :func:`~bayes_qse.experiments.units.load_parts`."""
    import xarray as xr  # lazy (see the module doc)

    by_key = {u.key: u for u in sweep.units}
    names = list(sweep.axes)
    shape = [len(sweep.axes[k]) for k in names]
    n_seeds, length = len(sweep.seeds), max(sweep.axes["T"])
    data = {f: np.full((*shape, n_seeds, length), np.nan) for f in sweep.record}
    optimal = np.full(shape, np.nan)
    for index in itertools.product(*[range(n) for n in shape]):
        cell = tuple(sweep.axes[k][i] for k, i in zip(names, index, strict=True))
        unit = by_key[sweep.cells[cell]]
        parts = loaded[unit.key]
        for f in sweep.record:
            data[f][index][:, : unit.T] = np.stack([arrays[f] for arrays, _ in parts])
        optimal[index] = parts[0][1]["optimal_value"]
    dims = (*names, "seed", "episode")
    coords = {k: list(sweep.axes[k]) for k in names}
    coords.update(seed=list(sweep.seeds), episode=np.arange(1, length + 1))
    ds = xr.Dataset(
        {f: (dims, v) for f, v in data.items()} | {"optimal_value": (tuple(names), optimal)},
        coords=coords,
        attrs={
            "spec": json.dumps(sweep.spec, sort_keys=True),
            "fingerprint": sweep.fingerprint,
            "kind": sweep.kind,
        },
    )
    return ds


def _gather_offline(sweep: Sweep, loaded: dict[str, UnitParts]):
    """An offline sweep from ``loaded[unit key]`` (:func:`~bayes_qse.experiments.units.load_units`):
    :data:`~bayes_qse.experiments.offline_suboptimality.OFFLINE_FIELDS` and
    ``lower_bound_holds`` with dims ``(game, behaviour, seed, size, learner)``, and
    ``optimal_value`` over ``game``."""
    import xarray as xr  # lazy (see the module doc)

    config = sweep.units[0].config
    arrays = offline.stack_units(loaded.values())  # units in (game, behaviour, seed) order
    shape = (len(sweep.axes["game"]), len(sweep.axes["behaviour"]), len(sweep.seeds))
    dims = ("game", "behaviour", "seed", "size", "learner")
    data = {k: arrays[k].reshape(*shape, *arrays[k].shape[1:]) for k in offline.OFFLINE_FIELDS}
    data["lower_bound_holds"] = offline.lower_bound_holds(data["lower_bound"], data["value"])
    optimal = arrays["optimal_value"].reshape(shape)[:, 0, 0]
    coords = {
        "game": sweep.axes["game"],
        "behaviour": sweep.axes["behaviour"],
        "seed": list(sweep.seeds),
        "size": list(config["sizes"]),
        "learner": list(config["learners"]),
    }
    return xr.Dataset(
        {k: (dims, v) for k, v in data.items()} | {"optimal_value": (("game",), optimal)},
        coords=coords,
        attrs={
            "spec": json.dumps(sweep.spec, sort_keys=True),
            "fingerprint": sweep.fingerprint,
            "kind": sweep.kind,
        },
    )


def summarise_offline(ds) -> dict[str, Any]:
    """Per ``(game, behaviour)``: each learner's mean suboptimality per size and how often its
    lower bound holds (``None`` for a learner without one)."""
    slices = []
    for game, behaviour in itertools.product(ds["game"].values, ds["behaviour"].values):
        part = ds.sel(game=game, behaviour=behaviour)
        rows = {}
        for name in part["learner"].values:
            one = part.sel(learner=name)
            holds = one["lower_bound_holds"].values
            rows[str(name)] = {
                "suboptimality_mean": one["suboptimality"].mean("seed").values.tolist(),
                "lower_bound_coverage": float(np.nanmean(holds))
                if np.isfinite(holds).any()
                else None,
            }
        slices.append(
            {
                "where": {"game": str(game), "behaviour": str(behaviour)},
                "sizes": part["size"].values.tolist(),
                "learners": rows,
            }
        )
    return {"slices": slices}


def final_regret(ds) -> Any:
    """Final cumulative regret per seed: ``sum_t regret`` (NaN padding skipped)."""
    return ds["regret"].sum("episode", skipna=True)


def summarise(ds, level: float = 0.95) -> dict[str, Any]:
    """Per slice (every combination of the axes other than ``learner``): each learner's mean
    and standard error of the final cumulative regret, its normalised score, and the paired
    interval of every pair of learners."""
    final = final_regret(ds)
    others = [d for d in final.dims if d not in ("learner", "seed")]
    slices = []
    for values in itertools.product(*[final[d].values.tolist() for d in others]):
        where = dict(zip(others, values, strict=True))
        part = final.sel(where)
        learners = [str(v) for v in part["learner"].values]
        per = {name: part.sel(learner=name).values for name in learners}
        means = {k: float(v.mean()) for k, v in per.items()}
        score = normalised_score(means)
        rows = {
            k: {
                "final_regret_mean": means[k],
                "final_regret_se": float(v.std(ddof=1) / np.sqrt(v.size))
                if v.size > 1
                else float("nan"),
                **({"score": score[k]} if score else {}),
            }
            for k, v in per.items()
        }
        pairs = {
            f"{a} - {b}": paired_interval(per[a], per[b], level)
            for a, b in itertools.combinations(learners, 2)
        }
        slices.append({"where": where, "learners": rows, "paired": pairs})
    return {"level": level, "slices": slices}


def preload() -> None:
    """Import what :func:`write_results` uses (xarray, its netCDF engine, SciPy's special
    functions): a pool's driver calls it while its last units run on the other cores
    (:func:`~bayes_qse.experiments.executors.run_units`'s ``on_idle``)."""
    import h5netcdf  # noqa: F401  # lazy (see the module doc)
    import scipy.special  # noqa: F401  # lazy (see the module doc)
    import xarray  # noqa: F401  # lazy (see the module doc)


def write_results(
    out_dir: str | Path, sweep: Sweep | None = None, allow_mixed: bool = False
) -> tuple[Path, Path]:
    """Gather the sweep (:func:`gather`) and write ``results.nc`` and ``results.json``
    atomically (the JSON with the versions that computed it)."""
    out = Path(out_dir)
    ds = gather(out, sweep, allow_mixed)
    nc = atomic_write(out / RESULTS_NC, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    summary = summarise_offline(ds) if ds.attrs["kind"] == "offline" else summarise(ds)
    doc = {
        "fingerprint": ds.attrs["fingerprint"],
        "kind": ds.attrs["kind"],
        "dims": dict(ds.sizes),
        "versions": json.loads(ds.attrs["versions"]),
        "mixed_versions": bool(ds.attrs["mixed_versions"]),
        **summary,
    }
    js = atomic_write_json(out / RESULTS_JSON, doc)
    return nc, js


def open_results(out_dir: str | Path):
    """The saved ``results.nc`` of a sweep directory, loaded into memory."""
    import xarray as xr  # lazy (see the module doc)

    path = Path(out_dir) / RESULTS_NC
    if not path.is_file():
        raise ConfigError(f"{out_dir}: no {RESULTS_NC} (run the sweep first)")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except (OSError, ValueError) as exc:  # h5py's OSError, xarray's ValueError
        raise ConfigError(f"{path}: unreadable netCDF file ({exc})") from None


__all__ = [
    "gather",
    "preload",
    "normalised_score",
    "open_results",
    "paired_interval",
    "summarise",
    "summarise_offline",
    "write_results",
]
