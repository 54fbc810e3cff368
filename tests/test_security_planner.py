"""The certified security planner (docs/math.md eq. 8c-8l) against independent optima.

Oracles, none of which calls the planner: the loop utility of eq. (8b); brute force on grids
at <= 4 targets, polished by SciPy's SLSQP; the enumeration of pure allocations, optimal for
``w1 > 0`` at integer budgets (Kar et al., AIJ 2016, Thm 7.1); SciPy's ``linprog`` for a
coverage weight of zero (the utility is then linear in ``c``); SLSQP from many starts.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

from bayes_qse.errors import BayesQSEInputError
from bayes_qse.security import (
    grid_search_coverage,
    make_security_game,
    plan_coverage,
    plan_per_draw,
    project_coverage,
    uniform_security_game,
)

KAR_ADS1 = (2.876, -0.186, 0.3)  # Kar et al. 2016, Sec. 7.1 (w1 > 0)
KAR_ADS2 = (1.435, -0.21, 0.3)
WEIGHTS = {
    "kar": KAR_ADS1,
    "zero": (0.0, 0.0, 0.0),
    "w1_zero": (0.0, 0.37, 0.15),
    "small_negative": (-0.3, 0.37, 0.15),
    "strongly_negative": (-9.85, 0.37, 0.15),
}


def _payoffs(game):
    fields = ("defender_reward", "defender_penalty", "attacker_reward", "attacker_penalty")
    return [np.asarray(getattr(game, f), float) for f in fields]


def loop_utility(w, game, c):
    """Eq. (8a)-(8b) written as loops over targets."""
    rd, pd, ra, pa = _payoffs(game)
    su = [w[0] * c[t] + w[1] * ra[t] + w[2] * pa[t] for t in range(len(c))]
    top = max(su)
    e = [np.exp(x - top) for x in su]
    return sum(e[t] * (c[t] * rd[t] + (1 - c[t]) * pd[t]) for t in range(len(c))) / sum(e)


def batch_utility(w, game, cs):
    rd, pd, ra, pa = _payoffs(game)
    su = w[0] * cs + w[1] * ra + w[2] * pa
    e = np.exp(su - su.max(axis=1, keepdims=True))
    return np.sum(e * (cs * rd + (1 - cs) * pd), axis=1) / e.sum(axis=1)


def pure_optimum(w, game, exact=False):
    """Best 0/1 allocation with ``<= m`` (or ``= m``) covered targets, by enumeration."""
    T, m = game.n_targets, int(round(game.resources))
    sizes = [m] if exact else range(m + 1)
    cs = np.array(
        [
            [float(t in s) for t in range(T)]
            for r in sizes
            for s in itertools.combinations(range(T), r)
        ]
    )
    u = batch_utility(np.asarray(w), game, cs)
    return float(u.max()), cs[int(np.argmax(u))]


def utility_and_gradient(w, game, c):
    """``U`` and ``dU/dc_t = q_t (beta_t + w1 (v_t - U))``, ``v_t = P^d_t + beta_t c_t``
    (differentiating eq. 8b by hand)."""
    rd, pd, ra, pa = _payoffs(game)
    su = w[0] * c + w[1] * ra + w[2] * pa
    q = np.exp(su - su.max())
    q /= q.sum()
    v = pd + (rd - pd) * c
    u = float(q @ v)
    return u, q * ((rd - pd) + w[0] * (v - u))


def slsqp_best(w, game, starts, exact=False):
    """Best local optimum of SLSQP (SciPy) from ``starts``: a lower bound on the maximum."""
    T, m = game.n_targets, game.resources
    w = np.asarray(w, float)
    cons = [
        {
            "type": "eq" if exact else "ineq",
            "fun": lambda c: m - c.sum(),
            "jac": lambda c: -np.ones(T),
        }
    ]

    def neg(c):
        u, g = utility_and_gradient(w, game, c)
        return -u, -g

    best, best_c = -np.inf, None
    for x0 in starts:
        res = minimize(
            neg,
            x0,
            jac=True,
            method="SLSQP",
            bounds=[(0, 1)] * T,
            constraints=cons,
            options={"ftol": 1e-14, "maxiter": 500},
        )
        c = np.clip(res.x, 0, 1)
        ok = c.sum() <= m + 1e-9 and (not exact or abs(c.sum() - m) < 1e-7)
        if ok and loop_utility(w, game, c) > best:
            best, best_c = loop_utility(w, game, c), c
    return best, best_c


def grid_points(T, m, step, exact=False):
    levels = np.arange(0, 1 + step / 2, step)
    if exact:  # the last coordinate takes what is left of the budget
        g = np.array(list(itertools.product(levels, repeat=T - 1)))
        last = m - g.sum(axis=1)
        keep = (last >= -1e-12) & (last <= 1 + 1e-12)
        return np.column_stack([g[keep], np.clip(last[keep], 0, 1)])
    g = np.array(list(itertools.product(levels, repeat=T)))
    return g[g.sum(axis=1) <= m + 1e-12]


def brute_force(w, game, step, exact=False, polish=8):
    """Grid brute force, then SLSQP from the ``polish`` best grid points and random ones."""
    grid = grid_points(game.n_targets, game.resources, step, exact)
    u = batch_utility(np.asarray(w), game, grid)
    top = grid[np.argsort(-u)[:polish]]
    rng = np.random.default_rng(0)
    extra = [grid[i] for i in rng.integers(0, len(grid), 8)]
    best, c = slsqp_best(w, game, list(top) + extra, exact)
    return max(best, float(u.max())), c


def assert_certified(plan, w, game, optimum, exact=False, rtol=1e-4):
    """The plan is feasible, its value is the loop utility of its coverage, the optimum lies
    in ``[value, upper_bound]`` and the relative gap is at most ``rtol``."""
    c, m = plan.coverage, game.resources
    assert np.all((c >= -1e-12) & (c <= 1 + 1e-12)) and c.sum() <= m + 1e-9
    if exact:
        assert abs(c.sum() - m) < 1e-8
    assert plan.value == pytest.approx(loop_utility(np.asarray(w), game, c), abs=1e-10)
    scale = max(
        abs(plan.value), 1e-3 * float(np.ptp(np.r_[game.defender_reward, game.defender_penalty]))
    )
    assert optimum <= plan.upper_bound + 1e-9 * scale, (optimum, plan)
    assert plan.value >= optimum - plan.gap - 1e-9 * scale, (optimum, plan)
    assert plan.relative_gap <= rtol and plan.certified


def tie_game(T, m):
    """All targets identical: every allocation of the same shape ties."""
    return make_security_game([5.0] * T, [-5.0] * T, [4.0] * T, [-3.0] * T, m)


def dominant_game(T, m):
    """One target the attacker wants far more and the defender fears far more."""
    rd, pd = np.full(T, 2.0), np.full(T, -2.0)
    ra, pa = np.full(T, 2.0), np.full(T, -2.0)
    rd[0], pd[0], ra[0] = 10.0, -10.0, 10.0
    rd[1:] += np.linspace(0, 1, T - 1)
    return make_security_game(rd, pd, ra, pa, m)


@pytest.mark.parametrize("name", list(WEIGHTS))
@pytest.mark.parametrize("T,m,seed", [(3, 1.0, 0), (3, 1.5, 1), (4, 2.0, 2), (4, 1.3, 3)])
def test_small_games_against_brute_force(name, T, m, seed):
    """Brute force (grid + SLSQP polish) at 3-4 targets, integer and fractional budgets.
    Bug caught: a bound that is not an upper bound (a wrong surrogate or Dinkelbach
    certificate), a planner that stops at a local optimum, an infeasible coverage."""
    w = WEIGHTS[name]
    game = uniform_security_game(T, m, seed=seed, theta=None)
    opt, _ = brute_force(w, game, 0.02 if T == 3 else 0.05)
    assert_certified(plan_coverage(game, w), w, game, opt)


@pytest.mark.parametrize("game_kind", ["tie", "dominant"])
@pytest.mark.parametrize("name", ["kar", "zero", "small_negative", "strongly_negative"])
def test_ties_and_a_dominant_target(game_kind, name):
    """Identical targets (every permutation of an optimum ties) and a dominant target, 4
    targets, against brute force.  Bug caught: a tie broken into an infeasible or suboptimal
    mix, a Newton step that divides by a zero curvature on a flat target."""
    w = WEIGHTS[name]
    game = tie_game(4, 2.0) if game_kind == "tie" else dominant_game(4, 1.5)
    opt, _ = brute_force(w, game, 0.05)
    assert_certified(plan_coverage(game, w), w, game, opt)


@pytest.mark.parametrize("T,m", [(3, 1.0), (5, 2.0), (8, 3.0), (20, 5.0)])
@pytest.mark.parametrize("w", [KAR_ADS1, KAR_ADS2, (0.4, 0.2, 0.1)])
def test_positive_coverage_weight_against_pure_enumeration(T, m, w):
    """``w1 > 0`` at integer budgets: the optimum is the best pure allocation (Kar et al. 2016,
    Thm 7.1), enumerated here.  Bug caught: an enumeration that drops the ``<= m`` sizes, a
    planner that stops at a mixed stationary point (the old multistart did, by up to 1.38)."""
    game = uniform_security_game(T, m, seed=T, theta=None)
    opt, c_opt = pure_optimum(w, game)
    plan = plan_coverage(game, w)
    assert_certified(plan, w, game, opt)
    assert np.max(np.minimum(plan.coverage, 1 - plan.coverage)) < 1e-9  # pure


@pytest.mark.parametrize("T,m", [(5, 2.0), (8, 3.0), (20, 5.0)])
def test_uniform_seeds_0_to_11_with_kar_weights(T, m):
    """The project's own ``uniform_security_game`` seeds 0-11 with Kar et al.'s weights, where
    the old planner missed the optimum on 7/12 games at 5 targets (6.33 against 7.32 at
    budget 2).  Golden: pure enumeration.  Bug caught: any seed's plan below the optimum."""
    for seed in range(12):
        for w in (KAR_ADS1, KAR_ADS2):
            game = uniform_security_game(T, m, seed=seed, theta=w)
            opt, _ = pure_optimum(w, game)
            assert_certified(plan_coverage(game, game.theta), w, game, opt)


