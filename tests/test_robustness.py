"""Robustness: malformed inputs to the Python API and the command line (docs/math.md §6, issue 8).

Every malformed input must raise a :class:`BayesQSEInputError` (a ``ValueError``) whose message
names the problem; at the command line it must print exactly one line on stderr and exit with
status 2, with no traceback.  Numerical edge cases (``eta`` in {1e-3, 1e3}, utilities up to
1e3) must give no NaN, and the same seed must give bit-identical results.

The malformed-input cases are collected in ``API_CASES``, ``CLI_CASES`` and (issue 12: sizes,
magnitudes, seeds, writes) ``ISSUE12_CLI_CASES``;
``test_every_subcommand_has_malformed_input_cases`` checks that every subcommand has some.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

import bayes_qse as bq
from bayes_qse import cli
from bayes_qse.data import Dataset, simulate
from bayes_qse.errors import (
    BayesQSEInputError,
    ConfigError,
    DatasetValidationError,
    GameValidationError,
)
from bayes_qse.experiments import load_config
from bayes_qse.experiments.store import RunStore
from bayes_qse.games import Game, patrol_game, random_game
from bayes_qse.inference import fit_mle, sample_posterior
from bayes_qse.model import Model
from bayes_qse.summary import fit_summary

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------
# Shared valid inputs and malformed files
# ---------------------------------------------------------------------------------------

GAME = random_game(
    0, n_states=3, n_leader_actions=2, n_follower_actions=3, horizon=2, feature_dim=4
)
H, S, A, B = GAME.shape
D = GAME.feature_dim
POLICY = np.full((H, S, A), 1.0 / A)
DATA = simulate(GAME, POLICY, 20, seed=0)


def game_fields(**changes):
    fields = {
        "transitions": GAME.transitions,
        "leader_reward": GAME.leader_reward,
        "features": GAME.features,
        "theta": GAME.theta,
        "eta": GAME.eta,
        "initial_dist": GAME.initial_dist,
    }
    fields.update(changes)
    return fields


def data_fields(**changes):
    fields = {
        "states": DATA.states,
        "leader_actions": DATA.leader_actions,
        "follower_actions": DATA.follower_actions,
        "rewards": DATA.rewards,
        "policies": DATA.policies,
    }
    fields.update(changes)
    return fields


def with_entry(array, index, value):
    out = np.array(array, dtype=np.result_type(array, type(value)))
    out[index] = value
    return out


def not_summing_to_one(array):
    return np.asarray(array) * 1.1


def _build_files(folder: Path) -> dict[str, Path]:
    """Valid and malformed game/dataset files, written once per session."""
    f = {}
    f["game"] = GAME.save(folder / "game.npz")
    f["data"] = DATA.save(folder / "data.npz")
    f["empty"] = folder / "empty.npz"
    f["empty"].write_bytes(b"")
    f["truncated_game"] = folder / "truncated_game.npz"
    f["truncated_game"].write_bytes(f["game"].read_bytes()[: f["game"].stat().st_size // 2])
    f["truncated_data"] = folder / "truncated_data.npz"
    f["truncated_data"].write_bytes(f["data"].read_bytes()[:300])
    f["text"] = folder / "notes.npz"
    f["text"].write_text("this is not an archive\n")
    f["foreign"] = folder / "foreign.npz"
    np.savez(f["foreign"], weights=np.ones(3), bias=np.zeros(2))
    f["zip_not_npy"] = folder / "zip.npz"
    with zipfile.ZipFile(f["zip_not_npy"], "w") as zf:
        zf.writestr("transitions.npy", b"garbage, not a .npy header")
    arrays = {k: np.asarray(v) for k, v in game_fields().items()}
    arrays["farsighted"] = np.asarray(False)
    f["game_no_theta"] = folder / "game_no_theta.npz"
    np.savez(f["game_no_theta"], **{k: v for k, v in arrays.items() if k != "theta"})
    f["game_nan"] = folder / "game_nan.npz"
    np.savez(
        f["game_nan"], **{**arrays, "leader_reward": with_entry(GAME.leader_reward, 0, np.nan)}
    )
    f["game_eta_negative"] = folder / "game_eta_negative.npz"
    np.savez(f["game_eta_negative"], **{**arrays, "eta": np.asarray(-1.0)})
    f["game_bad_farsighted"] = folder / "game_bad_farsighted.npz"
    np.savez(f["game_bad_farsighted"], **{**arrays, "farsighted": np.array([True, False])})
    f["game_off_simplex"] = folder / "game_off_simplex.npz"
    np.savez(f["game_off_simplex"], **{**arrays, "transitions": arrays["transitions"] * 0.5})
    f["game_pickled"] = folder / "game_pickled.npz"
    np.savez(f["game_pickled"], **{**arrays, "theta": np.array([{"a": 1}], dtype=object)})
    data_arrays = {k: np.asarray(v) for k, v in data_fields().items()}
    f["data_no_rewards"] = folder / "data_no_rewards.npz"
    np.savez(f["data_no_rewards"], **{k: v for k, v in data_arrays.items() if k != "rewards"})
    f["data_bad_state"] = folder / "data_bad_state.npz"
    np.savez(f["data_bad_state"], **{**data_arrays, "states": with_entry(DATA.states, (0, 0), S)})
    f["data_nan_reward"] = folder / "data_nan_reward.npz"
    np.savez(
        f["data_nan_reward"], **{**data_arrays, "rewards": with_entry(DATA.rewards, (1, 1), np.nan)}
    )
    f["data_bad_follower"] = folder / "data_bad_follower.npz"
    np.savez(
        f["data_bad_follower"],
        **{**data_arrays, "follower_actions": with_entry(DATA.follower_actions, (2, 0), B)},
    )
    other = random_game(
        1, n_states=4, n_leader_actions=2, n_follower_actions=3, horizon=2, feature_dim=4
    )
    f["data_other_game"] = simulate(other, np.full((2, 4, 2), 0.5), 5, 0).save(
        folder / "data_other_game.npz"
    )
    f["dir"] = folder / "a_directory.npz"
    f["dir"].mkdir()
    f["missing"] = folder / "does_not_exist.npz"
    f["bad_toml"] = folder / "bad.toml"
    f["bad_toml"].write_text("seeds = [unclosed\n")
    f["manifest_unknown"] = folder / "results_unknown"
    f["manifest_unknown"].mkdir()
    (f["manifest_unknown"] / "manifest.json").write_text(
        json.dumps({"experiment": "no_such_experiment", "config": {}})
    )
    f["manifest_corrupt"] = folder / "results_corrupt"
    f["manifest_corrupt"].mkdir()
    (f["manifest_corrupt"] / "manifest.json").write_text("{truncated")
    # issue 12: magnitudes, booleans, headers claiming huge arrays, corrupt results
    f["game_eta_huge"] = folder / "game_eta_huge.npz"
    np.savez(f["game_eta_huge"], **{**arrays, "eta": np.asarray(1e300)})
    f["game_eta_bool"] = folder / "game_eta_bool.npz"
    np.savez(f["game_eta_bool"], **{**arrays, "eta": np.asarray(True)})
    f["game_theta_huge"] = folder / "game_theta_huge.npz"
    np.savez(f["game_theta_huge"], **{**arrays, "theta": np.full(D, 1e308)})
    f["game_huge_header"] = folder / "game_huge_header.npz"
    _npz_with_claimed_shape(f["game_huge_header"], arrays, "transitions", (H, 10**6, A, B, 10**6))
    f["data_huge_header"] = folder / "data_huge_header.npz"
    _npz_with_claimed_shape(f["data_huge_header"], data_arrays, "policies", (10**9, H, S, A))
    f["results_corrupt_npz"] = folder / "results_corrupt_npz"
    f["results_corrupt_npz"].mkdir()
    (f["results_corrupt_npz"] / "manifest.json").write_text(
        json.dumps({"experiment": "online_regret", "config": {}})
    )
    (f["results_corrupt_npz"] / "results.json").write_text("{}")
    (f["results_corrupt_npz"] / "results.npz").write_bytes(b"PK\x03\x04 truncated archive")
    return f


def _npz_with_claimed_shape(path: Path, arrays: dict, field: str, shape: tuple) -> None:
    """An ``.npz`` whose ``field`` has a valid ``.npy`` header claiming ``shape`` (float64)
    followed by a few bytes of data: loading it naively would try to allocate the shape."""
    import io as _io

    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            buf = _io.BytesIO()
            if key == field:
                header = {"descr": "<f8", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(buf, header)
                buf.write(b"\0" * 64)
            else:
                np.lib.format.write_array(buf, np.asarray(value))
            zf.writestr(f"{key}.npy", buf.getvalue())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _build_files(tmp_path_factory.mktemp("robustness"))


# ---------------------------------------------------------------------------------------
# Python API: (id, call(files) -> None, expected error class, regex naming the problem)
# ---------------------------------------------------------------------------------------

GE, DE, IE, CE = GameValidationError, DatasetValidationError, BayesQSEInputError, ConfigError

API_CASES = [
    # --- Game construction: shapes, NaN, simplex, eta
    (
        "game-transitions-4d",
        lambda f: Game(**game_fields(transitions=GAME.transitions[0])),
        GE,
        "transitions.*5-dimensional",
    ),
    (
        "game-transitions-nan",
        lambda f: Game(
            **game_fields(transitions=with_entry(GAME.transitions, (0, 0, 0, 0, 0), np.nan))
        ),
        GE,
        "transitions.*NaN",
    ),
    (
        "game-transitions-inf",
        lambda f: Game(
            **game_fields(transitions=with_entry(GAME.transitions, (0, 0, 0, 0, 0), np.inf))
        ),
        GE,
        "transitions.*infinite",
    ),
    (
        "game-transitions-negative",
        lambda f: Game(
            **game_fields(transitions=with_entry(GAME.transitions, (0, 0, 0, 0, 0), -0.5))
        ),
        GE,
        "transitions.*negative",
    ),
    (
        "game-transitions-off-simplex",
        lambda f: Game(**game_fields(transitions=not_summing_to_one(GAME.transitions))),
        GE,
        "transitions.*sum to 1",
    ),
    (
        "game-transitions-next-state-axis",
        lambda f: Game(
            **game_fields(
                transitions=GAME.transitions[..., :2]
                / GAME.transitions[..., :2].sum(-1, keepdims=True)
            )
        ),
        GE,
        "transitions.*next state",
    ),
    (
        "game-transitions-empty-axis",
        lambda f: Game(**game_fields(transitions=np.zeros((0, S, A, B, S)))),
        GE,
        "transitions",
    ),
    (
        "game-transitions-text",
        lambda f: Game(**game_fields(transitions="uniform")),
        GE,
        "transitions",
    ),
    (
        "game-transitions-ragged",
        lambda f: Game(**game_fields(transitions=[[1.0], [0.5, 0.5]])),
        GE,
        "transitions",
    ),
    (
        "game-reward-shape",
        lambda f: Game(**game_fields(leader_reward=np.zeros((H, S, A, B + 1)))),
        GE,
        "leader_reward.*shape",
    ),
    (
        "game-reward-3d",
        lambda f: Game(**game_fields(leader_reward=np.zeros((H, S, A)))),
        GE,
        "leader_reward.*4-dimensional",
    ),
    (
        "game-reward-nan",
        lambda f: Game(
            **game_fields(leader_reward=with_entry(GAME.leader_reward, (0, 0, 0, 0), np.nan))
        ),
        GE,
        "leader_reward.*NaN",
    ),
    (
        "game-reward-inf",
        lambda f: Game(
            **game_fields(leader_reward=with_entry(GAME.leader_reward, (1, 0, 0, 0), -np.inf))
        ),
        GE,
        "leader_reward.*infinite",
    ),
    ("game-reward-none", lambda f: Game(**game_fields(leader_reward=None)), GE, "leader_reward"),
    (
        "game-features-shape",
        lambda f: Game(**game_fields(features=GAME.features[:, :, :, :2])),
        GE,
        "features.*shape",
    ),
    (
        "game-features-nan",
        lambda f: Game(**game_fields(features=with_entry(GAME.features, (0, 0, 0, 0, 0), np.nan))),
        GE,
        "features.*NaN",
    ),
    (
        "game-features-d0",
        lambda f: Game(**game_fields(features=np.zeros((H, S, A, B, 0)), theta=np.zeros(0))),
        GE,
        "features.*dimension",
    ),
    ("game-theta-length", lambda f: Game(**game_fields(theta=np.zeros(D + 1))), GE, "theta.*shape"),
    (
        "game-theta-2d",
        lambda f: Game(**game_fields(theta=np.zeros((1, D)))),
        GE,
        "theta.*1-dimensional",
    ),
    (
        "game-theta-nan",
        lambda f: Game(**game_fields(theta=with_entry(GAME.theta, 0, np.nan))),
        GE,
        "theta.*NaN",
    ),
    ("game-eta-zero", lambda f: Game(**game_fields(eta=0.0)), GE, "eta.*> 0"),
    ("game-eta-negative", lambda f: Game(**game_fields(eta=-1.0)), GE, "eta.*> 0"),
    ("game-eta-nan", lambda f: Game(**game_fields(eta=np.nan)), GE, "eta"),
    ("game-eta-inf", lambda f: Game(**game_fields(eta=np.inf)), GE, "eta"),
    ("game-eta-text", lambda f: Game(**game_fields(eta="high")), GE, "eta"),
    ("game-eta-vector", lambda f: Game(**game_fields(eta=[1.0, 2.0])), GE, "eta"),
    (
        "game-initial-length",
        lambda f: Game(**game_fields(initial_dist=np.ones(S + 1) / (S + 1))),
        GE,
        "initial_dist.*shape",
    ),
    (
        "game-initial-off-simplex",
        lambda f: Game(**game_fields(initial_dist=np.ones(S))),
        GE,
        "initial_dist.*sum to 1",
    ),
    (
        "game-initial-negative",
        lambda f: Game(**game_fields(initial_dist=np.array([1.5, -0.5] + [0.0] * (S - 2)))),
        GE,
        "initial_dist.*negative",
    ),
    (
        "game-initial-nan",
        lambda f: Game(**game_fields(initial_dist=with_entry(GAME.initial_dist, 0, np.nan))),
        GE,
        "initial_dist.*NaN",
    ),
    ("game-farsighted-text", lambda f: Game(**game_fields(), farsighted="yes"), GE, "farsighted"),
    ("game-replace-eta", lambda f: GAME.replace(eta=-2.0), GE, "eta"),
    # --- generators
    ("random-game-zero-states", lambda f: random_game(0, 0, 2, 2, 2, 2), GE, "n_states"),
    ("random-game-fractional-horizon", lambda f: random_game(0, 2, 2, 2, 1.5, 2), GE, "horizon"),
    ("random-game-eta-zero", lambda f: random_game(0, 2, 2, 2, 2, 2, eta=0.0), GE, "eta"),
    ("named-game-unknown", lambda f: bq.games.named_game("chess"), GE, "unknown named game"),
    ("patrol-eta-negative", lambda f: patrol_game(eta=-1.0), GE, "eta"),
    # --- Game files
    ("game-file-missing", lambda f: Game.load(f["missing"]), GE, "file not found"),
    ("game-file-empty", lambda f: Game.load(f["empty"]), GE, "not a readable .npz"),
    ("game-file-truncated", lambda f: Game.load(f["truncated_game"]), GE, "not a readable .npz"),
    ("game-file-text", lambda f: Game.load(f["text"]), GE, "not a readable .npz"),
    ("game-file-foreign", lambda f: Game.load(f["foreign"]), GE, "missing field"),
    ("game-file-is-dataset", lambda f: Game.load(f["data"]), GE, "missing field.*transitions"),
    ("game-file-zip-not-npy", lambda f: Game.load(f["zip_not_npy"]), GE, "zip.npz"),
    ("game-file-no-theta", lambda f: Game.load(f["game_no_theta"]), GE, "missing field.*theta"),
    ("game-file-nan", lambda f: Game.load(f["game_nan"]), GE, "leader_reward.*NaN"),
    ("game-file-eta-negative", lambda f: Game.load(f["game_eta_negative"]), GE, "eta"),
    ("game-file-bad-farsighted", lambda f: Game.load(f["game_bad_farsighted"]), GE, "farsighted"),
    (
        "game-file-off-simplex",
        lambda f: Game.load(f["game_off_simplex"]),
        GE,
        "transitions.*sum to 1",
    ),
    ("game-file-pickled", lambda f: Game.load(f["game_pickled"]), GE, "game_pickled.npz"),
    ("game-file-directory", lambda f: Game.load(f["dir"]), GE, "file not found"),
    # --- Dataset construction
    (
        "data-state-out-of-range",
        lambda f: Dataset(**data_fields(states=with_entry(DATA.states, (0, 0), S))),
        DE,
        "states.*indices must lie",
    ),
    (
        "data-state-negative",
        lambda f: Dataset(**data_fields(states=with_entry(DATA.states, (0, 1), -1))),
        DE,
        "states.*indices must lie",
    ),
    (
        "data-leader-action-out-of-range",
        lambda f: Dataset(**data_fields(leader_actions=with_entry(DATA.leader_actions, (0, 0), A))),
        DE,
        "leader_actions.*indices must lie",
    ),
    (
        "data-follower-action-negative",
        lambda f: Dataset(
            **data_fields(follower_actions=with_entry(DATA.follower_actions, (0, 0), -3))
        ),
        DE,
        "follower_actions.*indices must be >= 0",
    ),
    (
        "data-fractional-index",
        lambda f: Dataset(
            **data_fields(leader_actions=with_entry(DATA.leader_actions.astype(float), (0, 0), 0.5))
        ),
        DE,
        "leader_actions.*integers",
    ),
    (
        "data-nan-index",
        lambda f: Dataset(
            **data_fields(states=with_entry(DATA.states.astype(float), (0, 0), np.nan))
        ),
        DE,
        "states.*integers",
    ),
    (
        "data-text-actions",
        lambda f: Dataset(**data_fields(leader_actions=np.full(DATA.leader_actions.shape, "a"))),
        DE,
        "leader_actions",
    ),
    (
        "data-states-short",
        lambda f: Dataset(**data_fields(states=DATA.states[:, :H])),
        DE,
        "states.*shape",
    ),
    (
        "data-states-1d",
        lambda f: Dataset(**data_fields(states=DATA.states[0])),
        DE,
        "states.*2-dimensional",
    ),
    (
        "data-rewards-shape",
        lambda f: Dataset(**data_fields(rewards=DATA.rewards[:5])),
        DE,
        "rewards.*shape",
    ),
    (
        "data-rewards-nan",
        lambda f: Dataset(**data_fields(rewards=with_entry(DATA.rewards, (0, 0), np.nan))),
        DE,
        "rewards.*NaN",
    ),
    (
        "data-rewards-inf",
        lambda f: Dataset(**data_fields(rewards=with_entry(DATA.rewards, (0, 0), np.inf))),
        DE,
        "rewards.*infinite",
    ),
    (
        "data-policies-off-simplex",
        lambda f: Dataset(**data_fields(policies=not_summing_to_one(DATA.policies))),
        DE,
        "policies.*sum to 1",
    ),
    (
        "data-policies-negative",
        lambda f: Dataset(**data_fields(policies=with_entry(DATA.policies, (0, 0, 0, 0), -0.1))),
        DE,
        "policies.*negative",
    ),
    (
        "data-policies-nan",
        lambda f: Dataset(**data_fields(policies=with_entry(DATA.policies, (0, 0, 0, 0), np.nan))),
        DE,
        "policies.*NaN",
    ),
    (
        "data-policies-3d",
        lambda f: Dataset(**data_fields(policies=DATA.policies[0])),
        DE,
        "policies.*4-dimensional",
    ),
    (
        "data-episode-count-mismatch",
        lambda f: Dataset(**data_fields(leader_actions=DATA.leader_actions[:-1])),
        DE,
        "leader_actions.*shape",
    ),
    (
        "data-concat-mismatch",
        lambda f: Dataset.concat(
            DATA,
            Dataset(
                np.zeros((1, 2), int),
                np.zeros((1, 1), int),
                np.zeros((1, 1), int),
                np.zeros((1, 1)),
                np.ones((1, 1, 1, 1)),
            ),
        ),
        DE,
        "policies.*concatenate",
    ),
    # --- Dataset files
    ("data-file-missing", lambda f: Dataset.load(f["missing"]), DE, "file not found"),
    ("data-file-empty", lambda f: Dataset.load(f["empty"]), DE, "not a readable .npz"),
    ("data-file-truncated", lambda f: Dataset.load(f["truncated_data"]), DE, "truncated_data.npz"),
    ("data-file-text", lambda f: Dataset.load(f["text"]), DE, "not a readable .npz"),
    ("data-file-foreign", lambda f: Dataset.load(f["foreign"]), DE, "missing field"),
    ("data-file-is-game", lambda f: Dataset.load(f["game"]), DE, "missing field.*states"),
    (
        "data-file-no-rewards",
        lambda f: Dataset.load(f["data_no_rewards"]),
        DE,
        "missing field.*rewards",
    ),
    (
        "data-file-bad-state",
        lambda f: Dataset.load(f["data_bad_state"]),
        DE,
        "states.*indices must lie",
    ),
    ("data-file-nan-reward", lambda f: Dataset.load(f["data_nan_reward"]), DE, "rewards.*NaN"),
    ("data-file-directory", lambda f: Dataset.load(f["dir"]), DE, "file not found"),
    # --- datasets against a game
    (
        "data-follower-action-vs-game",
        lambda f: Dataset.load(f["data_bad_follower"]).validate_for(GAME),
        DE,
        "follower_actions.*for this game",
    ),
    (
        "data-other-game-shape",
        lambda f: Dataset.load(f["data_other_game"]).validate_for(GAME),
        DE,
        "policies.*does not match",
    ),
    (
        "fit-mle-other-game",
        lambda f: fit_mle(Dataset.load(f["data_other_game"]), GAME),
        IE,
        "policies|states",
    ),
    # --- simulate
    ("simulate-negative-episodes", lambda f: simulate(GAME, POLICY, -1, 0), DE, "n_episodes"),
    ("simulate-fractional-episodes", lambda f: simulate(GAME, POLICY, 2.5, 0), DE, "n_episodes"),
    ("simulate-policy-shape", lambda f: simulate(GAME, POLICY[:, :, :1], 3, 0), IE, "policy"),
    (
        "simulate-policy-off-simplex",
        lambda f: simulate(GAME, POLICY * 2, 3, 0),
        IE,
        "policy.*sum to 1",
    ),
    (
        "simulate-policy-nan",
        lambda f: simulate(GAME, with_entry(POLICY, (0, 0, 0), np.nan), 3, 0),
        IE,
        "policy.*NaN",
    ),
    (
        "simulate-policies-count",
        lambda f: simulate(GAME, np.stack([POLICY] * 2), 3, 0),
        IE,
        "policy.*shape",
    ),
    # --- follower, planner
    (
        "response-policy-shape",
        lambda f: bq.follower_response(GAME, POLICY[0]),
        IE,
        "leader_policy.*3-dimensional",
    ),
    (
        "response-policy-off-simplex",
        lambda f: bq.follower_response(GAME, POLICY * 0.5),
        IE,
        "leader_policy.*sum to 1",
    ),
    (
        "response-policy-negative",
        lambda f: bq.follower_response(GAME, with_entry(POLICY, (0, 0, 0), -1.0)),
        IE,
        "leader_policy.*negative",
    ),
    (
        "response-farsighted-no-policy",
        lambda f: bq.follower_response(GAME.replace(farsighted=True)),
        IE,
        "leader_policy.*required",
    ),
    ("solve-theta-length", lambda f: bq.solve_qse(GAME, theta=np.zeros(D + 2)), IE, "theta"),
    ("solve-theta-nan", lambda f: bq.solve_qse(GAME, theta=np.full(D, np.nan)), IE, "theta.*NaN"),
    (
        "solve-theta-batch",
        lambda f: bq.solve_qse(GAME, theta=np.zeros((2, D))),
        IE,
        "theta.*single",
    ),
    ("value-policy-shape", lambda f: bq.leader_value(GAME, np.ones((H, S))), IE, "policy"),
    (
        "value-policy-nan",
        lambda f: bq.leader_value(GAME, np.full((H, S, A), np.nan)),
        IE,
        "policy.*NaN",
    ),
    (
        "value-policy-off-simplex",
        lambda f: bq.leader_value(GAME, np.ones((H, S, A))),
        IE,
        "policy.*sum to 1",
    ),
    # --- inference
    ("fit-eta-zero", lambda f: fit_mle(DATA, Model(GAME.features, 0.0)), IE, "eta.*> 0"),
    ("fit-eta-negative", lambda f: fit_mle(DATA, Model(GAME.features, -3.0)), IE, "eta.*> 0"),
    ("fit-game-bare-features", lambda f: fit_mle(DATA, GAME.features), IE, "game.*Model"),
    (
        "fit-features-nan",
        lambda f: fit_mle(DATA, Model(with_entry(GAME.features, (0, 0, 0, 0, 0), np.nan), 1.0)),
        IE,
        "features.*NaN",
    ),
    ("posterior-method", lambda f: sample_posterior(DATA, GAME, method="vi"), IE, "method"),
    ("posterior-prior", lambda f: sample_posterior(DATA, GAME, prior="cauchy"), IE, "prior"),
    (
        "posterior-prior-scale",
        lambda f: sample_posterior(DATA, GAME, prior_scale=0.0),
        IE,
        "prior_scale",
    ),
    (
        "posterior-num-samples",
        lambda f: sample_posterior(DATA, GAME, num_samples=0),
        IE,
        "num_samples",
    ),
    (
        "posterior-num-warmup",
        lambda f: sample_posterior(DATA, GAME, num_warmup=-1),
        IE,
        "num_warmup",
    ),
    (
        "posterior-num-chains",
        lambda f: sample_posterior(DATA, GAME, num_chains=0),
        IE,
        "num_chains",
    ),
    ("summary-method", lambda f: fit_summary(DATA, GAME, method="bootstrap"), IE, "method"),
    # --- run store
    ("store-bad-key", lambda f: RunStore(f["dir"].parent / "store", "x", {}).has("a/b"), CE, "key"),
    ("store-corrupt-manifest", lambda f: RunStore(f["manifest_corrupt"], "x", {}), CE, "manifest"),
    ("store-out-is-file", lambda f: RunStore(f["game"], "x", {}), CE, "not a directory"),
]


def _toy_experiment():
    mod = types.ModuleType("toy_for_robustness")
    mod.DEFAULT_CONFIG = {
        "seeds": 2,
        "base_seed": 0,
        "episodes": 10,
        "eta": 1.0,
        "learners": ["greedy"],
        "farsighted": False,
    }
    mod.FULL_CONFIG = dict(mod.DEFAULT_CONFIG)
    return mod


CONFIG_CASES = [
    ("unknown-key", "episdoes = 5", "unknown key 'episdoes'"),
    ("string-for-int", 'episodes = "5"', "episodes must be an integer"),
    ("float-for-int", "episodes = 5.5", "episodes must be an integer"),
    ("bool-for-number", "eta = true", "eta must be a number"),
    ("nan-eta", "eta = nan", "eta must be finite"),
    ("seeds-zero", "seeds = 0", "seeds must be >= 1"),
    ("seeds-negative", "seeds = -4", "seeds must be >= 1"),
    ("base-seed-negative", "base_seed = -1", "base_seed must be >= 0"),
    ("list-for-string", "learners = 3", "learners must be a list"),
    ("wrong-element", "learners = [1]", "learners\\[0\\] must be a string"),
    ("int-for-bool", "farsighted = 0", "farsighted must be a boolean"),
    ("invalid-toml", "eta = ", "not valid TOML"),
]

for _name, _text, _pattern in CONFIG_CASES:

    def _load(f, text=_text):
        path = f["dir"].parent / f"config_{abs(hash(text))}.toml"
        path.write_text(text)
        load_config(_toy_experiment(), path)

    API_CASES.append((f"config-{_name}", _load, CE, _pattern))
API_CASES.append(
    (
        "config-missing-file",
        lambda f: load_config(_toy_experiment(), f["missing"]),
        CE,
        "file not found",
    )
)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [pytest.param(c, e, p, id=i) for i, c, e, p in API_CASES],
)
def test_api_rejects_malformed_input(files, call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call(files)
    assert isinstance(info.value, ValueError)  # every input error is a ValueError
    assert "\n" not in str(info.value).strip() or len(str(info.value)) < 2000


# ---------------------------------------------------------------------------------------
# Command line, in-process: (id, argv with {file} placeholders, regex on the one stderr line)
# ---------------------------------------------------------------------------------------

CLI_CASES = [
    ("no-command", [], "required: COMMAND"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
    ("unknown-flag", ["solve", "{game}", "--bogus"], "unrecognized arguments: --bogus"),
    ("solve-missing-arg", ["solve"], "required: GAME.npz"),
    ("solve-missing-file", ["solve", "{missing}"], "file not found"),
    ("solve-empty-file", ["solve", "{empty}"], "not a readable .npz"),
    ("solve-truncated-file", ["solve", "{truncated_game}"], "not a readable .npz"),
    ("solve-text-file", ["solve", "{text}"], "not a readable .npz"),
    ("solve-foreign-npz", ["solve", "{foreign}"], "missing field"),
    ("solve-dataset-as-game", ["solve", "{data}"], "missing field.*transitions"),
    ("solve-nan-game", ["solve", "{game_nan}"], "leader_reward.*NaN"),
    ("solve-eta-negative", ["solve", "{game_eta_negative}", "--json"], "eta"),
    ("solve-off-simplex", ["solve", "{game_off_simplex}"], "transitions.*sum to 1"),
    ("solve-directory", ["solve", "{dir}"], "file not found"),
    ("solve-seed-text", ["solve", "{game}", "--seed", "one"], "--seed: invalid int"),
    ("fit-swapped-files", ["fit", "{game}", "{data}"], "missing field"),
    ("fit-missing-data", ["fit", "{missing}", "{game}"], "file not found"),
    ("fit-truncated-data", ["fit", "{truncated_data}", "{game}"], "truncated_data.npz"),
    ("fit-bad-state", ["fit", "{data_bad_state}", "{game}"], "states.*indices must lie"),
    ("fit-nan-reward", ["fit", "{data_nan_reward}", "{game}"], "rewards.*NaN"),
    ("fit-other-game", ["fit", "{data_other_game}", "{game}", "--json"], "policies|states"),
    ("fit-bad-method", ["fit", "{data}", "{game}", "--method", "bootstrap"], "invalid choice"),
    (
        "fit-samples-zero",
        ["fit", "{data}", "{game}", "--method", "laplace", "--samples", "0"],
        "--samples: must be >= 1",
    ),
    ("fit-samples-text", ["fit", "{data}", "{game}", "--samples", "many"], "invalid int"),
    ("make-game-unknown", ["make-game", "chess", "{out}"], "unknown game 'chess'"),
    ("make-game-eta-negative", ["make-game", "patrol", "{out}", "--eta", "-1"], "--eta.*> 0"),
    ("make-game-eta-zero", ["make-game", "pricing", "{out}", "--eta", "0"], "--eta.*> 0"),
    ("make-game-eta-nan", ["make-game", "patrol", "{out}", "--eta", "nan"], "--eta"),
    ("make-game-eta-text", ["make-game", "patrol", "{out}", "--eta", "high"], "invalid float"),
    (
        "make-game-bad-option",
        ["make-game", "steering", "{out}", "--horizon", "3"],
        "steering.*horizon",
    ),
    (
        "make-game-random-states",
        ["make-game", "random", "{out}", "--states", "0"],
        "--states: must be >= 1",
    ),
    ("make-game-random-horizon", ["make-game", "random", "{out}", "--horizon", "-2"], "horizon"),
    ("make-game-out-is-dir", ["make-game", "patrol", "{dir}"], "a_directory.npz"),
    (
        "simulate-episodes-zero",
        ["simulate", "{game}", "{out}", "--episodes", "0"],
        "--episodes: must be >= 1",
    ),
    (
        "simulate-bad-policy",
        ["simulate", "{game}", "{out}", "--policy", "random"],
        "invalid choice",
    ),
    ("simulate-bad-game", ["simulate", "{truncated_game}", "{out}"], "not a readable .npz"),
    ("run-unknown-experiment", ["run", "no_such_experiment"], "unknown experiment"),
    ("run-seeds-text", ["run", "online_regret", "--seeds", "x"], "--seeds: invalid int"),
    ("plot-not-results", ["plot", "{dir}"], "not a results directory"),
    ("plot-missing-dir", ["plot", "{missing}"], "not a results directory"),
    ("plot-unknown-experiment", ["plot", "{manifest_unknown}"], "unknown experiment"),
    ("plot-corrupt-manifest", ["plot", "{manifest_corrupt}"], "unreadable manifest"),
    ("demo-seed-text", ["demo", "--seed", "zero"], "--seed: invalid int"),
    ("sweep-missing-spec", ["sweep", "{missing}", "--out", "{out}"], "not found"),
    (
        "plan-coverage-unknown-game",
        ["plan-coverage", "nope", "--weights", "1", "2", "3"],
        "invalid choice",
    ),
    (
        "plan-coverage-two-weights",
        ["plan-coverage", "security_uniform", "--weights", "1", "2"],
        "expected 3",
    ),
    (
        "plan-coverage-nan-weight",
        ["plan-coverage", "security_uniform", "--weights", "nan", "2", "3"],
        "finite",
    ),
    (
        "plan-coverage-negative-resources",
        ["plan-coverage", "security_uniform", "--weights", "1", "2", "3", "--resources", "-1"],
        "resources",
    ),
    ("sweep-spec-is-dir", ["sweep", "{dir}", "--out", "{out}"], "directory"),
]


def run_cli_inprocess(argv, capsys):
    """``cli.main(argv)``; returns ``(exit status, stdout, stderr)``."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fill(argv, files, tmp_path):
    table = {k: str(v) for k, v in files.items()}
    table["out"] = str(tmp_path / "out.npz")
    return [a.format(**table) if "{" in a else a for a in argv]


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes-qse: error: "), err
    assert "Traceback" not in err
    import re

    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(("argv", "pattern"), [pytest.param(a, p, id=i) for i, a, p in CLI_CASES])
