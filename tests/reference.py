"""Plain NumPy reference implementations, written from docs/math.md's equations with explicit loops.

They share no code with the package and serve as independent golden values in the tests.
"""

from __future__ import annotations

import itertools

import numpy as np


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
