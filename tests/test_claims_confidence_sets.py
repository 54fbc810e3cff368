"""Claims of docs/results/confidence_sets (README.md, full/tables.md, ci_scale/tables.md).

Every cell of both ``tables.md`` is recomputed from that folder's ``results.npz``: coverage
proportions must be counts of the replications, their brackets exact Clopper-Pearson bands
from Beta quantiles (written in tests/claims.py, not the library's), SBC p-values re-derived
from the stored ranks with SciPy. A table left from another run, a band computed another way
(normal approximation, wrong count), a column shifted between methods fails here.
"""

from __future__ import annotations

import json

import pytest
from claims import (
    RESULTS,
    cell,
    claim,
    clopper_pearson,
    manifest,
    published,
    sbc_pvalues,
    table,
    versions,
)

NAME = "confidence_sets"
README = f"docs/results/{NAME}/README.md"
RUNS = ("full", "ci_scale")
CASES = ("well_specified", "misspecified", "near_deterministic")
MAIN = ("Wald", "LR (chi2)", "Laplace", "NUTS")  # coverage[..., method, ...]
ALL = ("Wald", "LR (chi2)", "LR (paper radius)", "Laplace", "NUTS")  # width[..., method, ...]
TARGETS = ("theta", "nu_cell", "nu_avg", "nu_worst", "value")
SBC_NUTS = {
    "full": "NUTS (SBC runs): fraction with divergences 0.000, median min-ESS 387.",
    "ci_scale": "NUTS (SBC runs): fraction with divergences 0.000, median min-ESS 240.",
}
COVERAGE_TABLES = {
    "## Coverage of theta (joint set) at 95%": "theta",
    "## Coverage of nu at (h,s,a,b)=(0,0,0,0) at 95%": "nu_cell",
    "## Coverage of nu, mean over cells at 95%": "nu_avg",
    "## Coverage of nu, worst cell at 95%": "nu_worst",
    "## Coverage of leader value J(pi) at 95%": "value",
}


def doc(run):
    return f"docs/results/{NAME}/{run}/tables.md"


def cfg(run):
    return manifest(f"{NAME}/{run}")["config"]


def summary(run):
    return json.loads((RESULTS / NAME / run / "results.json").read_text())["summary"]


def with_band(p, reps, banded):
    """``p`` and, for a binomial count, its exact band; ``p * reps`` must be an integer."""
    if not banded:
        return (p,)
    k = round(p * reps)
    assert abs(k - p * reps) < 1e-6, f"{p} is not a count of {reps}"
    return (p, *clopper_pearson(k, reps))


@pytest.mark.parametrize("run", RUNS)
def test_coverage_tables(run):
    # coverage at 95% per case and n; brackets recomputed from the count
    a, c = published(f"{NAME}/{run}"), cfg(run)
    reps, i95 = c["seeds"], c["levels"].index(0.95)
    claim(doc(run), f"# {NAME}: coverage tables ({reps} replications per row)", reps)
    for heading, target in COVERAGE_TABLES.items():
        rows = table(doc(run), heading)
        ti, banded = TARGETS.index(target), target in ("theta", "nu_cell", "value")
        assert [(r["case"], int(r["n"])) for r in rows] == [
            (cs, n) for cs in c["cases"] for n in c["sample_sizes"]
        ]
        for r in rows:
            ci, ni = CASES.index(r["case"]), c["sample_sizes"].index(int(r["n"]))
            for mi, m in enumerate(MAIN):
                p = a["coverage"][ci, ni, mi, ti, i95]
                cell(r[m], *with_band(p, reps, banded), where=f"{run} {heading} {r} {m}")
            p = a["coverage_theory"][ci, ni, ti]
            cell(r["LR (paper radius)"], *with_band(p, reps, banded), where=f"{run} {heading} {r}")


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("target", ["theta", "value"])
def test_calibration_tables(run, target):
    a, c = published(f"{NAME}/{run}"), cfg(run)
    n = max(c["sample_sizes"])
    what = "theta (joint set)" if target == "theta" else "leader value J(pi)"
    rows = table(doc(run), f"## Calibration of {what} at n = {n}")
    assert [float(x) for x in list(rows[0])[2:]] == c["levels"]
    for r in rows:
        ci, mi = CASES.index(r["case"]), MAIN.index(r["method"])
        for li, lv in enumerate(c["levels"]):
            p = a["coverage"][ci, -1, mi, TARGETS.index(target), li]
            cell(r[list(r)[2 + li]], *with_band(p, c["seeds"], True), where=f"{run} {r} {lv}")


@pytest.mark.parametrize("run", RUNS)
def test_set_size_tables(run):
    a, c = published(f"{NAME}/{run}"), cfg(run)
    sizes = {
        "## Set size: median log volume of the 95% theta set": "theta",
        "## Set size: mean width of the 95% nu intervals": "nu_avg",
        "## Set size: mean width of the 95% value interval": "value",
    }
    for heading, target in sizes.items():
        for r in table(doc(run), heading):
            ci, ni = CASES.index(r["case"]), c["sample_sizes"].index(int(r["n"]))
            for m in list(r)[2:]:
                v = a["width"][ci, ni, ALL.index(m), TARGETS.index(target)]
                cell(r[m], v, where=f"{run} {heading} {r} {m}")


