"""Time of a full OLS fit with standard errors: sketchlearn vs statsmodels vs NumPy.

Random well-conditioned designs; every contender returns coefficients and standard
errors (the work a user asking for inference needs):

- ours: ``GaussMarkovRegressor().fit(X, y)`` (pivoted QR, extended-precision
  refinement, leverages, R^2 and F);
- ours without refinement: ``GaussMarkovRegressor(refine=False)``;
- statsmodels: ``OLS(y, add_constant(X)).fit()`` then ``.bse`` (pinv default);
- statsmodels qr: ``.fit(method="qr")`` then ``.bse``;
- NumPy: ``lstsq`` plus ``inv(X^T X)`` for the standard errors.

Same arrays, same process, interleaved repeats, medians; ratios are peer time / ours
(above 1: we are faster). The largest coefficient difference to statsmodels is
reported as a sanity check.
"""

from __future__ import annotations

import _harness as H
import numpy as np

NAME = "ols"
DESCRIPTION = ("OLS fit with standard errors: GaussMarkovRegressor vs statsmodels OLS "
               "(pinv, qr) vs numpy lstsq + inv(X'X), time ratios")


def _problem(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, 1.0 + X @ rng.normal(size=p) + rng.normal(size=n)


def _contenders(X, y):
    import statsmodels.api as sm

    from sketchlearn.linear_model import GaussMarkovRegressor

    D = sm.add_constant(X)

    def lstsq():
        coef = np.linalg.lstsq(D, y, rcond=None)[0]
        r = y - D @ coef
        return coef, np.sqrt(np.diag(r @ r / (len(y) - D.shape[1]) * np.linalg.inv(D.T @ D)))

    def ours(refine=True):
        m = GaussMarkovRegressor(refine=refine).fit(X, y)
        return np.concatenate([[m.intercept_], m.coef_]), m.bse_

    def sm_fit(method):
        r = sm.OLS(y, D).fit(method=method)
        return np.asarray(r.params), np.asarray(r.bse)

    return {"ours": ours, "ours (refine=False)": lambda: ours(False),
            "statsmodels pinv": lambda: sm_fit("pinv"), "statsmodels qr": lambda: sm_fit("qr"),
            "numpy lstsq + inv": lstsq}


def run(quick: bool) -> dict:
    sizes = [(5_000, 20), (20_000, 50)] if quick else [(10_000, 20), (100_000, 50),
                                                       (20_000, 400)]
    repeats = 3 if quick else 7
    rows, notes = [], []
    for n, p in sizes:
        X, y = _problem(n, p)
        funcs = _contenders(X, y)
        small = _contenders(*_problem(max(200, 2 * p), p, seed=1))
        res = H.time_interleaved(funcs, repeats, warmup=small)
        ours_t = res["ours"]["median"]
        ref_coef = res["statsmodels pinv"]["value"][0]
        for name, r in res.items():
            rows.append({"n": n, "p": p, "method": name, "repeats": repeats,
                         "median_s": round(r["median"], 4),
                         "ratio_to_ours": round(r["median"] / ours_t, 2),
                         "max_coef_diff_vs_statsmodels": float(
                             np.max(np.abs(r["value"][0] - ref_coef)))})
    notes.append("ratio_to_ours = method time / ours (above 1 means ours is faster). Same BLAS "
                 "threads on every side.")
    return {"name": NAME, "description": DESCRIPTION,
            "columns": ["n", "p", "method", "repeats", "median_s", "ratio_to_ours",
                        "max_coef_diff_vs_statsmodels"],
            "rows": rows, "notes": notes}
