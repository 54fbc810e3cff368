"""experiments/reproduce.py: the classification of published vs rerun arrays (issue: redesign
keeps results bit-identical).  Synthetic arrays with known differences; the reruns themselves
are exercised by running the script (see docs/results/README or the closing notes)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "reproduce.py"
_spec = importlib.util.spec_from_file_location("reproduce", _PATH)
reproduce = importlib.util.module_from_spec(_spec)
sys.modules["reproduce"] = reproduce
_spec.loader.exec_module(reproduce)


def _cases(rows):
    return {name: case for name, case, _ in rows}


def test_each_case_is_named_by_what_differs():
    """Catches a comparison that calls rounding noise identical, a 1e-6 change 'close', NaNs in
    new places 'close', or that forgets missing/new arrays or timing columns."""
    spec = reproduce.Published("x", "x", timing=("seconds",))
    a = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    nan = a.copy()
    nan[0, 0] = np.nan
    old = {"same": a, "round": a, "big": a, "nan": a, "seconds": a, "gone": a, "nan_same": nan}
    new = {
        "same": a.copy(),
        "round": a + 1e-13,
        "big": a + 1e-6,
        "nan": nan,
        "seconds": a + 5.0,
        "extra": a,
        "nan_same": nan.copy(),
    }
    cases = _cases(reproduce.compare(old, new, spec, None))
    assert cases == {
        "same": "identical",
        "round": "close",
        "big": "DIFFERS",
        "nan": "DIFFERS",
        "seconds": "timing",
        "gone": "MISSING",
        "extra": "NEW",
        "nan_same": "identical",
    }


def test_a_seed_subset_compares_the_first_rows_and_skips_aggregates():
    """Catches slicing the wrong axis or comparing an all-seed mean with a subset's."""
    spec = reproduce.Published("x", "x", seed_axis={"per_seed": 1})
    per_seed = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    old = {"per_seed": per_seed, "mean": per_seed.mean(1)}
    new = {"per_seed": per_seed[:, :2], "mean": per_seed[:, :2].mean(1)}
    assert _cases(reproduce.compare(old, new, spec, 2)) == {
        "per_seed": "identical",
        "mean": "aggregate-skipped",
    }
    wrong = {"per_seed": per_seed[:, 1:3], "mean": new["mean"]}
    assert _cases(reproduce.compare(old, wrong, spec, 2))["per_seed"] == "DIFFERS"


def test_sampled_arrays_pass_within_monte_carlo_error_and_fail_beyond():
    """Catches a Monte Carlo check that accepts a posterior shifted by many standard errors,
    or rejects two independent chains from the same posterior."""
    rng = np.random.default_rng(0)
    spec = reproduce.Published("x", "x", sampled=("theta_nuts",))
    old = rng.normal(size=(4, 1000, 3))
    same_posterior = rng.normal(size=(4, 1000, 3))
    shifted = same_posterior + np.array([0.0, 0.0, 0.5])
    ok = _cases(reproduce.compare({"theta_nuts": old}, {"theta_nuts": same_posterior}, spec, None))
    bad = _cases(reproduce.compare({"theta_nuts": old}, {"theta_nuts": shifted}, spec, None))
    assert ok == {"theta_nuts": "sampled-ok"}
    assert bad == {"theta_nuts": "sampled-DIFFERS"}
