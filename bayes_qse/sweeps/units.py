"""Running one unit of a sweep: all its seeds, ``vmap``-ped, checkpointed after every chunk.

A unit runs exactly as ``online_regret`` runs a ``(game, learner)`` pair
(:func:`bayes_qse.experiments.online_regret.make_game` and ``make_runner``, then
:func:`bayes_qse.learners.runner.run_online`), so a seed's records are the same bit for bit
as that experiment's for the same settings (docs/math.md, "Determinism"), and the same
whichever executor, process or host runs the unit (same library version and platform).

Common random numbers (docs/math.md, "Sweeps"): episode ``t`` of seed ``s`` draws the
environment's randomness (initial state, the leader's sampled action, the follower's action,
the transition) from ``fold_in(fold_in(PRNGKey(s), 1), t)`` alone; the learner's own
randomness comes from ``fold_in(PRNGKey(s), 0)``.  Every leader of a sweep therefore faces the
same random numbers on the same seed.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..experiments.online_regret import make_game, make_runner
from ..learners.runner import run_online
from ..planning import solve_qse
from .spec import Unit
from .store import RESULT, is_done, open_unit

CHECKPOINT = "run"


def run_unit(unit: Unit, out_dir: str | Path, progress: bool = False) -> str:
    """Run (or resume, or skip if finished) ``unit`` in ``out_dir``; returns its key.

    Each seed is checkpointed after every chunk (``checkpoints/run/seed<s>.npz``); the result
    (``units/result.npz``: the recorded fields ``[seeds, T]``, ``optimal_value`` in the meta)
    is written atomically when all seeds are done, then the checkpoints are removed.
    """
    if is_done(out_dir, unit):
        return unit.key
    with open_unit(out_dir, unit) as store:
        if store.has(RESULT):
            return unit.key
        start = time.perf_counter()
        game = make_game(unit.game, unit.config)
        runner = make_runner(game, unit.learner, unit.config, unit.T, solve_qse(game))
        out = run_online(
            game,
            unit.learner,
            episodes=unit.T,
            seeds=list(unit.seeds),
            store=store,
            checkpoint_key=CHECKPOINT,
            progress=progress,
            runner=runner,
        )
        store.save_unit(
            RESULT,
            {f: out[f] for f in unit.record},
            {
                "seeds": list(unit.seeds),
                "optimal_value": float(out["optimal_value"]),
                "wall_seconds": time.perf_counter() - start,
                "seed_block": runner.seed_block,
                "chunk": runner.chunk,
            },
        )
        store.delete_checkpoint(CHECKPOINT)
    return unit.key


__all__ = ["run_unit"]
