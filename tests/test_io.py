import csv
import io
import json
import os
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnjax.io import (
    atomic_write_text,
    checkpoint_path,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    ProgressBar,
    prune_checkpoints,
    read_checkpoint_info,
    save_checkpoint,
    write_csv_rows,
    write_json,
)


def _make_state(seed=0):
    key = jax.random.key(seed)
    model = eqx.nn.MLP(2, 1, 16, 2, activation=jnp.tanh, key=key)
    opt = optax.adam(1e-3)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))
    return {
        "model": model,
        "opt_state": opt_state,
        "raw_key": jax.random.key_data(jax.random.PRNGKey(seed + 1)),
        "typed_key": jax.random.split(key)[0],
        "step": jnp.asarray(1234, dtype=jnp.int32),
        "weights": {"pde": jnp.asarray(1.0), "bc": jnp.asarray(10.0 + seed)},
    }


def _leaves(tree):
    def plain(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    return [plain(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# --- checkpoints ------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    state = _make_state(0)
    path = save_checkpoint(tmp_path / "ck.eqx", state, step=1234, metadata={"a": 1})
    loaded = load_checkpoint(path, _make_state(7))
    _assert_same(loaded, state)
    assert jax.dtypes.issubdtype(loaded["typed_key"].dtype, jax.dtypes.prng_key)
    info = read_checkpoint_info(path)
    assert info["step"] == 1234 and info["metadata"] == {"a": 1}


def test_checkpoint_loads_into_abstract_like(tmp_path):
    state = _make_state(0)
    save_checkpoint(tmp_path / "ck.eqx", state)
    like = eqx.filter_eval_shape(_make_state, 3)
    loaded = load_checkpoint(tmp_path / "ck.eqx", like)
    _assert_same(loaded, state)
    assert loaded["typed_key"].dtype == state["typed_key"].dtype


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.eqx"
    save_checkpoint(path, _make_state(0), step=1)

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, _make_state(1), step=2)
    monkeypatch.undo()
    assert read_checkpoint_info(path)["step"] == 1
    _assert_same(load_checkpoint(path, _make_state(5)), _make_state(0))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.eqx"]  # temp file removed


_WRITER = """
import sys
import jax.numpy as jnp
from pinnjax.io import save_checkpoint
i = 0
while True:
    save_checkpoint(sys.argv[1], {"x": jnp.full((300_000,), float(i))}, step=i)
    i += 1
    if i == 2:
        print("ready", flush=True)
"""


def test_killed_writer_leaves_loadable_checkpoint(tmp_path):
    path = tmp_path / "ck.eqx"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    step = read_checkpoint_info(path)["step"]
    loaded = load_checkpoint(path, {"x": jnp.zeros(300_000)})
    np.testing.assert_array_equal(loaded["x"], float(step))


@pytest.mark.parametrize("keep_bytes", [5, 30, -100])
def test_truncated_checkpoint_raises_named_error(tmp_path, keep_bytes):
    path = save_checkpoint(tmp_path / "ck.eqx", _make_state(0))
    blob = path.read_bytes()
    path.write_bytes(blob[:keep_bytes])
    with pytest.raises(CheckpointError, match="ck.eqx.*(truncated|magic)"):
        load_checkpoint(path, _make_state(0))


def test_corrupted_and_mismatched_checkpoints(tmp_path):
    path = save_checkpoint(tmp_path / "ck.eqx", _make_state(0))
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="bad.eqx.*checksum"):
        load_checkpoint(bad, _make_state(0))
    with pytest.raises(CheckpointError, match="ck.eqx.*structure"):
        load_checkpoint(path, {"model": eqx.nn.MLP(2, 1, 8, 2, key=jax.random.key(0))})
    with pytest.raises(FileNotFoundError, match="missing.eqx"):
        load_checkpoint(tmp_path / "missing.eqx", _make_state(0))


def test_latest_and_prune(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "nowhere") is None
    for step in (5, 100, 20, 3000):
        save_checkpoint(checkpoint_path(tmp_path, step), {"s": jnp.asarray(step)})
    (tmp_path / "step_notanumber.eqx").write_text("x")
    assert latest_checkpoint(tmp_path).name == "step_00003000.eqx"
    removed = prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["step_00000005.eqx", "step_00000020.eqx"]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [100, 3000]
    with pytest.raises(ValueError):
        prune_checkpoints(tmp_path, keep=-1)


# --- progress bar -----------------------------------------------------------------


class _FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_plain_stream_is_quiet():
    stream = io.StringIO()
    with ProgressBar(200, stream=stream, plain_every=25) as bar:
        for step in range(1, 201):
            bar.update(step, loss=1.234e-3, l2re=0.5)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    steps = [line.split()[0] for line in lines]
    assert steps == ["50/200", "100/200", "150/200", "200/200"]
    assert "loss=1.23e-03 l2re=5.00e-01" in lines[-1] and "100%" in lines[-1]

    stream = io.StringIO()
    with ProgressBar(10, stream=stream, plain_every=None) as bar:
        for step in range(1, 11):
            bar.update(step, loss=1.0)
    assert stream.getvalue() == ""


def test_progress_bar_close_shows_last_unprinted_step():
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, plain_every=50)
    bar.update(30, loss=2.0)
    bar.close()
    bar.close()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith(" 30/100  30%")


def test_progress_bar_tty_redraws_in_place():
    stream = _FakeTTY()
    bar = ProgressBar(1000, stream=stream, min_interval=0.0)
    bar.update(10, loss=np.float32(0.5), res=jnp.asarray(2e-3))
    bar.update(1000, loss=0.25)
    bar.close()
    out = stream.getvalue()
    assert out.count("\r") == 2 and out.endswith("\n")
    assert "loss=5.00e-01 res=2.00e-03" in out
    assert "1000/1000 100%" in out and "it/s" in out and "ETA" in out


# --- CSV / JSON -------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    rows = [
        {"step": 1, "loss": np.float32(0.5)},
        {"step": 2, "loss": jnp.asarray(0.25), "l2re": 0.1},
    ]
    path = write_csv_rows(tmp_path / "sub" / "log.csv", rows)
    with open(path, newline="") as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == ["step", "loss", "l2re"]
    assert back == [
        {"step": "1", "loss": "0.5", "l2re": ""},
        {"step": "2", "loss": "0.25", "l2re": "0.1"},
    ]


def test_json_round_trip(tmp_path):
    obj = {
        "l2re": np.float32(0.125),
        "step": np.int64(7),
        "arr": jnp.arange(3),
        "nested": {"x": [jnp.asarray(1.5), True, None]},
    }
    path = write_json(tmp_path / "m.json", obj)
    assert json.loads(path.read_text()) == {
        "l2re": 0.125,
        "step": 7,
        "arr": [0, 1, 2],
        "nested": {"x": [1.5, True, None]},
    }
    assert path.read_text().startswith("{\n  ")


def test_atomic_write_text_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "one")
    os.chmod(path, 0o640)
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