def test_cli_rejects_malformed_input_in_one_line(files, tmp_path, capsys, argv, pattern):
    code, out, err = run_cli_inprocess(_fill(argv, files, tmp_path), capsys)
    assert_one_line_error(code, err, pattern)
    assert out == ""


def test_cli_bad_run_config_in_one_line(files, tmp_path, capsys, monkeypatch):
    """A bad TOML value for a real experiment (or the toy one when none is installed)."""
    from bayes_qse import experiments

    mod = _toy_experiment()
    mod.run = lambda config, out_dir, progress=True: None
    mod.plot = lambda out_dir: []
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", mod.__name__)
    real = experiments.importlib.util.find_spec
    monkeypatch.setattr(
        experiments.importlib.util,
        "find_spec",
        lambda name, *a: True if name == mod.__name__ else real(name, *a),
    )
    for text, pattern in (
        ("eta = -", "not valid TOML"),
        ("seeds = 0", "seeds must be >= 1"),
        ("speed = 3", "unknown key 'speed'"),
    ):
        path = tmp_path / "c.toml"
        path.write_text(text)
        code, _, err = run_cli_inprocess(["run", "toy", "--config", str(path)], capsys)
        assert_one_line_error(code, err, pattern)
    code, _, err = run_cli_inprocess(["run", "toy", "--config", str(files["missing"])], capsys)
    assert_one_line_error(code, err, "file not found")
    code, _, err = run_cli_inprocess(["run", "toy", "--seeds", "0"], capsys)
    assert_one_line_error(code, err, "seeds must be >= 1")