@pytest.mark.parametrize("T,m,seed", [(3, 1.5, 0), (4, 2.5, 1), (4, 1.5, 2)])
def test_positive_coverage_weight_fractional_budget(T, m, seed):
    """``w1 = 0.4 > 0`` with a fractional budget: the optimum covers ``floor(m)`` targets fully
    and one by the remainder 0.5 (eq. 8k), against brute force (grid + SLSQP).  Bug caught: an
    enumeration that drops the fractional target (it would certify a pure plan that is worse).
    """
    w = (0.4, 0.2, 0.1)
    game = uniform_security_game(T, m, seed=seed, theta=None)
    opt, c = brute_force(w, game, 0.05 if T == 4 else 0.02)
    assert np.sort(np.minimum(c, 1 - c))[-1] > 0.4  # the optimum is fractional here
    plan = plan_coverage(game, w)
    assert_certified(plan, w, game, opt)
    np.testing.assert_allclose(np.sort(plan.coverage)[-int(m) - 1 :][0], m - int(m), atol=1e-9)


@pytest.mark.parametrize("T,m", [(3, 1.0), (5, 2.5), (8, 3.0), (20, 5.5)])
@pytest.mark.parametrize("w", [(0.0, 0.0, 0.0), (0.0, 0.37, 0.15)])
def test_zero_coverage_weight_against_linprog(T, m, w):
    """``w1 = 0``: the attack probabilities do not depend on ``c``, so ``U`` is linear and the
    optimum is a linear programme, solved by SciPy's ``linprog``; at 3 targets also a fine
    grid.  Bug caught: the old multistart's miss of up to 6.7% on this linear objective."""
    game = uniform_security_game(T, m, seed=T + 1, theta=None)
    rd, pd, ra, pa = _payoffs(game)
    q = np.exp(w[1] * ra + w[2] * pa)
    q /= q.sum()
    res = linprog(
        -(q * (rd - pd)), A_ub=np.ones((1, T)), b_ub=[m], bounds=[(0, 1)] * T, method="highs"
    )
    opt = float(np.sum(q * pd) - res.fun)
    if T == 3:
        assert batch_utility(np.asarray(w), game, grid_points(3, m, 0.01)).max() <= opt + 1e-12
    assert_certified(plan_coverage(game, w), w, game, opt)


