"""Claims of docs/results/rationality_sweep (README.md and table.md), from its results.npz.

Regret means and standard errors are recomputed from the per-seed ``final_regret[eta, learner,
seed]``; coverage bands from Beta quantiles of the coverage counts; ratios and ranges from the
width arrays. A table or README left from another run, or a comparison that no longer holds,
fails here.
"""

from __future__ import annotations

import numpy as np
from claims import (
    cell,
    claim,
    clopper_pearson,
    manifest,
    mean_se,
    published,
    published_at,
    quote,
    sig,
    table,
    versions,
)

NAME = "rationality_sweep"
README = f"docs/results/{NAME}/README.md"
TABLE = f"docs/results/{NAME}/table.md"
METHODS = ("Wald", "LR (chi2)", "LR (paper radius)", "Laplace", "NUTS")  # width arrays' order
OLD = "ac310b1"  # the first-order-bonus run the README cites
ISSUE11 = "38d4268"  # the run this republish replaced (before commit 1bd2e15)


def arrays():
    return published(NAME)


def cfg():
    return manifest(NAME)["config"]


def eta_index(eta):
    return int(np.flatnonzero(np.isclose(arrays()["etas"], eta))[0])


def regret(eta, learner, run=None):
    r = run or arrays()
    return mean_se(r["final_regret"][eta_index(eta), cfg()["learners"].index(learner)])


def test_settings():
    # a README describing another game, grid or seed count than the manifest's fails
    c, g = cfg(), cfg()["game"]
    claim(
        README,
        "(`random_game(seed=3)`: S = 2, A = 2, B = 3, H = 2, d = 2)",
        g["seed"],
        g["n_states"],
        g["n_leader_actions"],
        g["n_follower_actions"],
        g["horizon"],
        g["feature_dim"],
    )
    claim(README, "`eta` in {0.1, 0.3, 1, 3, 10, 30, 100}", *c["etas"])
    assert list(arrays()["etas"]) == c["etas"]
    assert arrays()["final_regret"].shape == (7, 2, c["seeds"])
    assert arrays()["mean_cumulative_regret"].shape[-1] == c["episodes"]
    claim(README, "200 episodes x 8 seeds, planning mode", c["episodes"], c["seeds"])
    assert c["known_model"]  # planning mode: known transitions and rewards
    claim(
        README,
        "set widths from 300 datasets of 100 episodes per `eta`",
        c["width_replications"],
        c["width_sample_size"],
    )
    # wall time and CPU time: not in the manifest (measured by /usr/bin/time)
    claim(README, "| 8 min 12 s (2 min 35 s of it running; see below) |", None, None, None, None)
    claim(
        README,
        "held every other Python process stopped (SIGSTOP); the run itself used 87 s of CPU",
        None,
    )
    from bayes_qse.experiments.rationality_sweep import DEFAULT_CONFIG as D

    claim(
        README,
        "4 values of `eta`, 50 episodes x 3 seeds, 100 datasets",
        len(D["etas"]),
        D["episodes"],
        D["seeds"],
        D["width_replications"],
    )
    claim(
        TABLE,
        "Cumulative regret after 200 episodes (mean +/- standard error over 8 seeds;",
        c["episodes"],
        c["seeds"],
    )
    claim(TABLE, "Set sizes at 95% (300 datasets per eta)", 95, c["width_replications"])


def test_versions_and_grid():
    versions(README, "jax 0.12 CPU, numpyro 0.22.", NAME, jax="jax", numpyro="numpyro")
    claim(
        README,
        "as the follower's rationality `eta` goes from 0.1 to 100",
        min(cfg()["etas"]),
        max(cfg()["etas"]),
    )


def test_regret_table():
    # each cell is the mean +/- standard error (ddof = 1) of the 8 seeds' final regret
    rows = table(TABLE, "| eta | mle-optimistic | thompson |")
    assert [float(r["eta"]) for r in rows] == cfg()["etas"]
    for r in rows:
        eta = float(r["eta"])
        for learner in ("mle-optimistic", "thompson"):
            m, se = regret(eta, learner)
            cell(r[learner], m, se, where=f"{TABLE} eta={eta} {learner}")


def test_width_table():
    # widths and log volumes are the run's aggregates; coverages are counts of 300 datasets
    rows = table(
        TABLE,
        "| eta | method | nu width | value width | log vol theta | cover theta | cover value |",
    )
    a, reps = arrays(), cfg()["width_replications"]
    assert len(rows) == len(cfg()["etas"]) * len(METHODS)
    cols = {
        "nu width": "width_nu",
        "value width": "width_value",
        "log vol theta": "logvol_theta",
        "cover theta": "coverage_theta",
        "cover value": "coverage_value",
    }
    for r in rows:
        i, j = eta_index(float(r["eta"])), METHODS.index(r["method"])
        for col, key in cols.items():
            v = a[key][i, j]
            if key.startswith("coverage") and np.isfinite(v):
                assert abs(v * reps - round(v * reps)) < 1e-6, (r, col)  # a count of 300
            cell(r[col], v, where=f"{TABLE} {r['eta']} {r['method']} {col}")
    line = quote(
        TABLE,
        "MLE converged (fraction of datasets): eta=0.1: 1.000, eta=0.3: 1.000, "
        "eta=1: 1.000, eta=3: 1.000, eta=10: 1.000, eta=30: 1.000, eta=100: 1.000",
    )
    assert np.all(a["mle_converged"] == 1.0) and len(line) == 14


