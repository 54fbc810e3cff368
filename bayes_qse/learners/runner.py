"""The episode loop of the online learners: :class:`OnlineRunner` and :func:`run_online`.

Each round a learner (:mod:`bayes_qse.learners.online`) announces ``pi^t``, one episode is
played against the true follower, and the learner updates.  Episodes run in chunks of
``chunk`` episodes as one ``jax.lax.scan``, ``vmap``-ped over a *block* of ``seed_block``
seeds and compiled once.  Regret is exact: ``J(pi*) - J(pi^t)`` by policy evaluation on the
true game.

Determinism (``docs/math.md``, "Determinism"): a seed's records are a function of the seed, the
game, the learner settings, ``episodes``, ``chunk`` and ``seed_block`` alone, bit for bit:

- episode ``t`` of seed ``s`` uses the key ``fold_in(fold_in(PRNGKey(s), 1), t)`` whatever the
  chunking;
- seeds always run in blocks of exactly ``seed_block`` lanes (a short block is padded with
  copies of its last seed, whose outputs are dropped), so the compiled program never depends
  on how many seeds are run: XLA's rounding differs between ``vmap`` widths (a 1e-16
  difference that can flip an argmax), not between the lanes of one program;
- decisions use the tolerant argmax :func:`bayes_qse.ties.tolerant_argmax`;
- a resumed run restores each seed's exact state from its checkpoint.
- rarely-switching learners (``refit="switching"``) run the lanes of a block one after
  another (``jax.lax.map``, padding lanes skipped) so that their refit ``lax.cond`` runs only
  at switches; every lane is the same program.

So the same seed alone, in any batch, or resumed after a kill gives identical records, on the
same library version and the same platform and XLA build (other CPUs or GPUs, or another
``jaxlib``, may round differently).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..data import play_episode
from ..errors import BayesQSEInputError, ConfigError
from ..planning import solve_qse
from ..policy_stats import check_overflow
from ..progress import progress as progress_bar
from ..progress import set_postfix, stage
from ..types import Array
from .common import GameSpec, LearnerConfig, OnlineState, check_episodes, true_value
from .online import learner_summary, make_learner

#: Default number of lanes of the compiled per-chunk program (seeds per ``vmap`` block).
SEED_BLOCK = 4


class EpisodeRecord(NamedTuple):
    """What the runner records per episode (arrays ``[seeds, T]`` once stacked).

    Attributes:
        regret: ``J(pi*) - J(pi^t)``, exact policy evaluation on the true game.
        theta_error: ``||theta_hat - theta||_2`` of the estimate behind ``pi^t``.
        set_size: root total variance of the Laplace / Wald ellipsoid behind ``pi^t``.
        informed: the number of directions of ``theta`` the data inform at least as much as
            the prior would (eigenvalues of the learner's Fisher information / posterior
            precision ``>= 1 / prior_scale^2``).  For the Bayesian learners, whose precision
            includes the prior, it is ``d`` by construction; for ``mle-optimistic`` it says
            how many directions the data identify, and ``informed < d`` means its fit still
            borrows the prior's ridge (docs/math.md, "Valid optimism and pessimism").
        reward: the leader's realised return ``sum_h r_h`` of episode ``t`` (a sampled
            quantity, unlike ``regret``; under common random numbers its paired differences
            between leaders are what docs/math.md, "Sweeps", compares).
        switches: policy switches (refits announcing a new policy) before episode ``t``:
            ``t - 1`` for a learner that refits every episode, 0 for the fixed-policy
            leaders, the number of det-criterion switches for ``refit="switching"``
            (:mod:`bayes_qse.learners.switching`).
    """

    regret: Array
    theta_error: Array
    set_size: Array
    informed: Array
    reward: Array
    switches: Array


def _take(tree: Any, index: Any) -> Any:
    """Rows ``index`` of every leaf, on the host (NumPy: no eager JAX op to compile)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[index], tree)


def _concat_device(trees: list[Any]) -> Any:
    """Concatenate host trees along the seed axis into (concrete, non-weak) JAX arrays."""
    return jax.tree_util.tree_map(lambda *xs: jax.device_put(np.concatenate(xs)), *trees)


