"""Benchmark the training engine on 2-D Poisson against the DeepXDE + PyTorch reference.

Problem: ``lap u = -2 pi^2 sin(pi x) sin(pi y)`` on ``[-1, 1]^2``, ``u = 0`` on the boundary,
exact ``u = sin(pi x) sin(pi y)``; tanh MLP 4 x 50, 2,000 interior + 400 boundary points.

Two runs, each a normal ``pinnjax.train.fit`` into a temporary run folder:

1. ``adam``: 3,000 Adam steps at lr 1e-3 (constant), float32: Adam steps/second (median over
   compiled chunks of ``scan_steps``, compilation excluded) and the L2 relative error after
   3,000 steps.
2. ``schedule``: the fastest recipe found to 1e-3, by default 500 Adam steps (lr 3e-3,
   decaying 0.9 per 1,000 steps) then L-BFGS on a fixed batch, float32, evaluated every
   ``--eval-every`` steps: training seconds until the L2 relative error first drops below
   1e-2 and 1e-3 (read from history.csv's ``elapsed``: compilation and evaluation are
   excluded; compilation is reported separately).

Reference (same 2-core CPU): DeepXDE + PyTorch, 49 Adam steps/s, L2 relative error 6.9e-2
after 3,000 Adam steps. Bar: >= 147 steps/s (3x), 1e-3 in under 60 s of training.

    python scripts/bench_poisson.py
    python scripts/bench_poisson.py --json results/bench_poisson.json
    python scripts/bench_poisson.py --only adam --adam-steps 1000   # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import tempfile
import time

import jax

from pinnjax.config import config_from_dict
from pinnjax.train import fit, read_history
from pinnjax.problems.poisson import Poisson2D  # the shipped problem: the bench measures what users run

REFERENCE = {"steps_per_second": 49.0, "l2re_3000": 6.9e-2}


def config(*, adam_steps, lbfgs_steps, dtype, eval_every, lr=1e-3, decay="none", resample_every=1, seed=0):
    return config_from_dict({
        "problem": {"name": "bench_poisson2d"},
        "model": {"width": 50, "depth": 4, "activation": "tanh", "dtype": dtype},
        "train": {"steps": adam_steps, "lbfgs_steps": lbfgs_steps, "lr": lr, "decay": decay,
                  "decay_rate": 0.9, "decay_steps": 1000, "scan_steps": 100, "log_every": 100,
                  "checkpoint_every": 100000},
        "sampling": {"interior": 2000, "boundary": 400, "resample_every": resample_every},
        "eval": {"every": eval_every, "points": 10000},
        "output": {"plots": False, "keep_checkpoints": 1},
        "seed": seed,
    })


def time_to(rows, threshold):
    """Training seconds (and step) at the first evaluation with l2re <= threshold."""
    for r in rows:
        if "l2re" in r and r["l2re"] <= threshold:
            return r["elapsed"], r["step"]
    return None, None


def run(name, cfg, workdir):
    t0 = time.perf_counter()
    m = fit(Poisson2D(), cfg, pathlib.Path(workdir) / name, progress=False)
    wall = time.perf_counter() - t0
    return m, read_history(pathlib.Path(workdir) / name), wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("adam", "schedule"), help="run one part only")
    ap.add_argument("--adam-steps", type=int, default=3000, help="Adam steps of the throughput run")
    ap.add_argument("--sched-adam", type=int, default=500, help="Adam steps before L-BFGS (schedule run)")
    ap.add_argument("--sched-lbfgs", type=int, default=4000, help="L-BFGS steps (schedule run)")
    ap.add_argument("--sched-lr", type=float, default=3e-3, help="Adam learning rate (schedule run)")
    ap.add_argument("--sched-decay", default="exponential", choices=("none", "exponential", "cosine"))
    ap.add_argument("--sched-dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--json", type=pathlib.Path, help="write the results here")
    args = ap.parse_args(argv)

    results = {"reference": REFERENCE, "machine": {
        "python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }}
    with tempfile.TemporaryDirectory() as work:
        if args.only in (None, "adam"):
            cfg = config(adam_steps=args.adam_steps, lbfgs_steps=0, dtype="float32", eval_every=500)
            m, rows, wall = run("adam", cfg, work)
            results["adam"] = {
                "steps": m["adam_steps"], "steps_per_second": m["steps_per_second"],
                "l2re": m["l2re"], "train_seconds": m["train_seconds"],
                "compile_seconds": m["compile_seconds"], "wall_seconds": wall,
            }
        if args.only in (None, "schedule"):
            cfg = config(adam_steps=args.sched_adam, lbfgs_steps=args.sched_lbfgs, dtype=args.sched_dtype,
                         eval_every=args.eval_every, decay=args.sched_decay, lr=args.sched_lr)
            m, rows, wall = run("schedule", cfg, work)
            t2, s2 = time_to(rows, 1e-2)
            t3, s3 = time_to(rows, 1e-3)
            results["schedule"] = {
                "recipe": f"Adam {args.sched_adam} (lr {args.sched_lr:g}, decay {args.sched_decay}) then L-BFGS "
                          f"{args.sched_lbfgs}, {args.sched_dtype}",
                "seconds_to_1e-2": t2, "step_to_1e-2": s2, "seconds_to_1e-3": t3, "step_to_1e-3": s3,
                "final_l2re": m["l2re"], "best_l2re": m["best_l2re"], "train_seconds": m["train_seconds"],
                "compile_seconds": m["compile_seconds"], "adam_steps_per_second": m["steps_per_second"],
                "lbfgs_steps_per_second": m["lbfgs_steps_per_second"], "wall_seconds": wall,
            }

    def f(v, fmt):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    print("\n2-D Poisson, tanh 4x50, 2000 + 400 points")
    print(f"{'':34s} {'pinnjax':>12s} {'DeepXDE+torch':>14s}")
    if "adam" in results:
        a = results["adam"]
        print(f"{'Adam steps/s (median chunk)':34s} {f(a['steps_per_second'], '12.1f')} {REFERENCE['steps_per_second']:14.1f}")
        print(f"{'L2RE after ' + str(a['steps']) + ' Adam steps':34s} {f(a['l2re'], '12.2e')} {REFERENCE['l2re_3000']:14.2e}")
        print(f"{'  (train s / compile s)':34s} {a['train_seconds']:6.1f} / {a['compile_seconds']:4.1f}")
    if "schedule" in results:
        s = results["schedule"]
        print(f"schedule: {s['recipe']}")
        print(f"{'train seconds to L2RE 1e-2':34s} {f(s['seconds_to_1e-2'], '12.1f')}   (step {s['step_to_1e-2']})")
        print(f"{'train seconds to L2RE 1e-3':34s} {f(s['seconds_to_1e-3'], '12.1f')}   (step {s['step_to_1e-3']})")
        print(f"{'final / best L2RE':34s} {f(s['final_l2re'], '12.2e')} / {f(s['best_l2re'], '.2e')}")
        print(f"{'  (train s / compile s)':34s} {s['train_seconds']:6.1f} / {s['compile_seconds']:4.1f}")
        print(f"{'  (Adam / L-BFGS steps/s)':34s} {f(s['adam_steps_per_second'], '6.1f')} / "
              f"{f(s['lbfgs_steps_per_second'], '.1f')}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
