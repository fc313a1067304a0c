"""Measure pinnjax and DeepXDE (PyTorch backend) side by side, in one process, on one machine.

Needs the ``peers`` extra (``pip install ".[peers]"``: DeepXDE and PyTorch). Parts, each run
first in pinnjax then in DeepXDE, float32, seed 0, Glorot-normal tanh MLPs in both:

``poisson2d_adam``
    ``lap u = -2 pi^2 sin(pi x) sin(pi y)`` on ``[-1, 1]^2``, ``u = 0`` on the boundary; tanh
    4 x 50; 2,000 interior + 400 boundary points drawn once (uniform); Adam at lr 1e-3,
    constant, for ``--adam-steps`` steps. Reported: Adam steps per second (median over
    100-step chunks, the first chunk, with compilation or warm-up, left out) and the L2
    relative error at the end, on the same 10,000 evaluation points for both.
``poisson2d_time_to``
    The same problem, each framework with its own recipe (pinnjax: ``--pinnjax-recipe``;
    DeepXDE: Adam at lr 1e-3 as in its Poisson examples, then its L-BFGS): training seconds
    until the L2 relative error first reaches 1e-2 and 1e-3, evaluated every 100 steps
    (evaluation, DeepXDE's own loss display and pinnjax's compilation are not counted).
``burgers1d``
    PINNacle Burgers 1d-C (the shipped ``burgers1d`` problem and its reference file); tanh
    4 x 64; 4,000 interior + 400 boundary + 400 initial points drawn once; the same Adam
    budget (lr 1e-3) then the same L-BFGS budget in both. Reported: Adam steps per second,
    the L2 relative error after Adam and after L-BFGS, and the L-BFGS seconds.

One JSON file (``--json``) holds every figure with the recipes, the library versions and the
load average before and after each part (the machine may be shared); ``scripts/reproduce.py
--peers`` runs this script and renders ``results/peers.md`` from it.

    python scripts/bench_peers.py --quick --json /tmp/peers.json     # a few minutes
"""

from __future__ import annotations

import os

# PyTorch's OpenMP threads spin while they wait; on a shared machine with more runnable
# processes than cores that made DeepXDE ten times slower (3 against 33 Adam steps/s, measured
# on the 2-core development machine at load 7). Sleeping waits cost little on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pinnjax.config import config_from_dict  # noqa: E402
from pinnjax.train import fit, read_history  # noqa: E402
from pinnjax.train._evaluate import eval_set  # noqa: E402
from pinnjax.problems import Burgers1D, Poisson2D  # noqa: E402

CHUNK = 100  # steps per timing chunk and between evaluations, in both frameworks
THRESHOLDS = (1e-2, 1e-3)
EVAL_POINTS = 10000


def _import_deepxde():
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    if os.environ["DDE_BACKEND"] != "pytorch":
        raise SystemExit(f"bench_peers: DDE_BACKEND is {os.environ['DDE_BACKEND']!r}; this benchmark uses 'pytorch'")
    try:
        import deepxde as dde
        import torch
    except ImportError as e:
        raise SystemExit(f"bench_peers: {e.name} is not installed; install the peers extra: pip install \".[peers]\"")
    return dde, torch


def load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def l2_relative_error(pred, exact):
    pred, exact = np.asarray(pred, np.float64).reshape(-1), np.asarray(exact, np.float64).reshape(-1)
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


def first_time_below(history, threshold):
    """(training seconds, step) at the first evaluation with l2re <= threshold, else (None, None)."""
    for h in history:
        if h["l2re"] is not None and h["l2re"] <= threshold:
            return h["seconds"], h["step"]
    return None, None


def time_to_thresholds(history):
    out = {}
    for thr in THRESHOLDS:
        secs, step = first_time_below(history, thr)
        out[f"{thr:.0e}"] = {"seconds": secs, "step": step}
    return out


# --- pinnjax ----------------------------------------------------------------------------------


