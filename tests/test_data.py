import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnjax.data import (
    error_metrics,
    l2_relative_error,
    load_pinnacle,
    max_abs_error,
    pinnacle_path,
)


# --- packaged PINNacle files ------------------------------------------------------


def test_poisson_2d_c():
    ref = load_pinnacle(pinnacle_path("poisson1_cg_data.dat"))
    assert ref.n_nodes == 1246
    assert ref.points.shape == (1246, 2) and ref.values.shape == (1246, 1)
    assert ref.times is None and not ref.is_time_dependent
    assert ref.values.min() >= 0.0 and ref.values.max() <= 1.0
    # Outer square [-0.5, 0.5]^2 carries u = 1.
    assert np.all(np.abs(ref.points) <= 0.5 + 1e-12)
    on_square = np.isclose(np.abs(ref.points), 0.5).any(axis=1)
    np.testing.assert_allclose(ref.values[on_square], 1.0)


def test_poisson_boltzmann_2d_cg():
    ref = load_pinnacle(pinnacle_path("poisson_boltzmann2d.dat"))
    assert ref.n_nodes == 3236
    assert ref.points.shape == (3236, 2) and ref.values.shape == (3236, 1)
    on_square = np.isclose(np.abs(ref.points), 1.0).any(axis=1)
    np.testing.assert_allclose(ref.values[on_square], 0.2)


def test_burgers_1d():
    ref = load_pinnacle(pinnacle_path("burgers1d.dat"))
    np.testing.assert_allclose(ref.times, np.linspace(0.0, 1.0, 11), atol=1e-12)
    assert ref.n_nodes == 101 and ref.n_times == 11 and ref.space_dim == 1
    assert ref.points.shape == (101 * 11, 2) and ref.values.shape == (101 * 11, 1)
    # Time is the last coordinate; rows go snapshot by snapshot.
    np.testing.assert_allclose(ref.points[:101, 1], 0.0)
    np.testing.assert_allclose(ref.points[101:202, 1], 0.1)
    np.testing.assert_allclose(ref.points[101:202, 0], ref.space_points[:, 0])
    x = ref.space_points[:, 0]
    np.testing.assert_allclose(ref.snapshots()[0], -np.sin(np.pi * x), atol=1e-5)
    np.testing.assert_allclose(ref.values[:101, 0], -np.sin(np.pi * x), atol=1e-5)


def test_heat_2d_long_time():
    ref = load_pinnacle(pinnacle_path("heat_longtime.dat"))
    assert ref.n_nodes == 192 and ref.n_times == 501
    np.testing.assert_allclose(ref.times, np.linspace(0.0, 100.0, 501), atol=1e-9)
    assert ref.points.shape == (192 * 501, 3) and ref.values.shape == (192 * 501, 1)
    assert np.all(np.isfinite(ref.values))
    x, y = ref.space_points.T
    expected = np.sin(4 * np.pi * x) * np.sin(3 * np.pi * y)
    np.testing.assert_allclose(ref.snapshots()[0], expected, atol=1e-3)


def test_time_coord_false_keeps_grid():
    ref = load_pinnacle(pinnacle_path("burgers1d.dat"), time_coord=False)
    assert ref.points.shape == (101, 1) and ref.values.shape == (101, 11)
    flat = load_pinnacle(pinnacle_path("burgers1d.dat"))
    np.testing.assert_array_equal(ref.snapshots(), flat.snapshots())


def test_pinnacle_path_unknown():
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        pinnacle_path("nope.dat")


# --- malformed files --------------------------------------------------------------

_HEADER = "% Model: x.mph\n% Dimension: 1\n% Nodes: 2\n"


def _write(tmp_path, text, name="bad.dat"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("% X  u (1) @ t=0  u (1) @ t=1\n0 1 2\n1 oops 3\n", 6, "oops"),
        ("% X  u (1) @ t=0  u (1) @ t=1\n0 1 2\n1 2\n", 6, "columns"),
        ("% X  u (1) @ t=0  u (1) @ t=1\n0 1 2 3\n1 2 3 4\n", 4, "snapshot time"),
        ("% X  u (1) @ t=0  u (1) @ t=1\n", 4, "no data"),
        ("% X  u (1) @ t=1  u (1) @ t=0\n0 1 2\n1 2 3\n", 4, "increasing"),
        ("% X  u (1)\n0 1\n1 2\n2 3\n", 3, "nodes"),
        ("% X  u (1)\n0 1\n1 nan\n", 6, "non-finite"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, body, line, words):
    path = _write(tmp_path, _HEADER + body)
    with pytest.raises(ValueError) as info:
        load_pinnacle(path)
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and words in message


def test_stationary_column_mismatch(tmp_path):
    path = _write(tmp_path, "% Dimension: 2\n% X Y u\n0 0\n1 1\n")
    with pytest.raises(ValueError, match=r"bad\.dat, line 1: 2 data columns"):
        load_pinnacle(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.dat"):
        load_pinnacle(tmp_path / "missing.dat")


def test_minimal_file_without_header(tmp_path):
    ref = load_pinnacle(_write(tmp_path, "0 0 1\n1 0 2\n", name="ok.dat"))
    assert ref.points.shape == (2, 2) and ref.values[:, 0].tolist() == [1.0, 2.0]


# --- metrics ----------------------------------------------------------------------


def test_l2_relative_error_by_hand():
    ref = np.array([[3.0], [4.0]])  # ||ref|| = 5
    pred = np.array([[3.0], [1.0]])  # ||pred - ref|| = 3
    assert float(l2_relative_error(pred, ref)) == pytest.approx(0.6)
    assert float(max_abs_error(pred, ref)) == pytest.approx(3.0)
    pred = np.array([[2.0, 2.0], [2.0, 2.0]])
    ref = np.ones((2, 2))  # ||diff|| = 2, ||ref|| = 2
    assert error_metrics(pred, ref) == {"l2re": pytest.approx(1.0), "max_error": 1.0}


def test_metrics_return_python_floats_and_zero_for_exact():
    ref = jnp.linspace(-1.0, 1.0, 7)[:, None]
    out = error_metrics(ref, ref)
    assert out == {"l2re": 0.0, "max_error": 0.0}
    assert all(type(v) is float for v in out.values())


def test_l2_relative_error_under_jit():
    ref = jnp.array([1.0, 2.0, 2.0])  # norm 3
    value = jax.jit(l2_relative_error)(ref + jnp.array([0.0, 0.0, 1.5]), ref)
    assert math.isclose(float(value), 0.5, rel_tol=1e-6)


@pytest.mark.parametrize("fn", [l2_relative_error, max_abs_error, error_metrics])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ValueError, match=r"\(5,\).*\(5, 1\)"):
        fn(np.zeros(5), np.ones((5, 1)))