def test_cli_internal_errors_are_one_line_unless_debug(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("unexpected\nmulti-line")

    monkeypatch.setattr(cli, "cmd_games", boom)
    code, _, err = run_cli_inprocess(["games"], capsys)
    assert code == 1 and err.count("\n") == 1 and "RuntimeError" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "games"])


# ---------------------------------------------------------------------------------------
# Command line, a sample by subprocess (the real console behaviour, incl. interpreter exit)
# ---------------------------------------------------------------------------------------

SUBPROCESS_SAMPLE = [
    "unknown-command",
    "unknown-flag",
    "solve-missing-file",
    "solve-truncated-file",
    "solve-dataset-as-game",
    "fit-bad-state",
    "fit-samples-zero",
    "make-game-eta-negative",
    "run-unknown-experiment",
    "plot-not-results",
]


@pytest.mark.slow
def test_cli_subprocess_sample(files, tmp_path):
    """Run the sample concurrently (each interpreter start imports JAX, ~2 s)."""
    cases = {i: (a, p) for i, a, p in CLI_CASES}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    procs = []
    for case in SUBPROCESS_SAMPLE:
        argv, pattern = cases[case]
        cmd = [sys.executable, "-m", "bayes_qse.cli", *_fill(argv, files, tmp_path)]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
        )
        procs.append((proc, pattern))
    for proc, pattern in procs:
        _, err = proc.communicate(timeout=180)
        assert_one_line_error(proc.returncode, err, pattern)


