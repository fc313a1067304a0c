"""Cost of a training step against the dimension d, exact Laplacian vs randomised (Hutchinson,
sparse) through the engine; and the error the shipped unit-ball configs reach.

Part 1 (``cost``): one training step = value and gradient (w.r.t. the weights) of
``mean((lap u - f)^2)`` over 100 points drawn uniformly in the unit d-ball, tanh MLP 4 x 128,
float32, for

  exact       the engine's Laplacian: d first-derivative rows per layer plus one contraction row
  hutchinson  16 Rademacher directions per point (fresh each call), one row each
  sparse      16 of the d axes per point (fresh each call), one row each; the first layer
              takes 16 columns of W

at each d, timed in alternation across the methods (median ms over repeats), with XLA's
compiled memory for the step (arguments + outputs + temporaries, ``memory_analysis``). A
method whose compiled step would need more than ``--memory-limit`` GiB is compiled but not run.

Part 2 (``accuracy``): the shipped unit-ball configs (Poisson, sine-Gordon and Allen-Cahn at
d = 100 and 1,000, with the centred exact solution and with the published one) run ``--jobs`` at a time (2 by default) through the CLI (``pinnjax run``) as shipped, each
under a wall-clock budget (``--budget`` seconds of training, 600 by default: the issue's 10
minutes); the L2 relative error at the last evaluation, the steps done and the training seconds
are recorded, with the errors left by the best constant and the best linear ``w`` of the
config's exact solution (``scripts/highdim_linear_part.py``). Both parts record the 1-min load average before and after (the machine is shared).

``--keep-cost PATH`` takes part 1 from an earlier JSON of this script (its records, load
figures and provenance, kept as ``cost_provenance``) and runs part 2 only.

    python scripts/bench_highdim.py --quick --json /tmp/highdim.json
    python scripts/reproduce.py --run highdim          # results/highdim.{json,md}, with provenance
    python scripts/reproduce.py --run highdim --merge  # the same, keeping the cost part already there
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's pinnjax
sys.path.insert(0, str(ROOT / "scripts"))  # highdim_linear_part

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from pinnjax.derivatives import Estimator, Request, jet_batch  # noqa: E402
from pinnjax.geometry import Ball  # noqa: E402
from pinnjax.nn import MLP  # noqa: E402

METHODS = ("exact", "hutchinson", "sparse")
SAMPLES = 16
POINTS = 100
WIDTH, DEPTH = 128, 4


def load() -> float:
    return os.getloadavg()[0]


def make_step(method: str, d: int):
    request = Request.laplacian(d)
    if method != "exact":
        request = request.estimated(Estimator(method, SAMPLES))

    @eqx.filter_jit
    def step(model, xs, key):
        def loss(m):
            lap = jet_batch(m, xs, request, key=key).contractions[:, 0, 0]
            return jnp.mean(lap**2)

        return eqx.filter_value_and_grad(loss)(model)

    return step


def compiled_bytes(step, model, xs, key) -> int | None:
    try:
        mem = jax.jit(lambda m, x, k: step(m, x, k)).lower(model, xs, key).compile().memory_analysis()
    except Exception:  # memory_analysis is not available on every backend
        return None
    if mem is None:
        return None
    return int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes)


def run_cost(dims, repeats: int, memory_limit: float, time_limit: float) -> list[dict]:
    records = []
    for d in dims:
        key = jax.random.PRNGKey(d)
        model = MLP(in_size=d, out_size=1, width=WIDTH, depth=DEPTH, activation="tanh", key=key)
        xs = Ball([0.0] * d, 1.0).sample_interior(jax.random.PRNGKey(1), POINTS)
        steps, rows = {}, {}
        for method in METHODS:
            step = make_step(method, d)
            nbytes = compiled_bytes(step, model, xs, key)
            row = {"d": d, "method": method, "samples": None if method == "exact" else SAMPLES,
                   "points": POINTS, "width": WIDTH, "depth": DEPTH, "memory_bytes": nbytes, "step_ms": None,
                   "repeats": 0}
            rows[method] = row
            if nbytes is not None and nbytes > memory_limit * 2**30:
                row["skipped"] = f"compiled step needs {nbytes / 2**30:.1f} GiB > limit {memory_limit:g} GiB"
                continue
            jax.block_until_ready(step(model, xs, key))  # compile and warm up
            t0 = time.perf_counter()
            jax.block_until_ready(step(model, xs, key))
            first = time.perf_counter() - t0
            if first > time_limit:
                row["skipped"] = f"a step took {first:.0f} s > limit {time_limit:g} s"
                continue
            steps[method] = step
        times = {m: [] for m in steps}
        for r in range(repeats):  # alternate the methods, so a load change hits all alike
            for method, step in steps.items():
                k = jax.random.fold_in(key, r)  # fresh directions each step, as in training
                t0 = time.perf_counter()
                jax.block_until_ready(step(model, xs, k))
                times[method].append(time.perf_counter() - t0)
        for method, ts in times.items():
            rows[method].update(step_ms=1e3 * statistics.median(ts), repeats=len(ts))
        for method in METHODS:
            r = rows[method]
            print(f"d={d:>6} {method:>10}: "
                  + (f"{r['step_ms']:9.2f} ms" if r["step_ms"] else f"skipped ({r.get('skipped')})")
                  + (f", {r['memory_bytes'] / 2**20:8.1f} MiB" if r["memory_bytes"] else ""), flush=True)
            records.append(r)
    return records


def run_accuracy(configs, budget: float, quick: bool, jobs: int = 1) -> list[dict]:
    """One row per config, ``jobs`` runs at a time (each sharing the cores with the others)."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda name: run_config(name, budget, quick), configs))


