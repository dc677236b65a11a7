"""First calls that run the NumPy reference while Numba compiles (``sketchlearn._cold_start``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import sketchlearn
from sketchlearn import _cold_start, config_context, get_config, set_config
from sketchlearn._array_api import Dispatch
from sketchlearn._config import _cold_start_from_environment
from sketchlearn.kernels import mmd
from sketchlearn.thinning import compress_thin, kernel_thin
from sketchlearn.thinning._core import halve_round_op, swap_pass_op
from sketchlearn.transport import energy_distance, sliced_wasserstein


@pytest.fixture
def backends(monkeypatch):
    """Records the backend of every Dispatch call on the calling (main) thread."""
    seen = []
    original = Dispatch.implementation

    def spy(self, backend):
        if threading.current_thread() is threading.main_thread():
            seen.append((self.__name__, backend))
        return original(self, backend)

    monkeypatch.setattr(Dispatch, "implementation", spy)
    return seen


@pytest.fixture
def fresh_state(monkeypatch):
    """Nothing replayed yet in this process, as in a new interpreter."""
    sketchlearn.wait_for_compilation()
    monkeypatch.setattr(_cold_start, "_ready", set())
    monkeypatch.setattr(_cold_start, "_queued", set())
    yield
    sketchlearn.wait_for_compilation()


def test_small_first_call_runs_the_reference_then_the_compiled_kernels(
        fresh_state, backends, rng):
    X = rng.normal(size=(300, 3))
    with config_context(cold_start="compile"):
        expected = kernel_thin(X, 16, bandwidth=1.0, random_state=0)
    backends.clear()
    with config_context(cold_start="reference"):
        first = kernel_thin(X, 16, bandwidth=1.0, random_state=0)
        assert {b for _, b in backends} == {"reference"}
        assert {halve_round_op.__name__, swap_pass_op.__name__} <= {n for n, _ in backends}
        assert sketchlearn.wait_for_compilation(timeout=600)
        backends.clear()
        again = kernel_thin(X, 16, bandwidth=1.0, random_state=0)
    assert backends and {b for _, b in backends} == {"numba"}
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(again, expected)


def test_large_calls_and_the_compile_setting_compile_at_once(fresh_state, backends, rng,
                                                             monkeypatch):
    X = rng.normal(size=(300, 3))
    with config_context(cold_start="compile"):
        kernel_thin(X, 16, bandwidth=1.0, random_state=0)
    assert {b for _, b in backends} == {"numba"}
    backends.clear()
    from sketchlearn.thinning import _core

    monkeypatch.setattr(_core, "_REFERENCE_WORK", 0)  # every call is "large"
    with config_context(cold_start="reference"):
        kernel_thin(X, 16, bandwidth=1.0, random_state=0)
    assert {b for _, b in backends} == {"numba"}
    assert not _cold_start._queued


@pytest.mark.parametrize("call", [
    lambda X, Y: mmd(X, Y, bandwidth=1.0),
    lambda X, Y: sliced_wasserstein(X, Y, random_state=0),
    lambda X, Y: energy_distance(X, Y, random_state=0),
    lambda X, Y: compress_thin(np.vstack([X, Y]), 8, g=1, bandwidth=1.0, random_state=0),
], ids=["mmd", "sliced_wasserstein", "energy_distance", "compress_thin"])
def test_each_headline_call_agrees_on_both_tiers(fresh_state, backends, rng, call):
    X, Y = rng.normal(size=(120, 3)), rng.normal(size=(100, 3)) + 0.3
    with config_context(cold_start="compile"):
        expected = call(X, Y)
    backends.clear()
    with config_context(cold_start="reference"):
        first = call(X, Y)
        assert {b for _, b in backends} == {"reference"}
        assert sketchlearn.wait_for_compilation(timeout=600)
        backends.clear()
        again = call(X, Y)
    assert {b for _, b in backends} == {"numba"}
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(again, expected, rtol=1e-12, atol=1e-14)


def test_a_failing_replay_leaves_the_error_to_the_foreground_call(fresh_state):
    def broken(xp, x):
        raise RuntimeError("kernel bug")

    op = Dispatch(lambda xp, x: x + 1.0, numba="math:sqrt")
    op._loaded["numba"] = broken
    with config_context(cold_start="reference"), \
            _cold_start.reference_until_compiled(small=True):
        assert op(np, np.zeros(2))[0] == 1.0  # reference while "compiling"
    assert sketchlearn.wait_for_compilation(timeout=60)
    with config_context(cold_start="reference"), \
            _cold_start.reference_until_compiled(small=True), \
            pytest.raises(RuntimeError, match="kernel bug"):
        op(np, np.zeros(2))


def test_nested_blocks_follow_the_outermost(fresh_state):
    op = Dispatch(lambda xp, x: "reference", numba="math:sqrt")
    op._loaded["numba"] = lambda xp, x: "numba"
    with config_context(cold_start="reference"):
        with _cold_start.reference_until_compiled(small=False):
            with _cold_start.reference_until_compiled(small=True):
                assert op(np, np.zeros(1)) == "numba"
        with _cold_start.reference_until_compiled(small=True):
            with _cold_start.reference_until_compiled(small=False):
                assert op(np, np.zeros(1)) == "reference"
    # outside any block: the Numba version, as before
    assert op(np, np.zeros(1)) == "numba"


def test_replayed_arguments_keep_their_numba_types_and_aliases():
    base = np.arange(12.0).reshape(3, 4)
    views = [base, np.asfortranarray(base), base[:, ::2], base[::2]]
    frozen = base.copy()
    frozen.flags.writeable = False
    for a in views + [frozen]:
        memo = {}
        c = _cold_start._copy(a, memo)
        assert c is not a and np.shares_memory(c, a) is False
        np.testing.assert_array_equal(c, a)
        assert _cold_start._types(c) == _cold_start._types(a)
    memo = {}
    args = (base, base, (base, 2.0))
    copied = _cold_start._copy(args, memo)
    assert copied[0] is copied[1] is copied[2][0]
    assert _cold_start._aliases(args) == (0, 0, 2)
    assert _cold_start._aliases((base, base.copy())) == (0, 1)


def test_settings_and_environment_are_checked(monkeypatch):
    assert get_config()["cold_start"] == "compile"  # tests/conftest.py
    with pytest.raises(ValueError, match="cold_start must be one of"):
        set_config(cold_start="later")
    with pytest.raises(ValueError, match="non-negative"):
        sketchlearn.wait_for_compilation(timeout=-1)
    monkeypatch.setenv("SKETCHLEARN_COLD_START", "sometimes")
    with pytest.raises(ValueError, match="SKETCHLEARN_COLD_START"):
        _cold_start_from_environment()
    monkeypatch.setenv("SKETCHLEARN_COLD_START", " Reference ")
    assert _cold_start_from_environment() == "reference"


def test_a_fresh_process_compiles_nothing_before_its_first_result(tmp_path):
    """In a new interpreter with an empty Numba cache, the first kernel_thin call
    compiles no kernel on the calling thread, the background thread compiles them all,
    and the same call afterwards compiles nothing more."""
    script = textwrap.dedent("""
        import json, threading
        import numpy as np
        from numba.core import event
        import sketchlearn
        from sketchlearn.thinning import kernel_thin

        class Threads(event.Listener):
            def __init__(self):
                self.names = []
            def on_start(self, ev):
                self.names.append(threading.current_thread().name)
            def on_end(self, ev):
                pass

        listener = Threads()
        event.register("numba:compile", listener)
        X = np.random.default_rng(0).normal(size=(512, 2))
        first = kernel_thin(X, 16, bandwidth=1.0, random_state=0)
        during_first = list(listener.names)
        done = sketchlearn.wait_for_compilation(timeout=600)
        before_second = len(listener.names)
        second = kernel_thin(X, 16, bandwidth=1.0, random_state=0)
        print(json.dumps({"during_first": during_first, "all": sorted(set(listener.names)),
                          "during_second": listener.names[before_second:],
                          "done": done, "same": bool(np.array_equal(first, second)),
                          "count": len(listener.names)}))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("SKETCHLEARN_COLD_START")  # the default a user gets
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["during_first"] == []
    assert out["during_second"] == []  # the replay compiled every path the call takes
    assert out["done"] and out["same"]
    assert out["count"] > 0 and out["all"] == ["sketchlearn-compile"]
