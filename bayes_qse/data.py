"""Episode data (docs/math.md §2, §6): the :class:`Dataset` of played episodes, a fixed-capacity
:class:`EpisodeBuffer` for online loops, and simulation against the true follower.

Shapes (``N`` episodes, ``H`` horizon, ``S`` states, ``A`` leader actions)::

    states            [N, H+1]   int   s_1 .. s_{H+1}
    leader_actions    [N, H]     int   a_h
    follower_actions  [N, H]     int   b_h
    rewards           [N, H]     float r_h(s_h, a_h, b_h) (the leader's reward)
    policies          [N, H,S,A] float pi^t, the policy announced for episode t

The likelihood (eq. 4) needs ``states[:, :H]``, both actions and, for a farsighted follower,
``policies``.  A :class:`Dataset` holds concrete NumPy arrays and is validated on construction
and on load; an :class:`EpisodeBuffer` is a JAX pytree of the same arrays padded to a fixed
``capacity`` with a ``mask``, so that jit-compiled learners never recompile as data grow.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import (
    SEED_MAX,
    as_float_array,
    as_index_array,
    check_distribution,
    check_memory,
    validate_policy,
)
from .errors import DatasetValidationError
from .follower import log_response
from .io import atomic_write_npz, read_npz
from .types import Array

DATASET_FIELDS = ("states", "leader_actions", "follower_actions", "rewards", "policies")


class Episode(NamedTuple):
    """One played episode (arrays, no episode axis).

    Attributes:
        states: ``[H+1]`` int visited states.
        leader_actions: ``[H]`` int.
        follower_actions: ``[H]`` int.
        rewards: ``[H]`` float leader rewards.
        policy: ``[H,S,A]`` the leader's announced policy.
    """

    states: Array
    leader_actions: Array
    follower_actions: Array
    rewards: Array
    policy: Array


def play_episode(game: Any, policy: Array, key: Array) -> Episode:
    """Play one episode of ``game`` with the leader's ``policy[H,S,A]`` and the true follower.

    Pure and jit-able (``game`` is a pytree).  ``s_1 ~ rho``, ``a_h ~ pi_h(.|s_h)``,
    ``b_h ~ nu_h(.|s_h,a_h)`` (eq. 1, computed once against ``policy``), reward
    ``r_h(s_h,a_h,b_h)``, ``s_{h+1} ~ P_h(.|s_h,a_h,b_h)``.
    """
    policy = jnp.asarray(policy, dtype=jnp.float64)
    log_nu = log_response(game.theta, game.model, policy)  # [H,S,A,B]
    k0, k_steps = jax.random.split(key)
    s0 = jax.random.categorical(k0, jnp.log(game.initial_dist))
    H = policy.shape[0]
    keys = jax.random.split(k_steps, H)

    def step(s, inputs):
        key_h, pi_h, log_nu_h, p_h, r_h = inputs
        ka, kb, ks = jax.random.split(key_h, 3)
        a = jax.random.categorical(ka, jnp.log(pi_h[s]))
        b = jax.random.categorical(kb, log_nu_h[s, a])
        s_next = jax.random.categorical(ks, jnp.log(p_h[s, a, b]))
        return s_next, (s, a, b, r_h[s, a, b])

    s_last, (s, a, b, r) = jax.lax.scan(
        step, s0, (keys, policy, log_nu, game.transitions, game.leader_reward)
    )
    states = jnp.concatenate([s, s_last[None]])
    return Episode(states, a, b, r, policy)


_play_many = jax.jit(jax.vmap(play_episode, in_axes=(None, 0, 0)))


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Played episodes as arrays (docs/math.md §6), validated on construction.

    See the module docstring for the shapes.  ``N = 0`` is allowed (an empty dataset keeps
    ``H, S, A`` in the shape of ``policies``).  Follower actions are checked against ``B`` only
    by :meth:`validate_for`, since ``B`` is a property of the game.

    Raises:
        DatasetValidationError: naming the field that is malformed.
    """

    states: Any
    leader_actions: Any
    follower_actions: Any
    rewards: Any
    policies: Any

    def __post_init__(self) -> None:
        err = DatasetValidationError
        pol = as_float_array(self.policies, "policies", 4, err)
        N, H, S, A = pol.shape
        if min(H, S, A) < 1:
            raise err(f"policies: H, S, A must be >= 1, got shape {pol.shape}")
        if N:
            check_distribution(pol, "policies", axis=-1, error=err)
        states = as_index_array(self.states, "states", 2, S, err)
        a = as_index_array(self.leader_actions, "leader_actions", 2, A, err)
        b = as_index_array(self.follower_actions, "follower_actions", 2, None, err)
        r = as_float_array(self.rewards, "rewards", 2, err)
        for name, arr, shape in (
            ("states", states, (N, H + 1)),
            ("leader_actions", a, (N, H)),
            ("follower_actions", b, (N, H)),
            ("rewards", r, (N, H)),
        ):
            if arr.shape != shape:
                raise err(
                    f"{name}: expected shape {shape} to match policies {pol.shape} "
                    f"(N episodes, horizon H), got {arr.shape}"
                )
        for name, value in (
            ("states", states),
            ("leader_actions", a),
            ("follower_actions", b),
            ("rewards", r),
            ("policies", pol),
        ):
            value = np.array(value)  # a private, read-only copy (the caller's array is untouched)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return int(self.policies.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.policies.shape[1])

    def __len__(self) -> int:
        return self.n_episodes

    def validate_for(self, game: Any) -> Dataset:
        """Check that the dataset fits ``game``'s ``(H, S, A, B)``; return ``self``.

        Raises:
            DatasetValidationError: naming the mismatching field.
        """
        return self.check_sizes(game.shape)

    def check_sizes(self, shape: tuple[int, int, int, int]) -> Dataset:
        """Check the dataset against a game's ``(H, S, A, B)``; return ``self``."""
        H, S, A, B = (int(x) for x in shape)
        if self.policies.shape[1:] != (H, S, A):
            raise DatasetValidationError(
                f"policies: shape {self.policies.shape[1:]} (H, S, A) does not match the game's "
                f"{(H, S, A)}"
            )
        if self.n_episodes and self.follower_actions.max() >= B:
            raise DatasetValidationError(
                f"follower_actions: indices must lie in [0, {B}) for this game, found "
                f"{int(self.follower_actions.max())}"
            )
        return self

    # ---- combination and files ----------------------------------------------------------
    @staticmethod
    def concat(first: Dataset, second: Dataset) -> Dataset:
        """Episodes of ``first`` followed by those of ``second`` (same ``H, S, A``)."""
        if first.policies.shape[1:] != second.policies.shape[1:]:
            raise DatasetValidationError(
                f"policies: cannot concatenate datasets with (H, S, A) = "
                f"{first.policies.shape[1:]} and {second.policies.shape[1:]}"
            )
        return Dataset(
            **{f: np.concatenate([getattr(first, f), getattr(second, f)]) for f in DATASET_FIELDS}
        )

    def subset(self, index: Any) -> Dataset:
        """The episodes selected by ``index`` (a slice, an int array or a boolean mask)."""
        return Dataset(**{f: np.asarray(getattr(self, f))[index] for f in DATASET_FIELDS})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset to ``path`` (``.npz``) atomically with exactly the field names."""
        return atomic_write_npz(path, {f: getattr(self, f) for f in DATASET_FIELDS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Read and validate a dataset written by :meth:`save`.

        Raises:
            DatasetValidationError: the file is missing, unreadable, lacks a field, or holds
                arrays that do not form a valid dataset (the message names the field).
        """
        return cls(**read_npz(path, DATASET_FIELDS, DatasetValidationError))