def pinnjax_config(name, *, width, depth, points, adam_steps, lbfgs_steps, lr=1e-3, decay="none",
                   resample_every=None, eval_every=CHUNK):
    interior, boundary, initial = points
    return config_from_dict({
        "problem": {"name": name},
        "model": {"width": width, "depth": depth, "activation": "tanh", "dtype": "float32"},
        "train": {"steps": adam_steps, "lbfgs_steps": lbfgs_steps, "lr": lr, "decay": decay,
                  "decay_rate": 0.9, "decay_steps": 1000, "scan_steps": CHUNK, "log_every": CHUNK,
                  "checkpoint_every": 10**9},
        # resample_every beyond the budget: points are drawn once, as DeepXDE does by default
        "sampling": {"interior": interior, "boundary": boundary, "initial": initial,
                     "resample_every": resample_every or 10**9},
        "eval": {"every": eval_every, "points": EVAL_POINTS},
        "output": {"plots": False, "keep_checkpoints": 1},
        "seed": 0,
    })


def run_pinnjax(problem, cfg):
    with tempfile.TemporaryDirectory() as work:
        run_dir = pathlib.Path(work) / "run"
        m = fit(problem, cfg, run_dir, progress=False)
        rows = read_history(run_dir)
    history = [{"step": r["step"], "seconds": r["elapsed"], "l2re": r["l2re"]} for r in rows if "l2re" in r]
    return m, history


def pinnjax_adam_lbfgs(problem, cfg):
    m, history = run_pinnjax(problem, cfg)
    after_adam = [h["l2re"] for h in history if h["step"] == m["adam_steps"]]
    return {
        "adam_steps": m["adam_steps"], "lbfgs_steps": m["lbfgs_steps"],
        "adam_steps_per_second": m["steps_per_second"], "lbfgs_steps_per_second": m["lbfgs_steps_per_second"],
        "adam_seconds": m["adam_seconds"], "lbfgs_seconds": m["lbfgs_seconds"],
        "compile_seconds": m["compile_seconds"],
        "l2re_after_adam": after_adam[0] if after_adam else None, "l2re": m["l2re"],
    }


# --- DeepXDE ----------------------------------------------------------------------------------