def test_every_subcommand_has_malformed_input_cases():
    """Replaces a count of the case list (which could not fail): every subcommand of the real
    parser must have at least one malformed-input case here, so a new subcommand without
    robustness cases fails this test."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    covered = {argv[0] for _, argv, _ in [*CLI_CASES, *ISSUE12_CLI_CASES] if argv}
    missing = sorted(set(sub.choices) - covered - {"games"})  # games takes no input
    assert not missing, f"subcommands without malformed-input cases: {missing}"


# ---------------------------------------------------------------------------------------
# Numerical edge cases: no NaN
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [1e-3, 1e3])
@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("farsighted", [False, True])
def test_extreme_eta_and_utilities_give_no_nan(eta, scale, farsighted):
    g = GAME.replace(
        theta=GAME.theta / np.abs(GAME.theta).max() * scale, eta=eta, farsighted=farsighted
    )
    u = np.asarray(g.utility())
    assert np.abs(u).max() > 0.5 * scale  # utilities really are on this scale
    nu = np.asarray(bq.follower_response(g, POLICY))
    assert np.all(np.isfinite(nu)) and np.allclose(nu.sum(-1), 1.0)
    sol = bq.solve_qse(g, n_steps=50, n_random_starts=1)
    assert np.isfinite(sol.value) and np.all(np.isfinite(sol.policy))
    assert np.isfinite(bq.leader_value(g, sol.policy))
    if eta * scale >= 1e3 and not farsighted:
        # an (almost) best-responding follower: the response is (nearly) one-hot
        assert np.median(nu.max(-1)) > 0.99
    if eta * scale <= 1e-3 * 1.0001:
        np.testing.assert_allclose(nu, 1.0 / B, atol=1e-2)


@pytest.mark.parametrize("eta", [1e-3, 1e3])
def test_extreme_eta_fits_give_no_nan(eta):
    import warnings

    g = GAME.replace(eta=eta)
    data = simulate(g, POLICY, 30, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence at eta=1e3 (separated data) is fine
        fit = fit_mle(data, g)
        post = sample_posterior(data, g, method="laplace", num_samples=50, seed=0)
    assert np.isfinite(fit.log_likelihood) and not np.any(np.isnan(fit.theta))
    assert not np.any(np.isnan(post.theta))


# ---------------------------------------------------------------------------------------
# Same seed, bit-identical results
# ---------------------------------------------------------------------------------------


def test_same_seed_bit_identical():
    a, b = simulate(GAME, POLICY, 15, seed=3), simulate(GAME, POLICY, 15, seed=3)
    for field in ("states", "leader_actions", "follower_actions", "rewards", "policies"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(simulate(GAME, POLICY, 15, seed=4).states, a.states)
    far = GAME.replace(farsighted=True)
    s1 = bq.solve_qse(far, seed=5, n_steps=40, n_random_starts=2)
    s2 = bq.solve_qse(far, seed=5, n_steps=40, n_random_starts=2)
    np.testing.assert_array_equal(s1.policy, s2.policy)
    np.testing.assert_array_equal(s1.start_values, s2.start_values)
    l1 = sample_posterior(DATA, GAME, method="laplace", num_samples=30, seed=2)
    l2 = sample_posterior(DATA, GAME, method="laplace", num_samples=30, seed=2)
    np.testing.assert_array_equal(l1.theta, l2.theta)
    np.testing.assert_array_equal(
        random_game(9, 2, 2, 2, 2, 3).features, random_game(9, 2, 2, 2, 2, 3).features
    )


@pytest.mark.slow
def test_same_seed_bit_identical_nuts():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a deliberately short chain
        p1 = sample_posterior(DATA, GAME, method="nuts", num_samples=30, num_warmup=30, seed=2)
        p2 = sample_posterior(DATA, GAME, method="nuts", num_samples=30, num_warmup=30, seed=2)
        p3 = sample_posterior(DATA, GAME, method="nuts", num_samples=30, num_warmup=30, seed=3)
    np.testing.assert_array_equal(p1.theta, p2.theta)
    assert not np.array_equal(p1.theta, p3.theta)


def test_cli_same_seed_bit_identical(files, tmp_path, capsys):
    outs = []
    for _ in range(2):
        code, out, err = run_cli_inprocess(
            [
                "fit",
                str(files["data"]),
                str(files["game"]),
                "--method",
                "laplace",
                "--json",
                "--samples",
                "50",
                "--seed",
                "7",
            ],
            capsys,
        )
        assert code == 0, err
        outs.append(json.loads(out))
    assert outs[0] == outs[1]
    for i in range(2):
        code, _, err = run_cli_inprocess(
            [
                "simulate",
                str(files["game"]),
                str(tmp_path / f"d{i}.npz"),
                "--episodes",
                "5",
                "--seed",
                "11",
            ],
            capsys,
        )
        assert code == 0, err
    a, b = Dataset.load(tmp_path / "d0.npz"), Dataset.load(tmp_path / "d1.npz")
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.follower_actions, b.follower_actions)


# ---------------------------------------------------------------------------------------
# Issue 12: sizes before allocating, magnitudes, eta's range, booleans, seeds, writes
# ---------------------------------------------------------------------------------------

SEED_TOO_BIG = str(2**70)

#: (id, argv with {file} placeholders, regex on the one stderr line).  ``{out}`` is created
#: beforehand with sentinel bytes, and ``{fifo}`` is a FIFO made with ``os.mkfifo``: neither
#: may be replaced by a failing command.
ISSUE12_CLI_CASES = [
    (
        "make-game-states-1e6",
        ["make-game", "random", "{out}", "--states", "1000000"],
        r"^bayes-qse: error: --states: a random game .*S=1000000.* needs about [\d.]+ TB",
    ),
    (
        "make-game-features-1e9",
        ["make-game", "random", "{out}", "--features", "1e9"],
        r"--features: a random game .*d=1000000000.* needs about [\d.]+ GB",
    ),
    (
        "make-game-features-10-digits",
        ["make-game", "random", "{out}", "--features", "1000000000"],
        r"--features: .* needs about [\d.]+ GB",
    ),
    (
        "make-game-horizon-negative",
        ["make-game", "random", "{out}", "--horizon", "-3"],
        r"--horizon: must be >= 1",
    ),
    (
        "make-game-features-fraction",
        ["make-game", "random", "{out}", "--features", "2.5"],
        r"--features: invalid int",
    ),
    (
        "make-game-seed-2**70",
        ["make-game", "random", "{out}", "--seed", SEED_TOO_BIG],
        r"--seed: must be in \[0, 4294967295\]",
    ),
    (
        "make-game-seed-negative",
        ["make-game", "random", "{out}", "--seed", "-1"],
        r"--seed: must be in \[0, 4294967295\]",
    ),
    (
        "make-game-eta-1e300",
        ["make-game", "random", "{out}", "--eta", "1e300"],
        r"--eta: must lie in \[1e-06, 1e\+06\]",
    ),
    (
        "make-game-eta-1e-300",
        ["make-game", "patrol", "{out}", "--eta", "1e-300"],
        r"--eta: must lie in \[1e-06, 1e\+06\]",
    ),
    (
        "make-game-eta-inf",
        ["make-game", "patrol", "{out}", "--eta", "inf"],
        r"--eta: must be a finite number",
    ),
    (
        "make-game-fifo",
        ["make-game", "patrol", "{fifo}"],
        r"out\.fifo: is a FIFO \(named pipe\), not a regular file; refusing",
    ),
    (
        "make-game-directory",
        ["make-game", "patrol", "{dir}"],
        r"a_directory\.npz: is a directory, not a regular file",
    ),
    ("make-game-empty-name", ["make-game", "patrol", ""], r"OUT\.npz: empty file name"),
    (
        "simulate-episodes-1e9",
        ["simulate", "{game}", "{out}", "--episodes", "1e9"],
        r"--episodes: simulating 1000000000 episodes .* needs about [\d.]+ GB",
    ),
    (
        "simulate-seed-2**70",
        ["simulate", "{game}", "{out}", "--seed", SEED_TOO_BIG],
        r"--seed: must be in",
    ),
    ("simulate-fifo", ["simulate", "{game}", "{fifo}", "--episodes", "3"], r"is a FIFO"),
    (
        "simulate-eta-1e300-game",
        ["simulate", "{game_eta_huge}", "{out}"],
        r"^bayes-qse: error: eta: must lie in",
    ),
    (
        "solve-huge-header",
        ["solve", "{game_huge_header}"],
        r"transitions: .*\(\d, 1000000, 2, 3, 1000000\) of float64.* needs about [\d.]+ TB",
    ),
    ("solve-eta-1e300-game", ["solve", "{game_eta_huge}"], r"^bayes-qse: error: eta: must lie in"),
    ("solve-eta-bool-game", ["solve", "{game_eta_bool}"], r"^bayes-qse: error: eta: .*boolean"),
    (
        "solve-theta-1e308-game",
        ["solve", "{game_theta_huge}"],
        r"^bayes-qse: error: theta: utilities eta \* phi \. theta reach inf",
    ),
    ("solve-seed-2**70", ["solve", "{game}", "--seed", SEED_TOO_BIG], r"--seed: must be in"),
    ("solve-empty-name", ["solve", ""], r"GAME\.npz: empty file name"),
    (
        "fit-huge-header-data",
        ["fit", "{data_huge_header}", "{game}"],
        r"policies: .*\(1000000000, 2, 3, 2\).* needs about [\d.]+ GB",
    ),
    (
        "fit-eta-1e300-game",
        ["fit", "{data}", "{game_eta_huge}"],
        r"^bayes-qse: error: eta: must lie in",
    ),
    ("fit-seed-negative", ["fit", "{data}", "{game}", "--seed", "-5"], r"--seed: must be in"),
    (
        "run-seeds-1e9",
        ["run", "online_regret", "--seeds", "1000000000", "--out", "{outdir}"],
        r"config: seeds must be <= 100000",
    ),
    (
        "run-seeds-past-32-bits",
        ["run", "online_regret", "--seed", "4294967295", "--seeds", "2", "--out", "{outdir}"],
        r"base_seed \+ seeds - 1 must be <= 4294967295",
    ),
    (
        "plot-corrupt-results-npz",
        ["plot", "{results_corrupt_npz}"],
        r"results\.npz: not a readable \.npz archive \(BadZipFile",
    ),
    (
        "demo-seed-2**70",
        ["demo", "--seed", SEED_TOO_BIG, "--out", "{outdir}"],
        r"--seed: must be in",
    ),
]


def _fill12(argv, files, tmp_path):
    table = {k: str(v) for k, v in files.items()}
    table["out"] = str(tmp_path / "out.npz")
    table["fifo"] = str(tmp_path / "out.fifo")
    table["outdir"] = str(tmp_path / "runs")
    (tmp_path / "out.npz").write_bytes(b"sentinel")
    os.mkfifo(tmp_path / "out.fifo")
    return [a.format(**table) if "{" in a else a for a in argv]


@pytest.mark.parametrize(
    ("argv", "pattern"), [pytest.param(a, p, id=i) for i, a, p in ISSUE12_CLI_CASES]
)
def test_cli_issue12_cases_fail_fast_in_one_line(
    files, tmp_path, capsys, monkeypatch, argv, pattern
):
    """Exit 2, one stderr line naming the field, nothing replaced, and no allocation: the
    array builders and ``np.load`` are booby-trapped, so a check that comes after allocating
    (or never) fails here instead of ending in a MemoryError."""
    import stat

    import bayes_qse.data
    import bayes_qse.games

    def trap(*a, **k):
        raise AssertionError("allocated before checking the size")

    monkeypatch.setattr(bayes_qse.games, "random_game", trap)
    monkeypatch.setattr(bayes_qse.data, "simulate", trap)
    if argv[0] in ("solve", "fit"):  # header checks come before np.load
        real_load = np.load

        def guarded_load(path, *a, **k):
            if "huge_header" in str(path):
                trap()
            return real_load(path, *a, **k)

        monkeypatch.setattr(np, "load", guarded_load)
    code, out, err = run_cli_inprocess(_fill12(argv, files, tmp_path), capsys)
    assert_one_line_error(code, err, pattern)
    assert out == ""
    assert (tmp_path / "out.npz").read_bytes() == b"sentinel"
    assert stat.S_ISFIFO(os.stat(tmp_path / "out.fifo").st_mode)
    assert not (tmp_path / "runs").exists()
    assert "9223372036854775807" not in err and "resume=False" not in err


@pytest.mark.slow
def test_cli_issue12_sample_by_subprocess_is_fast(files, tmp_path):
    """The real console script: the sizes are refused in a few seconds (interpreter start
    included), not after a MemoryError."""
    import time

    cases = {i: (a, p) for i, a, p in ISSUE12_CLI_CASES}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    for case in ("make-game-states-1e6", "simulate-episodes-1e9", "solve-huge-header"):
        argv, pattern = cases[case]
        folder = tmp_path / case
        folder.mkdir()
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bayes_qse.cli", *_fill12(argv, files, folder)],
            capture_output=True,
            text=True,
            cwd=folder,
            env=env,
            timeout=120,
        )
        assert_one_line_error(proc.returncode, proc.stderr, pattern)
        assert time.perf_counter() - start < 30


def test_write_errors_name_the_folder_not_a_temp_file(tmp_path, capsys, monkeypatch):
    """A disk-full write: the message names the output and its folder, never the temporary
    file, and the temporary file is removed."""
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "game.npz"
    code, _, err = run_cli_inprocess(["make-game", "patrol", str(out)], capsys)
    assert_one_line_error(code, err, "No space left on device")
    assert str(tmp_path) in err and "game.npz" in err and ".tmp" not in err
    assert os.listdir(tmp_path) == []


def test_run_config_conflict_speaks_command_line(tmp_path, capsys, monkeypatch):
    """The store's refusal of a changed configuration names ``--restart``, not the Python
    API's ``resume=False``."""
    from bayes_qse import experiments

    mod = _toy_experiment()

    def run(config, out_dir, progress=True):
        RunStore(out_dir, "toy", config)
        return out_dir / "results.npz"

    mod.run = run
    mod.plot = lambda out_dir: []
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", mod.__name__)
    real = experiments.importlib.util.find_spec
    monkeypatch.setattr(
        experiments.importlib.util,
        "find_spec",
        lambda name, *a: True if name == mod.__name__ else real(name, *a),
    )
    out = str(tmp_path / "runs")
    code, _, err = run_cli_inprocess(["run", "toy", "--out", out, "--no-plot"], capsys)
    assert code == 0, err
    code, _, err = run_cli_inprocess(["run", "toy", "--out", out, "--seed", "3"], capsys)
    assert_one_line_error(code, err, r"base_seed.*--restart")
    assert "resume=False" not in err