def dataset_bytes(n_episodes: int, H: int, S: int, A: int) -> int:
    """Bytes :func:`simulate` needs for ``n_episodes`` episodes: the per-episode policies
    ``[N,H,S,A]`` and the ``4H + 1`` numbers of each episode, float64/int64, for the episodes
    padded to a power of two, about three copies (host, device, the returned dataset)."""
    padded = max(16, 1 << max(0, int(n_episodes) - 1).bit_length())
    return 3 * 8 * padded * (H * S * A + 4 * H + 1)


def simulate(game: Any, policy_or_policies: Any, n_episodes: int, seed: int) -> Dataset:
    """Play ``n_episodes`` episodes of ``game`` against its true follower.

    Args:
        game: a :class:`~bayes_qse.games.Game`.
        policy_or_policies: one leader policy ``[H,S,A]`` shared by every episode, or one per
            episode ``[n_episodes,H,S,A]``.
        n_episodes: number of episodes ``N >= 0``; :class:`DatasetValidationError` (with
            the memory estimate of :func:`dataset_bytes`) when they would not fit in memory.
        seed: integer seed in ``[0, 2**32 - 1]``; the same seed gives the same dataset.
    """
    if isinstance(n_episodes, bool | np.bool_) or int(n_episodes) != n_episodes or n_episodes < 0:
        raise DatasetValidationError(f"n_episodes: must be an integer >= 0, got {n_episodes!r}")
    n_episodes = int(n_episodes)
    if isinstance(seed, bool | np.bool_) or int(seed) != seed or not 0 <= seed <= SEED_MAX:
        raise DatasetValidationError(f"seed: must be an integer in [0, {SEED_MAX}], got {seed!r}")
    H0, S0, A0, _ = game.shape
    check_memory(
        dataset_bytes(n_episodes, H0, S0, A0),
        "n_episodes",
        f"simulating {n_episodes} episodes of horizon {H0} (S={S0}, A={A0})",
        DatasetValidationError,
    )
    pol = as_float_array(policy_or_policies, "policy", None, DatasetValidationError)
    H, S, A, _ = game.shape
    if pol.ndim == 3:
        validate_policy(game, pol, "policy")
        pol = np.broadcast_to(pol, (n_episodes, H, S, A))
    elif pol.ndim == 4:
        if pol.shape != (n_episodes, H, S, A):
            raise DatasetValidationError(
                f"policy: expected shape {(H, S, A)} or {(n_episodes, H, S, A)}, got {pol.shape}"
            )
        check_distribution(pol, "policy", axis=-1, error=DatasetValidationError)
    else:
        raise DatasetValidationError(
            f"policy: expected shape {(H, S, A)} or {(n_episodes, H, S, A)}, got {pol.shape}"
        )
    if n_episodes == 0:
        return Dataset(
            np.zeros((0, H + 1), np.int64),
            np.zeros((0, H), np.int64),
            np.zeros((0, H), np.int64),
            np.zeros((0, H)),
            np.zeros((0, H, S, A)),
        )
    keys = jax.random.split(jax.random.key(seed), n_episodes)
    # pad to a power of two (>= 16) so that varying n_episodes reuses a few compiled shapes
    padded = max(16, 1 << int(np.ceil(np.log2(n_episodes))))
    pad = padded - n_episodes
    pol_p = np.concatenate([pol, np.broadcast_to(pol[:1], (pad, H, S, A))]) if pad else pol
    keys_p = jnp.concatenate([keys, jnp.broadcast_to(keys[:1], (pad,))]) if pad else keys
    ep = _play_many(game, jnp.asarray(pol_p), keys_p)
    return Dataset(*(np.asarray(x)[:n_episodes] for x in ep))


