"""Runs inside a subprocess of tests/test_distributed.py: the pytest process has started JAX
with one CPU device, and forced host devices must be asked for before JAX starts.

    python tests/distributed_worker.py equal OUT      # 4 devices vs 1, and a resume on 2
    python tests/distributed_worker.py process OUT ID PORT   # one of two processes, 2 devices each

Writes what the test compares as JSON (and run folders) under OUT."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def config(devices, **distributed):
    from pinnjax._solve import make_config
    from pinnjax.problems import Heat1D

    phases = [
        {"optimiser": "adam", "steps": 4, "rad": True},  # interior points from a split RAD pool
        {"optimiser": "lbfgs", "steps": 3},
        {"optimiser": "lm", "steps": 3, "form": "dense", "damping": 1.0},  # J^T J summed from per-device blocks
        {"optimiser": "engd", "steps": 2, "form": "woodbury", "damping": 1e-4},  # all of J
    ]
    return make_config(
        Heat1D(), None,
        model={"width": 8, "depth": 2, "dtype": "float64"},
        train={"phases": phases, "scan_steps": 4, "log_every": 1, "checkpoint_every": 4},
        # 10 initial points are not a multiple of 4 devices: that term stays whole on each
        sampling={"interior": 64, "boundary": 16, "initial": 10, "rad_pool": 128},
        eval={"every": 100, "points": 64},
        output={"plots": False, "keep_checkpoints": 10},
        distributed={"devices": devices, **distributed},
    )


def losses(run_dir):
    from pinnjax.train import read_history

    return [row["loss"] for row in read_history(run_dir)]


def equal(out: pathlib.Path):
    import jax
    import numpy as np

    from pinnjax.problems import Heat1D
    from pinnjax.train import fit, fit_state

    result = {}
    with jax.numpy_rank_promotion("raise"):
        for n in (1, 4):
            fit(Heat1D(), config(n), out / f"run{n}")
            result[f"losses{n}"] = losses(out / f"run{n}")
            result[f"metrics{n}"] = json.loads((out / f"run{n}" / "metrics.json").read_text())
        # the 4-device run, cut off after step 8 (in the L-BFGS phase) and resumed on 2 devices
        cut = out / "resumed"
        shutil.copytree(out / "run4", cut)
        for path in (cut / "checkpoints").glob("step_*.eqx"):
            if int(path.stem.split("_")[1]) > 8:
                path.unlink()
        _, state, _ = fit_state(Heat1D(), config(2), cut, resume=True)
        result["losses_resumed"] = losses(cut)
        result["params_resumed"] = np.concatenate(
            [np.ravel(a) for a in jax.tree.leaves(state.model) if hasattr(a, "dtype")]).tolist()
    (out / "equal.json").write_text(json.dumps(result))


def process(out: pathlib.Path, pid: int, port: int):
    from pinnjax.problems import Heat1D
    from pinnjax.train import fit

    cfg = config("all", coordinator=f"localhost:{port}", num_processes=2, process_id=pid)
    fit(Heat1D(), cfg, out / f"run{pid}")  # both processes train; process 0 alone writes


if __name__ == "__main__":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=" + ("4" if sys.argv[1] == "equal" else "2")
    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "equal":
        equal(pathlib.Path(sys.argv[2]))
    else:
        process(pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
