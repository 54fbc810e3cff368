"""The process pool's schedule (``executors.pick_next`` and ``_run_pool``): a worker that
finished a unit takes the next unit of the same group (an online unit's game), whose
programs it has traced, instead of the next unit in line.  What the units compute does not
depend on the order (test_pool_workers checks a pool run against one process, bit for bit);
this module checks the order itself, with no process started."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future
from typing import NamedTuple

import pytest

from bayes_qse.experiments import executors
from bayes_qse.experiments.online_units import make_unit


class Toy(NamedTuple):
    key: str
    affinity: str | None


def test_a_worker_stays_on_its_group_and_the_first_units_spread_out():
    """Catches: ``last`` ignored (plain order), the first units all of one group, a busy
    group preferred over a free one, ties broken by anything but the order of the units."""
    groups = ["L", "L", "T", "T", "E", "E"]
    assert executors.pick_next(groups, "T", ["L"]) == 2  # same group as the one finished
    assert executors.pick_next(groups, None, []) == 0  # largest group, first in line
    assert executors.pick_next(groups, None, ["L"]) == 2  # a group no worker is on
    assert executors.pick_next(["L", "E", "E"], None, ["L"]) == 1  # the largest free group
    assert executors.pick_next(["E", "L", "L"], "T", ["L"]) == 0  # T done: E is free
    assert executors.pick_next(["E", "L", "L"], "T", ["L", "E"]) == 1  # all busy: largest
    assert executors.pick_next([None, None, None], None, [None]) == 0  # no groups: in order


def test_the_pool_hands_each_worker_the_next_unit_of_its_group(monkeypatch):
    """``_run_pool`` with a stand-in pool whose units finish in the order they were handed
    out: worker 1 gets L1, then L2 (its group), then E1; worker 2 gets T1, T2, E2.  In plain
    order worker 2 would get L2 and trace the L game again.  Catches: the queue handed out
    in plain order, more units handed out than workers (then the order no longer says which
    worker takes which), ``on_idle`` called before the queue is empty or never."""
    units = [Toy(k, k[0]) for k in ("L1", "L2", "T1", "T2", "E1", "E2")]
    handed, delivered, idle = [], [], []

    class Pool:
        def __init__(self, **kwargs):
            assert kwargs["max_workers"] == 2

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, unit, *args):
            assert len(handed) - len(delivered) < 2, "more units out than workers"
            handed.append(unit.key)
            future = Future()
            future.set_result(unit.key)
            return future

    def first_handed(futures, return_when):  # the oldest unit out finishes first
        oldest = min(futures, key=lambda f: handed.index(f.result()))
        return {oldest}, set(futures) - {oldest}

    monkeypatch.setattr(executors, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(executors, "wait", first_handed)
    monkeypatch.setattr(executors, "pool_context", lambda modules: multiprocessing.get_context())
    monkeypatch.setattr(executors, "deliver", lambda out, unit, result: delivered.append(result))
    done = executors._run_pool(
        [(u, ["p"]) for u in units], "/nonexistent", 2, None, lambda: idle.append(len(delivered))
    )
    assert handed == ["L1", "T1", "L2", "T2", "E1", "E2"]
    assert done == delivered == handed
    assert idle == [5]  # E1 delivered, E2 still running: one worker idles


@pytest.mark.parametrize("game", ["linear", "tabular"])
def test_an_online_units_group_is_its_game(game):
    """Catches: the affinity dropped (None: every unit in plain order) or keyed by the
    learner (no two units of a sweep would share a group)."""
    from bayes_qse.experiments.online_regret import DEFAULT_CONFIG

    a = make_unit(DEFAULT_CONFIG, game, "greedy", 10, [0])
    b = make_unit(DEFAULT_CONFIG, game, "thompson", 10, [0])
    assert executors.affinity(a) == executors.affinity(b) == game
    assert executors.affinity(Toy("x", None)) is None and executors.affinity(object()) is None
