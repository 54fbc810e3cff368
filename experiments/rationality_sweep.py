"""Regret of the online learners and width of the confidence / credible sets as the
follower's rationality ``eta`` varies over several orders of magnitude, with the same seeds at
every ``eta`` (docs/math.md §7, experiment 5).

    python experiments/rationality_sweep.py               # CI-scale settings
    python experiments/rationality_sweep.py --full        # more etas, seeds and episodes
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("rationality_sweep")