def deepxde_clock(dde, eval_points, exact):
    """A DeepXDE callback that records the training seconds of every 100-step chunk and the L2
    relative error every 100 steps, leaving its own evaluation and DeepXDE's loss display
    (``Model._test``) out of the training time."""

    class Clock(dde.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history, self.chunk_rates, self.stop_below = [], [], None
            self.excluded = 0.0
            self.start = self.last = self.last_step = None

        def init(self):
            test = self.model._test

            def timed_test(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return test(*args, **kwargs)
                finally:
                    self.excluded += time.perf_counter() - t0

            self.model._test = timed_test

        def now(self):
            return time.perf_counter() - self.excluded

        def on_train_begin(self):
            if self.start is None:
                self.start = self.now()
            self.last, self.last_step = self.now(), self.model.train_state.step

        def on_batch_end(self):
            step = self.model.train_state.step
            if step - self.last_step < CHUNK:
                return
            t = self.now()
            self.chunk_rates.append((step - self.last_step) / (t - self.last))
            t0 = time.perf_counter()
            err = l2_relative_error(self.model.predict(eval_points), exact)
            self.excluded += time.perf_counter() - t0
            self.history.append({"step": int(step), "seconds": t - self.start, "l2re": err})
            if self.stop_below is not None and err <= self.stop_below:
                self.model.stop_training = True
            self.last, self.last_step = self.now(), step

    return Clock()


def deepxde_net(dde, d_in, width, depth):
    return dde.nn.FNN([d_in] + [width] * depth + [1], "tanh", "Glorot normal")


def deepxde_train(dde, model, clock, *, adam_steps, lr, lbfgs_steps):
    model.compile("adam", lr=lr)
    model.train(iterations=adam_steps, display_every=10**9, callbacks=[clock], verbose=0)
    adam_rates = clock.chunk_rates[1:] or clock.chunk_rates  # first chunk: warm-up
    after_adam = clock.history[-1]["l2re"] if clock.history else None
    adam_seconds = clock.history[-1]["seconds"] if clock.history else None
    if lbfgs_steps and not model.stop_training:
        dde.optimizers.set_LBFGS_options(maxiter=lbfgs_steps)
        # one L-BFGS call per 100 iterations, so the clock sees it every 100 steps
        dde.optimizers.config.LBFGS_options["iter_per_step"] = CHUNK
        dde.optimizers.config.LBFGS_options["fun_per_step"] = int(CHUNK * 1.25)
        n_adam_rates = len(clock.chunk_rates)
        model.compile("L-BFGS")
        model.train(display_every=10**9, callbacks=[clock], verbose=0)
        lbfgs_rates = clock.chunk_rates[n_adam_rates:]
    else:
        lbfgs_rates = []
    return {
        "adam_steps": adam_steps, "lbfgs_steps": int(model.train_state.step) - adam_steps,
        "adam_steps_per_second": statistics.median(adam_rates) if adam_rates else None,
        "lbfgs_steps_per_second": statistics.median(lbfgs_rates) if lbfgs_rates else None,
        "adam_seconds": adam_seconds,
        "lbfgs_seconds": (clock.history[-1]["seconds"] - adam_seconds) if lbfgs_rates else 0.0,
        "l2re_after_adam": after_adam, "l2re": clock.history[-1]["l2re"] if clock.history else None,
    }


def deepxde_poisson(dde, torch, *, adam_steps, lr, lbfgs_steps, stop_below=None):
    dde.config.set_random_seed(0)
    sin, pi = torch.sin, np.pi

    def pde(x, u):
        lap = dde.grad.hessian(u, x, i=0, j=0) + dde.grad.hessian(u, x, i=1, j=1)
        return lap + 2 * pi**2 * sin(pi * x[:, 0:1]) * sin(pi * x[:, 1:2])

    geom = dde.geometry.Rectangle([-1.0, -1.0], [1.0, 1.0])
    bc = dde.icbc.DirichletBC(geom, lambda x: 0.0, lambda x, on_boundary: on_boundary)
    data = dde.data.PDE(geom, pde, bc, num_domain=2000, num_boundary=400, train_distribution="pseudo")
    model = dde.Model(data, deepxde_net(dde, 2, 50, 4))
    ev = eval_set(Poisson2D(), EVAL_POINTS)
    clock = deepxde_clock(dde, np.asarray(ev.points), np.asarray(ev.values))
    clock.stop_below = stop_below
    out = deepxde_train(dde, model, clock, adam_steps=adam_steps, lr=lr, lbfgs_steps=lbfgs_steps)
    return out, clock.history


def deepxde_burgers(dde, torch, *, adam_steps, lbfgs_steps):
    dde.config.set_random_seed(0)
    nu = Burgers1D().nu

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1.0, 1.0), dde.geometry.TimeDomain(0.0, 1.0))
    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0.0, lambda x, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda x, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=4000, num_boundary=400, num_initial=400,
                            train_distribution="pseudo")
    model = dde.Model(data, deepxde_net(dde, 2, 64, 4))
    ref = Burgers1D().reference()
    clock = deepxde_clock(dde, np.asarray(ref.points, np.float32), np.asarray(ref.values))
    return deepxde_train(dde, model, clock, adam_steps=adam_steps, lr=1e-3, lbfgs_steps=lbfgs_steps)


# --- the parts ----------------------------------------------------------------------------------


def ratio(a, b):
    return a / b if a is not None and b else None


def part_poisson_adam(dde, torch, steps):
    cfg = pinnjax_config("poisson2d", width=50, depth=4, points=(2000, 400, 0), adam_steps=steps,
                         lbfgs_steps=0, eval_every=steps)
    pj = pinnjax_adam_lbfgs(Poisson2D(), cfg)
    dx, _ = deepxde_poisson(dde, torch, adam_steps=steps, lr=1e-3, lbfgs_steps=0)
    return {
        "setup": f"tanh 4 x 50, 2000 interior + 400 boundary points drawn once, Adam lr 1e-3 constant, {steps} steps",
        "pinnjax": pj, "deepxde": dx,
        "steps_per_second_ratio": ratio(pj["adam_steps_per_second"], dx["adam_steps_per_second"]),
    }


