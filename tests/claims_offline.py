"""The offline results' ``table.md`` layout, recomputed cell by cell from ``results.npz``.

Shared by the claims modules of ``offline_suboptimality`` and ``offline_suboptimality_large``
(one layout, written by ``bayes_qse.experiments.offline_report``). Recomputed here from the raw
per-seed arrays ``value[game, behaviour, seed, size, learner]``, ``lower_bound[...]`` and
``optimal_value[game]``, not from the stored ``suboptimality`` / ``lower_bound_holds``:

- suboptimality ``J* - J(pi_hat)``: mean ± standard error (ddof = 1) over seeds;
- ``LB holds``: fraction of (seed, size) pairs with ``LB <= J(pi_hat)`` (1e-9 slack);
- paired ``subopt(learner) - subopt(plugin)``: mean ± s.e. and the seeds better / worse
  (differences beyond 1e-9);
- slack ``J(pi_hat) - LB``: mean ± s.e. and the fraction of seeds where it is >= 0.
"""

from __future__ import annotations

import numpy as np
from claims import REPO, cell, mean_se, numbers_in, rounds_to

TOL = 1e-9


def derived(a: dict) -> dict[str, np.ndarray]:
    """``subopt`` and ``slack`` ``[game, behaviour, seed, size, learner]`` from values."""
    subopt = a["optimal_value"][:, None, None, None, None] - a["value"]
    return {"subopt": subopt, "slack": a["value"] - a["lower_bound"]}


def _tables(path):
    """``{(game, behaviour, first header cell): (header, rows)}`` of a table.md."""
    out, game, beh = {}, None, None
    lines = (REPO / path).read_text(encoding="utf-8").splitlines()
    heads = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            game, beh = line[3:].split()[0], None
            heads[game] = line
        elif line.startswith("### behaviour: "):
            beh = line.split(": ", 1)[1].strip()
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out[(game, beh, rows[0][0])] = (rows[0], rows[2:])
            continue
        i += 1
    return out, heads


def check_table(path: str, a: dict, config: dict) -> int:
    """Assert every cell of the offline ``table.md`` at ``path``; return the cells checked."""
    games, behs, learners = config["games"], config["behaviours"], config["learners"]
    sizes = list(a["sizes"])
    d = derived(a)
    tables, heads = _tables(path)
    checked = 0
    text = (REPO / path).read_text(encoding="utf-8")
    seeds = a["value"].shape[2]
    assert f"over {seeds} seeds" in text, f"{path}: seed count is not {seeds}"
    assert set(heads) == set(games), (path, sorted(heads), games)
    for gi, g in enumerate(games):
        jstar = numbers_in(heads[g].split("J* =")[1])[0]
        assert rounds_to(jstar, a["optimal_value"][gi]), (path, g, jstar)
        for bi, b in enumerate(behs):
            where = f"{path} {g} {b}"
            header, rows = tables[(g, b, "learner")]
            assert header[1 : 1 + len(sizes)] == [f"N={n}" for n in sizes], (where, header)
            assert [r[0] for r in rows] == learners, (where, [r[0] for r in rows])
            for li, r in enumerate(rows):
                sub = d["subopt"][gi, bi, :, :, li]
                m, se = mean_se(sub, axis=0)
                for k in range(len(sizes)):
                    cell(r[1 + k], m[k], se[k], where=f"{where} {r[0]} N={sizes[k]}")
                    checked += 1
                slack = d["slack"][gi, bi, :, :, li]
                if np.isnan(a["lower_bound"][gi, bi, :, :, li]).all():
                    assert r[-2:] == ["-", "-"], (where, r)
                    continue
                holds = (slack >= -TOL).mean()
                cell(r[-2], holds, where=f"{where} {r[0]} LB holds")
                cell(r[-1], slack[:, -1].mean(), where=f"{where} {r[0]} J - LB")
                checked += 2
            _, prow = tables[(g, b, "minus plug-in")]
            plug = learners.index("plugin")
            for r in prow:
                li = learners.index(r[0])
                diff = d["subopt"][gi, bi, :, :, li] - d["subopt"][gi, bi, :, :, plug]
                m, se = mean_se(diff, axis=0)
                better, worse = (diff < -TOL).sum(axis=0), (diff > TOL).sum(axis=0)
                for k in range(len(sizes)):
                    cell(
                        r[1 + k],
                        m[k],
                        se[k],
                        better[k],
                        worse[k],
                        where=f"{where} {r[0]} - plugin N={sizes[k]}",
                    )
                    checked += 1
            _, srow = tables[(g, b, "J - LB")]
            for r in srow:
                li = learners.index(r[0])
                slack = d["slack"][gi, bi, :, :, li]
                m, se = mean_se(slack, axis=0)
                frac = (slack >= -TOL).mean(axis=0)
                for k in range(len(sizes)):
                    cell(r[1 + k], m[k], se[k], frac[k], where=f"{where} {r[0]} slack N={sizes[k]}")
                    checked += 1
    return checked
