import subprocess
import sys

from sketchlearn.cli import main


def test_demo_prints_a_report(capsys):
    assert main(["demo", "--n-samples", "300", "--n-out", "16", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "MMD(full sample, 16 uniform random points)" in out
    assert "two random halves" in out


def test_demo_rejects_bad_sizes(capsys):
    assert main(["demo", "--n-samples", "10", "--n-out", "10"]) == 2
    assert "--n-out" in capsys.readouterr().err


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "sketchlearn", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "demo" in done.stdout
