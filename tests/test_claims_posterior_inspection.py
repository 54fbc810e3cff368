"""Claims of docs/results/posterior_inspection (README.md, full/ and ci_scale/summary.md).

The summary tables were written by ``arviz_stats.summary``; here mean, sd and the 94% HDI are
recomputed from the draws in ``posterior_seed0.nc`` with numpy, and R-hat, bulk ESS and the
MCSE of the mean with a re-implementation of the rank-normalised split-R-hat and Geyer's
initial-monotone ESS (Vehtari et al. 2021) written below. A summary left from another run, a
column shifted, a wrong HDI (e.g. equal-tailed) or a sampler that did not mix fails here.
Not recomputed: ``ess_tail`` (checked within 20%: the quantile convention of ArviZ's tail ESS
is not reproduced here) and ``mcse_sd`` (skipped).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import xarray as xr
from claims import RESULTS, cell, claim, manifest, quote, table, versions
from scipy import stats

NAME = "posterior_inspection"
README = f"docs/results/{NAME}/README.md"
RUNS = ("full", "ci_scale")


@functools.cache
def tree(run):
    with xr.open_datatree(RESULTS / NAME / run / "posterior_seed0.nc") as dt:
        return {
            "theta": dt["posterior"]["theta"].values,  # [chain, draw, d]
            "nu": dt["posterior"]["nu"].values,  # [chain, draw, hs, A, B]
            "diverging": dt["sample_stats"]["diverging"].values,
            "theta_true": dt["constant_data"]["theta_true"].values,
            "nu_true": dt["constant_data"]["nu_true"].values,
            "hs": list(dt["posterior"]["hs"].values),
        }


def _split(x):
    h = x.shape[1] // 2
    return np.concatenate([x[:, :h], x[:, x.shape[1] - h :]], axis=0)


def _z(x):
    r = stats.rankdata(x, method="average").reshape(x.shape)
    return stats.norm.ppf((r - 3 / 8) / (x.size + 1 / 4))


def _rhat_raw(x):
    n = x.shape[1]
    w = x.var(axis=1, ddof=1).mean()
    b = n * x.mean(axis=1).var(ddof=1)
    return np.sqrt(((n - 1) / n * w + b / n) / w)


def rhat(x):
    """Rank-normalised split R-hat of ``x[chain, draw]`` (max of bulk and folded)."""
    folded = np.abs(x - np.median(x))
    return max(_rhat_raw(_z(_split(x))), _rhat_raw(_z(_split(folded))))


def ess(x):
    """ESS of ``x[chain, draw]``: multi-chain autocorrelation, Geyer's initial positive and
    monotone sequence over pairs of lags, with Stan's last-lag correction."""
    m, n = x.shape
    xc = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(xc, n=2 * n, axis=1)
    acov = (np.fft.irfft(f * np.conj(f), axis=1)[:, :n] / n).mean(axis=0)
    w = acov[0] * n / (n - 1)
    var_plus = w * (n - 1) / n + x.mean(axis=1).var(ddof=1)
    rho = np.zeros(n)
    rho[0], even, odd = 1.0, 1.0, 1 - (w - acov[1]) / var_plus
    rho[1] = odd
    t = 1
    while t < n - 3 and even + odd > 0:
        even, odd = 1 - (w - acov[t + 1]) / var_plus, 1 - (w - acov[t + 2]) / var_plus
        if even + odd >= 0:
            rho[t + 1], rho[t + 2] = even, odd
        t += 2
    last = t - 2
    if even > 0:
        rho[last + 1] = even
    t = 1
    while t <= last - 2:  # monotone: each pair no larger than the one before
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2
        t += 2
    tau = -1 + 2 * rho[: last + 1].sum() + rho[last + 1]
    return m * n / max(tau, 1 / np.log10(m * n))


def ess_bulk(x):
    return ess(_z(_split(x)))


def ess_tail(x):
    q5, q95 = np.quantile(x, [0.05, 0.95])
    return min(ess(_split((x <= q).astype(float))) for q in (q5, q95))


def hdi(x, prob=0.94):
    """Shortest interval holding ``floor(prob * N)`` + 1 of the sorted draws."""
    s = np.sort(x.ravel())
    k = int(np.floor(prob * s.size))
    i = int(np.argmin(s[k:] - s[: s.size - k]))
    return s[i], s[i + k]


def variables(run):
    t = tree(run)
    out = {f"theta[{j}]": t["theta"][..., j] for j in range(t["theta"].shape[-1])}
    for i, hs in enumerate(t["hs"]):
        for a in range(t["nu"].shape[3]):
            for b in range(t["nu"].shape[4]):
                out[f"nu[{hs}, {a}, {b}]"] = t["nu"][:, :, i, a, b]
    return out


