import subprocess
import sys

import numpy as np
import pytest

from sketchlearn.cli import main


def test_demo_prints_a_report(capsys):
    assert main(["demo", "--n-samples", "300", "--n-out", "16", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "uniform random subsample" in out and "kernel thinning (KT+)" in out


def test_demo_saves_a_plot(capsys, tmp_path):
    # matplotlib is in the test extra; an install without it skips only this test.
    pytest.importorskip("matplotlib", reason="the demo's --plot needs matplotlib")
    plot = tmp_path / "demo.png"
    assert main(["demo", "--n-samples", "300", "--n-out", "16", "--seed", "1",
                 "--plot", str(plot)]) == 0
    assert f"Plot saved to {plot}" in capsys.readouterr().out
    assert plot.stat().st_size > 1000


def test_thin_reads_csv_and_writes_the_coreset(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(400, 3))
    src, out, idx = tmp_path / "data.csv", tmp_path / "coreset.csv", tmp_path / "idx.txt"
    np.savetxt(src, X, delimiter=",")
    assert main(["thin", str(src), "--n-out", "25", "-o", str(out), "--indices", str(idx),
                 "--seed", "0"]) == 0
    coreset, rows = np.loadtxt(out, delimiter=","), np.loadtxt(idx, dtype=int)
    assert coreset.shape == (25, 3)
    np.testing.assert_array_equal(coreset, X[rows])
    assert "kept 25 of 400 rows" in capsys.readouterr().err


def test_thin_reports_bad_files_and_parameters(tmp_path, capsys):
    assert main(["thin", str(tmp_path / "missing.csv")]) == 2
    src = tmp_path / "small.csv"
    np.savetxt(src, np.ones((5, 2)), delimiter=",")
    assert main(["thin", str(src), "--n-out", "9"]) == 2
    assert "n_out=9 is larger" in capsys.readouterr().err


def test_demo_rejects_bad_sizes(capsys):
    assert main(["demo", "--n-samples", "10", "--n-out", "10"]) == 2
    assert "--n-out" in capsys.readouterr().err


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "sketchlearn", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "demo" in done.stdout


def _distance_files(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(120, 3)), rng.normal(size=(90, 3)) + [1.0, 0.0, 0.0]
    a, b = tmp_path / "a.npy", tmp_path / "b.csv"
    np.save(a, X)
    np.savetxt(b, Y, delimiter=",")
    return X, Y, str(a), str(b)


def test_distance_prints_each_metric(tmp_path, capsys):
    import ot

    from sketchlearn.transport import energy_distance, sinkhorn, sliced_wasserstein

    X, Y, a, b = _distance_files(tmp_path)
    assert main(["distance", a, b, "--metric", "sliced", "--n-projections", "50",
                 "--seed", "3", "--p", "1"]) == 0
    out = capsys.readouterr().out.split("\n")
    value, se = sliced_wasserstein(X, Y, p=1, n_projections=50, random_state=3,
                                   return_std=True)
    assert float(out[0]) == pytest.approx(value, rel=1e-9)
    assert out[1] == f"standard error {se:.3g}"
    assert main(["distance", a, b, "--metric", "energy", "--seed", "1",
                 "--slices", "orthogonal"]) == 0
    out = capsys.readouterr().out.split()
    assert float(out[0]) == pytest.approx(
        energy_distance(X, Y, n_projections=200, slices="orthogonal", random_state=1),
        rel=1e-9)
    assert main(["distance", a, b, "--metric", "exact"]) == 0
    exact = float(capsys.readouterr().out)
    assert exact == pytest.approx(np.sqrt(ot.emd2([], [], ot.dist(X, Y))), rel=1e-9)
    assert main(["distance", a, b, "--metric", "sinkhorn", "--reg", "0.5"]) == 0
    captured = capsys.readouterr()
    cost = sinkhorn(X=X, Y=Y, reg=0.5).cost
    assert float(captured.out) == pytest.approx(np.sqrt(cost), rel=1e-9)
    assert float(captured.out) >= exact * (1 - 1e-9)  # entropic plans cost more
    assert "120 vs 90 points in 3-D" in captured.err


def test_distance_reads_whitespace_text_and_reports_errors(tmp_path, capsys):
    X, Y, a, _ = _distance_files(tmp_path)
    txt = tmp_path / "b.txt"
    np.savetxt(txt, Y, header="x y z")
    assert main(["distance", a, str(txt), "--skip-header", "1", "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["distance", a, str(tmp_path / "missing.npy")]) == 2
    assert "cannot read" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((10, 2)))
    assert main(["distance", a, str(wrong)]) == 2
    assert "features" in capsys.readouterr().err
    assert main(["distance", a, a, "--metric", "sinkhorn", "--p", "3"]) == 2
    assert "--p 1 or 2" in capsys.readouterr().err
    assert main(["distance", a, a, "--n-projections", "0"]) == 2
    assert "n_projections" in capsys.readouterr().err
    assert main(["distance", a, a, "--metric", "energy", "--slices", "cv-upper"]) == 2
    assert main(["distance", a, a, "--metric", "exact"]) == 0
    assert float(capsys.readouterr().out) < 1e-6  # rounding of the expanded squared cost


def test_distance_unbalanced_reg_m(tmp_path, capsys):
    import ot

    X, Y, a, b = _distance_files(tmp_path)
    assert main(["distance", a, b, "--metric", "sinkhorn", "--reg", "0.5", "--reg-m",
                 "1.0"]) == 0
    captured = capsys.readouterr()
    M = ot.dist(X, Y)
    P = ot.sinkhorn_unbalanced(np.full(120, 1 / 120), np.full(90, 1 / 90), M, 0.5, 1.0,
                               numItermax=10**5, stopThr=1e-12)
    assert float(captured.out) == pytest.approx(np.sqrt(np.sum(P * M)), rel=1e-5)
    assert "unbalanced reg_m = 1" in captured.err
    mass = float(captured.err.split("transported mass ")[1].split(";")[0])
    assert mass == pytest.approx(P.sum(), rel=1e-5) and mass < 1.0
    assert main(["distance", a, b, "--metric", "sinkhorn", "--reg-m", "-1"]) == 2
    assert "reg_m must be positive" in capsys.readouterr().err
    assert main(["distance", a, b, "--metric", "exact", "--reg-m", "1"]) == 2
    assert "--reg-m" in capsys.readouterr().err


def test_distance_entry_point():
    done = subprocess.run([sys.executable, "-m", "sketchlearn", "distance", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--metric" in done.stdout and "sinkhorn" in done.stdout


def test_complete_fills_missing_entries_of_a_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    M = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 15))
    mask = rng.random(M.shape) < 0.6
    path = tmp_path / "m.csv"
    lines = [",".join(f"{v:.17g}" if keep else "" for v, keep in zip(row, keep_row, strict=True))
             for row, keep_row in zip(M, mask, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "filled.npy"
    assert main(["complete", str(path), "-o", str(out), "--rank", "2", "--seed", "0",
                 "--tol", "1e-12", "--max-iter", "500"]) == 0
    filled = np.load(out)
    np.testing.assert_array_equal(filled[mask], M[mask])  # observed entries kept
    assert np.abs(filled - M).max() < 1e-5  # rank 2 recovered from 60% of the entries
    err = capsys.readouterr().err
    assert "40 x 15 matrix" in err and "AltMinCompleter" in err


def test_complete_softimpute_and_svt_from_npy(tmp_path, capsys):
    rng = np.random.default_rng(1)
    M = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20))
    X = M.copy()
    X[rng.random(M.shape) < 0.3] = np.nan
    np.save(tmp_path / "x.npy", X)
    for method in ("softimpute", "svt"):
        assert main(["complete", str(tmp_path / "x.npy"), "--method", method, "--seed", "0"]) == 0
        out = capsys.readouterr()
        filled = np.loadtxt(out.out.splitlines(), delimiter=",")
        assert filled.shape == M.shape and np.isfinite(filled).all()
        observed = ~np.isnan(X)
        np.testing.assert_allclose(filled[observed], X[observed])
        # better than filling with column means
        means = np.where(observed, X, np.nanmean(X, axis=0))
        assert np.abs(filled - M)[~observed].mean() < np.abs(means - M)[~observed].mean()
    assert main(["complete", str(tmp_path / "x.npy"), "--method", "softimpute",
                 "--shrinkage", "0.5"]) == 0


def test_complete_reports_bad_input(tmp_path, capsys):
    assert main(["complete", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    np.save(tmp_path / "v.npy", np.ones((2, 3, 4)))
    assert main(["complete", str(tmp_path / "v.npy")]) == 2
    assert "2-D" in capsys.readouterr().err
    X = np.full((6, 4), np.nan)
    np.save(tmp_path / "empty.npy", X)
    assert main(["complete", str(tmp_path / "empty.npy")]) == 2
    assert "complete:" in capsys.readouterr().err


@pytest.mark.parametrize("cold_start", ["compile", "reference"])
@pytest.mark.parametrize("cached", [False, True])
def test_demo_says_when_it_compiles_the_kernels(monkeypatch, capsys, cached, cold_start):
    from sketchlearn import cli, config_context

    monkeypatch.setattr(cli, "_kernels_cached", lambda: cached)
    with config_context(cold_start=cold_start):
        assert main(["demo", "--n-samples", "100", "--n-out", "8"]) == 0
    out = capsys.readouterr().out
    assert ("compiling the kernels once" in out) is (not cached and cold_start == "compile")
    assert ("NumPy versions" in out) is (not cached and cold_start == "reference")


def test_kernels_count_as_cached_once_compiled():
    from sketchlearn import cli

    main(["demo", "--n-samples", "100", "--n-out", "8"])
    assert cli._kernels_cached()
