"""Offline suboptimality against dataset size (docs/math.md §7, experiment 2).

For uniform, near-optimal and poorly covering behaviour policies, fits the offline learners
(``oracle``, ``plugin``, ``mle-pessimistic``, ``bayes-pessimistic`` and variants) on datasets of
increasing size and reports the exact suboptimality ``J(pi*) - J(pi_hat)`` and how often each
learner's lower bound holds.  Small CI-sized defaults; ``--full`` for the documented run::

    python experiments/offline_suboptimality.py --full --out runs/offline_suboptimality

Same as ``bayes-qse run offline_suboptimality``.  Resumable: rerun the same command after an
interruption.
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("offline_suboptimality")