@pytest.mark.parametrize("w", [(-0.3, 0.37, 0.15), (-9.85, 0.37, 0.15), (-2.0, 0.5, -0.2)])
@pytest.mark.parametrize("T,m", [(5, 2.0), (8, 3.0), (20, 5.5)])
def test_negative_coverage_weight_against_slsqp_multistart(T, m, w):
    """``w1 < 0`` at 5-20 targets: SLSQP (SciPy) from 20 starts gives a lower bound on the
    optimum; the planner's bound must lie above it and its value may not be below it by
    more than the gap.  Bug caught: a Dinkelbach bound divided by the wrong denominator
    (``D`` at the plan instead of a lower bound on ``D``), a dual bound taken at one ``mu``."""
    game = uniform_security_game(T, m, seed=2 * T, theta=None)
    rng = np.random.default_rng(T)
    starts = [np.full(T, m / T)] + [np.clip(m * rng.dirichlet(np.ones(T)), 0, 1) for _ in range(19)]
    opt, _ = slsqp_best(w, game, starts)
    assert_certified(plan_coverage(game, w), w, game, opt)


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_exact_budget_against_the_face_brute_force(name):
    """``budget="exact"`` (``sum c = m``) at 3 targets and a fractional budget, where the
    branch and bound runs: brute force on the face (grid + SLSQP with an equality).  Bug
    caught: a relaxation that drops negative multipliers, a plan off the face."""
    w = WEIGHTS[name]
    game = uniform_security_game(3, 1.5, seed=5, theta=None)
    opt, _ = brute_force(w, game, 0.005, exact=True)
    assert_certified(plan_coverage(game, w, budget="exact"), w, game, opt, exact=True)


