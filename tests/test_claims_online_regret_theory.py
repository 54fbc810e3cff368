"""Every number docs/results/online_regret_theory/README.md quotes, recomputed from the
published arrays (tests/claims.py), and its comparative sentences checked on them.

Bug caught: a rerun (or a stale sentence) that changes a published number without the README
changing with it; a slope fitted over another range than the one the README names.
"""

from __future__ import annotations

import numpy as np
import pytest
from claims import REPO, claim, published, quote

DOC = "docs/results/online_regret_theory/README.md"
RUN = "online_regret_theory"
T = 10_000
t = np.arange(1, T + 1)
RANGE = t >= 100  # the README's slope range, 100 <= t <= 10^4


def regret(game, learner):
    return published(RUN)[f"{game}.{learner}.regret"]


def slope(cum):
    """Least-squares slope of log cumulative regret on log t over ``RANGE``."""
    return np.polyfit(np.log(t[RANGE]), np.log(cum[RANGE]), 1)[0]


def final_stats(game, learner):
    cum = regret(game, learner).cumsum(axis=1)
    fin = cum[:, -1]
    per_seed = np.array([slope(c) for c in cum])
    return fin, cum, per_seed


def test_shape_and_seeds():
    arrays = published(RUN)
    np.testing.assert_array_equal(arrays["seeds"], np.arange(10))
    assert regret("linear", "mle-optimistic").shape == (10, T)
    claim(DOC, "**T = 10^4 episodes, 10 seeds** (0-9)", None, None, None, None, None)


@pytest.mark.parametrize(
    ("game", "label", "learner"),
    [
        ("linear", "mle-optimistic (Wald, chi2)", "mle-optimistic"),
        ("linear", "mle-optimistic-theory (LR, paper radius)", "mle-optimistic-theory"),
        ("exploration", "mle-optimistic (Wald, chi2)", "mle-optimistic"),
        ("exploration", "mle-optimistic-theory (LR, paper radius)", "mle-optimistic-theory"),
    ],
)
def test_table_rows(game, label, learner):
    fin, cum, per_seed = final_stats(game, learner)
    se = fin.std(ddof=1) / np.sqrt(len(fin))
    row = f"| {game} | {label} | "
    line = next((ln for ln in (REPO / DOC).read_text().splitlines() if ln.startswith(row)), None)
    assert line is not None, f"{DOC}: no table row {row!r}"
    claim(
        DOC,
        line,
        fin.mean(),
        se,
        np.median(fin),
        fin.max(),
        slope(cum.mean(axis=0)),
        np.median(per_seed),
        per_seed.min(),
        per_seed.max(),
    )


@pytest.mark.parametrize("game", ["linear", "exploration"])
def test_uniform_rows(game):
    fin = regret(game, "uniform").sum(axis=1)
    assert np.ptp(fin) < 1e-6  # a fixed policy: the same exact regret on every seed
    claim(DOC, f"| {game} | uniform | {fin[0]:.0f} | - | 1.00 | - |", fin[0], 1.0)
    assert slope(regret(game, "uniform").cumsum(axis=1).mean(axis=0)) == pytest.approx(1.0)


def test_linear_theory_does_not_learn():
    r = regret("linear", "mle-optimistic-theory")
    u = regret("linear", "uniform")
    claim(
        DOC,
        "Regret per episode is 0.661 over the first 1000 episodes and 0.651 over the last 1000, "
        "against 0.668 for the uniform leader: final regret 0.96 of the uniform leader's, "
        "slope 0.98-0.99 on every seed.",
        r[:, :1000].mean(),
        None,
        r[:, -1000:].mean(),
        None,
        u.mean(),
        r.sum(1).mean() / u.sum(1).mean(),
        None,
        None,
    )
    per_seed = final_stats("linear", "mle-optimistic-theory")[2]
    assert np.all((per_seed >= 0.975) & (per_seed < 0.995))
    err = published(RUN)
    claim(
        DOC,
        "(the final parameter error, 0.051, is close to the chi-square learner's 0.041)",
        err["linear.mle-optimistic-theory.theta_error"][:, -1].mean(),
        err["linear.mle-optimistic.theta_error"][:, -1].mean(),
    )