class OnlineRunner:
    """Plays ``learner`` against the true follower of ``game`` for many seeds at once.

    :meth:`run_chunk` plays ``chunk`` episodes for every seed: one ``jax.lax.scan`` over
    episodes, ``vmap``-ped over a block of exactly ``seed_block`` seeds, ``jit``-compiled once
    (``n_traces`` counts how many times it was traced, i.e. compiled; it stays 1 however many
    chunks and seeds run).  More seeds run as several blocks, fewer are padded: a seed's
    records do not depend on which or how many seeds share its call (module docstring).

    Args:
        game: the true :class:`~bayes_qse.games.Game`.
        learner: a learner name (:data:`~bayes_qse.learners.online.LEARNERS`).
        config: learner settings (a :class:`LearnerConfig` or a dict); ``capacity`` defaults
            to ``episodes``.
        episodes: the number of episodes ``T`` the runs will play.
        chunk: episodes per compiled call.
        known_model: planning mode (the leader knows her transitions and rewards).
        qse: optional precomputed :class:`~bayes_qse.planning.Solution` of the true game.
        seed_block: lanes of the compiled program (default :data:`SEED_BLOCK`); part of what
            a seed's records depend on (rounding), so keep it fixed across runs to compare.
        reward_range: the stated range of the leader's rewards (:meth:`GameSpec.from_game`).
        initial_dist: ``None`` (learned), ``"game"`` (announced) or an ``[S]`` array.
    """

    def __init__(
        self,
        game: Any,
        learner: str,
        config: LearnerConfig | dict | None = None,
        *,
        episodes: int,
        chunk: int = 50,
        known_model: bool = False,
        qse: Any = None,
        seed_block: int = SEED_BLOCK,
        reward_range: tuple[float, float] = (0.0, 1.0),
        initial_dist: Any = None,
    ) -> None:
        self.episodes = check_episodes(episodes)
        self.chunk = check_episodes(chunk, "chunk")
        self.seed_block = check_episodes(seed_block, "seed_block")
        if self.episodes % self.chunk:
            raise ConfigError(
                f"chunk: must divide the number of episodes ({self.episodes}), got {self.chunk}"
            )
        values = dict(config or {}) if not isinstance(config, LearnerConfig) else None
        if values is not None:
            values.setdefault("capacity", self.episodes)
            config = LearnerConfig.from_mapping(values)
        self.config = config
        self.game = game
        self.name = learner
        self.spec = GameSpec.from_game(
            game, known_model=known_model, reward_range=reward_range, initial_dist=initial_dist
        )
        self.qse = solve_qse(game) if qse is None else qse
        self.optimal_value = true_value(game, jnp.asarray(self.qse.policy))
        self.learner = make_learner(
            learner, self.spec, config, true_game=game, qse_policy=self.qse.policy
        )
        self.n_traces = 0
        self._init = jax.jit(jax.vmap(self._init_one))
        # a rarely-switching learner refits inside a lax.cond, which vmap would turn into a
        # select running the refit every episode: its seeds run one after another instead
        self.switching = self.config.refit == "switching" and learner not in ("oracle", "uniform")
        if self.switching:
            self._chunk = jax.jit(self._chunk_mapped)
        else:
            self._chunk = jax.jit(jax.vmap(self._chunk_one, in_axes=(0, 0, None)))

    # ---- pure pieces -------------------------------------------------------------------
    def _init_one(self, seed_key: Array) -> OnlineState:
        return self.learner.init(jax.random.fold_in(seed_key, 0))

    def _chunk_mapped(self, states: OnlineState, seed_keys: Array, t0: Array, live: Array):
        """The seeds one after another (``lax.map``); the padding lanes (``live`` False) are
        skipped, since unlike ``vmap`` lanes they would cost their full time."""
        skipped = EpisodeRecord(*[jnp.zeros((self.chunk,))] * len(EpisodeRecord._fields))

        def one(x):
            state, key, alive = x
            return jax.lax.cond(
                alive,
                lambda: self._chunk_one(state, key, t0),
                lambda: (state, jax.tree_util.tree_map(lambda r: r.astype(jnp.float64), skipped)),
            )

        return jax.lax.map(one, (states, seed_keys, live))

    def _chunk_one(self, state: OnlineState, seed_key: Array, t0: Array):
        self.n_traces += 1  # Python side effect: runs once per trace (compilation)
        game = self.game
        episode_key = jax.random.fold_in(seed_key, 1)
        optimal_policy = jnp.asarray(self.qse.policy, jnp.float64)
        floor = 1.0 / self.config.prior_scale**2

        def body(state, i):
            policy = self.learner.act(state)
            episode = play_episode(game, policy, jax.random.fold_in(episode_key, t0 + i))
            # J(pi*) and J(pi^t) are evaluated together by the same compiled code (not J(pi*)
            # constant-folded at compile time): the oracle's regret is exactly 0
            both = jax.vmap(lambda pi: true_value(game, pi))(jnp.stack([optimal_policy, policy]))
            regret = both[0] - both[1]
            theta_hat, size = learner_summary(self.name, state)
            lam = jnp.linalg.eigvalsh(0.5 * (state.precision + state.precision.T))
            informed = jnp.sum(lam >= floor * (1.0 - 1e-9)).astype(regret.dtype)
            error = jnp.linalg.norm(theta_hat - game.theta)
            switches = getattr(state.buffer, "switches", state.buffer.count)
            realised = jnp.sum(episode.rewards).astype(regret.dtype)
            record = EpisodeRecord(
                regret, error, size, informed, realised, switches.astype(regret.dtype)
            )
            return self.learner.update(state, episode), record

        return jax.lax.scan(body, state, jnp.arange(self.chunk))

    def _blocks(self, n: int) -> list[tuple[int, np.ndarray]]:
        """``(k, lanes)`` per block: ``lanes`` the ``seed_block`` row indices of a block (its
        ``k`` real rows, then copies of the last one as padding)."""
        W = self.seed_block
        out = []
        for b in range(0, n, W):
            real = np.arange(b, min(b + W, n))
            out.append((len(real), np.concatenate([real, np.full(W - len(real), real[-1])])))
        return out

    # ---- public API ----------------------------------------------------------------------
    @staticmethod
    def seed_keys(seeds: Sequence[int]) -> Array:
        """``[N,2]`` raw PRNG keys, one per seed (``PRNGKey(seed)``)."""
        return jax.device_put(np.stack([np.asarray(jax.random.PRNGKey(int(s))) for s in seeds]))

    def state_like(self) -> Any:
        """The structure, shapes and dtypes of one seed's :class:`OnlineState`
        (``jax.ShapeDtypeStruct`` leaves, no computation)."""
        return jax.eval_shape(self._init_one, jax.random.PRNGKey(0))

    def init_states(self, seeds: Sequence[int]) -> OnlineState:
        """The learners' initial states for ``seeds`` (a batched :class:`OnlineState`).

        Leaves are made concrete (no weak types), so that the states a chunk returns, and
        those restored from a checkpoint, have exactly the same types: no recompilation."""
        keys = np.asarray(self.seed_keys(seeds))
        blocks = self._blocks(len(keys))
        return _concat_device([_take(self._init(keys[lanes]), slice(0, k)) for k, lanes in blocks])

    def run_chunk(
        self, states: OnlineState, seeds: Sequence[int], t0: int
    ) -> tuple[OnlineState, EpisodeRecord]:
        """Play episodes ``t0 .. t0+chunk-1`` for every seed; records are ``[N, chunk]``.

        The seeds run in blocks of ``seed_block`` (the last one padded), so each seed's result
        is the same whatever ``seeds`` holds besides it."""
        keys = np.asarray(self.seed_keys(seeds))
        t = np.asarray(t0, np.int32)
        host = jax.tree_util.tree_map(np.asarray, states)
        new_states, records = [], []
        for k, lanes in self._blocks(len(keys)):
            if self.switching:
                live = np.arange(len(lanes)) < k
                s, r = self._chunk(_take(host, lanes), keys[lanes], t, live)
            else:
                s, r = self._chunk(_take(host, lanes), keys[lanes], t)
            new_states.append(_take(s, slice(0, k)))
            records.append(_take(r, slice(0, k)))
        if self.switching:
            for s in new_states:
                check_overflow(s.buffer.stats, f" by episode {t0 + self.chunk}")
        return _concat_device(new_states), _concat_device(records)


