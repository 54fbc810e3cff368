"""Every number docs/results/online_regret_large/README.md and table.md quote, recomputed from
the published arrays (tests/claims.py, tests/online_claims.py: NumPy, not the report code), and
its comparative sentences checked on them.

Bug caught: a table or README left from another run than the arrays published beside it (the
issue-22 rerun changed the two mle-optimistic learners), a summary statistic computed wrongly
(standard error, slope range, worst seed taken as the smallest), a "what changed" sentence the
previous publication's arrays contradict.
"""

from __future__ import annotations

import numpy as np
from claims import claim, manifest, published, published_at
from online_claims import check_summary_table, check_table, final, half_ratio

RUN = "online_regret_large"
DOC = f"docs/results/{RUN}/README.md"
PREVIOUS = "0aadbe6"  # the publication before the issue-22 rerun
TABULAR = ("greedy", "thompson", "bayes-optimistic")


def fm(learner: str) -> float:
    return float(final(RUN, "large", learner).mean())


def test_table_md():
    config = manifest(RUN)["config"]
    assert check_table(RUN) == len(config["games"]) * len(config["learners"])


def test_readme_results_table_and_settings():
    config = manifest(RUN)["config"]
    assert (config["seeds"], config["episodes"], config["slope_start"]) == (6, 300, 0.1)
    assert check_summary_table(DOC, "## Result", RUN, [(0.1, 1.0)]) == len(config["learners"])


def test_readme_sentences():
    uniform = fm("uniform")
    # "leave the tabular leaders where the uniform leader is (regret ratio 1.0 ...1.41)"
    for learner in TABULAR:
        assert round(fm(learner) / uniform, 1) == 1.0, learner
    claim(DOC, "make it worse, 1.41", fm("mle-optimistic") / uniform)
    # "the model-free leaders ... cut the regret by 8-300x" (greedy, thompson, bayes-optimistic)
    cuts = [fm(t) / fm(f"{t}-linear") for t in TABULAR]
    claim(DOC, "cut the regret by 8-300x", min(cuts), None)
    assert 250 <= max(cuts) <= 350, cuts
    f = final(RUN, "large", "mle-optimistic-linear")
    se = f.std(ddof=1) / np.sqrt(f.size)
    claim(
        DOC,
        "regret 45.1 +/- 0.07, 1.34x the uniform leader's, 2nd half / 1st half 0.95"
        " (its worst seed 45.5)",
        f.mean(),
        se,
        f.mean() / uniform,
        None,
        None,
        half_ratio(RUN, "large", "mle-optimistic-linear"),
        f.max(),
    )
    claim(DOC, "`mle-optimistic`'s level (47.4)", fm("mle-optimistic"))


def test_what_changed_against_the_previous_publication():
    old, new = published_at(PREVIOUS, RUN), published(RUN)
    assert old.keys() == new.keys()
    differ = sorted(k for k in new if not np.array_equal(old[k], new[k]))
    assert len(new) - len(differ) == 38 and len(differ) == 8
    assert {k.split(".")[1] for k in differ} == {"mle-optimistic", "mle-optimistic-linear"}
    claim(DOC, "38 arrays identical, 8 differ", 38, 8)
    f_old = np.cumsum(old["large.mle-optimistic-linear.regret"], axis=1)[:, -1]
    f_new = final(RUN, "large", "mle-optimistic-linear")
    claim(
        DOC,
        "final regret went from 45.7 +/- 0.2 to 45.1 +/- 0.07",
        f_old.mean(),
        f_old.std(ddof=1) / np.sqrt(f_old.size),
        f_new.mean(),
        f_new.std(ddof=1) / np.sqrt(f_new.size),
    )
    key = "large.mle-optimistic.regret"
    m_old = np.cumsum(old[key], axis=1)[:, -1].mean()
    claim(DOC, "`mle-optimistic`'s stayed at 47.4", m_old)
    assert round(m_old, 1) == round(fm("mle-optimistic"), 1)
    claim(DOC, "largest change of a per-episode regret 0.0017", np.abs(old[key] - new[key]).max())
