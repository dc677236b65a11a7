"""Ridge ensembles: oracles (sklearn Ridge, min-norm LS, brute force), risk estimates
against the true risk, the peer sklearn-ensemble-cv, and bad input."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from sketchlearn.ensemble import RidgeEnsemble, RidgeEnsembleCV
from sketchlearn.ensemble._core import (
    draw_members,
    ecv,
    factorize_member,
    fit_members,
    gcv_cgcv,
    member_coefs,
    predictions,
    residual_grams,
    subset_average_mse,
)


def _linear(rng, n, p, sigma=1.0, signal=2.0):
    X = rng.normal(size=(n, p))
    beta = rng.normal(size=p) * signal / np.sqrt(p)
    return X, X @ beta + sigma * rng.normal(size=n), beta


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 25.0])
def test_full_member_equals_sklearn_ridge(rng, alpha, fit_intercept):
    X, y, _ = _linear(rng, 80, 12)
    X += 3.0  # non-centred features exercise the intercept
    ens = RidgeEnsemble(alpha=alpha, n_estimators=3, subsample_size=1.0,
                        fit_intercept=fit_intercept, random_state=0).fit(X, y)
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(X, y)
    np.testing.assert_allclose(ens.coef_, ref.coef_, atol=1e-10)
    np.testing.assert_allclose(ens.intercept_, ref.intercept_, atol=1e-10)
    np.testing.assert_allclose(ens.predict(X), ref.predict(X), atol=1e-9)


def test_each_member_equals_ridge_on_its_rows(rng):
    X, y, _ = _linear(rng, 120, 10)
    ens = RidgeEnsemble(alpha=2.0, n_estimators=4, subsample_size=50, random_state=1).fit(X, y)
    for m, rows in enumerate(ens.estimators_samples_):
        assert rows.size == 50
        ref = Ridge(alpha=2.0).fit(X[rows], y[rows])
        np.testing.assert_allclose(ens.estimators_coef_[m], ref.coef_, atol=1e-10)
        np.testing.assert_allclose(ens.estimators_intercept_[m], ref.intercept_, atol=1e-10)
    np.testing.assert_allclose(ens.coef_, ens.estimators_coef_.mean(axis=0))


def test_ridgeless_is_min_norm_when_p_exceeds_k(rng):
    X, y, _ = _linear(rng, 60, 100)
    ens = RidgeEnsemble(alpha=0.0, n_estimators=1, subsample_size=1.0,
                        fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(ens.coef_, np.linalg.pinv(X) @ y, atol=1e-10)
    np.testing.assert_allclose(X @ ens.coef_, y, atol=1e-8)  # interpolates


def test_auto_solver_asks_the_registry_for_accelerated_tridiagonal_operations(monkeypatch):
    from sketchlearn._array_api import get_namespace
    from sketchlearn.ensemble import _core

    xp = get_namespace(np.zeros(1))
    assert _core.resolve_solver("auto", xp) == "tridiag-auto"  # Numba slots for NumPy
    assert _core.resolve_solver("svd", xp) == "svd"
    strict = pytest.importorskip("array_api_strict")
    assert _core.resolve_solver("auto", strict) == "eigh-auto"  # references only
    # one operation without its accelerated slot is enough to leave the path
    monkeypatch.setattr(_core.tridiagonal_df_op, "backend_for", lambda xp: "reference")
    assert _core.resolve_solver("auto", xp) == "eigh-auto"


@pytest.mark.parametrize("solver", ["svd", "eigh", "tridiag", "auto"])
def test_alpha_grid_from_one_factorisation(rng, solver):
    """One factorisation per member gives Ridge for every alpha (tall and wide members),
    whichever factorisation (SVD, Gram eigh, Householder tridiagonal)."""
    for n, p in [(50, 8), (8, 30), (1, 4)]:
        X, y, _ = _linear(rng, n, p)
        alphas = [0.01, 1.0, 100.0]
        coefs, icpts, dfs = fit_members(X, y, alphas, [np.arange(n)], solver=solver)
        for a, c, b, d in zip(alphas, coefs[0], icpts[0], dfs[0], strict=True):
            ref = Ridge(alpha=a).fit(X, y)
            np.testing.assert_allclose(c, ref.coef_, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(b, ref.intercept_, rtol=1e-7, atol=1e-9)
            Xc = X - X.mean(axis=0)
            H = Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(p), Xc.T)
            assert np.isclose(d, np.trace(H) + 1)
    f = factorize_member(np, X, y, True, solver if solver in ("svd", "eigh") else "svd")
    assert member_coefs(np, f, [1.0])[0].shape == (1, 4)


def test_df_matches_hat_matrix_trace(rng):
    X, y, _ = _linear(rng, 40, 6)
    _, _, dfs = fit_members(X, y, [0.5, 5.0], [np.arange(40)], fit_intercept=False)
    for a, d in zip([0.5, 5.0], dfs[0], strict=True):
        H = X @ np.linalg.solve(X.T @ X + a * np.eye(6), X.T)
        assert np.isclose(d, np.trace(H))


def test_subset_average_matches_enumeration(rng):
    from itertools import combinations

    E = rng.normal(size=(5, 30))
    G = E @ E.T
    got = subset_average_mse(G, 30, [1, 2, 3, 5])
    for j, Mp in enumerate([1, 2, 3, 5]):
        vals = [np.mean(E[list(c)].mean(axis=0) ** 2) for c in combinations(range(5), Mp)]
        assert np.isclose(got[j], np.mean(vals))


def test_gcv_single_ridge_brute_force(rng):
    """GCV of one full-data ridge = RSS/n / (1 - tr(H)/n)^2, and CGCV equals it (k = n)."""
    X, y, _ = _linear(rng, 60, 10)
    a = 3.0
    C, B, D = fit_members(X, y, [a], [np.arange(60)], fit_intercept=False)
    E = y[None, None, :] - predictions(np, X, C, B)
    g, c = gcv_cgcv(residual_grams(np, E), D, 60, 60, [1])
    H = X @ np.linalg.solve(X.T @ X + a * np.eye(10), X.T)
    r = y - H @ y
    brute = (r @ r / 60) / (1 - np.trace(H) / 60) ** 2
    assert abs(g[0, 0] - brute) < 1e-10 * brute
    assert abs(c[0, 0] - brute) < 1e-10 * brute


def test_ecv_brute_force(rng):
    """ECV's pairwise out-of-bag errors from matrix products equal explicit loops."""
    n, M, k = 40, 4, 25
    X, y, _ = _linear(rng, n, 5)
    idx = draw_members(n, k, M, np.random.default_rng(0))
    C, B, _ = fit_members(X, y, [1.0], idx, fit_intercept=False)
    F = predictions(np, X, C, B)[:, 0, :]
    oob = np.ones((n, M), bool)
    for m, r in enumerate(idx):
        oob[r, m] = False
    r1 = np.mean([np.mean((y - F[m])[oob[:, m]] ** 2) for m in range(M)])
    pairs = []
    for i in range(M):
        for j in range(i + 1, M):
            mask = oob[:, i] & oob[:, j]
            if mask.any():
                pairs.append(np.mean((y - (F[i] + F[j]) / 2)[mask] ** 2))
    r2 = np.mean(pairs)
    got = ecv(y[None, None, :] - F[:, None, :], oob, [1, 3])
    assert np.allclose(got[0], [r1, -(1 - 2 / 3) * r1 + 2 * (1 - 1 / 3) * r2])