# ---------------------------------------------------------------------------------------
# Fixed-capacity buffer (a pytree) for jit-compiled online loops
# ---------------------------------------------------------------------------------------


class EpisodeBuffer(NamedTuple):
    """Episodes padded to a fixed ``capacity`` (a JAX pytree; shapes never change).

    Attributes:
        states: ``[C, H+1]`` int.
        leader_actions: ``[C, H]`` int.
        follower_actions: ``[C, H]`` int.
        rewards: ``[C, H]`` float.
        policies: ``[C, H,S,A]`` float (padding rows are uniform policies).
        mask: ``[C]`` bool, True for the rows that hold an episode.
        count: int scalar, the number of episodes ever added.  When ``count > C`` the buffer is
            a ring: episode ``t`` lives in row ``t % C`` and the oldest are overwritten.
    """

    states: Array
    leader_actions: Array
    follower_actions: Array
    rewards: Array
    policies: Array
    mask: Array
    count: Array

    @property
    def capacity(self) -> int:
        return int(self.mask.shape[0])


def buffer_init(capacity: int, horizon: int, n_states: int, n_leader_actions: int) -> EpisodeBuffer:
    """An empty buffer of ``capacity`` episodes for a game with ``(H, S, A)``."""
    C, H, S, A = int(capacity), int(horizon), int(n_states), int(n_leader_actions)
    if C < 1:
        raise DatasetValidationError(f"capacity: must be >= 1, got {capacity!r}")
    return EpisodeBuffer(
        states=jnp.zeros((C, H + 1), jnp.int32),
        leader_actions=jnp.zeros((C, H), jnp.int32),
        follower_actions=jnp.zeros((C, H), jnp.int32),
        rewards=jnp.zeros((C, H), jnp.float64),
        policies=jnp.full((C, H, S, A), 1.0 / A, jnp.float64),
        mask=jnp.zeros((C,), bool),
        count=jnp.zeros((), jnp.int32),
    )


