"""The labelled aggregation of set coverage (bayes_qse.experiments.coverage_results) against
an independent NumPy computation on a small synthetic batch.

The batch is random (indicators, widths, statistics, diagnostics) with distinct values per
construction, level and cell, so a reduction over the wrong dimension, a dropped mask or a
mislabelled coordinate changes some golden number.  The goldens are plain loops over
replications written here from the definitions in the module docstring (coverage = fraction
of replications whose set holds the truth; cell average / worst cell over the per-cell
coverages; Clopper-Pearson bands from scipy's Beta quantiles), not calls of the code under
test.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_qse.experiments.coverage_results import MAIN, replication_dataset, summarise_coverage
from bayes_qse.experiments.set_coverage import METHODS, TARGETS

R, LEVELS, G, D = 23, [0.8, 0.9, 0.95], 7, 3
CELL, THEORY_RADIUS = 4, 5.5


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(7)
    K = len(LEVELS)
    a = {}
    for i, m in enumerate(METHODS):
        k = 1 if m == "lr_theory" else K
        # coverage probability differs by construction and cell: a transposed axis shows
        p = np.linspace(0.3, 0.95, G + 1)[None, None, :] ** (1 + 0.3 * i)
        a[f"cover_{m}"] = rng.random((R, k, G + 1)) < p
        a[f"width_{m}"] = rng.gamma(2.0 + i, 1.0 + np.arange(k)[None, :, None], (R, k, G + 1))
        if m != "lr_theory":
            a[f"logvol_{m}"] = rng.normal(i, 1.0, R)
    for m in ("wald", "lr", "laplace"):
        a[f"stat_{m}"] = rng.chisquare(D, R) * 1.2
    a["cover_theta_nuts"] = rng.random((R, K)) < 0.85
    a["mle_converged"] = rng.random(R) < 0.9
    a["lr_unbounded"] = rng.random(R) < 0.2
    a["nuts_divergences"] = rng.poisson(0.3, R)
    a["nuts_ess_min"] = rng.gamma(50.0, 2.0, R)
    a["nuts_accept"] = rng.random(R)
    a["nuts_mean_steps"] = rng.gamma(5.0, 1.0, R)
    return a


@pytest.fixture(scope="module")
def summary(batch):
    return summarise_coverage(replication_dataset(batch, LEVELS, D, THEORY_RADIUS), CELL)


def cp(k, n):
    """95% Clopper-Pearson interval from scipy's Beta quantiles (0 / 1 at the edges)."""
    lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return lo, hi


def golden_targets(cover, theta):
    """Coverage of the five targets from indicators cover[r, f] (f = G: the value) and
    theta[r], by loops over replications."""
    per_cell = [sum(bool(cover[r, c]) for r in range(R)) / R for c in range(G)]
    return {
        "theta": sum(bool(t) for t in theta) / R,
        "nu_cell": per_cell[CELL],
        "nu_avg": sum(per_cell) / G,
        "nu_worst": min(per_cell),
        "value": sum(bool(cover[r, G]) for r in range(R)) / R,
    }


def test_coverage_of_every_target_matches_loops(batch, summary):
    """Catches a mean over the wrong dimension (e.g. over levels instead of replications), a
    worst cell taken as a maximum, the chosen cell or the value read from the wrong
    ``functional`` coordinate, and a construction or level mislabelled (the goldens are
    indexed by name)."""
    for k, level in enumerate(LEVELS):
        chi = stats.chi2.ppf(level, D)
        for m in MAIN:
            theta = batch["cover_theta_nuts"][:, k] if m == "nuts" else batch[f"stat_{m}"] <= chi
            want = golden_targets(batch[f"cover_{m}"][:, k], theta)
            got = summary["coverage"].sel(construction=m, level=level)
            for t in TARGETS:
                assert float(got.sel(target=t)) == pytest.approx(want[t], abs=1e-12), (m, t)


def test_lr_theory_uses_its_own_radius_and_level(batch, summary):
    """Catches the paper-radius set judged with the chi-square radius, or its (single-level)
    intervals confused with another construction's."""
    theta = batch["stat_lr"] <= THEORY_RADIUS
    want = golden_targets(batch["cover_lr_theory"][:, 0], theta)
    for t in TARGETS:
        got = float(summary["coverage_theory"].sel(target=t))
        assert got == pytest.approx(want[t], abs=1e-12), t


def test_bands_are_clopper_pearson_on_binomial_targets_only(summary):
    """Catches a dropped ``where`` (bands reported for the cell average or worst cell, which
    are not binomial counts) and bands computed from the wrong count."""
    cov = summary["coverage"]
    for m in MAIN:
        for level in LEVELS:
            for t in TARGETS:
                lo = float(summary["coverage_lo"].sel(construction=m, level=level, target=t))
                hi = float(summary["coverage_hi"].sel(construction=m, level=level, target=t))
                if t in ("nu_avg", "nu_worst"):
                    assert np.isnan(lo) and np.isnan(hi), (m, t)
                    continue
                k = round(float(cov.sel(construction=m, level=level, target=t)) * R)
                want = cp(k, R)
                assert (lo, hi) == pytest.approx(want, abs=1e-10), (m, level, t)