# ---- the Python API -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        pytest.param({"eta": True}, r"^eta: .*boolean", id="eta-True"),
        pytest.param({"eta": np.bool_(True)}, r"^eta: .*boolean", id="eta-np-bool"),
        pytest.param({"eta": np.array(True)}, r"^eta: .*boolean", id="eta-bool-array"),
        pytest.param({"theta": np.ones(D, bool)}, r"^theta: .*boolean", id="theta-bools"),
        pytest.param(
            {"initial_dist": np.eye(S, dtype=bool)[0]}, r"^initial_dist: .*boolean", id="rho-bools"
        ),
        pytest.param({"eta": 1e300}, r"^eta: must lie in \[1e-06, 1e\+06\]", id="eta-1e300"),
        pytest.param({"eta": 1e-300}, r"^eta: must lie in", id="eta-1e-300"),
        pytest.param({"eta": 1.0000001e6}, r"^eta: must lie in", id="eta-just-above"),
        pytest.param({"eta": 0.9999999e-6}, r"^eta: must lie in", id="eta-just-below"),
        pytest.param(
            {"theta": np.full(D, 1e308)}, r"^theta: utilities .* reach inf", id="theta-1e308"
        ),
        pytest.param(
            {"theta": np.full(D, 1e12)}, r"^theta: utilities .* beyond 1e\+12", id="theta-1e12"
        ),
        pytest.param(
            {"theta": np.full(D, 1e8), "eta": 1e5}, r"^theta: utilities", id="eta-times-theta"
        ),
    ],
)
def test_game_rejects_booleans_and_magnitudes(changes, pattern):
    with pytest.raises(GameValidationError, match=pattern):
        GAME.replace(**changes)


