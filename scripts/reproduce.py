"""Reproduce pinnjax's accuracy table (and, with --derivatives, the derivative benchmark).

Runs each chosen config over several seeds through the ``pinnjax`` command, in parallel
where the machine allows, and writes ``results/accuracy.md`` and ``results/accuracy.json``:
per problem the mean and standard deviation of the L2 relative error, wall time, steps, the
hardware, and the best published L2 relative error beside it with its source.

    python scripts/reproduce.py                       # every config, 3 seeds, full budget
    python scripts/reproduce.py --quick               # reduced budget, marked in the table
    python scripts/reproduce.py --configs poisson1d heat1d --seeds 0 1 2
    python scripts/reproduce.py --derivatives         # also results/derivatives.{md,json}

Reruns with the same seeds give the same numbers on the same machine (training is
deterministic on CPU for a given seed).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Best published L2 relative errors on the same problem definitions. PINNacle: Hao et al.,
# "PINNacle: A Comprehensive Benchmark of Physics-Informed Neural Networks for Solving PDEs",
# NeurIPS 2024, Table 3 (mean of 3 runs; see ../shared/data/pinnacle/README.md).
PUBLISHED = {
    "poisson2d_c": (1.23e-2, "PINNacle Poisson 2d-C, NTK weighting (vanilla PINN 6.94e-1)"),
    "poisson_boltzmann2d": (1.43e-2, "PINNacle Poisson 2d-CG, NTK weighting (vanilla PINN 6.36e-1)"),
    "burgers1d": (1.33e-2, "PINNacle Burgers 1d-C, L-BFGS (vanilla PINN 1.45e-2)"),
    "heat2d_lt": (9.99e-1, "PINNacle Heat 2d-LT, about 1 for every method (unsolved)"),
    "poisson2d": (6.9e-2, "DeepXDE (PyTorch) on the same setup after 3,000 Adam steps, measured for the issue; no published best"),
}

# Reduced budgets for --quick: a check that the pipeline and recipes work, not a result.
QUICK = ["train.steps=1000", "train.lbfgs_steps=200", "eval.every=500", "train.checkpoint_every=500", "output.plots=false"]

DEFAULT_CONFIGS = [
    "poisson1d", "poisson2d", "poissonnd", "heat1d", "heat2d", "heatnd", "helmholtz2d", "wave1d",
    "kdv", "allen_cahn1d", "inverse_diffusion", "poisson2d_c", "poisson_boltzmann2d", "burgers1d",
]


def _quick(config: str) -> list[str]:
    """QUICK; for a recipe with train.phases, 1000 steps of its first phase and 200 of the others."""
    from pinnjax.config import load_config

    phases = load_config(ROOT / "configs" / f"{config}.yaml").train.phases
    if phases is None:
        return QUICK
    steps = [f"train.phases.{i}.steps={1000 if i == 0 else 200}" for i in range(len(phases))]
    return steps + [o for o in QUICK if not o.startswith(("train.steps=", "train.lbfgs_steps="))]


def run_one(config: str, seed: int, out: Path, quick: bool, extra: list[str]) -> dict:
    run_dir = out / "runs" / f"{config}-seed{seed}{'-quick' if quick else ''}"
    if (run_dir / "metrics.json").exists():
        (run_dir / "metrics.json").unlink()
    cmd = [sys.executable, "-m", "pinnjax", "run", str(ROOT / "configs" / f"{config}.yaml"),
           "--out", str(run_dir), "--set", f"seed={seed}"]
    for o in (_quick(config) if quick else []) + extra:
        cmd += ["--set", o]
    if run_dir.exists():  # a rerun starts clean, so it gives the same numbers
        import shutil

        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    rec = dict(config=config, seed=seed, wall_seconds=wall, returncode=proc.returncode)
    if proc.returncode != 0:
        rec["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return rec
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rec.update({k: metrics.get(k) for k in ("l2re", "best_l2re", "steps", "train_seconds", "steps_per_second", "device")})
    for k, v in metrics.items():
        if k.startswith("learned_") or k == "unknowns":
            rec[k] = v
    return rec


def summarise(records, quick):
    rows = []
    for config in dict.fromkeys(r["config"] for r in records):
        rs = [r for r in records if r["config"] == config]
        ok = [r for r in rs if r.get("returncode") == 0 and r.get("l2re") is not None]
        l2 = [r["l2re"] for r in ok]
        pub = PUBLISHED.get(config)
        row = dict(
            problem=config, seeds=[r["seed"] for r in rs], runs_ok=len(ok),
            l2re_mean=statistics.fmean(l2) if l2 else None,
            l2re_std=statistics.pstdev(l2) if len(l2) > 1 else 0.0 if l2 else None,
            wall_seconds_mean=statistics.fmean(r["wall_seconds"] for r in rs),
            steps=ok[0]["steps"] if ok else None,
            published_l2re=pub[0] if pub else None, published_source=pub[1] if pub else "none found",
            errors=[r.get("error") for r in rs if r.get("error")],
            unknowns=[r["unknowns"] for r in ok if r.get("unknowns")],
            quick=quick,
        )
        if pub and row["l2re_mean"] is not None:
            # an error near 1 is no solution, whatever the published number (Heat 2d-LT)
            row["beats_published"] = row["l2re_mean"] < pub[0] and row["l2re_mean"] < 0.5
        rows.append(row)
    return rows


def write_tables(rows, records, out: Path, quick: bool, hardware: str):
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(dict(hardware=hardware, quick=quick, rows=rows, runs=records), indent=2))
    lines = [
        "# Accuracy: pinnjax against the best published L2 relative error",
        "",
        f"Hardware: {hardware}. "
        + ("**QUICK MODE: reduced budgets (train.steps=1000, lbfgs_steps=200); not a result.**" if quick else "Full budgets from configs/."),
        "",
        "| problem | seeds | L2RE mean ± std | steps | wall s (mean) | best published | beaten? | source / notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        l2 = "failed: " + "; ".join(r["errors"]) if r["l2re_mean"] is None else f"{r['l2re_mean']:.2e} ± {r['l2re_std']:.1e}"
        pub = f"{r['published_l2re']:.2e}" if r["published_l2re"] is not None else "-"
        beaten = {True: "yes", False: "**no**"}.get(r.get("beats_published"), "-")
        notes = r["published_source"]
        if r.get("unknowns"):
            learned = "; ".join(", ".join(f"{k} = {v:.5g}" if isinstance(v, float) else f"{k} = {v}" for k, v in u.items()) for u in r["unknowns"])
            notes += f"; learned per seed: {learned}"
        lines.append(f"| {r['problem']} | {len(r['seeds'])} | {l2} | {r['steps']} | {r['wall_seconds_mean']:.0f} | {pub} | {beaten} | {notes} |")
    lines += ["", "Regenerate: `python scripts/reproduce.py" + (" --quick" if quick else "") + "`", ""]
    (out / "accuracy.md").write_text("\n".join(lines))


def run_derivatives(out: Path, quick: bool):
    json_path = out / "derivatives.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_derivatives.py"), "--json", str(json_path)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    (out / "derivatives.md").write_text(
        "# Derivative engine benchmark\n\n" + proc.stdout + f"\nRegenerate: `python scripts/reproduce.py --derivatives{' --quick' if quick else ''}`\n"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)), help="runs in parallel (default: one per core)")
    p.add_argument("--out", default=str(ROOT / "results"))
    p.add_argument("--set", action="append", default=[], help="extra override for every run")
    p.add_argument("--derivatives", action="store_true", help="also run scripts/bench_derivatives.py")
    p.add_argument("--merge", action="store_true", help="keep the rows of other problems already in accuracy.json")
    args = p.parse_args(argv)
    out = Path(args.out)
    hardware = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    jobs = [(c, s) for c in args.configs for s in args.seeds]
    records = []
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(run_one, c, s, out, args.quick, args.set): (c, s) for c, s in jobs}
        for f in futures.as_completed(futs):
            rec = f.result()
            records.append(rec)
            status = f"l2re {rec['l2re']:.2e}" if rec.get("l2re") is not None else rec.get("error", "no error metric")
            print(f"[{len(records)}/{len(jobs)}] {rec['config']} seed {rec['seed']}: {status} ({rec['wall_seconds']:.0f} s)", flush=True)
    order = list(args.configs)
    if args.merge and (out / "accuracy.json").exists():
        old = json.loads((out / "accuracy.json").read_text())
        kept = [r for r in old.get("runs", []) if r["config"] not in args.configs]
        order = list(dict.fromkeys([r["config"] for r in kept] + order))
        records = kept + records
    records.sort(key=lambda r: (order.index(r["config"]), r["seed"]))
    rows = summarise(records, args.quick)
    write_tables(rows, records, out, args.quick, hardware)
    print((out / "accuracy.md").read_text())
    if args.derivatives:
        run_derivatives(out, args.quick)
        print((out / "derivatives.md").read_text())


if __name__ == "__main__":
    main()