@pytest.mark.parametrize("run", RUNS)
def test_summary_table(run):
    rows = table(f"docs/results/{NAME}/{run}/summary.md", "# ArviZ summary (posterior_seed0.nc)")
    draws = variables(run)
    assert [r["variable"] for r in rows] == list(draws)
    for r in rows:
        x, where = draws[r["variable"]], f"{run} {r['variable']}"
        lo, hi = hdi(x)
        e = ess(_split(x))
        cell(r["mean"], x.mean(), where=where)
        cell(r["sd"], x.std(ddof=1), where=where)
        cell(r["hdi94_lb"], lo, where=where)
        cell(r["hdi94_ub"], hi, where=where)
        cell(r["ess_bulk"], ess_bulk(x), where=where)
        cell(r["r_hat"], rhat(x), where=where)
        cell(r["mcse_mean"], x.std(ddof=1) / np.sqrt(e), where=where)
        tail = float(r["ess_tail"])
        assert abs(tail / ess_tail(x) - 1) < 0.2, (where, tail, ess_tail(x))


def test_readme_settings():
    from bayes_qse.games import patrol_game

    full, ci = manifest(f"{NAME}/full")["config"], manifest(f"{NAME}/ci_scale")["config"]
    assert full["game"] == ci["game"] == "patrol"
    t = tree("full")
    claim(
        README,
        "on the `patrol` game (d = 4, myopic follower, `eta = 2`)",
        t["theta_true"].size,
        patrol_game().eta,
    )
    assert not patrol_game().farsighted
    for run, c, snippet in (
        ("ci_scale", ci, "| 200 episodes, 4 chains x (300 warmup + 400 draws) | 3.5 min |"),
        ("full", full, "| 500 episodes, 4 chains x (1000 warmup + 1000 draws) | 1.5 min |"),
    ):
        claim(
            README,
            snippet,
            c["n_episodes"],
            c["num_chains"],
            c["num_warmup"],
            c["num_samples"],
            None,
        )
        assert tree(run)["theta"].shape[:2] == (c["num_chains"], c["num_samples"])
    claim(README, "(load average 10-14 during the runs)", None, None)
    claim(README, "at `(h, s) = (0, 0)` and `(1, 1)`", *[v for hs in full["states"] for v in hs])
    claim(README, "`posterior_vs_truth.png` (NUTS and Laplace 90%", 90)
    claim(README, "`responses.png` (NUTS 94% intervals", 94)


def test_versions():
    import xarray as xr

    for run in RUNS:
        versions(
            README,
            "jax 0.12 CPU, numpyro 0.22, ArviZ 1.3.",
            f"{NAME}/{run}",
            jax="jax",
            numpyro="numpyro",
        )
        with xr.open_datatree(RESULTS / NAME / run / "posterior_seed0.nc") as dt:
            arviz = dt["posterior"].attrs["creation_library_version"]
        assert arviz.startswith("1.3."), arviz


def test_readme_reading():
    # the full run: no divergences, R-hat 1.00, bulk ESS > 1000, truth inside every 94% HDI
    t, draws = tree("full"), variables("full")
    assert not t["diverging"].any()
    thetas = [draws[f"theta[{j}]"] for j in range(t["theta_true"].size)]
    r, e = [rhat(x) for x in thetas], [ess_bulk(x) for x in thetas]
    claim(
        README,
        "no divergences, R-hat = 1.00 and bulk ESS > 1000 for every coordinate in the full run;",
        max(r),
        None,
    )
    assert min(e) > 1000, e
    claim(
        README,
        "the true `theta = (1.0, -1.5, -0.2, -0.5)` lies inside every 94% HDI",
        *t["theta_true"],
        94,
    )
    bands = [hdi(x) for x in thetas]
    inside = [lo <= v <= hi for v, (lo, hi) in zip(t["theta_true"], bands, strict=True)]
    assert all(inside), (bands, t["theta_true"])
    # "coordinates 2 and 3 only just": the truth is closer to an end of these two HDIs than
    # a tenth of their width; "2 and 3" count from 1, as theta[2] and theta[3] of the table
    margin = [
        min(v - lo, hi - v) / (hi - lo) for v, (lo, hi) in zip(t["theta_true"], bands, strict=True)
    ]
    assert sorted(range(4), key=lambda j: margin[j])[:2] == [3, 2] or sorted(
        range(4), key=lambda j: margin[j]
    )[:2] == [2, 3], margin
    assert max(margin[2], margin[3]) < 0.1
    claim(
        README,
        "coordinates 2 and 3 only just ([-0.22, 0.38] and [-1.02, -0.50]:",
        None,
        None,
        *bands[2],
        *bands[3],
    )
    # response probabilities "within a few hundredths" of the truth, near-zero cells included
    err = np.abs(t["nu"].mean(axis=(0, 1)) - t["nu_true"])
    assert err.max() < 0.05, err.max()
    quote(README, "the response probabilities are estimated to within a few hundredths")
    assert t["nu_true"].min() < 0.01  # the near-zero cells exist and are covered by the check
