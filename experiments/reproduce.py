"""Rerun the published experiments and compare their arrays with ``docs/results``, bit for bit.

Each published folder under ``docs/results`` holds a ``manifest.json`` (the exact config) and a
``results.npz``.  This script reruns the experiment with that config (optionally only the first
``--seeds K`` seeds: every seed's numbers are independent of the batch it runs in, so the first
``K`` rows of a per-seed array must match the published ones) and says, for every array, which
case it is:

- ``identical``: bit for bit (``NaN`` in the same places);
- ``close``: a deterministic array that differs only in rounding, ``max |diff| <= 1e-10``;
- ``sampled-ok`` / ``sampled-DIFFERS``: an array computed from MCMC draws, compared within
  Monte Carlo error (4 standard errors, see :func:`sampled_check`);
- ``timing``: wall-clock seconds, not compared;
- ``aggregate-skipped``: an aggregate over all seeds when only ``--seeds K`` were rerun;
- ``DIFFERS`` / ``MISSING`` / ``NEW``: a real difference.

XLA compiles for the host CPU (its vector width, fused multiply-adds), so arrays published from
another machine can differ in the last bits even where the code is unchanged, and chaotic
parts (a planner's argmax after a near-tie) then diverge.  ``--baseline REV`` therefore reruns
the code of git revision ``REV`` on *this* machine and compares with that instead: the check
that a refactoring kept every computation bit for bit.

Usage::

    python experiments/reproduce.py                      # everything (about an hour on 2 cores)
    python experiments/reproduce.py --seeds 2 --only online_regret offline_suboptimality
    python experiments/reproduce.py --seeds 2 --baseline 0f8ff11 --only online_regret
    python experiments/reproduce.py --list

Exit status 0 when no array is ``DIFFERS``/``MISSING``/``sampled-DIFFERS``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
ATOL = 1e-10


@dataclass(frozen=True)
class Published:
    """One published results folder and how to read its arrays.

    Attributes:
        folder: path under ``docs/results``.
        experiment: the registered experiment name.
        seed_axis: array name -> its seed axis (arrays not listed are aggregates over seeds,
            except those matched by ``per_seed_default``).
        per_seed_default: seed axis of every array not named in ``seed_axis`` (None: aggregates).
        timing: arrays of wall-clock seconds (never compared).
        sampled: arrays computed from MCMC draws (compared within Monte Carlo error).
    """

    folder: str
    experiment: str
    seed_axis: dict[str, int] = field(default_factory=dict)
    per_seed_default: int | None = None
    timing: tuple[str, ...] = ()
    sampled: tuple[str, ...] = ()


_OFFLINE_AXES = {k: 2 for k in ("suboptimality", "value", "lower_bound", "lower_bound_holds")}
_CS_SAMPLED = ("coverage", "coverage_lo", "coverage_hi", "width")
_CS_SAMPLED += tuple(f"diag_nuts_{k}" for k in ("divergent_frac", "ess_min_median"))
_CS_SAMPLED += ("diag_nuts_accept_mean", "diag_nuts_steps_mean", "sbc_ranks_nuts")
_CS_SAMPLED += ("sbc_chi2_pvalue_nuts", "sbc_ks_pvalue_nuts")
_PI_SAMPLED = ("theta_nuts", "r_hat", "ess")

PUBLISHED: dict[str, Published] = {
    p.folder: p
    for p in (
        Published("online_regret", "online_regret", per_seed_default=0),
        Published(
            "offline_suboptimality", "offline_suboptimality", _OFFLINE_AXES, timing=("seconds",)
        ),
        Published(
            "offline_suboptimality/known_model",
            "offline_suboptimality",
            _OFFLINE_AXES,
            timing=("seconds",),
        ),
        Published("rationality_sweep", "rationality_sweep", {"final_regret": 2}),
        Published("confidence_sets/ci_scale", "confidence_sets", sampled=_CS_SAMPLED),
        Published("confidence_sets/full", "confidence_sets", sampled=_CS_SAMPLED),
        Published("posterior_inspection/ci_scale", "posterior_inspection", sampled=_PI_SAMPLED),
        Published("posterior_inspection/full", "posterior_inspection", sampled=_PI_SAMPLED),
        Published("security_games", "security_games", per_seed_default=0),
    )
}


def sampled_check(old: np.ndarray, new: np.ndarray, name: str, n_reps: int | None) -> bool:
    """Whether two MCMC-based arrays agree within Monte Carlo error.

    - ``theta_nuts`` ``[chains, draws, d]``: posterior means differ by at most 4 standard
      errors, ``sd * sqrt(2 / n_draws)`` per coordinate (a deliberately generous, ESS-free
      bound is not used: draws are autocorrelated, so ``n_draws`` is divided by 10).
    - proportions (coverage over ``n_reps`` replications): ``|p - q| <= 4 sqrt(2 p(1-p)/n) +
      1/n``.
    - anything else (diagnostics, ranks, p-values): reported, never a failure.
    """
    if old.shape != new.shape:
        return False
    if name == "theta_nuts":
        flat_old = old.reshape(-1, old.shape[-1])
        flat_new = new.reshape(-1, new.shape[-1])
        n_eff = max(flat_old.shape[0] / 10.0, 1.0)
        se = np.sqrt(flat_old.var(0) / n_eff + flat_new.var(0) / n_eff)
        return bool(np.all(np.abs(flat_old.mean(0) - flat_new.mean(0)) <= 4 * se))
    if name.startswith("coverage") and n_reps:
        p = np.nan_to_num(old, nan=0.5)
        tol = 4 * np.sqrt(2 * p * (1 - p) / n_reps) + 1.0 / n_reps
        both_nan = np.isnan(old) & np.isnan(new)
        return bool(np.all(both_nan | (np.abs(old - new) <= tol)))
    return True


def compare(
    old: dict[str, np.ndarray],
    new: dict[str, np.ndarray],
    spec: Published,
    n_seeds: int | None,
    n_reps: int | None = None,
) -> list[tuple[str, str, str]]:
    """``(array, case, detail)`` for every array of the published and the new results.

    ``n_seeds``: only the first ``n_seeds`` seeds were rerun (None: the full config).
    """
    rows = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            rows.append((name, "MISSING", "published array not produced"))
            continue
        if name not in old:
            rows.append((name, "NEW", f"shape {new[name].shape}"))
            continue
        a, b = np.asarray(old[name]), np.asarray(new[name])
        if name in spec.timing:
            rows.append((name, "timing", "wall-clock seconds, not compared"))
            continue
        axis = spec.seed_axis.get(name, spec.per_seed_default)
        if n_seeds is not None:
            if axis is None:
                rows.append((name, "aggregate-skipped", "aggregate over all seeds"))
                continue
            a = np.take(a, np.arange(n_seeds), axis=axis)
        if a.shape != b.shape:
            rows.append((name, "DIFFERS", f"shape {a.shape} published, {b.shape} now"))
            continue
        if np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            rows.append((name, "identical", ""))
            continue
        if name in spec.sampled:
            ok = sampled_check(a, b, name, n_reps)
            diff = _max_diff(a, b)
            rows.append((name, "sampled-ok" if ok else "sampled-DIFFERS", f"max |diff| {diff}"))
            continue
        diff = _max_diff(a, b)
        same_nan = a.dtype.kind != "f" or np.array_equal(np.isnan(a), np.isnan(b))
        case = "close" if same_nan and diff <= ATOL else "DIFFERS"
        rows.append((name, case, f"max |diff| {diff:.3g}"))
    return rows


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


_RUN = """
import json, sys
from pathlib import Path
from bayes_qse.experiments import get_experiment, load_config
manifest, experiment, n_seeds, out = sys.argv[1:5]
config = dict(json.loads(Path(manifest).read_text())["config"])
if n_seeds != "all":
    config["seeds"] = min(int(n_seeds), config["seeds"])