def test_unused_budget_with_positive_coverage_weight():
    """With ``w1 > 0`` the optimum may leave budget unused: on this game the best coverage
    uses 1 of 3 resources, the best on ``sum c = m`` is strictly worse, and the grid search
    keeps points below the budget.  Golden: pure enumeration at each size and loop brute
    force.  Bug caught: a planner (or the grid search) restricted to ``sum c = m``."""
    w = KAR_ADS1
    found = None
    for seed in range(40):
        game = uniform_security_game(5, 3.0, seed=seed, theta=None)
        best, c = pure_optimum(w, game)
        if c.sum() < 3:
            found = game, best, c
            break
    assert found is not None
    game, best, c = found
    on_face, _ = pure_optimum(w, game, exact=True)
    assert on_face < best - 1e-3
    plan = plan_coverage(game, w)
    assert_certified(plan, w, game, best)
    assert plan.coverage.sum() < 3 - 0.5
    grid_c, grid_v = grid_search_coverage(game, w, 0.5)
    loop = max(loop_utility(w, game, g) for g in grid_points(5, 3.0, 0.5))
    assert grid_v == pytest.approx(loop, abs=1e-12) and grid_v >= best - 1e-12
    face = plan_coverage(game, w, budget="exact")
    assert face.value < plan.value - 1e-3 and abs(face.coverage.sum() - 3) < 1e-8