def buffer_add(buffer: EpisodeBuffer, episode: Episode) -> EpisodeBuffer:
    """Store ``episode`` in row ``count % capacity``; pure, jit-able, shapes unchanged."""
    C = buffer.mask.shape[0]
    i = buffer.count % C
    return EpisodeBuffer(
        states=buffer.states.at[i].set(jnp.asarray(episode.states, buffer.states.dtype)),
        leader_actions=buffer.leader_actions.at[i].set(
            jnp.asarray(episode.leader_actions, buffer.leader_actions.dtype)
        ),
        follower_actions=buffer.follower_actions.at[i].set(
            jnp.asarray(episode.follower_actions, buffer.follower_actions.dtype)
        ),
        rewards=buffer.rewards.at[i].set(jnp.asarray(episode.rewards, buffer.rewards.dtype)),
        policies=buffer.policies.at[i].set(jnp.asarray(episode.policy, buffer.policies.dtype)),
        mask=buffer.mask.at[i].set(True),
        count=buffer.count + 1,
    )


def buffer_from_dataset(dataset: Dataset, capacity: int | None = None) -> EpisodeBuffer:
    """A buffer holding ``dataset``'s episodes in rows ``0..N-1`` (``capacity >= N``).

    ``capacity`` defaults to ``max(N, 1)``.
    """
    N = dataset.n_episodes
    _, H, S, A = dataset.policies.shape
    C = max(N, 1) if capacity is None else int(capacity)
    if C < N:
        raise DatasetValidationError(f"capacity: {C} is smaller than the {N} episodes given")
    buf = buffer_init(C, H, S, A)

    def padded(x: np.ndarray, fill_like: Array) -> Array:
        return jnp.concatenate([jnp.asarray(x, fill_like.dtype), fill_like[N:]], axis=0)

    return EpisodeBuffer(
        states=padded(dataset.states, buf.states),
        leader_actions=padded(dataset.leader_actions, buf.leader_actions),
        follower_actions=padded(dataset.follower_actions, buf.follower_actions),
        rewards=padded(dataset.rewards, buf.rewards),
        policies=padded(dataset.policies, buf.policies),
        mask=jnp.arange(C) < N,
        count=jnp.asarray(N, jnp.int32),
    )


def buffer_to_dataset(buffer: EpisodeBuffer) -> Dataset:
    """The episodes stored in ``buffer``, oldest first, as a validated :class:`Dataset`."""
    C = buffer.mask.shape[0]
    count = int(buffer.count)
    rows = np.arange(count) if count <= C else (np.arange(count - C, count) % C)
    return Dataset(
        **{
            f: np.asarray(getattr(buffer, f))[rows]
            for f in ("states", "leader_actions", "follower_actions", "rewards", "policies")
        }
    )


def as_buffer(data: Dataset | EpisodeBuffer) -> EpisodeBuffer:
    """``data`` as an :class:`EpisodeBuffer` (a :class:`Dataset` is wrapped exactly)."""
    if isinstance(data, EpisodeBuffer):
        return data
    if isinstance(data, Dataset):
        return buffer_from_dataset(data)
    raise DatasetValidationError(
        f"dataset: expected a Dataset or an EpisodeBuffer, got {type(data).__name__}"
    )


__all__ = [
    "DATASET_FIELDS",
    "Dataset",
    "Episode",
    "EpisodeBuffer",
    "as_buffer",
    "buffer_add",
    "buffer_from_dataset",
    "buffer_init",
    "buffer_to_dataset",
    "dataset_bytes",
    "play_episode",
    "simulate",
]