module = get_experiment(experiment)
print(module.run(load_config(module, full=True, overrides=config), Path(out), progress=False))
"""


def rerun(
    spec: Published, n_seeds: int | None, out: Path, tree: Path = ROOT
) -> tuple[dict, float, dict]:
    """Rerun ``spec``'s experiment with its published config (first ``n_seeds`` seeds) into
    ``out``, with the code of ``tree`` (a checkout), in a fresh process; returns the new
    arrays, the wall time and the *published* config."""
    manifest = RESULTS / spec.folder / "manifest.json"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [str(manifest), spec.experiment, "all" if n_seeds is None else str(n_seeds), str(out)]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args], env=env, cwd=tree, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec.folder} failed with {tree}:\n{done.stderr[-2000:]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, time.perf_counter() - start, json.loads(manifest.read_text())["config"]


def baseline_tree(rev: str, where: Path) -> Path:
    """A detached checkout of ``rev`` (``git worktree``) at ``where``."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(where), rev], check=True
    )
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(PUBLISHED), metavar="FOLDER")
    parser.add_argument("--seeds", type=int, default=None, help="rerun only the first K seeds")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="keep the reruns here (a new directory: runs found there are resumed, not redone)",
    )
    parser.add_argument("--list", action="store_true", help="list the published folders")
    parser.add_argument("--json", type=Path, default=None, help="write the comparison here")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="compare with the code of git revision REV rerun on this machine (instead of the "
        "published arrays, which may come from another CPU)",
    )
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        default=None,
        help="keep the baseline reruns under DIR/REV and reuse the finished ones",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(PUBLISHED))
        return 0
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds: must be >= 1")
    report, bad = {}, False
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        old_tree = baseline_tree(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        for folder in args.only or list(PUBLISHED):
            spec = PUBLISHED[folder]
            tag = folder.replace("/", "_")
            if old_tree is None:
                with np.load(RESULTS / folder / "results.npz") as z:
                    old = {k: z[k] for k in z.files}
            else:
                keep = args.baseline_dir / args.baseline if args.baseline_dir else base
                old, _, _ = rerun(spec, args.seeds, keep / f"{tag}_seeds{args.seeds}", old_tree)
            new, seconds, config = rerun(spec, args.seeds, base / f"{tag}_new")
            subset = args.seeds is not None and args.seeds < config["seeds"]
            # against a baseline rerun both sides ran the same subset: compare every array whole
            n_seeds = args.seeds if subset and old_tree is None else None
            n_reps = args.seeds if subset else config.get("seeds")
            rows = compare(old, new, spec, n_seeds, n_reps=n_reps)
            print(
                f"== {folder}  ({spec.experiment}, {seconds:.0f} s"
                + (f", first {args.seeds} seeds)" if subset else ", full config)")
            )
            for name, case, detail in rows:
                print(f"  {case:18s} {name}  {detail}")
                bad |= case in ("DIFFERS", "MISSING", "sampled-DIFFERS")
            report[folder] = {"seconds": seconds, "seeds": args.seeds, "arrays": rows}
    if old_tree is not None:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)])
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    print("REPRODUCED" if not bad else "DIFFERENCES FOUND")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
