"""Plain NumPy reference implementations, written from docs/math.md's equations with explicit loops.

They share no code with the package and serve as independent golden values in the tests
(one LP, :func:`lp_l1_extreme`, is solved by SciPy).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linprog


def np_logsumexp(x: np.ndarray) -> float:
    m = np.max(x)
    return float(m + np.log(np.sum(np.exp(x - m))))


def np_follower_response(P, u, eta, policy=None, farsighted=False):
    """nu[H,S,A,B] by eq. (1a)-(1d), with loops."""
    H, S, A, B = u.shape
    nu = np.zeros((H, S, A, B))
    v_next = np.zeros(S)
    for h in reversed(range(H)):
        v = np.zeros(S)
        for s in range(S):
            for a in range(A):
                q = np.array(
                    [
                        u[h, s, a, b] + (P[h, s, a, b] @ v_next if farsighted else 0.0)
                        for b in range(B)
                    ]
                )
                z = eta * q
                nu[h, s, a] = np.exp(z - np_logsumexp(z))
                if farsighted:
                    v[s] += policy[h, s, a] * np_logsumexp(z) / eta
        v_next = v
    return nu


def np_policy_value(P, r, rho, nu, policy):
    """J(policy) by backward policy evaluation with loops."""
    H, S, A, B = r.shape
    v_next = np.zeros(S)
    for h in reversed(range(H)):
        v = np.zeros(S)
        for s in range(S):
            for a in range(A):
                for b in range(B):
                    w = r[h, s, a, b] + P[h, s, a, b] @ v_next
                    v[s] += policy[h, s, a] * nu[h, s, a, b] * w
        v_next = v
    return float(rho @ v_next)


def np_backward_induction(P, r, nu):
    """Eq. (2a) with loops: returns (Q[H,S,A], V1[S])."""
    H, S, A, B = r.shape
    Q = np.zeros((H, S, A))
    v_next = np.zeros(S)
    for h in reversed(range(H)):
        for s in range(S):
            for a in range(A):
                Q[h, s, a] = sum(
                    nu[h, s, a, b] * (r[h, s, a, b] + P[h, s, a, b] @ v_next) for b in range(B)
                )
        v_next = Q[h].max(axis=1)
    return Q, v_next


def deterministic_policies(H, S, A):
    """Every deterministic policy [H,S,A] (A**(H*S) of them)."""
    for choice in itertools.product(range(A), repeat=H * S):
        pi = np.zeros((H, S, A))
        for i, a in enumerate(choice):
            pi[i // S, i % S, a] = 1.0
        yield pi


def lp_l1_extreme(p_hat, radius, v, maximize):
    """The inner problem of ``robust_planning.l1_extreme`` (docs/math.md eq. 6h) by SciPy's LP:
    max/min ``p . v`` s.t. ``sum p = sum p_hat``, ``p >= min(p_hat, 0)``,
    ``sum |p - p_hat| <= radius`` (variables ``p, t`` with ``t >= |p - p_hat|``)."""
    S = len(p_hat)
    c = np.concatenate([-v if maximize else v, np.zeros(S)])
    eye = np.eye(S)
    A_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, S)), np.ones((1, S))]])
    b_ub = np.concatenate([p_hat, -p_hat, [radius]])
    A_eq = np.concatenate([np.ones(S), np.zeros(S)])[None]
    bounds = [(min(x, 0.0), None) for x in p_hat] + [(0, None)] * S
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[p_hat.sum()], bounds=bounds)
    assert res.status == 0
    return float(v @ res.x[:S])