def solution_floors(name: str) -> dict:
    """The config's exact solution (centred or published coefficients) and the relative errors
    left by its best constant and best linear ``w`` (``scripts/highdim_linear_part.py``, 20,000
    points, float64): what a run must beat to have learned more than that part."""
    from pinnjax.config import load_config

    params = load_config(ROOT / "configs" / f"{name}.yaml").problem.params
    centred = params.get("centred", True)
    f = _floors(int(params["dim"]), centred)
    return {"solution": "centred" if centred else "published", "constant_floor": f["constant"],
            "linear_floor": f["linear"]}


@functools.lru_cache(maxsize=None)
def _floors(dim: int, centred: bool) -> dict:
    """Once per solution: the three equations of a dimension share it."""
    from highdim_linear_part import floors

    with jax.enable_x64(True):
        return floors(dim, 20000, 0, centred=centred)


def run_config(name: str, budget: float, quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "pinnjax", "run", str(ROOT / "configs" / f"{name}.yaml"), "--out", str(out),
               "--set", "output.plots=false"]
        if quick:
            cmd += ["--set", "train.steps=400", "--set", "eval.every=200"]
        before = load()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stopped = _wait_for_budget(proc, out, budget)
        after = load()
        history = _history(out / "history.csv")
        evaluated = [h for h in history if h.get("l2re") and float(h["elapsed"]) <= budget]
        metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    row = {
        "config": name, "budget_seconds": budget, "stopped_at_budget": stopped,
        "steps": int(evaluated[-1]["step"]) if evaluated else None,
        "train_seconds": float(evaluated[-1]["elapsed"]) if evaluated else None,
        "l2re": float(evaluated[-1]["l2re"]) if evaluated else None,
        "best_l2re": min(float(h["l2re"]) for h in evaluated) if evaluated else None,
        "compile_seconds": metrics.get("compile_seconds"),
        "curve": [(int(h["step"]), float(h["elapsed"]), float(h["l2re"])) for h in evaluated],
        "load_average_before": before, "load_average_after": after,
        **solution_floors(name),
    }
    print(f"{name}: l2re {row['l2re']} after {row['steps']} steps, {row['train_seconds']} s "
          f"(load {before:.1f} -> {after:.1f})", flush=True)
    return row


def _wait_for_budget(proc, out: Path, budget: float) -> bool:
    """Wait for the run; stop it once its history shows more than ``budget`` training seconds
    (the last evaluation inside the budget is what counts). True when it was stopped."""
    while proc.poll() is None:
        time.sleep(2.0)
        history = _history(out / "history.csv")
        if history and float(history[-1]["elapsed"]) > budget:
            proc.terminate()
            proc.wait()
            return True
    if proc.returncode != 0:
        raise SystemExit(f"bench_highdim: the run failed: {proc.stderr.read()[-2000:]}")
    return False


def _history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        return []
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:] if line.count(",") == len(header) - 1]


def kept_cost(path: Path) -> dict:
    """The cost part of an earlier JSON of this script, with where it came from."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_highdim: --keep-cost {path}: cannot read it ({exc})") from None
    if not old.get("cost"):
        raise SystemExit(f"bench_highdim: --keep-cost {path}: it has no 'cost' part")
    if old.get("quick"):
        raise SystemExit(f"bench_highdim: --keep-cost {path}: its cost part is a --quick one")
    if old.get("samples") != SAMPLES:
        raise SystemExit(f"bench_highdim: --keep-cost {path}: it used {old.get('samples')} directions, not {SAMPLES}")
    kept = old.get("cost_kept") or {  # kept twice: still the run that measured it
        "provenance": old.get("provenance"), "load_average_start": old.get("load_average_start"),
        "load_average_after": old.get("load_average_after_cost"), "nice": old.get("nice")}
    return {"cost": old["cost"], "cost_kept": kept}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", nargs="+", type=int, default=[10, 100, 1000, 10000, 100000])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--memory-limit", type=float, default=4.0, help="GiB of compiled step memory to run at most")
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds a (compiled) step may take at most")
    p.add_argument("--budget", type=float, default=600.0, help="training seconds per accuracy run")
    p.add_argument("--configs", nargs="*", default=[f"{problem}{d}{solution}" for solution in ("", "_published")
                                                    for problem in ("poisson_ball", "sine_gordon_ball", "allen_cahn_ball")
                                                    for d in (100, 1000)])
    p.add_argument("--keep-cost", type=Path, help="take the cost part from this earlier JSON; run the accuracy part only")
    p.add_argument("--jobs", type=int, default=2, help="accuracy runs at a time (they share the cores)")
    p.add_argument("--parts", nargs="+", choices=("cost", "accuracy"), default=["cost", "accuracy"])
    p.add_argument("--quick", action="store_true", help="d up to 1000, 3 repeats, 400 training steps")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.dims, args.repeats = [d for d in args.dims if d <= 1000], 3
    data = {"quick": args.quick, "cpu_count": os.cpu_count(), "nice": os.nice(0), "load_average_start": load(),
            "device": jax.devices()[0].device_kind, "samples": SAMPLES}
    if args.keep_cost:
        data.update(kept_cost(args.keep_cost))
    elif "cost" in args.parts:
        data["cost"] = run_cost(args.dims, args.repeats, args.memory_limit, args.time_limit)
    data["load_average_after_cost"] = load()
    if "accuracy" in args.parts:
        data["accuracy"] = run_accuracy(args.configs, args.budget, args.quick, args.jobs)
        data["accuracy_jobs"] = args.jobs
    data["load_average_end"] = load()
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
