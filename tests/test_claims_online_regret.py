"""Every number docs/results/online_regret/README.md and table.md quote, recomputed from the
published arrays (tests/claims.py, tests/online_claims.py: NumPy, not the report code), and its
comparative sentences checked on them.

The README's sentences are located by their fixed wording and the numbers that follow are
recomputed (:func:`numbers_after`), so each check names the statistic it recomputes.

Bug caught: a rerun (or a stale sentence) that changes a published number without the README
changing with it; a slope over another range than the README names; a comparison ("both end
below mle-optimistic on k of 5 games", "greedy learns on k of n seeds") the arrays contradict.
"""

from __future__ import annotations

import numpy as np
from claims import document, manifest, numbers_in, rounds_to
from online_claims import check_summary_table, check_table, final, half_ratio, mean_slope, regret

DOC = "docs/results/online_regret/README.md"
RUN = "online_regret"
GAMES = ("tabular", "linear", "exploration", "farsighted", "farsighted-random")
MYOPIC = ("tabular", "linear", "exploration")
BAYES = ("thompson", "bayes-optimistic")


def learners():
    return manifest(RUN)["config"]["learners"]


def numbers_after(prefix: str, values: list[float | None]) -> None:
    """The first ``len(values)`` numbers printed after ``prefix`` in the README equal
    ``values`` at their printed precision (``None``: a setting, not checked)."""
    text = document(DOC)
    assert prefix in text, f"{DOC}: no longer says {prefix!r}"
    printed = numbers_in(text[text.index(prefix) + len(prefix) :])[: len(values)]
    assert len(printed) == len(values), (prefix, printed)
    for p, v in zip(printed, values, strict=True):
        if v is not None:
            assert rounds_to(p, v), (prefix, printed, values)


def fm(game, learner):
    return final(RUN, game, learner).mean()


def test_the_run_is_the_one_described():
    config = manifest(RUN)["config"]
    assert config["seeds"] == 20 and config["episodes"] == 1000
    assert config["farsighted_episodes"] == 300
    assert config["refit"] == config["farsighted_refit"] == "every"  # every-episode refits
    assert (config["planner_steps"], config["planner_lr"], config["n_candidates"]) == (80, 0.3, 8)
    assert config["radius"] == "chi2" and config.get("reward_bound") == "best"


def test_table_md():
    assert check_table(RUN) == len(GAMES) * len(learners())


def test_readme_results_table():
    rows = check_summary_table(DOC, "## Results", RUN, [(0.1, 1.0)])
    assert rows == len(GAMES) * (len(learners()) - 1)


def test_valid_against_first_order():
    d = [fm(g, "mle-optimistic-first-order") - fm(g, "mle-optimistic") for g in MYOPIC]
    numbers_after("`mle-optimistic`): tabular", [d[0]])
    numbers_after(", linear", [d[1]])
    numbers_after(", exploration", [d[2]])


def test_slopes_and_halves():
    ts_my = [mean_slope(RUN, g, lr, 0.1) for g in ("tabular", "linear") for lr in BAYES]
    others = ("exploration", "farsighted", "farsighted-random")
    ts_ot = [mean_slope(RUN, g, lr, 0.1) for g in others for lr in BAYES]
    halves = [half_ratio(RUN, g, lr) for g in GAMES for lr in BAYES]
    numbers_after(
        "Thompson sampling and `bayes-optimistic` have mean-curve slopes",
        [min(ts_my), max(ts_my), min(ts_ot), max(ts_ot), min(halves), max(halves)],
    )
    sl = {g: mean_slope(RUN, g, "mle-optimistic", 0.1) for g in GAMES}
    numbers_after(
        "`mle-optimistic` has slopes",
        [
            sl["tabular"],
            sl["linear"],
            sl["exploration"],
            sl["farsighted"],
            sl["farsighted-random"],
            half_ratio(RUN, "tabular", "mle-optimistic"),
        ],
    )


def test_greedy_needs_exploration():
    ge = regret(RUN, "exploration", "greedy")
    learned = int(np.sum(ge[:, -100:].mean(axis=1) < 1e-9))
    gf = regret(RUN, "farsighted", "greedy")
    stuck = int(np.sum(gf[:, -50:].mean(axis=1) > 0.5))
    numbers_after("on `exploration` greedy learns on", [learned, ge.shape[0], None])
    numbers_after("on the steering game it keeps the step-wise plan on", [stuck, gf.shape[0]])
    text = document(DOC)
    if "On `linear` and `farsighted-random` greedy is the lowest non-oracle learner" in text:
        for g in ("linear", "farsighted-random"):
            means = {lr: fm(g, lr) for lr in learners() if lr not in ("oracle", "uniform")}
            assert min(means, key=means.get) == "greedy", g


def test_bayesian_against_frequentist():
    beats = [g for g in GAMES if all(fm(g, lr) < fm(g, "mle-optimistic") for lr in BAYES)]
    ratios = [fm(g, lr) / fm(g, "mle-optimistic") for g in GAMES for lr in BAYES]
    to_uniform = [fm(g, lr) / fm(g, "uniform") for g in GAMES for lr in BAYES]
    lowest = [
        g
        for g in GAMES
        if min(
            (lr for lr in learners() if lr not in ("oracle", "uniform")), key=lambda lr: fm(g, lr)
        )
        == "thompson"
    ]
    numbers_after(
        "both end below `mle-optimistic` on",
        [len(beats), None, min(ratios), max(ratios), max(to_uniform), len(lowest), None],
    )
