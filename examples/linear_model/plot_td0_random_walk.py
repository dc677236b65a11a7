"""
=====================================================
TD(0) on a random walk, with Richardson-Romberg
=====================================================

Policy evaluation on a 19-state random walk: from each state the walk moves one
step left or right with probability 1/2 (reflected at the ends), a transition
into the right end pays +1, into the left end -1, and rewards are discounted by
:math:`\\gamma = 0.9`. With one indicator feature per state (tabular features)
TD(0) is linear stochastic approximation with

.. math::

   A_n = \\phi(s_n) \\bigl(\\phi(s_n) - \\gamma \\phi(s_{n+1})\\bigr)^T, \\qquad
   b_n = r_n \\phi(s_n),

and the fixed point of the mean equations (the LSTD solution) is the true value
function. The samples come from a Markov chain, not independently: with a
constant step the averaged iterate keeps a bias of order ``step``, which
:class:`~sketchlearn.linear_model.TD0Evaluator` removes with
``richardson=True``.
"""

# %%
# The chain, its true values and one trajectory
# ---------------------------------------------

import warnings

import matplotlib.pyplot as plt
import numpy as np

from sketchlearn.linear_model import TD0Evaluator

n_states, gamma = 19, 0.9
P = np.zeros((n_states, n_states))
for i in range(n_states):
    P[i, max(i - 1, 0)] += 0.5
    P[i, min(i + 1, n_states - 1)] += 0.5
R = np.zeros((n_states, n_states))  # reward of the transition i -> j
R[:, -1], R[:, 0] = 1.0, -1.0
v_true = np.linalg.solve(np.eye(n_states) - gamma * P, (P * R).sum(axis=1))

rng = np.random.default_rng(0)
n_steps = 400_000
moves = rng.choice([-1, 1], size=n_steps)
states = np.empty(n_steps + 1, dtype=np.int64)
states[0] = s = n_states // 2
for t in range(n_steps):
    s = min(max(s + moves[t], 0), n_states - 1)
    states[t + 1] = s

# Row t: features of s_t and the reward of the transition s_t -> s_{t+1}.
X = np.eye(n_states)[states]
y = np.append(R[states[:-1], states[1:]], 0.0)

# Empirical LSTD on the same transitions, the target of TD(0) on this data.
U, V = X[:-1], X[:-1] - gamma * X[1:]
lstd = np.linalg.solve(U.T @ V, U.T @ y[:-1])
print(f"max |LSTD - true values| = {np.abs(lstd - v_true).max():.4f}")

# %%
# The exact bias of constant-step TD(0)
# -------------------------------------
# The expectation of the iterate in the stationary regime solves a linear system
# over (state, coordinate) pairs: with :math:`m_j = \mathbb E[\theta_n
# 1\{s_n = j\}]`, one step along the transition :math:`i \to j` maps
# :math:`m_i` to :math:`(I - \eta A_{ij}) m_i + \eta \pi_i b_{ij}`. Its
# distance to the fixed point is the bias that averaging cannot remove.


def stationary_mean_iterate(step):
    p = n_states
    pi = np.full(n_states, 1.0 / n_states)  # uniform: P is doubly stochastic
    M = np.zeros((n_states * p, n_states * p))
    c = np.zeros(n_states * p)
    Phi = np.eye(n_states)
    for i in range(n_states):
        for j in np.flatnonzero(P[i]):
            A_ij = np.outer(Phi[i], Phi[i] - gamma * Phi[j])
            M[j * p:(j + 1) * p, i * p:(i + 1) * p] += P[i, j] * (np.eye(p) - step * A_ij)
            c[j * p:(j + 1) * p] += P[i, j] * step * pi[i] * R[i, j] * Phi[i]
    return np.linalg.solve(np.eye(n_states * p) - M, c).reshape(n_states, p).sum(axis=0)


for step in (0.1, 0.05):
    m1, m2 = stationary_mean_iterate(step), stationary_mean_iterate(2 * step)
    print(f"step {step}: bias of the average {np.abs(m1 - v_true).max():.4f}, "
          f"after Richardson-Romberg {np.abs(2 * m1 - m2 - v_true).max():.4f}")