def part_poisson_time_to(dde, torch, args):
    a = args
    cfg = pinnjax_config("poisson2d", width=50, depth=4, points=(2000, 400, 0), adam_steps=a.pj_adam,
                         lbfgs_steps=a.pj_lbfgs, lr=a.pj_lr, decay="exponential", resample_every=1)
    m, pj_hist = run_pinnjax(Poisson2D(), cfg)
    dx, dx_hist = deepxde_poisson(dde, torch, adam_steps=a.dx_adam, lr=1e-3, lbfgs_steps=a.dx_lbfgs,
                                  stop_below=min(THRESHOLDS))
    pj_t, dx_t = time_to_thresholds(pj_hist), time_to_thresholds(dx_hist)
    return {
        "recipes": {
            "pinnjax": f"Adam {a.pj_adam} steps (lr {a.pj_lr:g}, exponential decay 0.9 per 1000, fresh points "
                       f"every step) then L-BFGS {a.pj_lbfgs} steps on a fixed batch",
            "deepxde": f"Adam {a.dx_adam} steps (lr 1e-3, points drawn once) then L-BFGS up to {a.dx_lbfgs} "
                       "iterations (stopped at 1e-3)",
        },
        "pinnjax": {"time_to": pj_t, "final_l2re": m["l2re"], "compile_seconds": m["compile_seconds"],
                    "history": pj_hist},
        "deepxde": {"time_to": dx_t, "final_l2re": dx["l2re"], "history": dx_hist},
        "speedup": {k: ratio(dx_t[k]["seconds"], pj_t[k]["seconds"]) for k in pj_t},
    }


def part_burgers(dde, torch, adam_steps, lbfgs_steps):
    cfg = pinnjax_config("burgers1d", width=64, depth=4, points=(4000, 400, 400), adam_steps=adam_steps,
                         lbfgs_steps=lbfgs_steps, eval_every=adam_steps)
    pj = pinnjax_adam_lbfgs(Burgers1D(), cfg)
    dx = deepxde_burgers(dde, torch, adam_steps=adam_steps, lbfgs_steps=lbfgs_steps)
    return {
        "setup": f"tanh 4 x 64, 4000 interior + 400 boundary + 400 initial points drawn once, Adam lr 1e-3 "
                 f"constant for {adam_steps} steps, then L-BFGS {lbfgs_steps} steps; error on PINNacle's "
                 "burgers1d reference",
        "pinnjax": pj, "deepxde": dx,
        "steps_per_second_ratio": ratio(pj["adam_steps_per_second"], dx["adam_steps_per_second"]),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=pathlib.Path, required=True, help="write the results here")
    ap.add_argument("--parts", nargs="+", default=["poisson2d_adam", "poisson2d_time_to", "burgers1d"],
                    choices=["poisson2d_adam", "poisson2d_time_to", "burgers1d"])
    ap.add_argument("--adam-steps", type=int, default=3000, help="equal Adam budget of the Poisson part")
    ap.add_argument("--pj-adam", type=int, default=500, help="pinnjax recipe: Adam steps")
    ap.add_argument("--pj-lr", type=float, default=3e-3, help="pinnjax recipe: Adam learning rate")
    ap.add_argument("--pj-lbfgs", type=int, default=4000, help="pinnjax recipe: L-BFGS steps")
    ap.add_argument("--dx-adam", type=int, default=1000, help="DeepXDE recipe: Adam steps")
    ap.add_argument("--dx-lbfgs", type=int, default=4000, help="DeepXDE recipe: L-BFGS iterations at most")
    ap.add_argument("--burgers-adam", type=int, default=2000)
    ap.add_argument("--burgers-lbfgs", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="small budgets: a check of the script, not a result")
    args = ap.parse_args(argv)
    if args.quick:
        args.adam_steps, args.pj_lbfgs, args.dx_adam, args.dx_lbfgs = 500, 500, 300, 300
        args.burgers_adam, args.burgers_lbfgs = 300, 200
    dde, torch = _import_deepxde()

    import deepxde
    import equinox
    import optax

    results = {
        "quick": args.quick,
        "versions": {"python": platform.python_version(), "jax": jax.__version__, "equinox": equinox.__version__,
                     "optax": optax.__version__, "deepxde": deepxde.__version__, "torch": torch.__version__},
        "threads": {"torch": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
        "parts": {},
    }
    for part in args.parts:
        before, t0 = load_average(), time.perf_counter()
        if part == "poisson2d_adam":
            out = part_poisson_adam(dde, torch, args.adam_steps)
        elif part == "poisson2d_time_to":
            out = part_poisson_time_to(dde, torch, args)
        else:
            out = part_burgers(dde, torch, args.burgers_adam, args.burgers_lbfgs)
        out["wall_seconds"] = time.perf_counter() - t0
        out["load_average_before"], out["load_average_after"] = before, load_average()
        results["parts"][part] = out
        print(f"{part}: done in {out['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