def test_rules_over_draws_bound_and_seeds():
    """Rules over draws (eq. 8e, 8l): the value is at least the rule at every draw's own plan
    (the seeds), the bound is at least the rule's optimum found by brute force at 3 targets,
    and at ``level = 1`` (best case) the plan is certified.  Golden: per-draw brute force and
    a 0.01-grid of the rule.  Bug caught: a bound that is not the rule over per-draw bounds
    (e.g. the mean of values), a rule evaluated over targets instead of draws."""
    game = uniform_security_game(3, 1.0, seed=4, theta=None)
    draws = np.array([[-9.0, 0.4, 0.2], [2.0, -0.2, 0.3], [-1.0, 0.8, -0.3], [0.0, 0.1, 0.6]])
    grid = grid_points(3, 1.0, 0.01)
    table = np.stack([batch_utility(w, game, grid) for w in draws])  # [M, G]
    per_draw = [brute_force(w, game, 0.02)[0] for w in draws]
    cov, val, ub = plan_per_draw(game, draws)
    for j, w in enumerate(draws):
        assert val[j] == pytest.approx(loop_utility(w, game, cov[j]), abs=1e-10)
        assert val[j] >= per_draw[j] - 1e-9 and ub[j] >= per_draw[j] - 1e-9
    seeds = np.stack([[loop_utility(w, game, c) for w in draws] for c in cov])  # [M, M]
    for rule, level, grid_rule, seed_rule in (
        ("mean", 0.5, table.mean(axis=0), seeds.mean(axis=1)),
        ("quantile", 0.25, np.quantile(table, 0.25, axis=0), np.quantile(seeds, 0.25, axis=1)),
        ("quantile", 1.0, table.max(axis=0), seeds.max(axis=1)),
    ):
        plan = plan_coverage(game, draws, rule=rule, level=level)
        us = np.array([loop_utility(w, game, plan.coverage) for w in draws])
        got = us.mean() if rule == "mean" else np.quantile(us, level)
        assert plan.value == pytest.approx(got, abs=1e-10)
        assert plan.value >= seed_rule.max() - 1e-10
        assert plan.upper_bound >= grid_rule.max() - 1e-12
        # eq. (8l): the bound is the rule over per-draw bounds, each >= that draw's optimum
        opt_rule = np.mean(per_draw) if rule == "mean" else np.quantile(per_draw, level)
        assert plan.upper_bound >= opt_rule - 1e-9
        assert plan.value >= grid_rule.max() - 0.05  # near the grid's best (not certified)
        if level == 1.0:
            assert plan.certified and plan.value >= max(per_draw) - 1e-9


@pytest.mark.slow
def test_quantile_rule_is_pessimistic_over_draws():
    """The 0.1-quantile plan (eq. 8e) has a higher 0.1-quantile over the draws than the plan
    for the draws' mean, and the mean plan a higher mean (loop utilities).  Bug caught: rules
    swapped or the quantile computed over targets instead of draws."""
    game = uniform_security_game(4, 1.0, seed=2)
    draws = np.asarray(game.theta) + np.random.default_rng(0).normal(0, [3.0, 0.3, 0.3], (40, 3))
    pess = plan_coverage(game, draws, rule="quantile", level=0.1)
    mean = plan_coverage(game, draws, rule="mean")

    def util(c):
        return np.array([loop_utility(w, game, c) for w in draws])

    assert np.quantile(util(pess.coverage), 0.1) >= np.quantile(util(mean.coverage), 0.1) - 1e-9
    assert util(mean.coverage).mean() >= util(pess.coverage).mean() - 1e-9


def test_scale_100_targets():
    """100 targets, 20.5 resources, strongly negative and positive ``w1``: certified to 1e-4
    and not below SLSQP from 3 starts.  Bug caught: a bound that loosens with ``T`` (a
    per-target margin that is not summed correctly), a pure enumeration that miscounts ``k``."""
    for w in ((-9.85, 0.37, 0.15), KAR_ADS1):
        game = uniform_security_game(100, 20.5, seed=0, theta=None)
        rng = np.random.default_rng(1)
        starts = [np.full(100, 0.205)] + [
            np.clip(20.5 * rng.dirichlet(np.ones(100)), 0, 1) for _ in range(2)
        ]
        low, _ = slsqp_best(w, game, starts)
        plan = plan_coverage(game, w)
        assert_certified(plan, w, game, low)


@pytest.mark.parametrize("m", [1.0, 2.5])
def test_projection_onto_the_face_matches_scipy(m):
    """Eq. (8d) with ``exact=True``: the Euclidean projection onto ``{0 <= c <= 1, sum c = m}``
    against SciPy's constrained least squares.  Bug caught: a shift restricted to ``tau >= 0``
    (points below the budget left there)."""
    rng = np.random.default_rng(4)
    for _ in range(6):
        y = rng.normal(0.2, 0.8, size=6)
        c = np.asarray(project_coverage(y, m, exact=True))
        res = minimize(
            lambda x, y=y: 0.5 * np.sum((x - y) ** 2),
            np.full(6, m / 6),
            jac=lambda x, y=y: x - y,
            bounds=[(0, 1)] * 6,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - m}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        np.testing.assert_allclose(c, res.x, atol=1e-6)
        assert abs(c.sum() - m) < 1e-9


