import subprocess
import sys

import numpy as np

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
