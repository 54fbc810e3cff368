"""The sweep benchmark's published numbers (docs/benchmarks.md, "Sweeps"), recomputed from the
tables they come from, and docs/howto_sweeps.md's quotes of them.

A rerun of ``benchmarks/bench_sweep.py`` rewrites its sections; a stale quote in
howto_sweeps.md, a speed-up that is not the ratio of the table's wall times, an Amdahl bound
off its formula or a "met"/"not met" that contradicts the target fails here."""

from __future__ import annotations

import re

import pytest
from claims import document, rounds_to

BENCH = "docs/benchmarks.md"
HOWTO = "docs/howto_sweeps.md"
TARGET = 1.6
SECTIONS = {
    "4": "## Sweeps: process pool against one process (`bench_sweep.py`)",
    "12": "## Sweeps: the process pool on 12 units (`bench_sweep.py --games linear tabular "
    "exploration`)",
    "12, T = 400": "## Sweeps: the process pool on 12 units (`bench_sweep.py --games linear "
    "tabular exploration --T 400`)",
}


def section(units: str) -> str:
    """The squashed text of the sweep section with ``units`` units."""
    text = document(BENCH)
    start = text.index(SECTIONS[units])
    end = text.find(" ## ", start + 3)
    return text[start : end if end > 0 else None]


def wall(text: str, label: str) -> tuple[str, str]:
    """``(wall, speed-up)`` as printed in the warm row labelled ``label``."""
    m = re.search(
        r"\| warm \| " + re.escape(label) + r" \| \d+ \| ([\d.]+) \| [\d.]+ \| ([\d.]+)x", text
    )
    assert m, label
    return m.group(1), m.group(2)


@pytest.mark.parametrize("units", sorted(SECTIONS))
def test_speed_up_is_the_ratio_of_the_tables_wall_times(units):
    """The forked pool's speed-up, in its row and in the verdict, is one process's wall time
    over the pool's (the printed walls are rounded to 0.1 s: the ratio is checked within what
    that rounding allows); the verdict says "met" exactly when it reaches the target."""
    text = section(units)
    one, _ = wall(text, "one process (baseline)")
    pool, printed = wall(text, "pool, forked workers (default)")
    lo = (float(one) - 0.05) / (float(pool) + 0.05)
    hi = (float(one) + 0.05) / (float(pool) - 0.05)
    assert lo - 0.005 <= float(printed) <= hi + 0.005, (one, pool, printed)
    verdict = re.search(r"a warm cache: (met|not met) \(([\d.]+)x\)", text)
    assert verdict and verdict.group(2) == printed
    assert (verdict.group(1) == "met") == (float(printed) >= TARGET)


@pytest.mark.parametrize("units", sorted(SECTIONS))
def test_the_bound_follows_from_the_pools_serial_part_and_unit_seconds(units):
    """``one / (serial + units / 2)`` from the printed one-process wall time and the pool's
    printed serial seconds and unit-seconds; the share of the bound reached is the printed
    speed-up over it; the sentence after it agrees with the target.  Catches a bound off its
    formula, a stale share and a "cannot be met" that contradicts the bound."""
    text = section(units)
    m = re.search(
        r"pool, ([\d.]+) s outside ([\d.]+) unit-seconds .*? would end in ([\d.]+) s, so the "
        r"pool gains at most ([\d.]+)x here; it gains ([\d.]+)x \((\d+)% of that",
        text,
    )
    assert m, "the bound's sentence is gone"
    serial, unit_s, end, bound, gained, share = (float(g) for g in m.groups())
    one = float(wall(text, "one process (baseline)")[0])
    assert abs(end - unit_s / 2) <= 0.05 + 0.025 + 1e-9, (end, unit_s)  # both printed to 0.1
    # the printed inputs are rounded (0.1 s, 0.01 s, 0.1 unit-s): bound within what that allows
    lo = (one - 0.05) / (serial + 0.005 + (unit_s + 0.05) / 2)
    hi = (one + 0.05) / (serial - 0.005 + (unit_s - 0.05) / 2)
    assert lo - 0.005 <= bound <= hi + 0.005, m.groups()
    assert gained == float(wall(text, "pool, forked workers (default)")[1])
    assert abs(gained / bound * 100 - share) <= 1.5, (gained, bound, share)
    reachable = "The 1.6x target is within that bound." in text
    assert reachable == (bound >= TARGET)
    assert reachable != ("cannot be met on this sweep" in text)


def test_howto_quotes_the_benchmarks_current_numbers():
    """docs/howto_sweeps.md quotes the three sweeps' one-process wall times, speed-ups, bounds and
    the pool's CPU time against one process as the benchmark sections print them now."""
    howto = document(HOWTO)
    m = re.search(
        r"a sweep of 4 short units \((\d+) s in one process\) gained ([\d.]+)x from 2 "
        r"workers, one of 12 units \((\d+) s\) ([\d.]+)x, and the same 12 units at T = 400 "
        r"\((\d+) s\) ([\d.]+)x, against bounds of ([\d.]+)x, ([\d.]+)x and ([\d.]+)x had "
        r"their units been shared out perfectly; the pool's processes spent ([\d.]+)x, "
        r"([\d.]+)x and ([\d.]+)x the CPU time of one process",
        howto,
    )
    assert m, "the sentence is gone from howto_sweeps.md"
    g = m.groups()
    for i, units in enumerate(SECTIONS):
        t, speed, bound, cpu = g[2 * i], g[2 * i + 1], g[6 + i], g[9 + i]
        text = section(units)
        one, _ = wall(text, "one process (baseline)")
        assert rounds_to(t, float(one)), (units, t, one)
        assert speed == wall(text, "pool, forked workers (default)")[1], units
        assert re.search(rf"gains at most {re.escape(bound)}x", text), (units, bound)
        label = re.escape("pool, forked workers (default)")
        row = re.search(
            rf"\| warm \| {label} \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+x \| ([\d.]+)x", text
        )
        assert row and row.group(1) == cpu, (units, cpu)


@pytest.mark.parametrize("units", sorted(SECTIONS))
def test_the_other_processes_sentence_follows_the_measured_share(units):
    """Each section states the other processes' CPU share (``/proc/stat``) and says the
    cores were the sweep's exactly when that share is at most 0.1 of a core, and otherwise that
    the machine was shared.  Catches a quiet-machine claim over a busy measurement."""
    text = section(units)
    m = re.search(r"Other processes: at most ([\d.]+) of a core's time during a run", text)
    assert m, "the other processes' share is gone"
    quiet = float(m.group(1)) <= 0.1
    assert ("The cores were the sweep's." in text) == quiet
    assert ("The machine was shared while measured" in text) != quiet


def test_howto_quotes_the_largest_share_of_other_processes():
    """The how-to's "other jobs paused (they still took up to X of a core)" is the largest
    other-processes share the three sections print.  Catches a stale share after a rerun."""
    howto = document(HOWTO)
    m = re.search(r"other jobs paused \(they still took up to ([\d.]+) of a core\)", howto)
    assert m, "the sentence is gone from howto_sweeps.md"
    shares = [
        re.search(r"Other processes: at most ([\d.]+) of a core", section(u)).group(1)
        for u in SECTIONS
    ]
    assert m.group(1) == max(shares, key=float), shares
