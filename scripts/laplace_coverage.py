"""Coverage of the Laplace intervals of an inverse problem's unknowns
(``pinnjax/diagnostics/_laplace.py``): train the noisy inverse problem once per seed (a new
noise draw and a new network initialisation each), and count how often the interval at
level 0.95 contains the true coefficient.

    python scripts/laplace_coverage.py --seeds 20 --json /tmp/laplace_coverage.json
    python scripts/reproduce.py --run laplace_coverage     # results/laplace_coverage.{json,md}

Two problems: ``inverse_diffusion_noisy`` (kappa(x) at 17 nodes, smoothness regularisation
at the shipped weight: the shipped config's recipe on a smaller network and budget, below),
counted per node, and ``inverse_diffusion`` with the same noise (0.05) added to its 50
observations (one scalar kappa, no regularisation). The noise level given to the Laplace
approximation is the true one (the problem's ``noise``)."""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pinnjax as pj  # noqa: E402
from pinnjax.config import load_config  # noqa: E402
from pinnjax.problems import InverseDiffusion, InverseDiffusionField  # noqa: E402

NOISE = 0.05
# The budget: small, so that 2 x 20 trainings take minutes on 2 shared CPU cores; float64, and
# L-BFGS to convergence of the loss, so that the parameters are near a minimum (the Laplace
# approximation is centred there).
BUDGET = {"model": {"width": 16, "depth": 2, "dtype": "float64"},
          "train": {"steps": 500, "lbfgs_steps": 500, "checkpoint_every": 100000},
          "sampling": {"interior": 128}, "output": {"plots": False}, "eval": {"every": 100000, "points": 200}}
QUICK = {"train": {"steps": 100, "lbfgs_steps": 100}}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_problem(kind: str, seed: int):
    """The problem with noise draw `seed`. The observations are passed as arrays (fixed data)
    and the static `seed` field left at 0, so every seed shares one compiled step."""
    base = InverseDiffusionField() if kind == "field" else InverseDiffusion(noise=NOISE)
    x, _ = base.observations()
    u = np.sin(np.pi * x[:, 0]) + NOISE * np.random.default_rng(seed).standard_normal(x.shape[0])
    if kind == "field":
        return InverseDiffusionField(obs_points=x, obs_values=u), base.true_kappa_nodes()
    return InverseDiffusion(noise=NOISE, obs_points=x, obs_values=u), np.asarray([InverseDiffusion.true_kappa])


