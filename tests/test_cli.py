import subprocess
import sys

import numpy as np
import pytest

from sketchlearn.cli import main


def test_demo_prints_a_report_and_saves_a_plot(capsys, tmp_path):
    plot = tmp_path / "demo.png"
    assert main(["demo", "--n-samples", "300", "--n-out", "16", "--seed", "1",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "uniform random subsample" in out and "kernel thinning (KT+)" in out
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


def test_distance_entry_point():
    done = subprocess.run([sys.executable, "-m", "sketchlearn", "distance", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--metric" in done.stdout and "sinkhorn" in done.stdout