def test_planner_needs_explicit_weights_and_valid_options():
    """No silent planning on ``game.theta`` (the true weights every generator attaches); bad
    options name the field.  Bug caught: ``plan_coverage(game)`` quietly using the truth."""
    game = uniform_security_game(4, 1.0, seed=0)
    with pytest.raises(TypeError):
        plan_coverage(game)  # type: ignore[call-arg]
    with pytest.raises(BayesQSEInputError, match="thetas"):
        plan_coverage(game, None)
    with pytest.raises(BayesQSEInputError, match="budget"):
        plan_coverage(game, game.theta, budget="all")
    with pytest.raises(BayesQSEInputError, match="rtol"):
        plan_coverage(game, game.theta, rtol=0.0)


def _map_from_history(game, coverage, attacks, prior_scale):
    """MAP of eq. (7c) under ``N(0, s^2 I)`` from stored (coverage, attack) pairs, by SciPy's
    BFGS on a loop log-likelihood (zero pairs: the prior's mode, ``w = 0``)."""
    _, _, ra, pa = _payoffs(game)

    def neg(w):
        total = 0.0
        for c, b in zip(coverage, attacks, strict=True):
            su = w[0] * c + w[1] * ra + w[2] * pa
            total += su[b] - (su.max() + np.log(np.sum(np.exp(su - su.max()))))
        return -(total - np.sum(w**2) / (2 * prior_scale**2))

    return minimize(neg, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x


def test_online_greedy_defender_fits_its_history_and_plans_certified():
    """The repeated game's greedy defender (eq. 8, §5): in round ``t`` its MAP is the MAP of
    the pairs stored in rounds ``< t`` (SciPy BFGS on a loop likelihood), its coverage is the
    certified optimum for that MAP (brute force at 4 targets), and round 0 (``w = 0``, a
    linear objective) is the ``linprog`` optimum.  Bugs caught: a defender that plans on the
    true weights, one that never stores the attacks (its MAP stays at 0), the old round-0
    plan that missed the optimum of ``w = 0`` by 1-27%."""
    from bayes_qse.security.online import SecurityLearnerConfig, run_security_online

    game = uniform_security_game(4, 1.5, seed=3)
    settings = SecurityLearnerConfig(prior_scale=10.0)
    run = run_security_online(game, "greedy", 5, seed=0, settings=settings)
    rd, pd, _, _ = _payoffs(game)
    res = linprog(-(rd - pd) / 4, A_ub=np.ones((1, 4)), b_ub=[1.5], bounds=[(0, 1)] * 4)
    zero_opt = float(np.mean(pd) - res.fun)
    assert loop_utility(np.zeros(3), game, run.coverage[0]) == pytest.approx(zero_opt, abs=1e-9)
    truth_plan = brute_force(np.asarray(game.theta), game, 0.05)[1]
    assert loop_utility(np.zeros(3), game, truth_plan) < zero_opt - 1e-2  # the bug is visible
    for t in range(5):
        w_map = _map_from_history(game, run.coverage[:t], run.attacks[:t], 10.0)
        np.testing.assert_allclose(run.theta_map[t], w_map, atol=1e-5)
        opt, _ = brute_force(run.theta_map[t], game, 0.1, polish=4)
        assert loop_utility(run.theta_map[t], game, run.coverage[t]) >= opt - 1e-7
    assert np.all(run.regret >= -1e-7)  # the reference plan is certified


def test_cli_plan_coverage_reports_the_gap(capsys):
    """``bayes-qse plan-coverage`` prints the certified value, bound and gap (JSON), equal to
    the pure enumeration at ``w1 > 0``; bad input exits 2 naming the field.  Bug caught: a CLI
    that plans on the game's true weights instead of ``--weights``, or hides the gap."""
    import json

    from bayes_qse.cli import main

    args = [
        "plan-coverage",
        "security_uniform",
        "--weights",
        "2.876",
        "-0.186",
        "0.3",
        "--targets",
        "5",
        "--resources",
        "2",
        "--seed",
        "11",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    game = uniform_security_game(5, 2.0, seed=11, theta=None)
    opt, _ = pure_optimum(KAR_ADS1, game)
    assert out["value"] <= opt + 1e-12 <= out["upper_bound"] + 1e-9 and out["certified"]
    assert out["gap"] == pytest.approx(out["upper_bound"] - out["value"], abs=1e-15)
    assert main(args[:-1] + ["--resources", "9"]) == 2
    assert "resources" in capsys.readouterr().err