def test_eta_range_ends_are_accepted():
    """The documented range is closed: both ends construct (and the utilities stay small)."""
    assert float(GAME.replace(eta=1e-6).eta) == 1e-6
    assert float(GAME.replace(eta=1e6).eta) == 1e6


def test_solve_qse_rejects_overflowing_theta_instead_of_nan():
    """Before: ``solve_qse(game, theta=[1e308]*d).value`` was NaN with no error."""
    with pytest.raises(BayesQSEInputError, match=r"^theta: utilities .* reach inf"):
        bq.solve_qse(GAME, theta=[1e308] * D)
    with pytest.raises(BayesQSEInputError, match=r"^theta: utilities"):
        bq.leader_value(GAME, POLICY, theta=np.full(D, -1e300))
    # the same bound on the value side: 1e12 / max|phi| is still accepted
    phi_max = np.abs(np.asarray(GAME.features)).sum(-1).max()
    ok = np.full(D, 0.5e12 / phi_max / float(GAME.eta))
    assert np.isfinite(bq.solve_qse(GAME, theta=ok).value)


def test_bare_feature_fits_enforce_the_eta_range():
    with pytest.raises(BayesQSEInputError, match=r"^eta: must lie in"):
        fit_mle(DATA, Model(np.asarray(GAME.features), 1e300))
    with pytest.raises(BayesQSEInputError, match=r"^eta: .*boolean"):
        fit_mle(DATA, Model(np.asarray(GAME.features), True))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        pytest.param(
            {"n_episodes": 10**9},
            r"^n_episodes: simulating 1000000000 .* needs about",
            id="1e9-episodes",
        ),
        pytest.param({"n_episodes": True}, r"^n_episodes: must be an integer", id="bool-episodes"),
        pytest.param(
            {"seed": 2**70}, r"^seed: must be an integer in \[0, 4294967295\]", id="seed-2**70"
        ),
        pytest.param({"seed": -1}, r"^seed: must be an integer in", id="seed-negative"),
    ],
)
def test_simulate_checks_sizes_and_seeds_first(kwargs, pattern, monkeypatch):
    import jax

    def trap(*a, **k):
        raise AssertionError("simulated before checking")

    monkeypatch.setattr(jax.random, "split", trap)
    args = {"n_episodes": 5, "seed": 0, **kwargs}
    with pytest.raises(DatasetValidationError, match=pattern):
        simulate(GAME, POLICY, args["n_episodes"], args["seed"])