def run(kind: str, seed: int, budget: dict) -> dict:
    problem, truth = make_problem(kind, seed)
    if kind == "field":
        cfg = load_config(ROOT / "configs" / "inverse_diffusion_noisy.yaml")
    else:
        cfg = load_config(ROOT / "configs" / "inverse_diffusion.yaml")
    t0 = time.perf_counter()
    sol = pj.solve(problem, cfg, seed=seed, **_merge(budget, {"diagnostics": {"noise": NOISE}}))
    unc = sol.metrics["uncertainty"]["unknowns"]["kappa"]
    lo, hi, value, sd = (np.asarray(unc[k]) for k in ("lower", "upper", "value", "sd"))
    inside = (lo <= truth) & (truth <= hi)
    out = {"seed": seed, "covered": int(inside.sum()), "entries": int(inside.size),
           "median_sd": float(np.median(sd)), "median_abs_error": float(np.median(np.abs(value - truth))),
           "final_loss": sol.metrics["final_loss"], "prior_precision": sol.metrics["uncertainty"]["prior_precision"],
           "seconds": time.perf_counter() - t0}
    print(f"{kind} seed {seed}: {out['covered']}/{out['entries']} covered, median sd {out['median_sd']:.3e}, "
          f"median |error| {out['median_abs_error']:.3e}, loss {out['final_loss']:.3e}", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 (default 20)")
    p.add_argument("--quick", action="store_true", help="5 seeds, a shorter budget (a check of the pipeline)")
    p.add_argument("--json", type=pathlib.Path, default=None)
    args = p.parse_args(argv)
    seeds = list(range(5 if args.quick else args.seeds))
    budget = _merge(BUDGET, QUICK) if args.quick else BUDGET
    rows = []
    for kind, name in (("scalar", "inverse_diffusion (noise 0.05)"), ("field", "inverse_diffusion_noisy")):
        runs = [run(kind, s, budget) for s in seeds]
        covered, total = sum(r["covered"] for r in runs), sum(r["entries"] for r in runs)
        rows.append({"problem": name, "kind": kind, "runs": runs, "covered": covered, "intervals": total,
                     "coverage": covered / total,
                     "median_sd": statistics.median(r["median_sd"] for r in runs),
                     "median_abs_error": statistics.median(r["median_abs_error"] for r in runs)})
    out = {"level": 0.95, "noise": NOISE, "seeds": seeds, "quick": args.quick, "budget": budget, "rows": rows,
           "versions": pj.train._fit.run_info()["versions"]}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


CONVERGED = 10.0  # a run has converged when its final loss is at most this many noise variances


def converged_coverage(data: dict, row: dict) -> tuple[int, int, int]:
    """(runs, intervals, covered) of the runs of `row` whose final training loss is at most
    ``CONVERGED`` noise variances: a training-loss criterion (the data misfit of a converged
    run is about one noise variance), never the coefficient's error."""
    runs = [r for r in row["runs"] if r["final_loss"] <= CONVERGED * data["noise"] ** 2]
    return len(runs), sum(r["entries"] for r in runs), sum(r["covered"] for r in runs)


def markdown(data: dict) -> str:
    """``results/laplace_coverage.md`` from its JSON (SCRIPT_RENDERERS in scripts/reproduce.py)."""
    from results_tables import provenance_lines

    b = data["budget"]
    lines = [
        "# Coverage of the Laplace intervals of inverse-problem unknowns",
        "",
        "Generated by `scripts/reproduce.py --run laplace_coverage` from `laplace_coverage.json` (do not edit); "
        "`scripts/laplace_coverage.py` made the runs.",
        "",
        f"Each seed draws new observation noise (standard deviation {data['noise']:g}) and a new network; the "
        f"{100 * data['level']:g}% Laplace interval (Gauss-Newton precision at the trained parameters, prior "
        "precision by the evidence; `pinnjax/diagnostics/_laplace.py`) is checked against the true coefficient. "
        f"Network {b['model']['width']} x {b['model']['depth']} ({b['model']['dtype']}), {b['train']['steps']} Adam "
        f"then {b['train']['lbfgs_steps']} L-BFGS steps, {b['sampling']['interior']} interior points; seeds "
        f"{data['seeds'][0]} to {data['seeds'][-1]}" + (" (--quick: a pipeline check, not a result)" if data["quick"] else "")
        + ".",
        "",
        *provenance_lines(data.get("provenance")),
        f"A run counts as converged when its final training loss is at most {CONVERGED:g} noise variances "
        "(the loss, not the coefficient's error, decides); the Laplace approximation describes the minimum "
        "the optimiser reached, so the intervals of a run stuck far from the minimum are not expected to hold.",
        "",
        "| problem | intervals | contain the truth | coverage | converged runs | their coverage | median sd | "
        "median abs. error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        n, total, covered = converged_coverage(data, r)
        share = f"{covered}/{total} ({covered / total:.2f})" if total else "-"
        lines.append(f"| {r['problem']} | {r['intervals']} | {r['covered']} | {r['coverage']:.2f} | "
                     f"{n} of {len(r['runs'])} | {share} | {r['median_sd']:.2e} | {r['median_abs_error']:.2e} |")
    lines += ["", "Per seed (intervals containing the truth / intervals):", ""]
    for r in data["rows"]:
        lines.append(f"- {r['problem']}: " + ", ".join(f"{x['covered']}/{x['entries']} (loss {x['final_loss']:.1e})"
                                                      for x in r["runs"]))
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
