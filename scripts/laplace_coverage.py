"""Coverage of the Laplace intervals of an inverse problem's unknowns
(``pinnjax/diagnostics/_laplace.py``): train the noisy inverse problem once per seed (a new
noise draw and a new network initialisation each), and count how often the interval at
level 0.95 contains the true coefficient.

    python scripts/laplace_coverage.py --seeds 20 --json /tmp/laplace_coverage.json
    python scripts/laplace_coverage.py --first-seed 100 --json /tmp/selection.json   # seeds 100-119
    python scripts/reproduce.py --run laplace_coverage     # results/laplace_coverage.{json,md}

Each run's intervals come from the error covariance (what ``metrics.json`` reports) and, from
the same trained state, the posterior covariance (``pinnjax/diagnostics/_laplace.py``); the
estimates, truths and both standard deviations are kept, so the table can set the reported
sd against the empirical spread of ``estimate - truth`` across the seeds. The covariance was
chosen on seeds 100 to 119 (by that spread check), never on seeds 0 to 19 reported here.

Two problems: ``inverse_diffusion_noisy`` (kappa(x) at 17 nodes, smoothness regularisation
at the shipped weight), counted per node, trained with the shipped recipe of
``configs/inverse_diffusion_noisy.yaml`` (the inverse family's: 3 x 32, 3000 Adam then 500
L-BFGS steps, 512 interior points) in float64; and ``inverse_diffusion`` with the same noise
(0.05) added to its 50 observations (one scalar kappa, no regularisation), on a smaller
network and budget (below). The noise level given to the Laplace approximation is the true
one (the problem's ``noise``).

Why the field problem trains with the shipped recipe: on the smaller budget (2 x 16, 128
interior points, 500 Adam then 500 L-BFGS steps) 16 of 20 field runs stopped at a training
loss near 0.4 (160 noise variances), in a spurious minimum where kappa grows to about 5 and
crosses zero near x = 0.85 and u misses its boundary values. On that network, 2000 Adam
steps (seeds 0 and 1), Adam at ``lr`` 1e-2 (seed 0) or 300 Levenberg-Marquardt steps in place
of L-BFGS (seed 0) ended there too; the shipped recipe in float64 reached a training loss of
3.8e-3 (1.5 noise variances) on seeds 0 and 1. Only the training loss decided; coverage and
kappa's error were not looked at."""

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
from pinnjax._solve import make_config  # noqa: E402
from pinnjax.config import load_config  # noqa: E402
from pinnjax import diagnostics as dg  # noqa: E402
from pinnjax.problems import InverseDiffusion, InverseDiffusionField  # noqa: E402
from pinnjax.train import make_spec, precision  # noqa: E402