def test_regret_reading():
    # "grows with eta, far faster for mle-optimistic": both learners' regret at eta >= 30 is
    # above their regret at eta <= 1, and mle-optimistic is more than 3x Thompson there
    small = [regret(e, "mle-optimistic")[0] for e in (0.1, 0.3, 1)]
    claim(
        README,
        "after 200 episodes `mle-optimistic` goes from 0.27-0.57 (`eta` <= 1) to "
        "6.2 +/- 1.0 (`eta = 10`), 53.6 +/- 0.4 (`eta = 30`) and 46.1 +/- 0.5 (`eta = 100`), "
        "Thompson sampling from 0.26 to 13.7 +/- 0.6 (`eta = 100`) (mean +/- standard error "
        "over 8 seeds).",
        cfg()["episodes"],
        min(small),
        max(small),
        1,
        *regret(10, "mle-optimistic"),
        10,
        *regret(30, "mle-optimistic"),
        30,
        *regret(100, "mle-optimistic"),
        100,
        regret(0.1, "thompson")[0],
        *regret(100, "thompson"),
        100,
        cfg()["seeds"],
    )
    quote(
        README,
        "**Regret grows with `eta`**, and since issue 11 far faster for "
        "`mle-optimistic` than for Thompson sampling",
    )
    for learner in ("mle-optimistic", "thompson"):
        lo = max(regret(e, learner)[0] for e in (0.1, 0.3, 1))
        assert min(regret(e, learner)[0] for e in (30, 100)) > lo
    for e in (30, 100):
        assert regret(e, "mle-optimistic")[0] > 3 * regret(e, "thompson")[0]


def test_earlier_first_order_run():
    # the numbers of the first-order bonus run, from the arrays committed at ac310b1
    old = published_at(OLD, NAME)
    assert list(old["etas"]) == cfg()["etas"]
    claim(
        README,
        "(which gave 1.45 at `eta = 30` and 2.2 at `eta = 100` but is not an upper "
        "bound at these radii; that run's arrays are `git show "
        "ac310b1:docs/results/rationality_sweep/results.npz`).",
        regret(30, "mle-optimistic", old)[0],
        30,
        regret(100, "mle-optimistic", old)[0],
        100,
    )


def test_set_width_reading():
    a = arrays()
    lv = a["logvol_theta"]
    # "the theta sets shrink as eta grows" (only eta * theta is identified): every set's volume
    # at eta = 100 is far below its volume at eta = 0.1
    for j in (0, 1, 3, 4):
        assert lv[eta_index(100), j] < lv[eta_index(0.1), j] - 2
    assert round(lv[eta_index(0.1), 0], 1) == round(lv[eta_index(0.1), 1], 1)  # Wald and LR
    claim(
        README,
        "(median log volume 2.9 for Wald/LR at `eta = 0.1`, -2.7/-2.8 for LR/NUTS at `eta = 100`)",
        lv[eta_index(0.1), 1],
        0.1,
        lv[eta_index(100), 1],
        lv[eta_index(100), 4],
        100,
    )
    four = [0, 1, 3, 4]
    w = a["width_nu"][: eta_index(3) + 1][:, four]
    claim(
        README,
        "up to 3 (mean 95% width 0.08-0.12 for Wald, LR, Laplace and NUTS).",
        3,
        95,
        w.min(),
        w.max(),
    )
    big = [eta_index(30), eta_index(100)]
    gauss, sharp = a["width_nu"][np.ix_(big, [0, 3])], a["width_nu"][np.ix_(big, [1, 4])]
    claim(README, "Beyond `eta = 10` the Gaussian sets break down", 10)
    assert gauss.min() > 5 * sharp.max()
    claim(
        README,
        "give response intervals of mean width 0.23-0.77 at `eta` = 30-100, where the "
        "likelihood-ratio set and NUTS give 0.031-0.045 with coverage of `theta` at or above "
        "nominal.",
        gauss.min(),
        gauss.max(),
        30,
        100,
        sharp.min(),
        sharp.max(),
    )
    reps = cfg()["width_replications"]
    for i in big:
        for j in (1, 4):  # LR, NUTS: band reaches 0.95 or above
            assert clopper_pearson(round(a["coverage_theta"][i, j] * reps), reps)[1] >= 0.95
    lr_value = a["coverage_value"][big, 1]
    k = round(lr_value[-1] * reps)
    lo, hi = clopper_pearson(k, reps)
    claim(
        README,
        "The LR set's value interval undercovers there (0.88 at 95% over 300 datasets; "
        "Clopper-Pearson 95% band [0.84, 0.91]).",
        lr_value[-1],
        95,
        reps,
        95,
        lo,
        hi,
    )
    for p in lr_value:
        assert round(p, 2) == 0.88
        assert clopper_pearson(round(p * reps), reps)[1] < 0.95  # excludes the nominal
    ratio = a["width_nu"][:, 2] / a["width_nu"][:, 1]
    claim(
        README,
        "The paper's finite-sample radius is 3-5 times wider than the chi-square radius",
        sig(ratio.min(), 1),
        sig(ratio.max(), 1),
    )
    assert np.all(a["coverage_value"][:, 2] == 1.0)  # "covers the value always"
    quote(README, "in response-probability terms and covers the value always")