def _true_and_estimates(seed, n=800, p=200, M=10):
    rng = np.random.default_rng(seed)
    X, y, beta = _linear(rng, n, p)
    alphas = np.array([0.0, 1.0, 10.0, 100.0])
    Ms = np.arange(1, M + 1)
    rows = []
    for k in (n // 4, n // 2):
        idx = draw_members(n, k, M, rng)
        C, B, D = fit_members(X, y, alphas, idx, fit_intercept=False)
        E = y[None, None, :] - predictions(np, X, C, B)
        g, c = gcv_cgcv(residual_grams(np, E), D, n, k, Ms)
        oob = np.ones((n, M), bool)
        for m, r in enumerate(idx):
            oob[r, m] = False
        e = ecv(E, oob, Ms)
        Dl = C - beta[None, None, :]
        true = subset_average_mse(np.einsum("map,lap->aml", Dl, Dl), 1, Ms) + 1.0
        rows.append((g, c, e, true))
    return rows


def test_risk_estimates_track_true_risk():
    """CGCV and ECV track the out-of-sample risk; naive GCV does not at M = 1, k < n.

    Isotropic Gaussian design, n=800, p=200, sigma=1, ||beta||=2, k in {n/4, n/2},
    alpha in {0, 1, 10, 100}, M in 1..10, three seeds; the true risk is exact
    (sigma^2 + ||b - beta||^2, averaged over member subsets like the estimates).
    Tolerance: the estimates fluctuate by O(n^-1/2) times the variance inflation
    1/(1 - df/n)^2: about 3-8 % here (measured median 3-5 %, max 17 %), so we require
    a median relative error below 8 % and a maximum below 30 %, while naive GCV at
    M = 1 and k = n/4 is off by over 15 % (it ignores the n/k - 1 correction)."""
    errs = {"gcv": [], "cgcv": [], "ecv": []}
    gcv_m1 = []
    for seed in range(3):
        for j, (g, c, e, t) in enumerate(_true_and_estimates(seed)):
            for name, est in (("gcv", g), ("cgcv", c), ("ecv", e)):
                errs[name].append(np.abs(est - t) / t)
            if j == 0:
                gcv_m1.append(np.abs(g[:, 0] - t[:, 0]) / t[:, 0])
    cg, ev = np.array(errs["cgcv"]), np.array(errs["ecv"])
    assert np.median(cg) < 0.08 and cg.max() < 0.3, (np.median(cg), cg.max())
    assert np.median(ev) < 0.08 and ev.max() < 0.3, (np.median(ev), ev.max())
    assert np.median(gcv_m1) > 0.15
    assert np.median(cg[..., 0]) < np.median(np.array(errs["gcv"])[..., 0]) / 2


def test_cv_estimator_grid_and_best(rng):
    X, y, _ = _linear(rng, 200, 40)
    alphas = [0.0, 1.0, 30.0]
    for cv in ("gcv", "cgcv", "ecv", "split", 3):
        est = RidgeEnsembleCV(alphas=alphas, subsample_sizes=[0.5, 1.0], n_estimators=4,
                              cv=cv, random_state=0).fit(X, y)
        assert est.risk_estimates_.shape == (3, 2, 4)
        a = est.risk_estimates_axes_
        assert list(a["subsample_size"]) == [100, 200] and list(a["n_estimators"]) == [1, 2, 3, 4]
        b = est.best_params_
        ia = alphas.index(b["alpha"])
        ik = list(a["subsample_size"]).index(b["subsample_size"])
        assert est.best_score_ == np.nanmin(est.risk_estimates_)
        assert est.risk_estimates_[ia, ik, b["n_estimators"] - 1] == est.best_score_
        best = est.best_estimator_
        assert best.estimators_coef_.shape[0] == b["n_estimators"]
        np.testing.assert_allclose(est.predict(X), best.predict(X))
        if cv == "ecv":
            assert np.all(np.isnan(est.risk_estimates_[:, 1, :]))  # k = n: no OOB rows


def test_cv_best_estimator_reuses_members(rng):
    X, y, _ = _linear(rng, 150, 20)
    est = RidgeEnsembleCV(alphas=[0.5, 5.0], subsample_sizes=[60], n_estimators=3,
                          random_state=0).fit(X, y)
    best = est.best_estimator_
    for m, rows in enumerate(best.estimators_samples_):
        ref = Ridge(alpha=est.best_params_["alpha"]).fit(X[rows], y[rows])
        np.testing.assert_allclose(best.estimators_coef_[m], ref.coef_, atol=1e-9)


@pytest.mark.parametrize("kw", [{}, {"sketch": "srdct"}, {"feature_sketch": "gaussian"}],
                         ids=["subsample", "row-sketch", "feature-sketch"])
def test_n_jobs_gives_the_same_members_and_estimates(rng, kw):
    """Members fitted in threads (one BLAS thread each) equal the sequential fit."""
    X, y, _ = _linear(rng, 160, 30)
    common = dict(alphas=[0.5, 5.0], subsample_sizes=[0.5], n_estimators=5, random_state=0,
                  cv="gcv" if kw else "cgcv", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # GCV with row sketches
        seq = RidgeEnsembleCV(**common).fit(X, y)
        par = RidgeEnsembleCV(**common, n_jobs=2).fit(X, y)
        every = RidgeEnsembleCV(**common, n_jobs=-1).fit(X, y)
    for other in (par, every):
        np.testing.assert_allclose(other.risk_estimates_, seq.risk_estimates_, rtol=1e-10)
        np.testing.assert_allclose(other.best_estimator_.estimators_coef_,
                                   seq.best_estimator_.estimators_coef_, rtol=1e-9,
                                   atol=1e-12)
    assert par.best_estimator_.n_jobs == 2
    one = RidgeEnsemble(alpha=1.0, n_estimators=4, random_state=0, **kw).fit(X, y)
    two = RidgeEnsemble(alpha=1.0, n_estimators=4, random_state=0, n_jobs=2, **kw).fit(X, y)
    np.testing.assert_allclose(two.coef_, one.coef_, rtol=1e-9, atol=1e-12)


def test_sketched_members(rng):
    X, y, _ = _linear(rng, 300, 10)
    ens = RidgeEnsemble(alpha=1.0, n_estimators=5, sketch="srdct", sketch_size=100,
                        random_state=0).fit(X, y)
    ref = Ridge(alpha=1.0).fit(X, y)
    assert np.linalg.norm(ens.coef_ - ref.coef_) < 0.2 * np.linalg.norm(ref.coef_)
    # an orthogonal sketch of size n reproduces the unsketched fit
    full = RidgeEnsemble(alpha=1.0, n_estimators=2, sketch="orthogonal", sketch_size=300,
                         random_state=0).fit(X, y)
    np.testing.assert_allclose(full.coef_, ref.coef_, atol=1e-9)
    np.testing.assert_allclose(full.intercept_, ref.intercept_, atol=1e-9)
    with pytest.warns(UserWarning, match="not consistent for finite ensembles"):
        cv = RidgeEnsembleCV(alphas=[0.1, 10.0], subsample_sizes=[50, 150], n_estimators=3,
                             sketch="gaussian", cv="gcv", random_state=0).fit(X, y)
    assert np.all(np.isfinite(cv.risk_estimates_))
    for cv in ("cgcv", "ecv"):
        with pytest.raises(ValueError, match="derived for subsampled members"):
            RidgeEnsembleCV(sketch="gaussian", cv=cv).fit(X, y)


def test_float32_and_no_mutation(rng):
    X, y, _ = _linear(rng, 100, 8)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    before = X32.copy()
    ens = RidgeEnsemble(alpha=1.0, random_state=0).fit(X32, y32)
    assert ens.predict(X32).dtype == np.float32
    np.testing.assert_array_equal(X32, before)
    ens64 = RidgeEnsemble(alpha=1.0, random_state=0).fit(X, y)
    np.testing.assert_allclose(ens.coef_, ens64.coef_, rtol=1e-3, atol=1e-4)


def test_bad_input(rng):
    X, y, _ = _linear(rng, 50, 5)
    with pytest.raises(ValueError, match="between 1 and the number of samples"):
        RidgeEnsemble(subsample_size=80).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        RidgeEnsemble(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_estimators"):
        RidgeEnsemble(n_estimators=0).fit(X, y)
    with pytest.raises(ValueError, match="subsample_size"):
        RidgeEnsemble(subsample_size=1.5).fit(X, y)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RidgeEnsemble().fit(Xn, y)
    with pytest.raises(ValueError, match="alphas must be finite and >= 0"):
        RidgeEnsembleCV(alphas=[1.0, -2.0]).fit(X, y)
    with pytest.raises(ValueError, match="No finite risk"):
        RidgeEnsembleCV(alphas=[1.0], subsample_sizes=[1.0], cv="ecv").fit(X, y)
    with pytest.raises(ValueError, match="folds exceed"):
        RidgeEnsembleCV(alphas=[1.0], cv=60).fit(X, y)
    # checked once, by the estimator (make_sketch inside fit does not check again)
    for est, name in ((RidgeEnsemble(sketch="fourier"), "sketch"),
                      (RidgeEnsemble(n_estimators=True), "n_estimators"),
                      (RidgeEnsemble(random_state="0"), "random_state"),
                      (RidgeEnsembleCV(feature_sketch="fourier"), "feature_sketch"),
                      (RidgeEnsembleCV(n_estimators=0), "n_estimators")):
        with pytest.raises(ValueError, match=f"'{name}' parameter of {type(est).__name__} must"):
            est.fit(X, y)
    # constant feature: fine (penalised direction, or min-norm for alpha=0)
    Xc = X.copy()
    Xc[:, 0] = 1.0
    ens = RidgeEnsemble(alpha=0.0, subsample_size=1.0, n_estimators=1).fit(Xc, y)
    assert ens.coef_[0] == pytest.approx(0.0, abs=1e-8)


def test_equals_peer_sklearn_ensemble_cv(rng):
    """GCV, CGCV and ECV equal sklearn-ensemble-cv's on the same members (when installed)."""
    peer = pytest.importorskip("sklearn_ensemble_cv")
    n, p, M, k, alpha = 200, 60, 5, 100, 2.0
    X, y, _ = _linear(rng, n, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ens = peer.Ensemble(estimator=Ridge(alpha=alpha, fit_intercept=False), n_estimators=M,
                            max_samples=k, bootstrap=False, random_state=0).fit(X, y)
        pg = np.ravel(ens.compute_gcv_estimate(X, y, M=M, n_jobs=1))
        pc = np.ravel(ens.compute_cgcv_estimate(X, y, M=M, n_jobs=1))
        pe = np.ravel(ens.compute_ecv_estimate(X, y, M_test=M, n_jobs=1))
    idx = [np.sort(i) for i in ens.estimators_samples_]
    C, B, D = fit_members(X, y, [alpha], idx, fit_intercept=False)
    E = y[None, None, :] - predictions(np, X, C, B)
    Ms = np.arange(1, M + 1)
    g, c = gcv_cgcv(residual_grams(np, E), D, n, k, Ms)
    oob = np.ones((n, M), bool)
    for m, r in enumerate(idx):
        oob[r, m] = False
    e = ecv(E, oob, Ms)
    # with M = 5 the peer averages over every member subset, as we do
    np.testing.assert_allclose(g[0], pg, rtol=1e-10)
    np.testing.assert_allclose(c[0], pc, rtol=1e-10)
    np.testing.assert_allclose(e[0], pe, rtol=1e-10)


def _member_hat(X, rows, alpha, fit_intercept):
    """The (n, n) linear map L with ``L @ y`` = the member's predictions on every row,
    from the ridge normal equations on its rows (min-norm least squares for alpha = 0),
    and its degrees of freedom: the trace of the in-sample block ``L[rows][:, rows]``."""
    n, p = X.shape
    k = rows.size
    J = np.zeros((k, n))
    J[np.arange(k), rows] = 1.0
    XI = X[rows]
    C = np.eye(k) - 1.0 / k if fit_intercept else np.eye(k)  # centring on the member's rows
    Xc = C @ XI
    if alpha > 0:
        coef_map = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ C)  # y_I -> coef
    else:
        coef_map = np.linalg.pinv(Xc) @ C
    centre = XI.mean(axis=0) if fit_intercept else np.zeros(p)
    L = (X - centre) @ coef_map @ J
    if fit_intercept:
        L += np.ones((n, k)) @ J / k  # the intercept: mean of y_I minus mean of X_I b
    return L, np.trace(L[np.ix_(rows, rows)])


def _cgcv_oracle(X, y, rows_list, alpha, fit_intercept):
    """GCV and CGCV of the M-member ensemble from the members' hat matrices.

    Bellec, Du, Koriyama, Patil, Tan (2023), ridge members on k of n rows (the
    "full" form of sklearn-ensemble-cv's ``compute_cgcv_estimate``), with
    t = mean_m df_m / n:
    GCV = ||y - mean_m f_m||^2 / n / (1 - t)^2,
    CGCV = GCV - t^2 / (1 - t)^2 (n / k - 1) / M
                 * mean_m ||y - f_m||^2 / n / (1 - 2 t + n t^2 / k)."""
    n = X.shape[0]
    k = rows_list[0].size
    M = len(rows_list)
    hats = [_member_hat(X, rows, alpha, fit_intercept) for rows in rows_list]
    F = np.stack([L @ y for L, _ in hats])
    t = np.mean([df for _, df in hats]) / n
    gcv = np.mean((y - F.mean(axis=0)) ** 2) / (1 - t) ** 2
    single = np.mean((y - F) ** 2)
    corr = t**2 / (1 - t) ** 2 * (n / k - 1) / M * single / (1 - 2 * t + n * t**2 / k)
    return gcv, gcv - corr, F, [df for _, df in hats]


@pytest.mark.parametrize("alpha, fit_intercept, p, k, M", [
    (1.0, True, 20, 30, 3),
    (0.5, False, 20, 40, 5),
    (0.0, True, 10, 30, 4),      # least squares on each subsample
    (0.0, False, 40, 30, 2),     # ridgeless members interpolating their rows (p > k)
    (3.0, True, 20, 60, 2),      # full-data members: CGCV = GCV
])
def test_risk_estimate_is_cgcv_of_its_members(rng, alpha, fit_intercept, p, k, M):
    """``RidgeEnsemble.risk_estimate_`` and the core ``gcv_cgcv`` (RidgeEnsembleCV's)
    equal the corrected GCV computed here from the members' hat matrices (NumPy
    solves on their rows), to 1e-10. The
    correction is 1.6 % to 73 % of the estimate in the subsampled cases (we require
    over 1 %, 1e8 times the tolerance), so an estimate without it fails."""
    n = 60
    X, y, _ = _linear(rng, n, p)
    X += 2.0  # non-centred features exercise the intercept
    ens = RidgeEnsemble(alpha=alpha, n_estimators=M, subsample_size=k,
                        fit_intercept=fit_intercept, random_state=4).fit(X, y)
    rows_list = ens.estimators_samples_
    gcv, cgcv, F, dfs = _cgcv_oracle(X, y, rows_list, alpha, fit_intercept)
    # the members the estimate is about are the ones the oracle sees
    members = X @ ens.estimators_coef_.T + ens.estimators_intercept_
    np.testing.assert_allclose(members.T, F, atol=1e-9)
    np.testing.assert_allclose(ens.estimators_df_, dfs, rtol=1e-10)
    assert ens.risk_estimate_ == pytest.approx(cgcv, rel=1e-10, abs=0)
    # the core function behind RidgeEnsembleCV(cv="gcv" / "cgcv"), on the same members
    C, B, D = fit_members(X, y, [alpha], rows_list, fit_intercept=fit_intercept)
    E = y[None, None, :] - predictions(np, X, C, B)
    g, c = gcv_cgcv(residual_grams(np, E), D, n, k, [M])
    assert g[0, 0] == pytest.approx(gcv, rel=1e-10, abs=0)
    assert c[0, 0] == pytest.approx(cgcv, rel=1e-10, abs=0)
    if k < n:
        assert abs(gcv - cgcv) > 0.01 * cgcv
    else:
        assert cgcv == pytest.approx(gcv, rel=1e-14)


def test_cgcv_oracle_equals_peer_on_the_same_members(rng):
    """The oracle's formula is sklearn-ensemble-cv's (the paper's authors' code) on the
    very members RidgeEnsemble fitted: the peer is handed their rows and Ridge fits."""
    peer = pytest.importorskip("sklearn_ensemble_cv")
    n, p, k, M, alpha = 60, 20, 30, 3, 1.0
    X, y, _ = _linear(rng, n, p)
    ens = RidgeEnsemble(alpha=alpha, n_estimators=M, subsample_size=k, fit_intercept=False,
                        random_state=4).fit(X, y)
    rows_list = ens.estimators_samples_

    class GivenMembers(peer.Ensemble):
        estimators_samples_ = None  # plain attribute instead of BaggingRegressor's draw

    given = GivenMembers(estimator=Ridge(alpha=alpha, fit_intercept=False), n_estimators=M,
                         max_samples=k, bootstrap=False)
    given.estimator_ = Ridge(alpha=alpha, fit_intercept=False)
    given.estimators_ = [Ridge(alpha=alpha, fit_intercept=False).fit(X[r], y[r])
                         for r in rows_list]
    given.estimators_features_ = [np.arange(p)] * M
    given.estimators_samples_ = rows_list
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pc = np.ravel(given.compute_cgcv_estimate(X, y, M=M, n_jobs=1))
    _, cgcv, _, _ = _cgcv_oracle(X, y, rows_list, alpha, False)
    assert pc[-1] == pytest.approx(cgcv, rel=1e-10, abs=0)
    assert ens.risk_estimate_ == pytest.approx(pc[-1], rel=1e-10, abs=0)


@pytest.mark.gpu
def test_cupy_matches_numpy(rng):
    cupy = pytest.importorskip("cupy")
    X, y, _ = _linear(rng, 200, 30)
    a = RidgeEnsemble(alpha=1.0, n_estimators=3, random_state=0).fit(X, y)
    b = RidgeEnsemble(alpha=1.0, n_estimators=3, random_state=0).fit(cupy.asarray(X),
                                                                     cupy.asarray(y))
    np.testing.assert_allclose(cupy.asnumpy(b.coef_), a.coef_, atol=1e-8)
    cv = RidgeEnsembleCV(alphas=[1.0, 10.0], subsample_sizes=[0.5], n_estimators=3,
                         random_state=0)
    cv_np = RidgeEnsembleCV(**cv.get_params()).fit(X, y)
    cv.fit(cupy.asarray(X), cupy.asarray(y))
    np.testing.assert_allclose(cv.risk_estimates_, cv_np.risk_estimates_, rtol=1e-8)


def test_predict_interval_coverage():
    """Empirical coverage of 90 % intervals on 20000 test points is within 0.05 of 0.9.

    n=1000, p=300 (proportional regime), subsample and full members. The coverage of
    the GCV-corrected residual intervals converges to the nominal level as n, p grow;
    at this size the measured coverage over seeds and settings was 0.878-0.923, and
    the binomial noise of 20000 test points is 0.002, so 0.05 leaves room for the
    finite-n error without accepting a broken calibration (a naive residual
    interval, without the correction, covers 0.77-0.86 here)."""
    rng = np.random.default_rng(3)
    n, p = 1000, 300
    X, y, _ = _linear(rng, n + 20000, p)
    for k, M in [(0.3, 1), (0.5, 5), (1.0, 1)]:
        ens = RidgeEnsemble(alpha=1.0, subsample_size=k, n_estimators=M,
                            random_state=0).fit(X[:n], y[:n])
        lo, hi = ens.predict_interval(X[n:], coverage=0.9)
        inside = np.mean((lo <= y[n:]) & (y[n:] <= hi))
        assert abs(inside - 0.9) < 0.05, (k, M, inside)
    for bad in (1.5, 0.0, 1.0):
        with pytest.raises(ValueError, match="'coverage' parameter of RidgeEnsemble."
                                             "predict_interval must be"):
            ens.predict_interval(X[:5], coverage=bad)
    interp = RidgeEnsemble(alpha=0.0, subsample_size=1.0, n_estimators=1).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="interpolates"):
        interp.predict_interval(X[:5])


def test_sketched_least_squares(rng):
    from sketchlearn.ensemble import SketchedLeastSquares

    X, y, _ = _linear(rng, 120, 10)
    # full-size orthogonal transform: exactly the (min-norm) least squares fit
    sls = SketchedLeastSquares(sketch="srdct", sketch_size=1.0).fit(X, y)
    ref = Ridge(alpha=0.0, solver="svd").fit(X, y)
    np.testing.assert_allclose(sls.coef_, ref.coef_, atol=1e-9)
    assert sls.sketch_size_ == 120 and sls.cv_risk_ is None
    # p close to n: the ridgeless peak; "auto" downsamples and beats the full fit
    Xo, yo, _ = _linear(np.random.default_rng(0), 2200, 210, sigma=1.0, signal=1.0)
    auto = SketchedLeastSquares(sketch_sizes=[0.2, 0.4, 0.6, 0.8, 1.0], cv=3, random_state=0,
                                fit_intercept=False).fit(Xo[:200], yo[:200])
    full = SketchedLeastSquares(sketch_size=1.0, fit_intercept=False).fit(Xo[:200], yo[:200])
    assert auto.cv_risk_.shape == (5,) and auto.sketch_size_ < 200
    mse = [np.mean((m.predict(Xo[200:]) - yo[200:]) ** 2) for m in (auto, full)]
    assert mse[0] < mse[1] / 2
    with pytest.raises(ValueError, match="sketch_size"):
        SketchedLeastSquares(sketch_size=500).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_members_cut_from_shared_grams_equal_ridge(rng, fit_intercept, dtype):
    """Members whose Gram matrices come from X X^T (k <= p) or from X^T X minus the
    left-out rows (k > p, k > n/2) equal sklearn Ridge on their own rows, also for
    features with a large mean (the shared products are of globally centred data)."""
    import sketchlearn.ensemble._core as core

    n, p = 60, 25
    X, y, _ = _linear(rng, n, p)
    # without centring, a mean of 50 makes the Gram matrix ill-conditioned (kappa ~ 1e5),
    # beyond float32 whichever way it is formed
    offset = 50.0 if fit_intercept or dtype == np.float64 else 0.0
    X = (X + offset).astype(dtype)
    y = (y + 7.0).astype(dtype)
    sizes = [10, 25, 40, 52]
    index_sets = [np.sort(rng.choice(n, k, replace=False)) for k in sizes for _ in range(8)]
    grams = core.member_grams(X, y, fit_intercept, [r.size for r in index_sets])
    assert grams["XXt"] is not None and grams["XtX"] is not None
    assert all(core._shared_tridiag(grams, r) is not None for r in index_sets)
    alphas = [0.5, 20.0]
    C, B, D = fit_members(X, y, alphas, index_sets, fit_intercept=fit_intercept)
    assert C.dtype == dtype
    tol = 2e-3 if dtype == np.float32 else 1e-8
    for rows, c, b, d in zip(index_sets, C, B, D, strict=True):
        Xr, yr = X[rows].astype(np.float64), y[rows].astype(np.float64)
        for a, cj, bj, dj in zip(alphas, c, b, d, strict=True):
            ref = Ridge(alpha=a, fit_intercept=fit_intercept, solver="svd").fit(Xr, yr)
            scale = np.abs(ref.coef_).max()
            np.testing.assert_allclose(cj / scale, ref.coef_ / scale, atol=tol)
            assert abs(bj - ref.intercept_) <= tol * (abs(ref.intercept_) + offset * p * scale)
            Xc = Xr - Xr.mean(axis=0) if fit_intercept else Xr
            s = np.linalg.svd(Xc, compute_uv=False)
            assert np.isclose(dj, np.sum(s**2 / (s**2 + a)) + fit_intercept, rtol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 7, 120])
def test_gil_free_lapack_equals_scipy(rng, dtype, n):
    """The ctypes calls of ?sytrd / ?ormqr: the same reflectors and tridiagonal matrix as
    SciPy's f2py ?sytrd, G left alone (or factorised in place when asked), and the Q
    they apply is orthogonal with Q^T G Q = T."""
    import scipy.linalg.lapack as lapack

    from sketchlearn.ensemble._lapack import ormtr_lower, sytrd_lower

    A = rng.normal(size=(n + 3, n)).astype(dtype)
    G = A.T @ A
    before = G.copy()
    c, d, e, tau = sytrd_lower(G)
    np.testing.assert_array_equal(G, before)
    c2, d2, e2, tau2, info = (lapack.ssytrd if dtype == np.float32 else lapack.dsytrd)(
        G, lower=1)
    assert info == 0 and c.dtype == d.dtype == dtype and c.flags.f_contiguous
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    scale = float(np.abs(G).max())
    np.testing.assert_allclose(d / scale, d2 / scale, **tol)
    np.testing.assert_allclose(e / scale, e2 / scale, **tol)
    np.testing.assert_allclose(tau, tau2, **tol)
    np.testing.assert_allclose(np.tril(c, -2), np.tril(c2, -2), **tol)
    # in place: a C-ordered symmetric G is its own transpose
    c3, d3, e3, _ = sytrd_lower(G.copy(), overwrite=True)
    np.testing.assert_allclose(d3, d, **tol)
    np.testing.assert_allclose(np.tril(c3, -2), np.tril(c, -2), **tol)
    Q = ormtr_lower(c, tau, np.eye(n, dtype=dtype, order="F"), False)
    np.testing.assert_allclose(Q.T @ Q, np.eye(n), **tol)
    T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    np.testing.assert_allclose(Q.T @ G @ Q / scale, T / scale, **tol)
    Z = rng.normal(size=(n, 3)).astype(dtype)
    np.testing.assert_allclose(ormtr_lower(c, tau, np.asfortranarray(Z), True), Q.T @ Z,
                               **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 9, 150])