NOISE = 0.05
Z = statistics.NormalDist().inv_cdf(0.975)  # the 95% interval's half width in standard deviations
CONFIGS = {"scalar": "inverse_diffusion.yaml", "field": "inverse_diffusion_noisy.yaml"}
QUIET = {"train": {"checkpoint_every": 100000}, "output": {"plots": False}, "eval": {"every": 100000, "points": 200}}
# Overrides of each problem's shipped config, all in float64 (the Laplace approximation's
# Jacobian). The scalar problem: a small network and budget, so that its 20 trainings take
# minutes on 2 shared CPU cores (every run converges by training loss); the field problem:
# the shipped recipe (module docs).
BUDGETS = {
    "scalar": {"model": {"width": 16, "depth": 2, "dtype": "float64"}, "train": {"steps": 500, "lbfgs_steps": 500},
               "sampling": {"interior": 128}},
    "field": {"model": {"dtype": "float64"}},
}
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
    """Train one seed; its intervals by the error covariance (what ``metrics.json`` reports)
    and, side by side from the same trained state, by the posterior covariance."""
    problem, truth = make_problem(kind, seed)
    cfg = load_config(ROOT / "configs" / CONFIGS[kind])
    t0 = time.perf_counter()
    sol = pj.solve(problem, cfg, seed=seed, **_merge(budget, {"diagnostics": {"noise": NOISE}}))
    unc = sol.metrics["uncertainty"]["unknowns"]["kappa"]
    with precision(sol.config.model.dtype):
        posterior = dg.laplace_unknowns(dg.flat_loss(make_spec(problem, sol.config), sol._state), noise=NOISE,
                                        covariance="posterior")["unknowns"]["kappa"]
    value, sd, post_sd = (np.asarray(x) for x in (unc["value"], unc["sd"], posterior["sd"]))
    np.testing.assert_allclose(posterior["value"], value)  # the same trained state
    covered = lambda s: int(np.sum(np.abs(value - truth) <= Z * s))  # noqa: E731
    out = {"seed": seed, "covered": covered(sd), "posterior_covered": covered(post_sd), "entries": int(value.size),
           "median_sd": float(np.median(sd)), "median_abs_error": float(np.median(np.abs(value - truth))),
           "value": value.tolist(), "truth": np.asarray(truth, float).tolist(), "sd": sd.tolist(),
           "posterior_sd": post_sd.tolist(),
           "final_loss": sol.metrics["final_loss"], "prior_precision": sol.metrics["uncertainty"]["prior_precision"],
           "seconds": time.perf_counter() - t0}
    print(f"{kind} seed {seed}: {out['covered']}/{out['entries']} covered ({out['posterior_covered']} by the posterior), "
          f"median sd {out['median_sd']:.3e}, median |error| {out['median_abs_error']:.3e}, loss {out['final_loss']:.3e}",
          flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20, help="N seeds from --first-seed (default 20)")
    p.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0; 100: the seeds the "
                   "covariance was chosen on)")
    p.add_argument("--quick", action="store_true", help="5 seeds, a shorter budget (a check of the pipeline)")
    p.add_argument("--json", type=pathlib.Path, default=None)
    args = p.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + (5 if args.quick else args.seeds)))
    rows = []
    for kind, name in (("scalar", "inverse_diffusion (noise 0.05)"), ("field", "inverse_diffusion_noisy")):
        budget = _merge(_merge(BUDGETS[kind], QUIET), QUICK if args.quick else {})
        runs = [run(kind, s, budget) for s in seeds]
        covered, total = sum(r["covered"] for r in runs), sum(r["entries"] for r in runs)
        rows.append({"problem": name, "kind": kind, "runs": runs, "covered": covered, "intervals": total,
                     "coverage": covered / total, "posterior_covered": sum(r["posterior_covered"] for r in runs),
                     "median_sd": statistics.median(r["median_sd"] for r in runs),
                     "median_abs_error": statistics.median(r["median_abs_error"] for r in runs),
                     "budget": budget, "recipe": recipe(kind, budget)})
    out = {"level": 0.95, "noise": NOISE, "covariance": "error", "seeds": seeds, "quick": args.quick, "rows": rows,
           "versions": pj.train._fit.run_info()["versions"]}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


def recipe(kind: str, budget: dict) -> dict:
    """What a run of `kind` trains with: the shipped config with `budget` merged in."""
    cfg = make_config(make_problem(kind, 0)[0], ROOT / "configs" / CONFIGS[kind], **budget)
    phases = [{"optimiser": "adam", "steps": cfg.train.steps}] + (
        [{"optimiser": "lbfgs", "steps": cfg.train.lbfgs_steps}] if cfg.train.lbfgs_steps else [])
    return {"config": f"configs/{CONFIGS[kind]}", "width": cfg.model.width, "depth": cfg.model.n_depth,
            "dtype": cfg.model.dtype, "phases": cfg.train.phases or phases, "interior": cfg.sampling.interior}


def _recipe_text(r: dict) -> str:
    steps = " then ".join(f"{p['steps']} {p['optimiser']}" for p in r["phases"])
    return (f"`{r['config']}` with network {r['depth']} x {r['width']} ({r['dtype']}), {steps} steps, "
            f"{r['interior']} interior points")


CONVERGED = 10.0  # a run has converged when its final loss is at most this many noise variances


def converged_coverage(data: dict, row: dict) -> tuple[int, int, int]:
    """(runs, intervals, covered) of the runs of `row` whose final training loss is at most
    ``CONVERGED`` noise variances: a training-loss criterion (the data misfit of a converged
    run is about one noise variance), never the coefficient's error."""
    runs = [r for r in row["runs"] if r["final_loss"] <= CONVERGED * data["noise"] ** 2]
    return len(runs), sum(r["entries"] for r in runs), sum(r["covered"] for r in runs)


def spread_check(row: dict, key: str = "sd") -> dict | None:
    """How the reported standard deviations (`key` of each run) compare with the spread of
    ``estimate - truth`` across the seeds, per entry (node): the median over entries of
    ``mean sd / empirical sd``, the mean of ``(error / sd)^2`` (1 for honest intervals), and
    the largest ``|bias| / empirical sd``. None for runs recorded without their estimates."""
    if not row["runs"] or "value" not in row["runs"][0] or len(row["runs"]) < 3:
        return None
    err = np.array([np.subtract(r["value"], r["truth"]) for r in row["runs"]])
    sd = np.array([r[key] for r in row["runs"]])
    spread = err.std(axis=0, ddof=1)
    return {"sd_over_spread": float(np.median(sd.mean(axis=0) / spread)), "mean_z2": float(np.mean((err / sd) ** 2)),
            "max_bias_over_spread": float(np.max(np.abs(err.mean(axis=0)) / spread))}


