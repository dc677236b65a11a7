import threading

import numpy as np
import pytest

import sketchlearn
from sketchlearn import config_context, get_config, set_config
from sketchlearn._array_api import cupy_is_usable, to_compute_device


def test_defaults_and_context_restore():
    # cold_start is "compile" in the tests (tests/conftest.py), "reference" by default
    assert get_config() == {"device": "cpu", "gpu_min_work": 10**8, "cold_start": "compile"}
    with config_context(device="auto", gpu_min_work=5, cold_start="reference"):
        assert get_config() == {"device": "auto", "gpu_min_work": 5, "cold_start": "reference"}
    assert get_config() == {"device": "cpu", "gpu_min_work": 10**8, "cold_start": "compile"}


def test_context_restores_after_an_exception():
    with pytest.raises(RuntimeError), config_context(device="auto"):
        raise RuntimeError
    assert get_config()["device"] == "cpu"


def test_set_config_changes_and_none_keeps():
    try:
        set_config(device="auto")
        set_config(gpu_min_work=None)
        assert get_config()["device"] == "auto"
    finally:
        set_config(device="cpu")


@pytest.mark.parametrize("kwargs, match", [
    ({"device": "tpu"}, "device must be one of"),
    ({"gpu_min_work": -1}, "non-negative integer"),
    ({"gpu_min_work": 1.5}, "non-negative integer"),
])
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        set_config(**kwargs)
    assert get_config()["device"] == "cpu"


def test_settings_are_thread_local():
    seen = {}

    def other():
        seen["device"] = get_config()["device"]

    with config_context(device="auto"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["device"] == "cpu"


def test_cpu_and_auto_keep_numpy_on_the_host():
    X = np.ones((3, 2))
    for device in ("cpu", "auto"):
        with config_context(device=device, gpu_min_work=10**18):
            (Y,), xp, restore = to_compute_device(X, work=1)
        assert Y is X and restore(Y) is Y


@pytest.mark.skipif(cupy_is_usable(), reason="checks the message shown without a GPU")
def test_gpu_device_without_cupy_says_how_to_fix():
    with config_context(device="gpu"), pytest.raises(RuntimeError, match="gpu' extra"):
        to_compute_device(np.ones(3))


@pytest.mark.gpu
def test_gpu_device_moves_numpy_and_back():
    from sketchlearn.metrics import mmd

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 3)), rng.normal(size=(150, 3)) + 0.5
    cpu = mmd(X, Y, bandwidth=1.0)
    with config_context(device="gpu"):
        gpu = mmd(X, Y, bandwidth=1.0)
    assert gpu == pytest.approx(cpu, rel=1e-10)


def test_version_is_exposed():
    assert isinstance(sketchlearn.__version__, str) and sketchlearn.__version__[0].isdigit()