def test_tridiagonal_kernels(rng, dtype, n):
    """The O(r) solves and degrees of freedom equal dense linear algebra on T + alpha;
    a penalty that leaves T + alpha indefinite is reported, not solved."""
    from sketchlearn.ensemble._tridiagonal import tridiagonal_df_op, tridiagonal_ridge_solve_op

    tridiagonal_ridge_solve = tridiagonal_ridge_solve_op.implementation("numba")
    tridiagonal_df = tridiagonal_df_op.implementation("numba")

    d = (1.0 + rng.random(n) * 5).astype(dtype)
    e = (rng.normal(size=max(n - 1, 0))).astype(dtype)
    T = (np.diag(d) + np.diag(e, 1) + np.diag(e, -1)).astype(np.float64)
    shift = max(0.0, -float(np.linalg.eigvalsh(T)[0])) + 0.1
    alphas = shift * np.array([1.0, 3.0, 100.0])
    b = rng.normal(size=n).astype(dtype)
    Z, bad = tridiagonal_ridge_solve(np, d, e, b, alphas)
    assert bad == -1 and Z.dtype == dtype and Z.flags.f_contiguous
    ev = np.linalg.eigvalsh(T)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    for j, a in enumerate(alphas):
        ref = np.linalg.solve(T + a * np.eye(n), b.astype(np.float64))
        np.testing.assert_allclose(Z[:, j], ref, rtol=tol * 10, atol=tol * np.abs(ref).max())
    df = tridiagonal_df(np, d, e, alphas)
    np.testing.assert_allclose(df, [np.sum(ev / (ev + a)) for a in alphas], rtol=tol,
                               atol=tol * n)
    if n > 1:
        bad = -float(ev[-1]) - 1.0   # T + bad is negative definite
        Z, where = tridiagonal_ridge_solve(np, d, e, b, np.array([shift, bad]))
        assert where == 1 and np.all(np.isnan(Z[:, 1]))


