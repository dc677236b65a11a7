"""Accuracy on the NIST StRD linear-regression data sets: sketchlearn vs statsmodels vs NumPy.

For each of the 11 data sets, the log relative error (LRE, correct significant
digits, clipped to [0, 15]) of the least-squares coefficients (intercept
included) and of their standard errors, the minimum over the parameters:

- ours: ``GaussMarkovRegressor()`` on the float64 data (pivoted QR, extended-precision
  refinement);
- ours, long double: the same estimator on ``load_nist_strd(name, dtype=np.longdouble)``
  (the published decimals parsed in 80-bit precision, powers formed there);
- statsmodels ``OLS(y, add_constant(X)).fit()`` (default ``method="pinv"``) and
  ``.fit(method="qr")``;
- NumPy ``lstsq`` for the coefficients with the textbook standard errors
  ``sqrt(diag(s^2 inv(X^T X)))``.

Where a certified standard error is exactly 0 (Wampler1, Wampler2) the LRE uses the
absolute error. "float64 ceiling" is the LRE of the *exact* least-squares solution of
the float64-rounded data (computed in rational arithmetic): no float64 solver can be
expected to beat it except by luck.

The "vs exact float64" columns measure the digits against that exact solution of the
float64 data instead of the certified values: the coefficients, and the standard
errors ``sqrt(RSS / (n - k) * diag((X^T X)^{-1}))`` of the same data, both computed
in fractions (Gauss-Jordan on ``[X^T X | X^T y | I]``; the final square root by
``math.isqrt`` on 80 bits). This is what a float64 solver can be asked for: ours, and
the best of the float64 peers.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

NAME = "nist"
DESCRIPTION = ("NIST StRD linear regression: correct digits (LRE) of coefficients and standard "
               "errors, sketchlearn vs statsmodels OLS (pinv, qr) vs numpy lstsq")


def _with_constant(X, fit_intercept):
    return np.column_stack([np.ones(len(X)), X]) if fit_intercept else X


def _sqrt_to_float(q):
    """``sqrt(q)`` of a non-negative Fraction as a float64 (80 bits by ``isqrt``, then one
    rounding)."""
    if q == 0:
        return 0.0
    e = max(0, 80 - (q.numerator.bit_length() - q.denominator.bit_length()) // 2)
    return float(Fraction(math.isqrt((q.numerator << (2 * e)) // q.denominator), 1 << e))


def _exact_float64_solution(X, y):
    """Least squares in rational arithmetic on the float64 values (normal equations are
    exact in rationals): the coefficients and their standard errors
    ``sqrt(RSS / (n - k) * diag((X^T X)^{-1}))``, as float64."""
    A = [[Fraction(float(v)) for v in row] for row in X]
    b = [Fraction(float(v)) for v in y]
    n, p = len(A), len(A[0])
    M = [[sum(r[i] * r[j] for r in A) for j in range(p)]
         + [sum(r[i] * bv for r, bv in zip(A, b, strict=True))]
         + [Fraction(int(i == j)) for j in range(p)] for i in range(p)]
    for c in range(p):
        pivot = next(i for i in range(c, p) if M[i][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        M[c] = [a / M[c][c] for a in M[c]]
        for i in range(p):
            if i != c and M[i][c] != 0:
                f = M[i][c]
                M[i] = [a - f * bb for a, bb in zip(M[i], M[c], strict=True)]
    coef = [M[i][p] for i in range(p)]
    rss = sum((bv - sum(a * x for a, x in zip(r, coef, strict=True))) ** 2
              for r, bv in zip(A, b, strict=True))
    s2 = rss / (n - p)
    se = [_sqrt_to_float(s2 * M[i][p + 1 + i]) for i in range(p)]
    return np.array([float(x) for x in coef]), np.array(se)


def contenders(data, data_ld):
    """name -> (coefficients, standard errors), intercept first."""
    import statsmodels.api as sm

    from sketchlearn.linear_model import GaussMarkovRegressor

    fi = data.fit_intercept
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, d in (("ours", data), ("ours (long double data)", data_ld)):
            m = GaussMarkovRegressor(fit_intercept=fi).fit(d.X, d.y)
            coef = np.concatenate([[m.intercept_], m.coef_]) if fi else m.coef_
            se = np.concatenate([[m.intercept_bse_], m.bse_]) if fi else m.bse_
            out[label] = (coef, se)
        D = _with_constant(data.X, fi)
        for label, method in (("statsmodels pinv", "pinv"), ("statsmodels qr", "qr")):
            r = sm.OLS(data.y, D).fit(method=method)
            out[label] = (np.asarray(r.params), np.asarray(r.bse))
        coef = np.linalg.lstsq(D, data.y, rcond=None)[0]
        resid = data.y - D @ coef
        s2 = resid @ resid / (len(data.y) - D.shape[1])
        with np.errstate(all="ignore"):
            se = np.sqrt(np.abs(np.diag(s2 * np.linalg.inv(D.T @ D))))
        out["numpy lstsq"] = (coef, se)
    return out


def run(quick: bool) -> dict:
    from sketchlearn.datasets import NIST_STRD_NAMES, load_nist_strd
    from sketchlearn.metrics import log_relative_error

    peers = ("statsmodels pinv", "statsmodels qr", "numpy lstsq")
    rows, notes = [], []
    for name in NIST_STRD_NAMES:
        data = load_nist_strd(name)
        data_ld = load_nist_strd(name, dtype=np.longdouble)
        fi = data.fit_intercept
        cert = np.concatenate([[data.intercept], data.coef]) if fi else data.coef
        cert_se = np.concatenate([[data.intercept_se], data.coef_se]) if fi else data.coef_se
        row = {"dataset": name, "difficulty": data.difficulty}
        exact, exact_se = _exact_float64_solution(_with_constant(data.X, fi), data.y)
        vs_exact = {}
        for label, (coef, se) in contenders(data, data_ld).items():
            key = label.replace(" ", "_").replace("(", "").replace(")", "")
            row[f"{key}_coef"] = round(float(log_relative_error(coef, cert).min()), 2)
            row[f"{key}_se"] = round(float(log_relative_error(se, cert_se).min()), 2)
            vs_exact[label] = (round(float(log_relative_error(coef, exact).min()), 2),
                               round(float(log_relative_error(se, exact_se).min()), 2))
        row["ours_coef_vs_exact_float64"], row["ours_se_vs_exact_float64"] = vs_exact["ours"]
        row["best_peer_coef_vs_exact_float64"] = max(vs_exact[p][0] for p in peers)
        row["best_peer_se_vs_exact_float64"] = max(vs_exact[p][1] for p in peers)
        row["float64_ceiling_coef"] = round(float(log_relative_error(exact, cert).min()), 2)
        row["float64_ceiling_se"] = round(float(log_relative_error(exact_se, cert_se).min()), 2)
        best_coef = max(row[f"{p.replace(' ', '_')}_coef"] for p in peers)
        best_se = max(row[f"{p.replace(' ', '_')}_se"] for p in peers)
        row["best_peer_coef"], row["best_peer_se"] = best_coef, best_se
        # a peer above the exact float64 solution is lucky rounding, not accuracy
        target_coef = min(best_coef, row["float64_ceiling_coef"])
        target_se = min(best_se, row["float64_ceiling_se"])
        row["ours_at_or_above_best_peer"] = bool(
            row["ours_coef"] >= target_coef and row["ours_se"] >= target_se
            and row["ours_coef_vs_exact_float64"] >= row["best_peer_coef_vs_exact_float64"]
            and row["ours_se_vs_exact_float64"] >= row["best_peer_se_vs_exact_float64"])
        rows.append(row)
    notes.append("LRE = correct significant digits (minimum over the parameters), clipped to "
                 "[0, 15]; NIST certifies 15 digits.")
    notes.append("'float64 ceiling' is the LRE, against the certified values, of the exact "
                 "least-squares solution (coefficients and standard errors) of the "
                 "float64-rounded data: on Filip it is below 8, so digits above it from a "
                 "float64 solver are luck; the long-double data path goes past it.")
    notes.append("'ours_at_or_above_best_peer': against the certified values, ours >= the best "
                 "peer or the float64 ceiling (whichever is lower), for the coefficients and "
                 "for the standard errors; and against the exact solution of the float64 data, "
                 "ours >= the best peer for both.")
    notes.append("statsmodels' default pinv truncates Filip's rank (0 digits); its qr path "
                 "forms inv(R^T R) for the standard errors.")
    notes.append("'vs_exact_float64': digits against the exact least-squares solution of the "
                 "float64 data and its exact standard errors sqrt(RSS/(n-k) diag((X^T X)^-1)), "
                 "both computed in fractions in this benchmark; 'best_peer' is the best of "
                 "statsmodels pinv, statsmodels qr and numpy lstsq. 'float64_ceiling_se' is "
                 "the LRE of those exact standard errors against the certified ones.")
    notes.append("Our standard errors reach the exact ones of the float64 data because, on "
                 "designs that take the pivoted path, the columns of (X^T X)^-1 are refined "
                 "through the augmented system with doubled-precision residuals and sigma2 "
                 "uses the refined (minimum) residual sum of squares; R^-1 R^-T alone gave "
                 "7.3 digits on Filip, and the RSS at the rounded coefficients 0.1 digits on "
                 "Wampler2 (whose exact RSS is 7e-30).")
    columns = ["dataset", "difficulty", "ours_coef", "ours_se", "ours_long_double_data_coef",
               "ours_long_double_data_se", "statsmodels_pinv_coef", "statsmodels_pinv_se",
               "statsmodels_qr_coef", "statsmodels_qr_se", "numpy_lstsq_coef", "numpy_lstsq_se",
               "ours_coef_vs_exact_float64", "ours_se_vs_exact_float64",
               "best_peer_coef_vs_exact_float64", "best_peer_se_vs_exact_float64",
               "float64_ceiling_coef", "float64_ceiling_se", "ours_at_or_above_best_peer"]
    return {"name": NAME, "description": DESCRIPTION, "columns": columns, "rows": rows,
            "notes": notes}