def test_memory_limit_follows_the_environment(monkeypatch):
    """The limit in the message is the one in force: a 1 MB cap refuses a 2 MB dataset that
    the default limit accepts (so the estimate is compared, not a fixed size)."""
    from bayes_qse.data import dataset_bytes

    n = 2000
    need = dataset_bytes(n, H, S, A)
    # the estimate holds the [N,H,S,A] policies at least once (a NumPy-independent count)
    assert need >= n * H * S * A * 8
    monkeypatch.setenv("BAYES_QSE_MAX_BYTES", str(need - 1))
    with pytest.raises(DatasetValidationError, match=r"n_episodes: .* more than the"):
        simulate(GAME, POLICY, n, 0)
    monkeypatch.setenv("BAYES_QSE_MAX_BYTES", str(need))
    assert simulate(GAME, POLICY, n, 0).n_episodes == n


# ---- property-based: random malformed Game fields -------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

GAME_FIELDS = ("transitions", "leader_reward", "features", "theta", "eta", "initial_dist")
_SPECIAL = [0.0, -1.0, 1e-300, 1e300, 1e308, -1e308, np.nan, np.inf, -np.inf, 1e6, 1e-6, 2.0]


@st.composite
def malformed_value(draw, field):
    """A value for ``field``: the valid one perturbed (an entry, the scale, the dtype, the
    shape) or something else entirely (bool, str, None, a nested ragged list)."""
    valid = np.asarray(getattr(GAME, field))
    kind = draw(st.sampled_from(["entry", "scale", "bool", "shape", "python", "ragged", "int"]))
    if kind == "entry":
        out = np.array(valid, dtype=np.float64)
        if out.ndim == 0:
            return np.float64(draw(st.sampled_from(_SPECIAL)))
        idx = tuple(draw(st.integers(0, n - 1)) for n in out.shape)
        out[idx] = draw(st.sampled_from(_SPECIAL))
        return out
    if kind == "scale":
        return valid * draw(st.sampled_from([-1.0, 0.0, 1e-300, 1e150, 1e300, 1e308]))
    if kind == "bool":
        return valid.astype(bool) if valid.ndim else draw(st.booleans())
    if kind == "shape":
        shape = draw(st.lists(st.integers(0, 3), min_size=0, max_size=6))
        return np.full(shape, draw(st.sampled_from(_SPECIAL)))
    if kind == "int":
        return valid.astype(np.int64)
    if kind == "ragged":
        return [[1.0, 2.0], [3.0]]
    return draw(st.sampled_from([None, "1.0", "abc", True, False, 0, -3, 10**400, {"a": 1}]))


@st.composite
def field_and_value(draw):
    field = draw(st.sampled_from(GAME_FIELDS))
    return field, draw(malformed_value(field))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(field_and_value())
def test_random_malformed_game_fields_raise_a_named_error_or_give_a_sound_game(fv):
    """Whatever a field is replaced by, ``Game`` either raises ``GameValidationError`` whose
    message starts with the name of a field, or returns a game whose eta is a non-boolean in
    [1e-6, 1e6] and whose scaled utilities are finite and <= 1e12 -- never another exception,
    never a game that later produces NaN."""
    field, value = fv
    try:
        g = GAME.replace(**{field: value})
    except GameValidationError as exc:
        assert str(exc).split(":")[0] in GAME_FIELDS, str(exc)
        return
    raw = np.asarray(value) if value is not None else None
    assert raw is None or raw.dtype != bool, f"{field}: a boolean was accepted"
    eta = float(g.eta)
    assert 1e-6 <= eta <= 1e6
    u = eta * np.einsum("hsabd,d->hsab", np.asarray(g.features), np.asarray(g.theta))
    assert np.all(np.isfinite(u)) and np.abs(u).max() <= 1e12


# ---- writes: non-regular files and symbolic links -------------------------------------------


def test_writes_refuse_a_fifo_and_leave_it(tmp_path):
    import stat

    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    for save in (GAME.save, DATA.save):
        with pytest.raises(BayesQSEInputError, match=r"pipe\.npz: is a FIFO.*refusing"):
            save(fifo)
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["pipe.npz"]  # no temporary file left behind


def test_writes_go_through_a_symlink_and_keep_it(tmp_path):
    """Documented choice: the link's target is replaced atomically, the link stays."""
    target = tmp_path / "real" / "game.npz"
    target.parent.mkdir()
    target.write_bytes(b"old contents")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    assert GAME.save(link) == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    back = Game.load(target)
    for name in ("transitions", "leader_reward", "features", "theta"):
        np.testing.assert_array_equal(getattr(back, name), getattr(GAME, name))
    # a dangling link: the target is created
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "new_target.npz")
    DATA.save(dangling)
    assert dangling.is_symlink() and Dataset.load(tmp_path / "new_target.npz").n_episodes == 20
    # a link to a FIFO is refused like the FIFO itself
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to_fifo.npz").symlink_to(tmp_path / "fifo")
    with pytest.raises(BayesQSEInputError, match=r"fifo \(the target of the link .*to_fifo\.npz\)"):
        GAME.save(tmp_path / "to_fifo.npz")


def test_cli_writes_through_a_symlink(tmp_path, capsys):
    target = tmp_path / "target.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    code, out, err = run_cli_inprocess(["make-game", "patrol", str(link)], capsys)
    assert code == 0, err
    assert link.is_symlink() and Game.load(target).shape == patrol_game().shape


# ---- warnings reach the command line --------------------------------------------------------


