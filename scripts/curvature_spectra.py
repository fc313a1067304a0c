"""The curvature of the PINN loss where each optimiser leaves it: Burgers and 2-D Poisson
trained with Adam, then continued by L-BFGS or by a second-order phase (ENGD, the
Gauss-Newton natural gradient), from the same Adam state. At the end of each phase: the
extreme eigenvalues of the loss Hessian and of the Gauss-Newton matrix (Lanczos), the
Gauss-Newton condition number, the critical-point verdict and the spectral densities (SLQ),
by ``pinnjax.diagnostics`` (what ``pinnjax diagnose --every-checkpoint`` computes).

    python scripts/curvature_spectra.py --json /tmp/curvature.json
    python scripts/reproduce.py --run curvature      # results/curvature.{json,md} and curvature_<problem>.png

The recipes are the shipped configs' (float64, the family network's depth) with width 16,
shorter budgets and fewer collocation points (below), so that it runs on 2 shared CPU cores."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pinnjax as pj  # noqa: E402
from pinnjax.diagnostics import Settings, diagnose_run  # noqa: E402

# The shipped configs' network depth, float64 and phases' optimisers; width 16 and 300
# interior points so that it runs on a shared 2-core machine (the diagnosis of each state is
# some thousand Hessian-vector products).
PROBLEMS = {"poisson2d": {"model": {"width": 16}, "sampling": {"interior": 300, "boundary": 60}},
            "burgers1d": {"model": {"width": 16}, "sampling": {"interior": 300, "boundary": 60, "initial": 60, "rad": False}}}
BUDGET = {"adam": 1000, "lbfgs": 300, "engd": 50}
QUICK = {"adam": 100, "lbfgs": 30, "engd": 10}
SETTINGS = Settings(k=3, steps=40, probes=3, density_steps=30, per_term=True)


def train(name: str, second: str, budget: dict, out: pathlib.Path) -> dict:
    """Adam then `second` (lbfgs or engd), a checkpoint at the end of each phase, then the
    curvature at both: ``{phase: record}``."""
    cfg_path = ROOT / "configs" / f"{name}.yaml"
    phases = [{"optimiser": "adam", "steps": budget["adam"]},
              {"optimiser": second, "steps": budget[second], "resample_every": 0}]
    over = dict(PROBLEMS[name])
    over.update(train={"phases": phases, "checkpoint_every": budget["adam"], "scan_steps": 10},
                output={"plots": False, "keep_checkpoints": 10}, eval={"every": budget["adam"]})
    from pinnjax.cli._resolve import make_problem, resolve_problem_class
    from pinnjax.config import load_config

    cfg = load_config(cfg_path)
    cls, _ = resolve_problem_class(cfg.problem.name, ROOT)
    with pj.train.precision(cfg.model.dtype):
        problem = make_problem(cls, dict(cfg.problem.params))
    run_dir = out / f"{name}-{second}"
    pj.solve(problem, cfg_path, run_dir=run_dir, **over)
    record = diagnose_run(run_dir, every_checkpoint=True, settings=SETTINGS, plots=False)
    history = {r["step"]: r for r in pj.train.read_history(run_dir)}
    stages = {}
    for rec in record["checkpoints"]:
        phase = "adam" if rec["step"] == budget["adam"] else second
        row = history.get(rec["step"], {})
        stages[phase] = {"step": rec["step"], "loss": rec["critical_point"]["loss"], "l2re": row.get("l2re"),
                         "parameters": rec["parameters"], "residuals": rec["residuals"],
                         "hessian": rec["hessian"], "gauss_newton": rec["gauss_newton"],
                         "gauss_newton_condition_number": rec["gauss_newton_condition_number"],
                         "critical_point": rec["critical_point"],
                         "hessian_density": rec["hessian_density"], "gauss_newton_density": rec["gauss_newton_density"],
                         "terms": {t: {"hessian": v["hessian"], "gauss_newton": v["gauss_newton"],
                                       "gauss_newton_condition_number": v["gauss_newton_condition_number"]}
                                   for t, v in rec.get("terms", {}).items()}}
        print(f"{name} after {phase} (step {rec['step']}): loss {stages[phase]['loss']:.3e}, Hessian "
              f"[{rec['hessian']['smallest'][0]:.3e}, {rec['hessian']['largest'][0]:.3e}], GN condition "
              f"{rec['gauss_newton_condition_number']:.3e}, {rec['critical_point']['verdict']}", flush=True)
    return stages


def plot(name: str, stages: dict, path: pathlib.Path) -> None:
    from pinnjax.diagnostics._plots import _log_histogram
    from pinnjax.train._plots import _figure, _save

    fig, axes = _figure(1, 2, w=5.0)
    for phase, st in stages.items():
        c, h = _log_histogram(st["hessian_density"], 1.0)
        if c is not None:
            axes[0, 0].step(c, h, where="mid", label=f"after {phase}")
        c, h = _log_histogram(st["gauss_newton_density"])
        if c is not None:
            axes[0, 1].step(c, h, where="mid", label=f"after {phase}")
    axes[0, 0].set(title=f"{name}: Hessian, positive eigenvalues (SLQ)", xlabel="log10 eigenvalue", ylabel="fraction")
    axes[0, 1].set(title=f"{name}: Gauss-Newton spectrum (SLQ)", xlabel="log10 eigenvalue")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    _save(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets: a pipeline check")
    p.add_argument("--json", type=pathlib.Path, default=None)
    p.add_argument("--plots", type=pathlib.Path, default=ROOT / "results", help="folder of curvature_<problem>.png")
    args = p.parse_args(argv)
    budget = QUICK if args.quick else BUDGET
    out = {"budget": budget, "sampling": PROBLEMS, "settings": SETTINGS.__dict__, "quick": args.quick, "problems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in PROBLEMS:
            stages = train(name, "lbfgs", budget, pathlib.Path(tmp))
            stages.update({k: v for k, v in train(name, "engd", budget, pathlib.Path(tmp)).items() if k != "adam"})
            plot(name, stages, args.plots / f"curvature_{name}.png")
            out["problems"][name] = stages
    out["versions"] = pj.train._fit.run_info()["versions"]
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


def markdown(data: dict) -> str:
    """``results/curvature.md`` from its JSON (SCRIPT_RENDERERS in scripts/reproduce.py)."""
    from results_tables import provenance_lines

    b = data["budget"]
    lines = [
        "# The curvature of the loss where each optimiser leaves it",
        "",
        "Generated by `scripts/reproduce.py --run curvature` from `curvature.json` (do not edit); "
        "`scripts/curvature_spectra.py` made the runs.",
        "",
        f"Shipped configs (float64, the family network's depth at width {data['sampling']['poisson2d']['model']['width']}, "
        f"{data['sampling']['poisson2d']['sampling']['interior']} interior points) with {b['adam']} Adam steps, then from that state either "
        f"{b['lbfgs']} L-BFGS steps or {b['engd']} ENGD steps (Gauss-Newton natural gradient) on a fixed batch"
        + (" (--quick: a pipeline check, not a result)" if data["quick"] else "")
        + ". Eigenvalues of the loss Hessian and of the Gauss-Newton matrix `2 J^T J` on the final batch: "
        f"{data['settings']['steps']} Lanczos steps for the extremes (Ritz values lie inside the spectrum, so a "
        "negative smallest Ritz value proves a negative eigenvalue), SLQ with "
        f"{data['settings']['probes']} probes x {data['settings']['density_steps']} steps for the densities. The "
        "Gauss-Newton condition number is largest / smallest Ritz value (the smallest converges last: an estimate).",
        "",
        *provenance_lines(data.get("provenance")),
        "The verdict reads the extreme Hessian eigenvalues (zero within 1e-6 of the largest); it names a critical "
        "point only where the gradient norm is small, else it describes the curvature where the phase stopped.",
        "",
        "| problem | after | loss | L2RE | gradient norm | Hessian max | Hessian min | negative found | GN max | GN min | "
        "GN condition | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def e(x):
        return "-" if x is None else f"{x:.2e}"

    for name, stages in data["problems"].items():
        for phase, st in stages.items():
            cp = st["critical_point"]
            lines.append(f"| {name} | {phase} (step {st['step']}) | {e(st['loss'])} | {e(st['l2re'])} | "
                         f"{e(cp['gradient_norm'])} | "
                         f"{e(st['hessian']['largest'][0])} | {e(st['hessian']['smallest'][0])} | "
                         f"{cp['negative_eigenvalues_found']} of {len(cp['smallest_eigenvalues'])} | "
                         f"{e(st['gauss_newton']['largest'][0])} | {e(st['gauss_newton']['smallest'][0])} | "
                         f"{e(st['gauss_newton_condition_number'])} | {cp['verdict']} |")
    lines += ["", "Per loss term (the term's loss alone), Gauss-Newton largest eigenvalue and condition number:", "",
              "| problem | after | term | GN max | GN condition | Hessian max | Hessian min |", "|---|---|---|---|---|---|---|"]
    for name, stages in data["problems"].items():
        for phase, st in stages.items():
            for term, t in st["terms"].items():
                lines.append(f"| {name} | {phase} | {term} | {e(t['gauss_newton']['largest'][0])} | "
                             f"{e(t['gauss_newton_condition_number'])} | {e(t['hessian']['largest'][0])} | "
                             f"{e(t['hessian']['smallest'][0])} |")
    lines.append("")
    for name in data["problems"]:
        lines += [f"![{name}](curvature_{name}.png)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
