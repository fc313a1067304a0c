"""Time to accuracy of the optimiser phases: L2 relative error against training seconds for
Adam + L-BFGS and each newer optimiser, side by side on the same machine in one run.

Problems: poisson2d, burgers1d, allen_cahn1d, wave1d (the shipped problems). Every method
trains the same float64 tanh network (``--width`` x ``--depth``) on the same points, from
the same seeds; all methods but SOAP start with the same ``--adam`` Adam steps, then run
their own phase for ``--steps`` steps (the Gauss-Newton family ``--gn-steps``), the batch
redrawn every ``--chunk`` steps (RAD for the quasi-Newton methods). SOAP replaces both
phases with as many SOAP steps as Adam + the longest second phase. The error is evaluated
every ``--eval-every`` steps; seconds are ``history.csv``'s ``elapsed`` (compilation and
evaluation excluded).

Each (problem, method) runs ``--repeats`` seeds; the tables give medians, and the ratio of
each method's median final error and seconds to Adam + L-BFGS's. Written:
``results/optimisers.json``, ``results/optimisers.md`` and one plot per problem
``results/optimisers_<problem>.png`` (median-seed curves). The machine's load average is
recorded: the CPU may be shared, which slows every method alike but makes seconds noisy.

    python scripts/bench_optimisers.py --quick          # CI-size budgets (minutes)
    python scripts/bench_optimisers.py --repeats 3      # the full comparison
    python scripts/bench_optimisers.py --linalg         # Gauss-Newton pieces only
    python scripts/bench_optimisers.py --collect RUN_DIR ...   # the recipe runs' table

``--collect`` reads run folders made by ``pinnjax run configs/<problem>.yaml`` (the shipped
recipes) and writes ``results/optimisers_recipes.{json,md}``: problem, phases, final L2
relative error, training seconds and the seconds at which the evaluated error first met the
problem's bar (from ``history.csv``).

``--linalg`` times the pieces of one Gauss-Newton step on poisson2d (float64, median of 5
calls after compilation; of 31 alternating calls for jacrev and Kronecker) and writes ``results/optimisers_linalg.{json,md}``: the residual
Jacobian by per-point ``jacrev``, by per-point ``jacfwd`` and in Kronecker form
(``jacobian: kronecker``), the damped solve in its
dense (P x P) and Woodbury (N x N) Cholesky forms, and the matrix-free solve (``form: cg``,
its default ``cg_iters`` and ``cg_tol``; the three solves alternate, 5 rounds) with its number
of ``J^T J v`` products and the relative difference of its direction from the dense one, at
the damping 1e-3 (LM's default) and at smaller ones, for two network sizes (3 x 20 and the
elliptic recipe's 3 x 24).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pinnjax.config import config_from_dict  # noqa: E402 (after the sys.path line)
from pinnjax.train import fit, read_history  # noqa: E402 (after the sys.path line)
from pinnjax.train._fit import run_info  # noqa: E402 (after the sys.path line)
from problems import PROBLEMS  # noqa: E402 (after the sys.path line)

PROBLEM_NAMES = ("poisson2d", "burgers1d", "allen_cahn1d", "wave1d")
QUASI_NEWTON = ("lbfgs", "bfgs", "ssbfgs", "ssbroyden")
METHODS = ("adam+lbfgs", "adam+lbfgs_redraw", "adam+bfgs", "adam+ssbfgs", "adam+ssbroyden",
           "adam+lm", "adam+engd", "soap")


def phases(method: str, a) -> list[dict]:
    adam = {"optimiser": "adam", "steps": a.adam}
    if method == "soap":
        return [{"optimiser": "soap", "steps": a.adam + max(a.steps, a.gn_steps)}]
    second = method.split("+")[1]
    if second == "lbfgs":  # today's recipe: one batch, drawn at the switch
        return [adam, {"optimiser": "lbfgs", "steps": a.steps}]
    if second == "lbfgs_redraw":
        return [adam, {"optimiser": "lbfgs", "steps": a.steps, "resample_every": a.chunk, "rad": True}]
    if second in QUASI_NEWTON:
        return [adam, {"optimiser": second, "steps": a.steps, "resample_every": a.chunk, "rad": True}]
    return [adam, {"optimiser": second, "steps": a.gn_steps, "resample_every": a.chunk}]


def config(problem: str, method: str, seed: int, a):
    return config_from_dict({
        "problem": {"name": problem},
        "model": {"width": a.width, "depth": a.depth, "dtype": "float64"},
        "train": {"phases": phases(method, a), "lr": 1e-3, "decay": "exponential", "decay_rate": 0.9,
                  "decay_steps": 1000, "scan_steps": a.eval_every, "log_every": a.eval_every,
                  "checkpoint_every": 10**7},
        "sampling": {"interior": a.interior, "boundary": a.boundary, "initial": a.boundary,
                     "rad_pool": 10 * a.interior},
        "eval": {"every": a.eval_every, "points": 10000},
        "output": {"plots": False, "keep_checkpoints": 1},
        "seed": seed,
    })


def time_to(curve, threshold):
    for seconds, err in curve:
        if err <= threshold:
            return seconds
    return None


def one_run(problem: str, method: str, seed: int, a) -> dict:
    cls = PROBLEMS[problem]
    with tempfile.TemporaryDirectory() as tmp:
        m = fit(cls(), config(problem, method, seed, a), pathlib.Path(tmp) / "run")
        rows = read_history(pathlib.Path(tmp) / "run")
    curve = [(r["elapsed"], r["l2re"]) for r in rows if r.get("l2re") is not None]
    return {
        "seed": seed, "l2re": m["l2re"], "best_l2re": m["best_l2re"], "train_seconds": m["train_seconds"],
        "compile_seconds": m["compile_seconds"], "final_loss": m["final_loss"], "curve": curve,
        **{f"seconds_to_{t:g}": time_to(curve, t) for t in a.thresholds},
    }


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], thresholds) -> dict:
    out = {k: median_or_none([r[k] for r in runs]) for k in ("l2re", "best_l2re", "train_seconds", "final_loss")}
    for t in thresholds:
        key = f"seconds_to_{t:g}"
        reached = [r[key] for r in runs if r[key] is not None]
        # the median over repeats counts a run that never got there as infinitely slow
        out[key] = statistics.median(reached + [float("inf")] * (len(runs) - len(reached))) if reached else None
    return out


def plot(problem: str, results: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, res in results.items():
        runs = sorted(res["runs"], key=lambda r: r["l2re"])
        curve = runs[len(runs) // 2]["curve"]  # the median seed's run
        if curve:
            ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label=method)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("L2 relative error")
    ax.set_yscale("log")
    ax.set_title(f"{problem}: time to accuracy")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(v, spec=".2e"):
    if v is None:
        return "-"
    if v == float("inf"):
        return "not reached"
    return format(v, spec)


def markdown(report: dict) -> str:
    a = report["settings"]
    lines = [
        "# Optimiser phases: time to accuracy",
        "",
        "Written by `scripts/bench_optimisers.py" + (" --quick" if a["quick"] else "") + "`. "
        f"float64 tanh MLP {a['depth']} x {a['width']}, {a['interior']} interior / {a['boundary']} boundary "
        f"and initial points; {a['adam']} Adam steps then {a['steps']} steps of the second phase "
        f"({a['gn_steps']} for LM / ENGD), batch redrawn every {a['chunk']} steps (RAD for the "
        "quasi-Newton methods; `adam+lbfgs` is the old recipe: one batch drawn at the switch); SOAP "
        "alone for the same number of steps. Medians over "
        f"{a['repeats']} seed(s); seconds are training seconds (compilation and evaluation excluded); "
        "ratios are to `adam+lbfgs` on the same problem.",
        "",
        f"Machine: {report['machine']['cpus']} CPU cores, {report['machine']['platform']}; load average "
        f"{report['machine']['load_before'][0]:.1f} before and {report['machine']['load_after'][0]:.1f} after "
        "(the CPU was shared with other jobs: seconds are noisy). "
        + ("**Quick mode: CI-size budgets, not converged results.**" if a["quick"] else ""),
        "",
    ]
    if report.get("unfinished"):
        lines += [f"Not (yet) run: {', '.join(report['unfinished'])}.", ""]
    for problem, results in report["problems"].items():
        base = results.get("adam+lbfgs", {}).get("summary", {})
        thresholds = [k for k in next(iter(results.values()))["summary"] if k.startswith("seconds_to_")]
        lines += [f"## {problem}", "", f"![{problem}](optimisers_{problem}.png)", ""]
        head = "| method | final L2RE | best L2RE | final loss | train s | " + " | ".join(
            f"s to {t.removeprefix('seconds_to_')}" for t in thresholds) + " | L2RE ratio | seconds ratio |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for method, res in results.items():
            s = res["summary"]
            ratio_err = s["l2re"] / base["l2re"] if base.get("l2re") else None
            ratio_t = s["train_seconds"] / base["train_seconds"] if base.get("train_seconds") else None
            lines.append(
                f"| {method} | {fmt(s['l2re'])} | {fmt(s['best_l2re'])} | {fmt(s['final_loss'])} | "
                f"{fmt(s['train_seconds'], '.1f')} | " + " | ".join(fmt(s[t], ".1f") for t in thresholds)
                + f" | {fmt(ratio_err, '.3g')} | {fmt(ratio_t, '.3g')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _median_seconds(fn, *args, repeats=5):
    """Median seconds of `fn(*args)` over `repeats` calls after a compiling one."""
    import jax

    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _alternating_medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each ``fn()`` over `repeats` rounds that call every fn once in turn
    (after a compiling call each), so a change of load hits all alike."""
    import jax

    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


