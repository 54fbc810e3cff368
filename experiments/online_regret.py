"""Online regret of the learners of docs/math.md §5 (docs/math.md §7, experiment 1).

Every online learner (``oracle``, ``greedy``, ``thompson``, ``bayes-optimistic`` and the
paper's ``mle-optimistic``) plays against the true follower of a tabular myopic game, a
linear-feature myopic game and the farsighted steering game, for many seeds; the figures show
cumulative regret with bands and a log-log panel with fitted slopes, and ``table.md`` the final
regret and slope per learner.  Small CI-sized defaults; ``--full`` for the documented run::

    python experiments/online_regret.py --full --out runs/online_regret

Same as ``bayes-qse run online_regret``.  Resumable: rerun the same command after an
interruption.
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("online_regret")
