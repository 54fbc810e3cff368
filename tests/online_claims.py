"""Shared recomputation of the published online-regret runs (``docs/results/online_regret*``).

Every function here is plain NumPy on the published ``results.npz`` arrays (``[seeds, T]`` per
``<game>.<learner>.<field>``), written independently of :mod:`bayes_qse.experiments` (the report
code that wrote ``table.md``): the claims modules ``tests/test_claims_online_regret*.py`` use
them to recompute every number those directories' READMEs and tables print.
"""

from __future__ import annotations

import re

import numpy as np
from claims import RESULTS, manifest, published, table_rows

NOT_LEARNING = ("oracle", "uniform")


def regret(name: str, game: str, learner: str) -> np.ndarray:
    """``[seeds, T]`` per-episode regret."""
    return published(name)[f"{game}.{learner}.regret"]


def final(name: str, game: str, learner: str) -> np.ndarray:
    """``[seeds]`` final cumulative regret (the last entry of the running sum)."""
    return np.cumsum(regret(name, game, learner), axis=1)[:, -1]


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def slope(cumulative_mean: np.ndarray, start_fraction: float, stop_fraction: float = 1.0) -> float:
    """Least-squares slope of ``log y`` on ``log t`` over ``start T <= t <= stop T``
    (``t = 1..T``, positive ``y`` only)."""
    y = np.asarray(cumulative_mean, dtype=float)
    t = np.arange(1, y.size + 1)
    keep = (t >= start_fraction * y.size) & (t <= stop_fraction * y.size) & (y > 0)
    design = np.stack([np.log(t[keep]), np.ones(keep.sum())], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log(y[keep]), rcond=None)
    return float(coef[0])


def mean_slope(name: str, game: str, learner: str, start: float, stop: float = 1.0) -> float:
    """Slope of the seeds' mean cumulative regret (what ``table.md`` prints, ``stop = 1``)."""
    return slope(np.cumsum(regret(name, game, learner), axis=1).mean(axis=0), start, stop)


def seed_slopes(name: str, game: str, learner: str, start: float, stop: float = 1.0) -> np.ndarray:
    """``[seeds]`` the same slope fitted to each seed's own cumulative regret."""
    cum = np.cumsum(regret(name, game, learner), axis=1)
    return np.array([slope(c, start, stop) for c in cum])


def half_ratio(name: str, game: str, learner: str) -> float:
    """Mean regret of the second half of the run over the first half's."""
    r = regret(name, game, learner)
    h = r.shape[1] // 2
    return float(r[:, h:].sum(axis=1).mean() / r[:, :h].sum(axis=1).mean())


def worst_window(name: str, game: str, learner: str) -> np.ndarray:
    """``[seeds]`` the largest regret per episode over any window of ``T/10`` consecutive
    episodes that starts after the first tenth of the run."""
    r = regret(name, game, learner)
    w = r.shape[1] // 10
    c = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(r, axis=1)], axis=1)
    return ((c[:, 2 * w :] - c[:, w:-w]) / w).max(axis=1)


def g3(value: float) -> str:
    """``value`` as ``table.md`` prints a float (3 significant digits)."""
    return f"{value:.3g}"


def check_table(name: str) -> int:
    """Recompute every cell of ``docs/results/<name>/table.md`` but the wall times; returns
    the number of rows checked.  Bug caught: a table written from other arrays than the ones
    published beside it (a stale table after a rerun), or a summary statistic computed wrongly
    (standard error with ``ddof=0``, a slope over another range, a ratio of means swapped for a
    mean of ratios)."""
    config = manifest(name)["config"]
    start = config["slope_start"]
    header, rows = table_rows(RESULTS / name / "table.md", _header_line(name))
    col = {h: i for i, h in enumerate(header)}
    n_seeds = config["seeds"]
    assert f"final cumulative regret (mean ± se, {n_seeds} seeds)" in col
    for row in rows:
        game = re.sub(r" \(rank \d+/\d+\)$", "", row[0])
        learner = row[1]
        r = regret(name, game, learner)
        assert r.shape == (n_seeds, int(row[col["T"]])), (game, learner)
        m, se = mean_se(final(name, game, learner))
        printed_mean, printed_se = (c.strip() for c in row[3].split("±"))
        se_ok = printed_se == f"{se:.2g}" or (printed_se == "0" and se < 1e-12)  # round-off
        assert printed_mean == g3(m) and se_ok, (game, learner, row[3], m, se)
        learning = learner not in NOT_LEARNING
        if learner != "oracle":
            printed_slope = row[col["log-log slope"]]
            fitted = mean_slope(name, game, learner, start)
            flat = abs(fitted) < 1e-12 and abs(float(printed_slope)) < 1e-12  # round-off of 0
            assert flat or printed_slope == g3(fitted), (row, fitted)
            assert row[col["2nd half / 1st half"]] == g3(half_ratio(name, game, learner)), row
        uniform = final(name, game, "uniform").mean() if _has(name, game, "uniform") else None
        if uniform is not None:
            assert row[col["regret / uniform"]] == g3(m / uniform), row
        to_mle = row[col["regret / mle-optimistic"]]
        if learner in ("thompson", "bayes-optimistic") and _has(name, game, "mle-optimistic"):
            assert to_mle == g3(m / final(name, game, "mle-optimistic").mean()), row
        else:
            assert to_mle == "-", row
        if learning:
            arrays = published(name)
            err = arrays[f"{game}.{learner}.theta_error"][:, -1].mean()
            informed = arrays[f"{game}.{learner}.informed"][:, -1].mean()
            assert row[col["final theta error"]] == g3(err), row
            assert row[col["informed directions (final)"]] == g3(informed), row
            if "policy switches (final)" in col:  # tables from before switches were recorded
                switches = arrays[f"{game}.{learner}.switches"][:, -1].mean()
                assert row[col["policy switches (final)"]] == f"{switches:.0f}", row
    return len(rows)


def _has(name: str, game: str, learner: str) -> bool:
    return f"{game}.{learner}.regret" in published(name)


def _header_line(name: str) -> str:
    text = (RESULTS / name / "table.md").read_text(encoding="utf-8")
    return text.splitlines()[0]


def f2(value: float) -> str:
    return f"{value:.2f}"


def summary_cells(
    name: str, game: str, learner: str, ranges: list[tuple[float, float]]
) -> list[str]:
    """The cells of a README summary row: final regret ``mean ± se``, the seeds' median and
    worst (largest) final regret, then per slope range ``(start, stop)`` (fractions of ``T``)
    the slope of the mean curve and the median and worst (largest) of the seeds' own slopes."""
    f = final(name, game, learner)
    m, se = mean_se(f)
    cells = [f"{g3(m)} ± {se:.2g}", g3(float(np.median(f))), g3(float(f.max()))]
    for start, stop in ranges:
        per_seed = seed_slopes(name, game, learner, start, stop)
        cells += [
            f2(mean_slope(name, game, learner, start, stop)),
            f2(float(np.median(per_seed))),
            f2(float(per_seed.max())),
        ]
    return cells


def check_summary_table(
    doc: str, heading: str, name: str, ranges: list[tuple[float, float]]
) -> int:
    """Every row ``| game | learner | cells... |`` of the README table after ``heading`` equals
    :func:`summary_cells` recomputed from the arrays; returns the number of rows.  Bug caught:
    a stale README after a rerun, a slope over another range than the header says, a worst
    seed taken as the smallest."""
    _, rows = table_rows(doc, heading)
    for row in rows:
        game, learner = row[0], row[1]
        assert row[2:] == summary_cells(name, game, learner, ranges), (game, learner, row[2:])
    return len(rows)