def test_reproduce_statement():
    # the bit-for-bit comparison is a property of a reproduce.py run, not of these arrays: only
    # the command and the experiments are checked; the count of 194 arrays is not recomputable
    claim(
        README,
        "`python experiments/reproduce.py --seeds 2 --baseline ca3ca7a --only "
        "online_regret offline_suboptimality rationality_sweep`",
        2,
    )
    claim(README, "reported all 194 compared arrays", None)


def test_what_the_republish_changed():
    # the README's account of the republish, from the issue-11 arrays (commit 38d4268) and the
    # new ones: a wrong count of changed seeds, a Thompson number said unchanged that moved, a
    # "before -> after" pair from another run, or a flipped ranking at eta = 3 fails here
    old, new = published_at(ISSUE11, NAME), arrays()
    assert list(old["etas"]) == list(new["etas"])
    opt, ts = cfg()["learners"].index("mle-optimistic"), cfg()["learners"].index("thompson")
    np.testing.assert_array_equal(old["final_regret"][:, ts], new["final_regret"][:, ts])
    np.testing.assert_array_equal(
        old["online_set_size_final"][:, ts], new["online_set_size_final"][:, ts]
    )
    quote(
        README,
        "Only `mle-optimistic` moved; every Thompson-sampling number is bit for bit the same.",
    )
    d = new["final_regret"][:, opt] - old["final_regret"][:, opt]
    counts = (d != 0).sum(axis=1)
    ups = np.argwhere(d > 0)
    assert len(ups) == 1 and np.isclose(new["etas"][ups[0][0]], 10)
    claim(
        README,
        "(largest change 8.95 in one seed's final regret)",
        np.abs(old["final_regret"] - new["final_regret"]).max(),
    )
    claim(
        README,
        "Its final regret changed on 0, 0, 2, 8, 5, 8 and 4 of the 8 seeds at `eta` = 0.1, 0.3, 1, "
        "3, 10, 30, 100, always downwards but for one seed at `eta = 10` (+0.26)",
        *counts,
        cfg()["seeds"],
        *new["etas"],
        10,
        d[ups[0][0], ups[0][1]],
    )
    before = [regret(e, "mle-optimistic", old)[0] for e in (1, 3, 10, 30, 100)]
    after = [regret(e, "mle-optimistic")[0] for e in (1, 3, 10, 30, 100)]
    claim(
        README,
        "its mean went from 0.30 to 0.27 (`eta = 1`), 1.43 to 0.69 (`eta = 3`), 7.8 to 6.2 "
        "(`eta = 10`), 56.8 to 53.6 (`eta = 30`) and 47.6 to 46.1 (`eta = 100`).",
        *[v for pair in zip(before, after, (1, 3, 10, 30, 100), strict=True) for v in pair],
    )
    size_old = old["online_set_size_final"][:, opt]
    size_new = new["online_set_size_final"][:, opt]
    i30, i100 = eta_index(30), eta_index(100)
    claim(
        README,
        "went from 4.77 to 0.57 at `eta = 30` and from 4.12 to 0.40 at `eta = 100`",
        size_old[i30],
        size_new[i30],
        30,
        size_old[i100],
        size_new[i100],
        100,
    )
    # "no ranking flips": at every eta the better learner by mean is the same before and after
    for e in cfg()["etas"]:
        was = regret(e, "mle-optimistic", old)[0] < regret(e, "thompson", old)[0]
        assert was == (regret(e, "mle-optimistic")[0] < regret(e, "thompson")[0]), e
    quote(README, "No ranking and no conclusion above flips")
    claim(
        README,
        "at `eta = 3` it is still behind Thompson sampling (0.69 +/- 0.07 against 0.52 +/- 0.10; "
        "before, 1.43 +/- 0.22).",
        3,
        *regret(3, "mle-optimistic"),
        *regret(3, "thompson"),
        *regret(3, "mle-optimistic", old),
    )


def test_which_commit():
    # the bisection's one-seed difference is seed 0's largest change (at eta = 30): a README
    # quoting another seed's or another eta's difference fails here
    old, new = published_at(ISSUE11, NAME), arrays()
    d = np.abs(new["final_regret"][:, :, 0] - old["final_regret"][:, :, 0])
    i = np.unravel_index(np.argmax(d), d.shape)[0]
    claim(
        README,
        "(`final_regret` max |diff| 3.16: seed 0 at `eta = 30`; the set-width arrays identical)",
        d.max(),
        0,
        new["etas"][i],
    )
