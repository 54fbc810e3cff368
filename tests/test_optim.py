"""bayes_qse.optim against closed forms and hand-written recursions (NumPy, independent of
optax and of the code under test)."""

import jax
import jax.numpy as jnp
import numpy as np

from bayes_qse.optim import adam_ascent, newton_maximize, online_newton_step, positive_precision

Q = np.array([[3.0, 0.4, 0.0], [0.4, 1.0, -0.2], [0.0, -0.2, 0.5]])
C = np.array([0.7, -1.2, 2.0])


def _quadratic(x):
    """``-(x - c)' Q (x - c) / 2``: maximiser ``c``, gradient ``-Q (x - c)``."""
    r = x - C
    return -0.5 * r @ Q @ r


def _np_adam(x0, n_steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam ascent on :func:`_quadratic` written out (Kingma & Ba 2015, Algorithm 1)."""
    x, m, v = np.array(x0, float), np.zeros(3), np.zeros(3)
    for t in range(1, n_steps + 1):
        g = -Q @ (x - C)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x + lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return x


def test_adam_ascent_is_the_adam_recursion():
    """optax's Adam matches the hand-written recursion to round-off (a wrong sign, missing bias
    correction or a swapped b1/b2 would miss by far more than 1e-10), under jit and vmap."""
    x0 = np.array([0.0, 0.5, -1.0])
    want = _np_adam(x0, 200, 0.05)
    got = np.asarray(jax.jit(adam_ascent, static_argnums=(0, 2))(_quadratic, x0, 200, 0.05))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    starts = np.stack([x0, -x0])
    batch = jax.vmap(lambda s: adam_ascent(_quadratic, s, 200, 0.05))(jnp.asarray(starts))
    np.testing.assert_allclose(batch[1], _np_adam(-x0, 200, 0.05), rtol=0, atol=1e-10)
    with jax.disable_jit():
        np.testing.assert_allclose(adam_ascent(_quadratic, x0, 5, 0.05), _np_adam(x0, 5, 0.05))


def test_newton_maximize_solves_a_quadratic():
    """Newton reaches the closed-form maximiser ``c`` with ``-Hess = Q`` and stops converged
    (a wrong step sign or a stale Hessian would not)."""
    theta, f, neg_h, n_iter, converged = jax.jit(lambda t0: newton_maximize(_quadratic, t0, 20))(
        jnp.zeros(3)
    )
    np.testing.assert_allclose(theta, C, atol=1e-12)
    np.testing.assert_allclose(neg_h, Q, atol=1e-12)
    assert bool(converged) and int(n_iter) <= 3 and abs(float(f)) < 1e-20


def test_online_newton_step_and_positive_precision_on_a_quadratic():
    theta, precision = online_newton_step(_quadratic, jnp.zeros(3), 1e-6)
    np.testing.assert_allclose(theta, C, atol=1e-10)  # one full Newton step
    np.testing.assert_allclose(precision, Q, atol=1e-12)
    lam = np.linalg.eigvalsh(Q)
    floored = np.asarray(positive_precision(jnp.asarray(Q), 1.0))
    np.testing.assert_allclose(np.linalg.eigvalsh(floored), np.maximum(lam, 1.0), atol=1e-12)