@pytest.mark.parametrize(
    ("n_episodes", "pattern"),
    [
        pytest.param(0, r"IdentifiabilityWarning: theta is not identified along 4", id="empty"),
        # one episode: every observed response is separated from the others (the MLE does
        # not exist), said by the separation LP rather than by a huge std err
        pytest.param(1, r"SeparationWarning: fit_mle: complete separation", id="one"),
    ],
)
def test_cli_fit_warns_on_uninformative_data(tmp_path, capsys, n_episodes, pattern):
    """Before: estimates 0.0000 / 29.44 with nan or 1e6 std errs, and not a word."""
    import re

    data = simulate(GAME, POLICY, n_episodes, seed=0).save(tmp_path / "d.npz")
    game = GAME.save(tmp_path / "g.npz")
    code, out, err = run_cli_inprocess(["fit", str(data), str(game), "--json"], capsys)
    assert code == 0, err
    lines = err.splitlines()
    assert lines and all(line.startswith("bayes-qse: warning: ") for line in lines), err
    assert re.search(pattern, lines[0]), lines[0]
    summary = json.loads(out)
    assert [f"bayes-qse: warning: {w}" for w in summary["warnings"]] == lines
    code, out, err = run_cli_inprocess(["fit", str(data), str(game)], capsys)
    assert code == 0 and re.search(pattern, err) and "warning" not in out


def test_cli_fit_is_quiet_on_informative_data(tmp_path, capsys):
    """The warnings are not noise: 300 episodes of the same game give none (and the MLE's
    std errs there are small, from an independent check of the Fisher information)."""
    data = simulate(GAME, POLICY, 300, seed=0)
    fit = fit_mle(data, GAME)
    assert np.all(fit.std_err < 2.0)
    code, out, err = run_cli_inprocess(
        ["fit", str(data.save(tmp_path / "d.npz")), str(GAME.save(tmp_path / "g.npz")), "--json"],
        capsys,
    )
    assert code == 0 and err == "" and json.loads(out)["warnings"] == []


def test_cli_fit_nuts_progress_and_diagnostic_warnings(files, capsys):
    """``--progress``: a line per tenth of warm-up and of sampling; 20 draws give the
    ESS warning (< 100) on stderr and in ``--json``."""
    code, out, err = run_cli_inprocess(
        ["fit", str(files["data"]), str(files["game"]), "--method", "nuts", "--samples", "20"]
        + ["--progress", "--json"],
        capsys,
    )
    assert code == 0, err
    lines = err.splitlines()
    warmup = [ln for ln in lines if ln.startswith("NUTS chain 1/1 warm-up ")]
    sampling = [ln for ln in lines if ln.startswith("NUTS chain 1/1 sampling ")]
    assert [ln.split()[-1] for ln in warmup] == [f"{k}/500" for k in range(50, 501, 50)]
    assert [ln.split()[-1] for ln in sampling] == [f"{k}/20" for k in range(2, 21, 2)]
    warned = [ln for ln in lines if ln.startswith("bayes-qse: warning: ")]
    assert any("effective sample size" in ln for ln in warned), err
    assert len(warned) + len(warmup) + len(sampling) == len(lines)
    assert [f"bayes-qse: warning: {w}" for w in json.loads(out)["warnings"]] == warned
    # without --progress (stderr is not a terminal under pytest): no progress lines
    code, _, err = run_cli_inprocess(
        ["fit", str(files["data"]), str(files["game"]), "--method", "nuts", "--samples", "20"],
        capsys,
    )
    assert code == 0 and "NUTS chain" not in err


def test_nuts_progress_does_not_change_the_draws():
    """Chunked for progress or in one piece, the chain is the same, bit for bit."""
    import warnings

    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a deliberately short chain
        kw = {"method": "nuts", "num_samples": 30, "num_warmup": 30, "seed": 4}
        quiet = sample_posterior(DATA, GAME, **kw)
        loud = sample_posterior(DATA, GAME, progress=seen.append, **kw)
    np.testing.assert_array_equal(quiet.theta, loud.theta)
    assert seen[0] == "NUTS chain 1/1 warm-up 3/30" and seen[-1] == "NUTS chain 1/1 sampling 30/30"


# ---- per-experiment help -------------------------------------------------------------------


def test_run_help_lists_each_experiments_settings(capsys):
    from bayes_qse.experiments import EXPERIMENTS, get_experiment

    texts = {}
    for name in EXPERIMENTS:
        with pytest.raises(SystemExit) as info:
            cli.main(["run", name, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        module = get_experiment(name)
        assert f"experiment {name}:" in text
        first_words = " ".join(module.__doc__.split()[:6])
        assert first_words in " ".join(text.split())  # its own description
        # every setting, a table's as a dotted key (``learner.delta``: the learner's settings
        # under [learner], issue 25; fails if the help stops at the top-level keys)
        settings = [(k, v) for k, v in module.DEFAULT_CONFIG.items() if not isinstance(v, dict)]
        for table, values in module.DEFAULT_CONFIG.items():
            if isinstance(values, dict):
                settings += [(f"{table}.{k}", v) for k, v in values.items()]
        for key, value in settings:
            if not isinstance(value, dict):
                # as a TOML file writes it: JSON, but ``inf`` for an infinite float
                shown = json.dumps(value).replace("Infinity", "inf")
                assert f"{key} " in text and shown in text, (name, key)
                line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{key} "))
                written = line.split("=", 1)[1].split("   (--full:")[0].strip()
                assert tomllib.loads(f"x = {written}")["x"] == value, (name, key, written)
        texts[name] = text
    assert len(set(texts.values())) == len(texts)  # five different texts


# ---- broken pipes, Ctrl-C, the float64 switch (subprocesses) -------------------------------

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}


def test_closed_stdout_exits_quietly(tmp_path):
    """``bayes-qse games | head -0``: status 141 (as if killed by SIGPIPE), nothing on
    stderr (before: status 2 and ``[Errno 32] Broken pipe``)."""
    read, write = os.pipe()
    os.close(read)  # nobody will read: every write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bayes_qse.cli", "games"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_second_ctrl_c_exits_130_in_one_line():
    """The handler the console script installs: Ctrl-C while a first one is being handled
    prints one line and exits 130, with no traceback."""
    code = (
        "import os, signal, time\n"
        "from bayes_qse import console\n"
        "console._install_signal_handlers()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "except KeyboardInterrupt:\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert proc.returncode == 130
    assert proc.stderr.splitlines() == ["bayes-qse: error: interrupted again; exiting now"]
    assert proc.stdout == ""


@pytest.mark.slow
def test_double_ctrl_c_on_a_long_nuts_fit(files, tmp_path):
    """The real thing: two SIGINTs during ``fit --method nuts``; exit 130, no traceback."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "bayes_qse.cli", "fit", str(files["data"]), str(files["game"])]
        + ["--method", "nuts", "--samples", "200000", "--progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    first = proc.stderr.readline()  # the first progress line: sampling is under way
    assert first.startswith("NUTS chain"), first
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    other = [ln for ln in err.splitlines() if not ln.startswith("NUTS chain")]
    assert 1 <= len(other) <= 2 and all(
        ln.startswith("bayes-qse: error: interrupted") for ln in other
    )


def test_float64_switch_and_its_opt_out():
    """``import bayes_qse`` turns float64 on; ``BAYES_QSE_X64=0`` leaves JAX in float32, where
    the planner and the simulator still work (values within 1e-4 of float64's)."""
    code = (
        "import json, numpy as np, jax.numpy as jnp, bayes_qse as bq\n"
        "from bayes_qse.games import patrol_game\n"
        "from bayes_qse.data import simulate\n"
        "g = patrol_game()\n"
        "H, S, A, _ = g.shape\n"
        "sol = bq.solve_qse(g)\n"
        "d = simulate(g, np.full((H, S, A), 1 / A), 50, 0)\n"
        "print(json.dumps({'x64': bq.X64, 'dtype': str(jnp.zeros(1).dtype),\n"
        "    'value': float(sol.value), 'policy_dtype': str(jnp.asarray(sol.policy).dtype),\n"
        "    'reward': float(d.rewards.mean())}))\n"
    )
    results = {}
    for flag in ("1", "0"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**ENV, "BAYES_QSE_X64": flag},
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        results[flag] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["1"]["x64"] is True and results["1"]["dtype"] == "float64"
    assert results["0"]["x64"] is False and results["0"]["dtype"] == "float32"
    assert results["0"]["policy_dtype"] == "float32"
    assert abs(results["0"]["value"] - results["1"]["value"]) < 1e-4
    assert np.isfinite(results["0"]["reward"])


def test_fit_summary_carries_nuts_divergences(monkeypatch):
    """The divergence warning travels like the others: the NUTS driver is replaced by one
    returning well-mixed draws with exactly 3 flagged divergences, so only that warning (no
    R-hat/ESS one) may appear."""
    from bayes_qse import samplers

    rng = np.random.default_rng(0)

    def fake_nuts(key, log_density, init, data, *, num_samples, num_chains, **kw):
        diverging = np.zeros((num_chains, num_samples), bool)
        diverging[0, [5, 50, 150]] = True
        draws = rng.normal(size=(num_chains, num_samples, D))
        ones = np.ones(num_chains)
        return samplers.NUTSResult(draws, diverging, diverging * 0, ones, ones, np.ones(D))

    monkeypatch.setattr(samplers, "nuts", fake_nuts)
    out = fit_summary(DATA, GAME, method="nuts", num_samples=400)
    assert out["warnings"] == [
        "PosteriorDiagnosticsWarning: sample_posterior (NUTS): 3 divergent transitions"
    ]
