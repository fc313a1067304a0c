"""scripts/bench_peers.py: time-to-threshold bookkeeping, and (where the peers extra is
installed) a tiny side-by-side run whose two L2 errors are computed on the same points."""

import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_peers  # noqa: E402


def test_time_to_threshold_is_the_first_evaluation_at_or_below_it():
    history = [{"step": 100, "seconds": 1.0, "l2re": 5e-2}, {"step": 200, "seconds": 2.0, "l2re": 1e-2},
               {"step": 300, "seconds": 3.0, "l2re": 2e-3}, {"step": 400, "seconds": 4.0, "l2re": 9e-4},
               {"step": 500, "seconds": 5.0, "l2re": 5e-4}]
    assert bench_peers.time_to_thresholds(history) == {"1e-02": {"seconds": 2.0, "step": 200},
                                                       "1e-03": {"seconds": 4.0, "step": 400}}
    assert bench_peers.first_time_below(history[:3], 1e-3) == (None, None)


def test_l2_relative_error_against_numpy():
    rng = np.random.default_rng(0)
    exact, pred = rng.normal(size=(50, 1)), rng.normal(size=50)
    expected = np.sqrt(np.sum((pred - exact[:, 0]) ** 2) / np.sum(exact[:, 0] ** 2))
    assert bench_peers.l2_relative_error(pred, exact) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_poisson_side_by_side_tiny_run():
    pytest.importorskip("deepxde")
    pytest.importorskip("torch")
    dde, torch = bench_peers._import_deepxde()
    out = bench_peers.part_poisson_adam(dde, torch, 200)
    for framework in ("pinnjax", "deepxde"):
        res = out[framework]
        assert res["adam_steps"] == 200 and res["adam_steps_per_second"] > 0
        assert 0 < res["l2re"] < 1.5  # an untrained network gives about 1
    measured = out["pinnjax"]["adam_steps_per_second"] / out["deepxde"]["adam_steps_per_second"]
    assert out["steps_per_second_ratio"] == pytest.approx(measured)
