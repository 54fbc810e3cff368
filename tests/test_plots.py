"""Shared plotting helpers: slopes against closed forms, figures written as PNG."""

import numpy as np
import pytest

from bayes_qse.errors import BayesQSEInputError
from bayes_qse.plots import (
    loglog_panel,
    loglog_slope,
    markdown_table,
    new_figure,
    posterior_vs_truth,
    regret_curves,
    save_figure,
)


@pytest.mark.parametrize("power", [0.5, 1.0, 2 / 3])
def test_loglog_slope_recovers_a_power_law(power):
    t = np.arange(1, 401)
    assert loglog_slope(3.0 * t**power) == pytest.approx(power, abs=1e-10)


def test_loglog_slope_ignores_early_points_and_nonpositive_values():
    t = np.arange(1, 101, dtype=float)
    y = np.sqrt(t)
    y[:10] = -5.0  # ignored: before start_fraction * T and non-positive
    assert loglog_slope(y) == pytest.approx(0.5, abs=1e-10)
    assert np.isnan(loglog_slope(np.zeros(10)))


def test_figures_are_written_as_png(tmp_path):
    rng = np.random.default_rng(0)
    curves = {"greedy": np.cumsum(rng.random((5, 50)), axis=1), "oracle": np.zeros(50)}
    fig, axes = new_figure(2)
    regret_curves(axes[0], curves)
    slopes = loglog_panel(axes[1], {"greedy": curves["greedy"]})
    assert 0.8 < slopes["greedy"] < 1.2  # linear regret
    path = save_figure(fig, tmp_path / "sub" / "regret.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, (ax,) = new_figure()
    posterior_vs_truth(
        ax, {"nuts": rng.normal(size=(100, 3))}, np.zeros(3), point={"mle": [0, 1, 2]}
    )
    save_figure(fig, tmp_path / "post.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["post.png", "sub"]


def test_bad_plot_inputs_name_the_argument():
    fig, (ax,) = new_figure()
    with pytest.raises(BayesQSEInputError, match="curves\\['x'\\]"):
        regret_curves(ax, {"x": np.ones((2, 3, 4))})
    with pytest.raises(BayesQSEInputError, match="band"):
        regret_curves(ax, {"x": np.ones(3)}, band="wide")
    with pytest.raises(BayesQSEInputError, match="draws\\['nuts'\\]"):
        posterior_vs_truth(ax, {"nuts": np.ones((10, 2))}, np.zeros(3))


def test_markdown_table():
    table = markdown_table(["algo", "regret"], [["greedy", 12.3456], ["oracle", 0.0]])
    assert table == "| algo | regret |\n|---|---|\n| greedy | 12.3 |\n| oracle | 0 |\n"