def test_lapack_prototype_is_typed_and_refuses_64_bit_integers():
    import ctypes

    from sketchlearn.ensemble._lapack import _argument_types, _routine

    sig = ("void (char *, int *, __pyx_t_5scipy_6linalg_13cython_lapack_d *, int *, "
           "__pyx_t_5scipy_6linalg_13cython_lapack_s *)")
    assert _argument_types(sig) == [ctypes.POINTER(t) for t in (
        ctypes.c_char, ctypes.c_int, ctypes.c_double, ctypes.c_int, ctypes.c_float)]
    with pytest.raises(RuntimeError, match="ILP64"):
        _argument_types("void (char *, int64_t *, double *)")
    # SciPy's own table is LP64 here, and a wrong argument is refused by ctypes.
    sytrd = _routine("dsytrd")
    assert len(sytrd.argtypes) == 10
    with pytest.raises(ctypes.ArgumentError):
        sytrd(*([ctypes.byref(ctypes.c_double(0.0))] * 10))


def test_auto_solver_switches_to_the_svd_by_condition_number(rng):
    """solver="auto" factors a member from its Gram matrix only where that gives the
    ridge solution to about 1e-9, i.e. cond(G + alpha I) <= 1e7: a tiny penalty on a
    well-conditioned design keeps the Gram path (accurate: scikit-learn's SVD ridge is
    the oracle), and the same penalty on a design of condition 1e6 (Gram condition
    1e12) takes the SVD (where the Gram path would keep about 4 digits)."""
    import sketchlearn.ensemble._core as core

    n, p = 400, 12
    U, _ = np.linalg.qr(rng.normal(size=(n, p)))
    V, _ = np.linalg.qr(rng.normal(size=(p, p)))
    for log_cond, use_gram in ((0.5, True), (6.0, False)):
        X = (U * np.logspace(0, -log_cond, p)) @ V.T * 30.0
        y = X @ rng.normal(size=p) + 0.01 * rng.normal(size=n)
        rows = [np.arange(n)]
        alpha = 1e-9 * np.linalg.norm(X, 2) ** 2  # far below 1e-7 lam_max
        f = core.factorize_member_tridiag(X, y, False)
        assert core.gram_is_accurate(f, alpha) is use_gram
        C, _, _ = fit_members(X, y, [alpha], rows, fit_intercept=False)
        ref = Ridge(alpha=alpha, fit_intercept=False, solver="svd").fit(X, y).coef_
        np.testing.assert_allclose(C[0, 0], ref, rtol=1e-8, atol=0)


@pytest.mark.parametrize("low", [-3e-31, 0.0, 8e-31, -2.5, 4.0])
def test_best_grid_point_is_the_first_within_rounding_of_the_minimum(low):
    # Risk estimates of a noiseless fit are rounding-sized and can be negative
    # (scikit-learn's y = X[:, 0] check hit this): the tie margin must be taken on
    # |min|, else nothing is "near" a negative minimum.
    from sketchlearn.ensemble._ridge_ensembles import _TIE_RTOL, _first_near_min

    risk = np.full((2, 3), abs(low) * 10 + 1.0)
    risk[0, 0] = np.nan
    risk[0, 2] = low + 0.5 * _TIE_RTOL * abs(low)  # a rounding-level tie, earlier
    risk[1, 1] = low
    risk[1, 2] = np.inf
    assert _first_near_min(risk) == 2
    risk[0, 2] = low + 3 * _TIE_RTOL * abs(low) + (low == 0.0) * 1e-300  # not a tie
    assert _first_near_min(risk) == 4