# %%
# Halving the step halves the bias (it is :math:`O(\eta)`); Richardson-Romberg,
# :math:`2\bar\theta(\eta) - \bar\theta(2\eta)`, cancels the first-order term and
# leaves :math:`O(\eta^2)`.
#
# Four ways to run TD(0)
# ----------------------
# ``step="auto"`` is :math:`1 / (2 \max_n \lVert A_n \rVert_F)`: safely stable,
# but here about 0.37, a large step. A burn-in of about :math:`1 / (\eta
# \lambda_{\min})` updates lets the iterate forget its start before averaging
# (:math:`\lambda_{\min} \approx 0.0053` is the smallest real part of an
# eigenvalue of the mean :math:`A`).

A_mean = (np.eye(n_states) - gamma * P) / n_states  # Phi^T D (Phi - gamma P Phi)
lam_min = np.linalg.eigvals(A_mean).real.min()
runs = {
    "step='auto'": dict(step="auto"),
    "step=0.1": dict(step=0.1, burn_in=int(1 / (0.1 * lam_min))),
    "step=0.1, Richardson-Romberg": dict(step=0.1, burn_in=int(1 / (0.1 * lam_min)),
                                         richardson=True),
    "step=0.05, Richardson-Romberg": dict(step=0.05, burn_in=int(1 / (0.05 * lam_min)),
                                          richardson=True),
}
fits = {}
for label, params in runs.items():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no StepSizeWarning: every step is stable
        fits[label] = TD0Evaluator(gamma=gamma, **params).fit(X, y)
    print(f"{label:30} step {fits[label].step_:.3f}  "
          f"max |V - V_true| = {np.abs(fits[label].coef_ - v_true).max():.4f}")

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.plot(v_true, "k-", lw=2, label="true values")
for label, marker in zip(runs, "vo^s", strict=True):
    ax.plot(fits[label].predict(np.eye(n_states)), marker, ms=5, ls="none", label=label)
ax.set_xlabel("state")
ax.set_ylabel("value")
ax.legend(fontsize="small")
plt.show()

# %%
# The automatic step is stable but lands far from the values; a smaller step
# with Richardson-Romberg is close to them (what is left is mostly the
# trajectory's own sampling error: LSTD on the same transitions is off by about
# as much).
#
# Streaming: error against the number of transitions
# --------------------------------------------------
# ``partial_fit`` continues the same chains on the next batch of the
# trajectory (the last state of a batch is linked to the first of the next),
# so feeding the trajectory in pieces gives exactly the fit on all of it.

batches = np.array_split(np.arange(n_steps + 1), 40)
curves = {label: [] for label in list(runs)[1:]}
streams = {label: TD0Evaluator(gamma=gamma, **runs[label]) for label in curves}
seen, lstd_curve = [], []
UtV, Utr, done = np.zeros((n_states, n_states)), np.zeros(n_states), 0
for rows in batches:
    for label, td in streams.items():
        td.partial_fit(X[rows], y[rows])
        curves[label].append(np.abs(td.coef_ - v_true).max())
    # LSTD on the transitions seen so far (0 -> 1, ..., rows[-1] - 1 -> rows[-1])
    t = np.arange(done, rows[-1])
    UtV += X[t].T @ (X[t] - gamma * X[t + 1])
    Utr += X[t].T @ y[t]
    done = rows[-1]
    seen.append(done)
    lstd_curve.append(np.abs(np.linalg.lstsq(UtV, Utr, rcond=None)[0] - v_true).max())
print("streamed equals one fit:",
      np.allclose(streams["step=0.1"].coef_, fits["step=0.1"].coef_, rtol=0, atol=1e-12))

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for label, errors in curves.items():
    ax.loglog(seen, errors, label=label)
ax.loglog(seen, lstd_curve, "k--", lw=1, label="LSTD on the same transitions")
bias = np.abs(stationary_mean_iterate(0.1) - v_true).max()
ax.axhline(bias, color="C0", ls=":", label="exact bias of the average, step 0.1")
ax.set_xlabel("transitions seen")
ax.set_ylabel(r"$\max_s |V(s) - V_{\mathrm{true}}(s)|$")
ax.legend(fontsize="small")
plt.show()

# %%
# Without extrapolation the error stalls near the predicted bias however long
# the trajectory; with Richardson-Romberg it keeps falling, at the level of the
# sampling error that LSTD, the exact solution of the sampled equations, also
# has.
# For confidence intervals on Markov data, ``n_bootstrap`` with a
# ``block_length`` well above 1 resamples blocks of consecutive transitions
# (see the user guide, :ref:`linear-model-lsa`).