def test_exploration_stops_paying_regret():
    th = regret("exploration", "mle-optimistic-theory")
    ch = regret("exploration", "mle-optimistic")
    last_th = np.array([np.nonzero(x > 1e-9)[0].max() + 1 for x in th])
    last_ch = np.array([np.nonzero(x > 1e-9)[0].max() + 1 for x in ch])
    claim(
        DOC,
        "After the first 1000 episodes `mle-optimistic-theory` has positive regret in 191 of the "
        "90,000 seed-episodes and `mle-optimistic` in 777; the last episode with positive regret "
        "is at median 98 (worst seed 1654) for the theory radius and at median 588 (worst seed "
        "3752) for the chi-square radius.",
        None,
        (th[:, 1000:] > 1e-9).sum(),
        None,
        None,
        (ch[:, 1000:] > 1e-9).sum(),
        np.median(last_th),
        last_th.max(),
        np.median(last_ch),
        last_ch.max(),
    )
    assert th[:, 1000:].size == 90_000


def test_chi2_linear_slope_sentence():
    fin, cum, per_seed = final_stats("linear", "mle-optimistic")
    claim(
        DOC,
        "is in the `sqrt(T)` regime on `linear` (slope 0.61 of the mean curve, 0.52-0.66 per seed)",
        slope(cum.mean(axis=0)),
        per_seed.min(),
        per_seed.max(),
    )


@pytest.mark.slow
def test_certificates_from_uniform_play():
    """The README's explanation: from 10^4 uniformly played episodes no outer ellipsoid of the
    LR set is certified at the paper's radius on ``linear`` (d = 8), while one is at the
    chi-square radius; on ``exploration`` (d = 2) one is certified at the paper's radius from
    10^4 episodes, not from 10^3."""
    import jax.numpy as jnp

    from bayes_qse.data import simulate
    from bayes_qse.experiments.online_regret import LONG_CONFIG
    from bayes_qse.experiments.online_units import online_experiment_game
    from bayes_qse.inference import fit_mle
    from bayes_qse.sets import chi2_radius, lr_response_box, theory_radius

    quote(DOC, "game from 10^4 uniformly played episodes (the chi-square radius is)")
    quote(DOC, "from 10^4 uniformly played episodes (not from 10^3)")
    level = 1 - 0.1 / 4  # delta = 0.1 split among follower, rewards, transitions, initial dist

    def r2(game_name, n, theory):
        game = online_experiment_game(game_name, LONG_CONFIG)
        H, S, A, B = game.shape
        phi = np.asarray(game.features)
        d = phi.shape[-1]
        lip = 2 * float(game.eta) * np.sqrt((phi**2).sum(-1)).max()
        data = simulate(game, np.full((H, S, A), 1 / A), n, seed=0)
        fit = fit_mle(data, game)
        counts = np.zeros((H, S, A, B))
        st, la, fa = (
            np.asarray(x) for x in (data.states, data.leader_actions, data.follower_actions)
        )
        for h in range(H):
            np.add.at(counts[h], (st[:, h], la[:, h], fa[:, h]), 1)
        beta = (
            theory_radius(d, H * n, level, 10.0, lip, episodes=n)
            if theory
            else chi2_radius(d, level)
        )
        out = lr_response_box(
            jnp.asarray(phi), game.eta, jnp.asarray(counts), jnp.asarray(fit.theta), beta, 10.0
        )
        return float(out[2])

    assert np.isinf(r2("linear", 10_000, True))
    assert np.isfinite(r2("linear", 10_000, False))
    assert np.isfinite(r2("exploration", 10_000, True))
    assert np.isinf(r2("exploration", 1_000, True))