@pytest.mark.parametrize("run", RUNS)
def test_diagnostics_and_sbc(run):
    a, c = published(f"{NAME}/{run}"), cfg(run)
    cols = {
        "MLE converged": "diag_mle_converged",
        "LR set unbounded (95%)": "diag_lr_unbounded",
        "NUTS runs with divergences": "diag_nuts_divergent_frac",
        "NUTS median min-ESS": "diag_nuts_ess_min_median",
        "NUTS mean accept": "diag_nuts_accept_mean",
        "NUTS mean leapfrog steps": "diag_nuts_steps_mean",
    }
    rows = table(doc(run), "## Diagnostics (fractions of replications unless stated)")
    for r in rows:
        ci, ni = CASES.index(r["case"]), c["sample_sizes"].index(int(r["n"]))
        for col, key in cols.items():
            v = a[key][ci, ni]
            # a median ESS printed as an integer: rounds_to reads "360" at unit precision
            cell(r[col], v, where=f"{run} diagnostics {r} {col}")
    n_draws = c["nuts_samples"] // c["sbc_thin"]
    claim(
        doc(run),
        f"## Simulation-based calibration ({c['sbc_replications']} replications, "
        f"{c['sbc_sample_size']} episodes, {n_draws} draws kept)",
        c["sbc_replications"],
        c["sbc_sample_size"],
        n_draws,
    )
    for r in table(doc(run), "| posterior | theta[0] chi2 p / KS p | theta[1] chi2 p / KS p |"):
        ranks = a[f"sbc_ranks_{r['posterior'].lower()}"]
        assert ranks.shape == (c["sbc_replications"], 2) and ranks.max() <= n_draws
        p = sbc_pvalues(ranks, n_draws)
        cell(r["theta[0] chi2 p / KS p"], p[0, 0], p[0, 1], where=f"{run} SBC {r}")
        cell(r["theta[1] chi2 p / KS p"], p[1, 0], p[1, 1], where=f"{run} SBC {r}")
    # no per-run array for the SBC NUTS diagnostics: checked against the run's own summary
    s = summary(run)
    claim(doc(run), SBC_NUTS[run], s["sbc_nuts_divergent_frac"], s["sbc_nuts_ess_min_median"])


def test_versions():
    for run in RUNS:
        versions(
            README, "jax 0.12 CPU, numpyro 0.22.", f"{NAME}/{run}", jax="jax", numpyro="numpyro"
        )


def test_readme():
    full, ci = cfg("full"), cfg("ci_scale")
    claim(
        README,
        "| `ci_scale/` | `python experiments/confidence_sets.py --out <dir>` | 500 per "
        "(case, n) | 30, 300 | 200 warmup + 400 draws | 500 datasets of 50 episodes | 12 min |",
        ci["seeds"],
        *ci["sample_sizes"],
        ci["nuts_warmup"],
        ci["nuts_samples"],
        ci["sbc_replications"],
        ci["sbc_sample_size"],
        None,
    )
    claim(
        README,
        "| `full/` | `python experiments/confidence_sets.py --full --out <dir>` | 1000 "
        "per (case, n) | 10, 100, 1000 | 300 warmup + 600 draws | 1000 datasets of 50 episodes "
        "| 24 min |",
        full["seeds"],
        *full["sample_sizes"],
        full["nuts_warmup"],
        full["nuts_samples"],
        full["sbc_replications"],
        full["sbc_sample_size"],
        None,
    )
    claim(README, "(load average 10-14 during the runs;", None, None)  # not recorded
    g = full["game"]
    truth = summary("full")["theta_target"]
    claim(
        README,
        "(`random_game(seed=3)`: S = 2, A = 2, B = 3, H = 2, d = 2, `theta = (0.83, 0.75)`)",
        g["seed"],
        g["n_states"],
        g["n_leader_actions"],
        g["n_follower_actions"],
        g["horizon"],
        g["feature_dim"],
        *truth["well_specified"],
    )
    claim(
        README,
        "`well_specified` (`eta = 1`), `misspecified` (true utility `phi . theta + 0.5 "
        "* noise[h,s,a,b]`,",
        full["eta"],
        full["misspec_scale"],
    )
    claim(README, "pseudo-true KL projection `(0.68, 0.68)`", *truth["misspecified"])
    claim(README, "(the same game at `eta = 10`)", full["large_eta"])
    assert truth["near_deterministic"] == truth["well_specified"]
    for run in RUNS:  # the two folders share every setting but the scale
        c = cfg(run)
        assert (c["game"], c["cases"], c["prior_scale"]) == (g, full["cases"], 1.0)
    claim(README, "Posteriors use the prior `N(0, I)`.", 0)
    claim(README, "(rank histograms with the 99% band of a uniform histogram)", 99)
    claim(
        README,
        "Every coverage number is over the stated number of independent datasets and "
        "comes with an exact Clopper-Pearson 95% band.",
        95,
    )