def _checkpoint_problem(meta: dict[str, Any], expected: dict[str, Any], chunk: int) -> str | None:
    """Why a seed's checkpoint cannot be resumed (``None`` if it can)."""
    for key, value in expected.items():
        if meta.get(key) != value:
            return f"{key} {meta.get(key)!r}, this run has {value!r}"
    t = meta.get("episode")
    if not isinstance(t, int) or not 0 < t <= expected["episodes"] or t % chunk:
        return f"episode {t!r} is not a chunk boundary of this run"
    return None


def run_online(
    game: Any,
    learner: str,
    *,
    episodes: int,
    seeds: Sequence[int] = (0,),
    config: LearnerConfig | dict | None = None,
    chunk: int | None = None,
    known_model: bool = False,
    store: Any = None,
    checkpoint_key: str | None = None,
    progress: bool = False,
    runner: OnlineRunner | None = None,
    reward_range: tuple[float, float] = (0.0, 1.0),
    initial_dist: Any = None,
) -> dict[str, np.ndarray]:
    """Play ``episodes`` episodes of ``learner`` against ``game``'s follower for each seed.

    A seed's records are bit-identical whatever other seeds run with it, and whether or not
    the run was interrupted and resumed (module docstring: same version, platform and XLA
    build, same ``chunk`` and ``seed_block``).

    With a :class:`~bayes_qse.experiments.store.RunStore` and ``checkpoint_key``, each seed's
    state and records so far are checkpointed (atomically, one file per seed:
    ``checkpoints/<checkpoint_key>/seed<s>.npz``) after every chunk.  A later call resumes
    every seed from its own checkpoint, whichever seeds it is given: seeds at different
    progress (a kill between two saves, seeds added) run in separate groups, seeds without a
    checkpoint start afresh, and a checkpoint that does not match this run (another run
    length, learner, chunk, seed block or state shape, an unreadable or older-format file) is
    set aside with a one-line :class:`~bayes_qse.experiments.locks.RunNotice` and recomputed.
    No episode is lost or repeated.

    ``reward_range`` and ``initial_dist``: what the leader is told (:meth:`GameSpec.from_game`),
    when no ``runner`` is given.

    Returns:
        ``{"regret", "theta_error", "set_size", "informed": [N, T], "seeds": [N],
        "optimal_value": scalar}``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise BayesQSEInputError("seeds: need at least one seed")
    if len(set(seeds)) != len(seeds):
        raise BayesQSEInputError(f"seeds: duplicate seeds in {seeds}")
    T = check_episodes(episodes)
    if runner is None:
        runner = OnlineRunner(
            game,
            learner,
            config,
            episodes=T,
            chunk=chunk or min(T, 50),
            known_model=known_model,
            reward_range=reward_range,
            initial_dist=initial_dist,
        )
    n = len(seeds)
    records = {f: np.zeros((n, T)) for f in EpisodeRecord._fields}
    done = [0] * n
    restored: dict[int, Any] = {}
    checkpointing = store is not None and checkpoint_key is not None
    expected = {
        "episodes": T,
        "learner": runner.name,
        "seed_block": runner.seed_block,
        "chunk": runner.chunk,
    }
    if checkpointing:
        if store.has_checkpoint(checkpoint_key):  # one file for the whole batch: older format
            store.set_aside_checkpoint(checkpoint_key, "a whole-batch checkpoint")
        like = (runner.state_like(), {f: np.zeros(T) for f in EpisodeRecord._fields})
        for i, s in enumerate(seeds):
            got = store.load_checkpoint(checkpoint_key, like, part=f"seed{s}")
            if got is None:
                continue
            (state, saved), meta = got
            problem = _checkpoint_problem(meta, {**expected, "seed": s}, runner.chunk)
            if problem is not None:
                store.set_aside_checkpoint(checkpoint_key, problem, part=f"seed{s}")
                continue
            done[i] = int(meta["episode"])
            restored[i] = state
            for f in EpisodeRecord._fields:
                records[f][i] = saved[f]
    # seeds at the same progress run together; a seed's result does not depend on its group
    groups: dict[int, list[int]] = {}
    for i in range(n):
        if done[i] < T:
            groups.setdefault(done[i], []).append(i)
    steps = [(t0, rows) for t, rows in sorted(groups.items()) for t0 in range(t, T, runner.chunk)]
    bar = progress_bar(
        steps, total=len(steps), desc=f"{learner} ({T} episodes x {n} seeds)", enabled=progress
    )
    states: dict[int, Any] = {}
    for t0, rows in bar:
        key = rows[0]
        group_seeds = [seeds[i] for i in rows]
        if key not in states:
            if done[key] == 0:
                states[key] = runner.init_states(group_seeds)
            else:
                states[key] = jax.tree_util.tree_map(
                    lambda *xs: jax.device_put(np.stack([np.asarray(x) for x in xs])),
                    *[restored[i] for i in rows],
                )
        if t0 == steps[0][0] and key == steps[0][1][0]:  # the first call compiles the chunk
            stage(f"{learner}: compiling the episode loop ({runner.chunk} episodes)", progress)
        states[key], rec = runner.run_chunk(states[key], group_seeds, t0)
        t1 = t0 + runner.chunk
        set_postfix(bar, f"episode {t1}/{T}")
        for f in EpisodeRecord._fields:
            records[f][rows, t0:t1] = np.asarray(getattr(rec, f))
        if checkpointing:
            host = jax.tree_util.tree_map(np.asarray, states[key])
            for j, i in enumerate(rows):
                store.save_checkpoint(
                    checkpoint_key,
                    (_take(host, j), {f: records[f][i] for f in EpisodeRecord._fields}),
                    {**expected, "seed": seeds[i], "episode": t1},
                    part=f"seed{seeds[i]}",
                )
        if t1 == T:
            del states[key]
    return {
        **records,
        "seeds": np.asarray(seeds),
        "optimal_value": np.asarray(float(runner.optimal_value)),
    }


__all__ = ["SEED_BLOCK", "EpisodeRecord", "OnlineRunner", "run_online"]