def markdown(data: dict) -> str:
    """``results/laplace_coverage.md`` from its JSON (SCRIPT_RENDERERS in scripts/reproduce.py)."""
    from results_tables import provenance_lines

    main = "error cov." if data.get("covariance") == "error" else "posterior, legacy"
    lines = [
        "# Coverage of the Laplace intervals of inverse-problem unknowns",
        "",
        "Generated by `scripts/reproduce.py --run laplace_coverage` from `laplace_coverage.json` (do not edit); "
        "`scripts/laplace_coverage.py` made the runs.",
        "",
        f"Each seed draws new observation noise (standard deviation {data['noise']:g}) and a new network; the "
        f"{100 * data['level']:g}% Laplace interval (Gauss-Newton curvature at the trained parameters, prior "
        "precision by the evidence; `pinnjax/diagnostics/_laplace.py`) is checked against the true coefficient; "
        f"seeds {data['seeds'][0]} to {data['seeds'][-1]}" + (" (--quick: a pipeline check, not a result)" if data["quick"] else "")
        + (". Two covariances from the same trained state: the **error** covariance `A^-1 (F + R) A^-1` (only the "
           "data term is noisy; the PDE and boundary terms are exact constraints; what `metrics.json` reports) and, "
           "for comparison, the **posterior** `A^-1` (every term a noisy likelihood at its loss weight)."
           if data.get("covariance") == "error" else
           ". Recorded before the error covariance existed: the intervals below are the **posterior** `A^-1`'s "
           "(every term a noisy likelihood at its loss weight).")
        + " Trained with:",
        "",
        *[f"- {r['problem']}: {_recipe_text(r['recipe'])}" for r in data["rows"]],
        "",
        *provenance_lines(data.get("provenance")),
        f"A run counts as converged when its final training loss is at most {CONVERGED:g} noise variances "
        "(the loss, not the coefficient's error, decides); the Laplace approximation describes the minimum "
        "the optimiser reached, so the intervals of a run stuck far from the minimum are not expected to hold.",
        "",
        f"| problem | intervals | {main}: contain the truth | coverage | posterior: contain the truth | coverage | "
        f"converged runs | their coverage ({main}) | median sd ({main}) | median abs. error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        n, total, covered = converged_coverage(data, r)
        share = f"{covered}/{total} ({covered / total:.2f})" if total else "-"
        post = (f"{r['posterior_covered']} | {r['posterior_covered'] / r['intervals']:.2f}" if "posterior_covered" in r
                else "- | -")
        lines.append(f"| {r['problem']} | {r['intervals']} | {r['covered']} | {r['coverage']:.2f} | {post} | "
                     f"{n} of {len(r['runs'])} | {share} | {r['median_sd']:.2e} | {r['median_abs_error']:.2e} |")
    checks = [(r, spread_check(r), spread_check(r, "posterior_sd")) for r in data["rows"]]
    if any(c is not None for _, c, _ in checks):
        lines += ["", "The spread check: per entry (node), the reported sd against the empirical standard deviation "
                  "of `estimate - truth` across the seeds (median over entries of their ratio; 1 is honest), the "
                  "mean of `(error / sd)^2` over all intervals (1 is honest), and the largest `|mean error|` "
                  "(bias) over the empirical sd. With 20 seeds an empirical sd is uncertain by about 16%.", "",
                  "| problem | sd / spread (error cov.) | mean z^2 (error cov.) | sd / spread (posterior) | "
                  "mean z^2 (posterior) | max abs. bias / spread |", "|---|---|---|---|---|---|"]
        for r, c, cp in checks:
            if c is not None:
                lines.append(f"| {r['problem']} | {c['sd_over_spread']:.2f} | {c['mean_z2']:.2f} | "
                             f"{cp['sd_over_spread']:.2f} | {cp['mean_z2']:.2f} | {c['max_bias_over_spread']:.2f} |")
    lines += ["", "Per seed (intervals containing the truth / intervals, error covariance):", ""]
    for r in data["rows"]:
        lines.append(f"- {r['problem']}: " + ", ".join(f"{x['covered']}/{x['entries']} (loss {x['final_loss']:.1e})"
                                                      for x in r["runs"]))
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
