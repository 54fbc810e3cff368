"""Every number docs/results/security_games/README.md quotes, recomputed from the published
arrays (tests/claims.py); the arrays published before the rerun of issue 21 are read from
commit ``PREVIOUS`` (``claims.published_at``).  Bug caught: a README number or comparison
that the arrays do not give.
"""

from __future__ import annotations

import numpy as np

from tests.claims import claim, published, published_at, quote

DOC = "docs/results/security_games/README.md"
PREVIOUS = "0aadbe608a6c2e5814d8348d5b8b05d99bdfcbb5"
L = {"greedy": 0, "thompson": 1, "optimistic": 2}


def _arrays():
    return published("security_games"), published_at(PREVIOUS, "security_games")


def _cum(a, learner):
    x = a["regret"][:, L[learner]].sum(-1)
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x)), x


def test_reference_plan():
    a, old = _arrays()
    claim(DOC, "relative gap at most 3.1e-08 on every seed", a["best_relative_gap"].max())
    diff = np.abs(a["best_value"] - old["best_value"]).max()
    claim(DOC, "to within 2.4e-15 on all 10 seeds", diff, a["best_value"].shape[0])


def test_sample_efficiency_changes_and_reading():
    a, old = _arrays()
    quote(DOC, "the errors of the weights are unchanged (identical arrays)")
    assert np.array_equal(a["err_mle"], old["err_mle"])
    assert np.array_equal(a["err_mean"], old["err_mean"])
    d = max(np.abs(a[k] - old[k]).max() for k in ("loss_mle", "loss_mean"))
    claim(DOC, "utility losses changed by at most 1e-05", d)
    assert a["mle_converged"].all() and old["mle_converged"].all()
    e_mle, e_mean = a["err_mle"].mean(0), a["err_mean"].mean(0)
    claim(DOC, "falls from 3.9 (25 attacks) to 0.46 (800)", e_mle[0], None, e_mean[-1], None)
    claim(DOC, "(2.7 vs 3.9 at 25)", e_mean[0], e_mle[0], None)
    claim(DOC, "falls from 0.11 to 0.002", a["loss_mle"].mean(0)[0], a["loss_mle"].mean(0)[-1])
    cov = a["wald_covers"].mean(0)
    claim(DOC, "held the truth in 70-100% of the 10 seeds", 100 * cov.min(), 100 * cov.max(), 10)


def test_online_changes():
    a, old = _arrays()
    g, gs, gx = _cum(a, "greedy")
    og, ogs, ogx = _cum(old, "greedy")
    claim(
        DOC,
        "greedy 19.4 ± 1.6 (was 14.2 ± 1.3; higher on 8 of 10 seeds)",
        g,
        gs,
        og,
        ogs,
        int(np.sum(gx > ogx)),
        len(gx),
    )
    t, ts, _ = _cum(a, "thompson")
    ot, ots, _ = _cum(old, "thompson")
    claim(DOC, "Thompson 29.5 ± 3.7 (was 28.7 ± 3.5)", t, ts, ot, ots)
    o, os_, ox = _cum(a, "optimistic")
    oo, oos, oox = _cum(old, "optimistic")
    claim(
        DOC,
        "optimistic 95.8 ± 12.2 (was 47.4 ± 5.6; higher on 10 of 10 seeds)",
        o,
        os_,
        oo,
        oos,
        int(np.sum(ox > oox)),
        len(ox),
    )
    claim(
        DOC,
        "which costs 4.20 against the true attacker on average over seeds",
        a["regret"][:, 0, 0].mean(),
    )
    claim(DOC, "(the old planner's inexact answer cost 2.35", old["regret"][:, 0, 0].mean())
    claim(DOC, "cumulative regret (19.4), then Thompson (29.5), then", g, t)
    claim(DOC, "best case over 16 Laplace draws; 95.8)", None, o)
    assert g < t < o


def test_planning_changes_and_reading():
    a, old = _arrays()
    d = max(
        np.abs(a[f"plan_loss_{k}"] - old[f"plan_loss_{k}"]).max()
        for k in ("quantile", "point", "bayes")
    )
    claim(DOC, "the losses moved by at most 0.031 per seed", d)
    q, oq = a["plan_loss_quantile"].mean(0)[0], old["plan_loss_quantile"].mean(0)[0]
    claim(DOC, "(the quantile rule at 10 attacks: 0.210, was 0.208)", None, q, oq)
    claim(
        DOC,
        "is 4.4 for the quantile rule and 2.5 for the",
        a["plan_gap_quantile"].max(),
        a["plan_gap_bayes"].max(),
    )
    p, b = a["plan_loss_point"].mean(0)[0], a["plan_loss_bayes"].mean(0)[0]
    claim(DOC, "at 10 attacks the mean losses are 0.210 (quantile), 0.202", None, q, p)
    claim(DOC, "(point) and 0.173 (posterior-mean rule)", b)
    wq, wp = a["plan_loss_quantile"][:, 0].max(), a["plan_loss_point"][:, 0].max()
    claim(DOC, "(1.027 vs 0.756)", wq, wp)
    assert q > b and wq > wp