def test_set_sizes_and_diagnostics_match_numpy(batch, summary):
    """Catches widths read at the wrong level (the sizes are at 95%; ``lr_theory`` at its
    own single level), a mean instead of the median log volume, a width for the worst cell,
    and a diagnostic reduced by the wrong statistic."""
    i95 = LEVELS.index(0.95)
    for m in METHODS:
        w = batch[f"width_{m}"][:, 0 if m == "lr_theory" else i95]
        got = summary["width"].sel(all_constructions=m)
        assert float(got.sel(target="nu_cell")) == pytest.approx(np.mean(w[:, CELL]), rel=1e-12)
        assert float(got.sel(target="nu_avg")) == pytest.approx(np.mean(w[:, :G]), rel=1e-12)
        assert float(got.sel(target="value")) == pytest.approx(np.mean(w[:, G]), rel=1e-12)
        assert np.isnan(float(got.sel(target="nu_worst")))
        theta = float(got.sel(target="theta"))
        if m == "lr_theory":
            assert np.isnan(theta)
        else:
            logvol = sorted(batch[f"logvol_{m}"])
            assert theta == pytest.approx(logvol[R // 2], rel=1e-12)  # R odd: middle value
    want = {
        "mle_converged": np.mean(batch["mle_converged"]),
        "lr_unbounded": np.mean(batch["lr_unbounded"]),
        "nuts_divergent_frac": np.mean(batch["nuts_divergences"] > 0),
        "nuts_ess_min_median": sorted(batch["nuts_ess_min"])[R // 2],
        "nuts_accept_mean": np.mean(batch["nuts_accept"]),
        "nuts_steps_mean": np.mean(batch["nuts_mean_steps"]),
    }
    for key, value in want.items():
        assert float(summary[f"diag_{key}"]) == pytest.approx(value, rel=1e-12), key


def test_dimensions_are_named_and_coordinated(summary):
    """Catches a coordinate that does not label its axis (e.g. constructions in another
    order than the values): the per-construction means differ by construction, so a
    relabelled axis fails the checks above; here the layout the npz writers rely on."""
    assert summary["coverage"].dims == ("construction", "target", "level")
    assert list(summary["construction"].values) == list(MAIN)
    assert list(summary["all_constructions"].values) == list(METHODS)
    assert list(summary["target"].values) == list(TARGETS)
    assert summary["width"].dims == ("all_constructions", "target")
    assert isinstance(summary, xr.Dataset)


def test_sweep_results_reduce_seeds_and_pick_constructions(batch, monkeypatch):
    """rationality_sweep's labelled results from synthetic regret and width data, against
    NumPy: catches the cumulative sum or the mean taken over the wrong dimension (seeds vs
    episodes), a standard error without ``ddof=1`` or ``sqrt(n)``, the set size read at the
    first episode, and ``lr_theory``'s value coverage or ``theta`` coverage mixed up with a
    neighbouring construction's (its ``theta`` set is not at 95%: NaN)."""
    from bayes_qse.experiments import rationality_sweep as rs

    rng = np.random.default_rng(3)
    etas, learners, seeds, T = [0.5, 2.0], ["a", "b", "c"], 4, 6
    regret = rng.gamma(1.0, 1.0, (2, 3, seeds, T))
    size = rng.gamma(2.0, 1.0, (2, 3, seeds, T))
    dims = ("eta", "learner", "seed", "episode")
    online = xr.Dataset(
        {"regret": (dims, regret), "set_size": (dims, size)},
        coords={"eta": etas, "learner": learners, "seed": np.arange(seeds)},
    )
    other = {**batch, **{f"cover_{m}": ~batch[f"cover_{m}"] for m in METHODS}}
    per_eta = [
        summarise_coverage(replication_dataset(b, LEVELS, D, THEORY_RADIUS), CELL)
        for b in (batch, other)
    ]
    width = xr.concat(per_eta, xr.Variable("eta", etas))
    monkeypatch.setattr(rs, "regret_dataset", lambda store, config: online)
    monkeypatch.setattr(rs, "width_dataset", lambda store, config: width)
    config = {"seeds": seeds, "width_replications": R}
    ds = rs.sweep_results(None, config)
    arrays = rs.sweep_arrays(ds)
    final = np.zeros((2, 3, seeds))
    for e in range(2):
        for li in range(3):
            for s in range(seeds):
                final[e, li, s] = sum(regret[e, li, s, t] for t in range(T))
    np.testing.assert_allclose(arrays["final_regret"], final, rtol=1e-12)
    mean = final.sum(-1) / seeds
    se = np.sqrt(((final - mean[..., None]) ** 2).sum(-1) / (seeds - 1) / seeds)
    np.testing.assert_allclose(arrays["final_regret_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(arrays["final_regret_se"], se, rtol=1e-12)
    curve = np.cumsum(regret, axis=-1).sum(axis=2) / seeds
    np.testing.assert_allclose(arrays["mean_cumulative_regret"], curve, rtol=1e-12)
    np.testing.assert_allclose(arrays["online_set_size_final"], size[..., -1].mean(-1))
    assert arrays["methods"] == list(METHODS) and arrays["learners"] == learners
    i95 = LEVELS.index(0.95)
    for e, b in enumerate((batch, other)):
        for j, m in enumerate(METHODS):
            k = 0 if m == "lr_theory" else i95
            want_value = np.mean(b[f"cover_{m}"][:, k, G])
            assert arrays["coverage_value"][e, j] == pytest.approx(want_value, abs=1e-12)
            w = b[f"width_{m}"][:, k]
            assert arrays["width_nu"][e, j] == pytest.approx(np.mean(w[:, :G]), rel=1e-12)
        theta = arrays["coverage_theta"][e]
        assert np.isnan(theta[METHODS.index("lr_theory")])
        chi = stats.chi2.ppf(0.95, D)
        assert theta[METHODS.index("laplace")] == pytest.approx(np.mean(b["stat_laplace"] <= chi))
        assert theta[METHODS.index("nuts")] == pytest.approx(np.mean(b["cover_theta_nuts"][:, i95]))