LINALG_DAMPINGS = (1e-3, 1e-6, 1e-9)  # LM's default first, then towards ENGD's


def _linalg_row(width: int, interior: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from pinnjax.train import init_state, make_spec, precision
    from pinnjax.train._loss import weighted_residual_jacobian
    from pinnjax.train._sampling import draw_points
    from pinnjax.train._state import split_params
    from pinnjax.train._loss import weighted_residuals
    from pinnjax.train.optimisers._gauss_newton import (
        AbstractGaussNewton,
        gauss_newton_step,
        matrix_free_gauss_newton_step,
    )

    a = argparse.Namespace(width=width, depth=3, interior=interior, boundary=400, adam=1, steps=1, gn_steps=1,
                           chunk=0, eval_every=1)
    cfg = config("poisson2d", "adam+lm", 0, a)
    with precision("float64"):
        problem = PROBLEMS["poisson2d"]()
        spec = make_spec(problem, cfg)
        state = init_state(problem, spec, cfg.model, seed=0)
        points = draw_points(spec, state.problem, jax.random.key(1))
        params, rest = split_params(state)

        def jacobian(p, method):
            return weighted_residual_jacobian(spec, p, rest, points, state.weights, method)[:2]

        row = {"width": width, "depth": 3}
        timed = jax.jit(jacobian, static_argnums=1)
        row["jacobian_jacfwd_seconds"] = _median_seconds(timed, params, "jacfwd")
        # milliseconds each: 31 calls, the two methods alternating, for a fair median
        fast = {m: functools.partial(timed, params, m) for m in ("jacrev", "kronecker")}
        for method, seconds in _alternating_medians(fast, repeats=31).items():
            row[f"jacobian_{method}_seconds"] = seconds
        r, J = timed(params, "jacrev")
        assert float(abs(timed(params, "kronecker")[1] - J).max()) <= 1e-10 * float(abs(J).max())
        row["residuals"], row["params"] = (int(n) for n in J.shape)
        flat, unravel = ravel_pytree(params)

        def residuals(f):
            model, problem_ = eqx.combine(unravel(f), rest)
            return weighted_residuals(spec, problem_, model, points, state.weights)

        defaults = {f.name: f.default for f in dataclasses.fields(AbstractGaussNewton)}
        row["cg_iters"], row["cg_tol"] = defaults["cg_iters"], defaults["cg_tol"]
        solve = jax.jit(gauss_newton_step, static_argnums=3)
        cg = jax.jit(lambda f, damping: matrix_free_gauss_newton_step(residuals, f, damping, row["cg_iters"],
                                                                         row["cg_tol"]))
        row["cg"] = []
        for i, damping in enumerate(LINALG_DAMPINGS):
            damping = jnp.asarray(damping, flat.dtype)
            timed_solves = {"cg": functools.partial(cg, flat, damping)}
            if i == 0:  # the Cholesky solves cost the same at any damping
                timed_solves |= {form: functools.partial(solve, J, r, damping, form) for form in ("dense", "woodbury")}
            seconds = _alternating_medians(timed_solves, repeats=5)
            if i == 0:
                row["solve_dense_seconds"], row["solve_woodbury_seconds"] = seconds["dense"], seconds["woodbury"]
            dense = solve(J, r, damping, "dense")
            _, direction, products = cg(flat, damping)
            row["cg"].append({"damping": float(damping), "seconds": seconds["cg"], "products": int(products),
                              "relative_difference": float(jnp.linalg.norm(direction - dense) / jnp.linalg.norm(dense))})
    return row


def linear_algebra(out: pathlib.Path) -> None:
    rows = []
    for width, interior in ((20, 1000), (24, 1000)):  # the elliptic recipe is 3 x 24, 1,400 residuals
        rows.append(_linalg_row(width, interior))
        print(rows[-1], flush=True)
    report = {"rows": rows, "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}, "run_info": run_info()}
    (out / "optimisers_linalg.json").write_text(json.dumps(report, indent=1))
    (out / "optimisers_linalg.md").write_text(linalg_markdown(report))


def linalg_markdown(report: dict) -> str:
    """The table of `results/optimisers_linalg.json` (also used by reproduce.py --check)."""
    rows = report["rows"]
    lines = [
        "# One Gauss-Newton step on poisson2d: where the time goes",
        "",
        (f"Written by `scripts/bench_optimisers.py --linalg` (float64, median of 5 calls after compilation, "
         f"of 31 alternating calls for the jacrev and Kronecker Jacobians, of 5 alternating rounds for the "
         f"dense, Woodbury and CG solves; load "
         f"average {report['machine']['load'][0]:.1f} on {report['machine']['cpus']} cores: shared CPU, "
         "noisy seconds)."),
        "",
        ("| network | N residuals | P params | J per-point jacrev s | J per-point jacfwd s | J Kronecker s | "
         "Kronecker / jacrev | dense solve s | Woodbury solve s | CG solve s | CG products | CG / (J + Cholesky) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["jacobian_kronecker_seconds"] / r["jacobian_jacrev_seconds"]
        cg = r["cg"][0]
        lines.append(f"| 3 x {r['width']} | {r['residuals']} | {r['params']} | {r['jacobian_jacrev_seconds']:.4f} | "
                     f"{r['jacobian_jacfwd_seconds']:.3f} | {r['jacobian_kronecker_seconds']:.4f} | {ratio:.2f} | "
                     f"{r['solve_dense_seconds']:.3f} | "
                     f"{r['solve_woodbury_seconds']:.3f} | {cg['seconds']:.3f} | {cg['products']} | "
                     f"{cg['seconds'] / _cholesky_route_seconds(r):.2f} |")
    lines += [
        "",
        (f"The matrix-free solve (`form: cg`: `J v` and `J^T u` by autodiff of the residual vector, J never formed; "
         f"conjugate gradients from zero, at most `cg_iters` {rows[0]['cg_iters']} products, stopped at the relative "
         f"residual `cg_tol` {rows[0]['cg_tol']:g}) at damping {rows[0]['cg'][0]['damping']:g} above and at smaller "
         "dampings below. CG / (J + Cholesky) divides its seconds by those of forming J (jacrev) plus the faster "
         "Cholesky solve; the difference is `||d_cg - d_dense|| / ||d_dense||`, at the network's initial parameters."),
        "",
        "| network | damping | CG products | CG solve s | CG / (J + Cholesky) | direction difference from dense |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        for cg in r["cg"]:
            lines.append(f"| 3 x {r['width']} | {cg['damping']:g} | {cg['products']} | {cg['seconds']:.3f} | "
                         f"{cg['seconds'] / _cholesky_route_seconds(r):.2f} | {cg['relative_difference']:.1e} |")
    return "\n".join(lines) + "\n"


def _cholesky_route_seconds(row: dict) -> float:
    """Seconds of the direction by Cholesky: J by per-point jacrev, then the faster solve."""
    return row["jacobian_jacrev_seconds"] + min(row["solve_dense_seconds"], row["solve_woodbury_seconds"])


BARS = {"poisson2d": 1e-6, "burgers1d": 1e-4, "allen_cahn1d": 1e-3, "wave1d": 1e-3, "helmholtz2d": 1e-4}


def collect(run_dirs, out: pathlib.Path) -> None:
    import yaml

    rows = []
    for run in map(pathlib.Path, run_dirs):
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        history = read_history(run)
        if (run / "metrics.json").is_file():
            m = json.loads((run / "metrics.json").read_text())
        else:  # a run still going (or stopped): its last evaluation
            last = [r for r in history if r.get("l2re") is not None][-1]
            m = {"l2re": last["l2re"], "final_loss": last["loss"], "steps": f"{last['step']} (unfinished)",
                 "train_seconds": last["elapsed"]}
        problem = cfg["problem"]["name"]
        bar = BARS.get(problem)
        curve = [(r["elapsed"], r["l2re"], r["step"]) for r in history if r.get("l2re") is not None]
        met = next(((s, step) for s, e, step in curve if bar is not None and e <= bar), None)
        rows.append({
            "problem": problem, "run": str(run), "phases": cfg["train"]["phases"], "dtype": cfg["model"]["dtype"],
            "width": cfg["model"]["width"], "depth": cfg["model"]["depth"], "l2re": m["l2re"],
            "final_loss": m["final_loss"], "steps": m["steps"], "train_seconds": m["train_seconds"],
            "bar": bar, "seconds_to_bar": None if met is None else met[0], "step_at_bar": None if met is None else met[1],
        })
    report = {"rows": rows, "machine": {"cpus": os.cpu_count(), "load_at_collection": os.getloadavg()}}
    (out / "optimisers_recipes.json").write_text(json.dumps(report, indent=1))
    (out / "optimisers_recipes.md").write_text(recipes_markdown(report))


def _load_text(report: dict) -> str:
    load = report.get("machine", {}).get("load_at_collection")
    return "not recorded" if not load else f"{load[0]:.1f} on {report['machine'].get('cpus', '?')} cores"


def recipes_markdown(report: dict) -> str:
    """The table of `results/optimisers_recipes.json` (also used by reproduce.py --check)."""
    rows = report["rows"]
    lines = [
        "# The shipped recipes (`pinnjax run configs/<problem>.yaml`)",
        "",
        ("Written by `scripts/bench_optimisers.py --collect` from the run folders. Training seconds exclude "
         "compilation and evaluation; the runs shared the machine's CPU cores with other jobs (1-min load "
         f"average {_load_text(report)} when the table was collected), so seconds are more than an idle "
         "machine takes."),
        "",
        "| problem | recipe | L2RE | bar | met at (step, s) | final loss | steps | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        recipe = " + ".join(f"{ph['optimiser']} {ph['steps']}" for ph in r["phases"] or [])
        met = "-" if r["step_at_bar"] is None else f"{r['step_at_bar']}, {r['seconds_to_bar']:.0f}"
        lines.append(f"| {r['problem']} | {r['dtype']} {r['depth']} x {r['width']}, {recipe} | {r['l2re']:.2e} | "
                     f"{fmt(r['bar'], '.0e')} | {met} | {fmt(r['final_loss'])} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI-size budgets")
    p.add_argument("--linalg", action="store_true", help="time the Gauss-Newton pieces only")
    p.add_argument("--collect", nargs="+", metavar="RUN_DIR", help="tabulate recipe run folders")
    p.add_argument("--problems", nargs="+", default=list(PROBLEM_NAMES), choices=PROBLEM_NAMES)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--width", type=int, default=30)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--interior", type=int, default=None)
    p.add_argument("--boundary", type=int, default=None)
    p.add_argument("--adam", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--gn-steps", type=int, default=None)
    p.add_argument("--chunk", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "results"))
    a = p.parse_args(argv)
    quick = {"repeats": 1, "interior": 800, "boundary": 200, "adam": 400, "steps": 200, "gn_steps": 40,
             "chunk": 100, "eval_every": 40, "width": 20}
    full = {"repeats": 3, "interior": 2000, "boundary": 400, "adam": 3000, "steps": 3000, "gn_steps": 600,
            "chunk": 500, "eval_every": 100, "width": a.width}
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k) is None or (k == "width" and a.quick):
            setattr(a, k, v)
    a.thresholds = (1e-2, 1e-3, 1e-4)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.linalg:
        linear_algebra(out)
        return 0
    if a.collect:
        collect(a.collect, out)
        return 0

    report = {
        "settings": {k: getattr(a, k) for k in ("quick", "repeats", "width", "depth", "interior", "boundary",
                                                 "adam", "steps", "gn_steps", "chunk", "eval_every")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": os.getloadavg()},
        "problems": {},
    }
    t0 = time.time()
    for problem in a.problems:
        results = {}
        for method in a.methods:
            runs = []
            for seed in range(a.repeats):
                r = one_run(problem, method, seed, a)
                runs.append(r)
                print(f"{problem:13s} {method:18s} seed {seed}: L2RE {r['l2re']:.3e} in {r['train_seconds']:.1f} s "
                      f"(wall {time.time() - t0:.0f} s)", flush=True)
            results[method] = {"summary": summarise(runs, a.thresholds), "runs": runs}
        report["problems"][problem] = results
        plot(problem, results, out / f"optimisers_{problem}.png")
        # written after every problem: a run cut short still leaves the problems it finished
        report["machine"]["load_after"] = os.getloadavg()
        report["machine"]["wall_seconds"] = time.time() - t0
        report["run_info"] = run_info()
        report["unfinished"] = [q for q in a.problems if q not in report["problems"]]
        (out / "optimisers.json").write_text(json.dumps(report, indent=1))
        (out / "optimisers.md").write_text(markdown(report))
        print(f"wrote {out / 'optimisers.json'} and {out / 'optimisers.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
