"""The one writer of results/: runs the measurements, records where each came from, and
renders every table from its JSON.

    python scripts/reproduce.py                            # accuracy: every config, 3 seeds, full budget
    python scripts/reproduce.py --quick                    # reduced budgets, marked in the table
    python scripts/reproduce.py --configs poisson1d heat1d --seeds 0 1 2 --merge
    python scripts/reproduce.py --protocol pinnacle        # the PINNacle rows under PINNacle's protocol
    python scripts/reproduce.py --configs heat2d_lt --merge --resume   # continue what a killed invocation left
    python scripts/reproduce.py --run derivatives          # scripts/bench_derivatives.py -> derivatives.{json,md}
    python scripts/reproduce.py --run peers                # scripts/bench_peers.py -> peers.{json,md}
    python scripts/reproduce.py --run regularisation       # scripts/regularisation.py -> regularisation.{json,md}
    python scripts/reproduce.py --run highdim              # scripts/bench_highdim.py -> highdim.{json,md}
    python scripts/reproduce.py --run highdim --merge      # the same, keeping its cost part (accuracy part only)
    python scripts/reproduce.py --run laplace_coverage     # scripts/laplace_coverage.py -> laplace_coverage.{json,md}
    python scripts/reproduce.py --run curvature            # scripts/curvature_spectra.py -> curvature.{json,md}, curvature_*.png
    python scripts/reproduce.py --run scaling              # scripts/bench_scaling.py -> scaling.{json,md}
    python scripts/reproduce.py --render                   # rewrite every .md (and the README section) from the JSON
    python scripts/reproduce.py --check                    # fail if any of them differs from what the JSON gives

Every accuracy run record holds its provenance: the commit and whether the tree was clean
(no change outside results/), the command, the resolved config and the recipe (the chain of
base configs it inherits), the seed, the hardware, the wall time and the library versions; a
benchmark file holds the same once. Records made before this was recorded are shown as
legacy, never filled in. Tables are made by ``scripts/results_tables.py``; the README's
"Measured figures" section is generated the same way, between its two marker lines.

Reruns with the same seeds give the same numbers on the same machine (training is
deterministic on CPU for a given seed).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import datetime
import importlib
import importlib.metadata
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "scripts"))

import results_tables as tables  # noqa: E402
from pinnjax.io import atomic_write_text  # noqa: E402

# Best published L2 relative errors on the same problem definitions. PINNacle: Hao et al.,
# "PINNacle: A Comprehensive Benchmark of Physics-Informed Neural Networks for Solving PDEs",
# NeurIPS 2024, Table 3 (mean of 3 runs; see ../shared/data/pinnacle/README.md). Peer
# frameworks are measured by scripts/bench_peers.py, never typed here.
PUBLISHED = {
    "poisson2d_c": (1.23e-2, "PINNacle Poisson 2d-C, NTK weighting (vanilla PINN 6.94e-1)"),
    "poisson_boltzmann2d": (1.43e-2, "PINNacle Poisson 2d-CG, NTK weighting (vanilla PINN 6.36e-1)"),
    "burgers1d": (1.33e-2, "PINNacle Burgers 1d-C, L-BFGS (vanilla PINN 1.45e-2)"),
    "heat2d_lt": (9.99e-1, "PINNacle Heat 2d-LT, about 1 for every method (unsolved)"),
    # PINNacle rows of the same PDE whose Table 3 figures were not readable here (l2re None:
    # shown as such, never judged): the definitions were checked in the authors' code.
    "wave1d": (None, "PINNacle Wave 1d-C: the same PDE, domain and data (checked in the authors' code, "
                     "i207M/PINNacle at 6f8d69c, src/pde/wave.py Wave1D); its Table 3 figures were not readable here"),
    "poissonnd": (None, "PINNacle PNd: the same PDE, domain and data (checked in the authors' code, i207M/PINNacle "
                        "at 6f8d69c, src/pde/poisson.py PoissonND, dim 5); its Table 3 figures were not readable here"),
}

# PINNacle's vanilla PINN on the same rows (the same Table 3): what its protocol gives there.
PUBLISHED_VANILLA = {"poisson2d_c": 6.94e-1, "poisson_boltzmann2d": 6.36e-1, "burgers1d": 1.45e-2, "heat2d_lt": 9.99e-1}

# The best L2 relative error published in 2025-2026 (2024 where no later one was read) for the
# same PDE, read in the paper's own text or in its authors' repository (the note says which):
# problem -> (l2re, short source: authors, venue or arXiv id, year, table and method; note:
# whether the setting matches ours, and how it differs). Shown beside the table for
# information, never judged against (that is PUBLISHED's job). l2re None: papers on the same
# PDE are named, their settings checked against ours in their authors' code, but no figure
# was read in their own text, so none is given; a figure is never estimated or taken from a
# secondary source.
PUBLISHED_RECENT = {
    "burgers1d": (1.759e-8, "Toscano, Chen, Oommen, Darbon & Karniadakis, vRBA, arXiv:2509.14198 (2025), "
                            "SSBroyden + vRBA",
                  "read in the authors' repository, not in the paper: jdtoscano94/Variational-Residual-Based-"
                  "Attention-vRBA-for-PINNs-and-Operator-Networks- (commit 4cab178, the README's official code of the "
                  "paper), PINN/Burgers/SS_vRBA.ipynb, the printed output of its last training cell (It=64277, "
                  "RL2=1.759e-08; one run, one seed; its lowest along the run, 1.11e-8, is not the figure taken). Same "
                  "PDE, nu = 1/(100 pi), u0 = -sin(pi x), with u(-1, t) = u(1, t) from a periodic embedding in x "
                  "instead of u(+-1, t) = 0; that notebook trains a 3 x 30 tanh MLP in float64, 5,000 Adam steps "
                  "then SSBroyden to about 64,000 iterations on 200,000 resampled points; ours 18,000 steps. The "
                  "papers of Urban, Stefanou & Pons, JCP 523 (2025), arXiv:2405.04230 (self-scaled BFGS/Broyden), "
                  "Kiyani et al., CMAME 446 (2025), arXiv:2501.16371 (SSBroyden) and Wang et al., NeurIPS 2025, "
                  "arXiv:2502.00604 (SOAP) solve the same PDE; their tables were not readable here"),
    "allen_cahn1d": (2.323e-6, "Toscano, Chen, Oommen, Darbon & Karniadakis, vRBA, arXiv:2509.14198 (2025), "
                               "SSBroyden + vRBA",
                     "read in the authors' repository, not in the paper: jdtoscano94/Variational-Residual-Based-"
                     "Attention-vRBA-for-PINNs-and-Operator-Networks- (commit 4cab178), PINN/Allen_Cahn_2nd/"
                     "SS_vRBA.ipynb, the printed output of its last training cell (It=63001, RL2=2.323e-06; one run, "
                     "one seed). Same PDE (u_t - 1e-4 u_xx + 5 u^3 - 5 u, its reference's initial profile is "
                     "x^2 cos(pi x), periodic, t in [0, 1]); that notebook trains a 3 x 30 tanh MLP in float64 with a "
                     "periodic embedding, 5,000 Adam steps then SSBroyden to about 63,000 iterations on 200,000 "
                     "resampled points, the initial condition as a penalty; ours 18,000 steps. Earlier: PirateNets, "
                     "arXiv:2402.00326 (2024), 2.24e-5 (PredictiveIntelligenceLab/jaxpi, branch pirate, commit "
                     "0dde111, README.md). Urban, Stefanou & Pons, JCP 523 (2025), arXiv:2405.04230 and Wang et al., "
                     "NeurIPS 2025, arXiv:2502.00604 (SOAP) solve the same PDE; their tables were not readable here"),
    "wave1d": (None, "Wang et al., NeurIPS 2025, arXiv:2502.00604, SOAP",
               "the code the paper names (jaxpi branch pirate) has examples/wave with our PDE (c = 2), domain and "
               "initial data; whether and with what error the paper reports it was not readable here"),
}

# Reduced budgets for --quick: a check that the pipeline and recipes work, not a result.
QUICK = ["train.steps=1000", "train.lbfgs_steps=200", "eval.every=500", "train.checkpoint_every=500", "output.plots=false"]

# PINNacle's own training protocol (Hao et al. 2024, section 4): a 5 x 100 tanh MLP, Adam at
# lr 1e-3 for 20,000 iterations, 8,192 interior and 2,048 boundary points, no L-BFGS, no loss
# weighting, soft boundary conditions (time-dependent problems: 2,048 initial points too), one
# network for the whole time interval (no marching): what the framework alone gives, beside
# the family default recipe.
PROTOCOLS = {
    "default": [],
    "pinnacle": [
        "model.type=mlp", "model.width=100", "model.depth=5", "model.activation=tanh", "model.dtype=float32",
        "model.hard_constraint=false",
        "train.phases=[{optimiser: adam, steps: 20000}]",  # replaces a recipe's phases
        "train.lr=1e-3", "train.decay=none", "train.warmup_steps=0", "train.lbfgs_steps=0",
        "sampling.interior=8192", "sampling.boundary=2048", "sampling.initial=2048", "sampling.rad=false",
        "loss.weights={}", "loss.balancing=none", "loss.causal=false", "march.window=null",
    ],
}

PINNACLE_CONFIGS = ["poisson2d_c", "poisson_boltzmann2d", "burgers1d", "heat2d_lt"]  # the shipped reference files

DEFAULT_CONFIGS = [
    "poisson1d", "poisson2d", "poissonnd", "heat1d", "heat2d", "heatnd", "helmholtz2d", "wave1d",
    "kdv", "allen_cahn1d", "inverse_diffusion", "poisson2d_c", "poisson_boltzmann2d", "burgers1d", "heat2d_lt",
]

README_BEGIN = "<!-- measured-figures:begin (generated by scripts/reproduce.py --render; do not edit) -->"
README_END = "<!-- measured-figures:end -->"


# --- provenance ---------------------------------------------------------------------------------


def git(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


# What this script writes itself, and the runs never read: results/ and the README's generated
# section. A change there leaves the tree clean, so that a second invocation after a first one
# (which rendered its figures into the README) still records a clean tree.
WRITTEN_BY_REPRODUCE = ("results", "README.md")


def tree_state() -> tuple[str | None, bool | None]:
    """(commit, whether the tree is clean): no tracked or untracked change outside
    WRITTEN_BY_REPRODUCE."""
    commit = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--", ".", *(f":(exclude){p}" for p in WRITTEN_BY_REPRODUCE))
    return commit, (None if status is None else status.strip() == "")


def hardware(device: str | None = None) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "device": device or "cpu"}


def library_versions(names=("jax", "jaxlib", "equinox", "optax", "numpy", "folx", "deepxde", "torch")) -> dict:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def provenance(command: str, state, started: float, wall_seconds: float, *, device=None, versions=None) -> dict:
    """`state`: (commit, clean) as `tree_state` found it when the invocation started."""
    commit, clean = state
    return {
        "commit": commit, "tree_clean": clean, "command": command,
        "date": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": hardware(device), "versions": versions or library_versions(),
        "load_average_at_start": _load_average(),
        "wall_seconds": wall_seconds,
    }


def recipe_chain(config: Path) -> str:
    """The base configs a config inherits, nearest first (``families/x.yaml < base.yaml``)."""
    chain, path = [], config
    while True:
        base = (yaml.safe_load(path.read_text()) or {}).get("base")
        if not base:
            return " < ".join(chain) or "(no base)"
        path = (path.parent / base).resolve()
        chain.append(str(path.relative_to(ROOT / "configs")) if path.is_relative_to(ROOT / "configs") else str(path))


def _quick(config: str, protocol: str) -> list[str]:
    """QUICK; for a recipe with train.phases, 1000 steps of its first phase and 200 of the
    others; for a marched recipe, 1000 Adam steps in the first window, 100 + 50 L-BFGS in the
    others. A protocol fixes the optimiser (one Adam phase), so --quick only shortens it."""
    from pinnjax.config import load_config

    rest = [o for o in QUICK if not o.startswith(("train.steps=", "train.lbfgs_steps="))]
    if protocol != "default":
        return ["train.phases.0.steps=1000"] + rest
    cfg = load_config(ROOT / "configs" / f"{config}.yaml")
    if cfg.march.window is not None:  # a marched recipe: shorter windows' budgets
        return ["march.first_steps=1000", "march.steps=100", "march.lbfgs_steps=50"] + rest
    phases = cfg.train.phases
    if phases is None:
        return QUICK
    return [f"train.phases.{i}.steps={1000 if i == 0 else 200}" for i in range(len(phases))] + rest


# --- accuracy runs ------------------------------------------------------------------------------


# Each run folder's ledger: the commit and overrides it started with, and every invocation
# that worked on it (so that `--resume` can continue it, and its row can say so).
LEDGER = "reproduce_run.json"


def _alive(pid, run_dir: Path) -> bool:
    """Whether process `pid` still runs and works on `run_dir` (an orphan of a killed invocation)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, TypeError):
        return False
    return str(run_dir) in cmdline


def _ledger_to_continue(run_dir: Path, config: str, overrides: list[str], state) -> dict | None:
    """The ledger of the run in `run_dir` if `--resume` may continue it, None if there is none;
    exits naming the reason where a run is there but continuing it would mix two code states."""
    ledger = load_json(run_dir / LEDGER)
    if ledger is None:
        return None
    commit, clean = state
    if not (clean and ledger["tree_clean"] and ledger["commit"] == commit):
        then = f"{(ledger['commit'] or '?')[:10]} ({'clean' if ledger['tree_clean'] else 'uncommitted changes'})"
        now = f"{(commit or '?')[:10]} ({'clean' if clean else 'uncommitted changes'})"
        raise SystemExit(f"reproduce --resume: {run_dir} was started at {then}, the tree is now at {now}; "
                         "a resumed run must continue on the same clean commit (rerun without --resume to start afresh)")
    if (ledger["config"], ledger["overrides"]) != (config, overrides):
        raise SystemExit(f"reproduce --resume: {run_dir} was started with overrides {ledger['overrides']}, "
                         f"this invocation gives {overrides}; rerun without --resume to start afresh")
    last = ledger["invocations"][-1] if ledger["invocations"] else {}
    if "returncode" not in last and _alive(last.get("pid"), run_dir):
        raise SystemExit(f"reproduce --resume: process {last['pid']} is still working on {run_dir}; stop it first")
    return ledger


def _close_interrupted(ledger: dict, run_dir: Path):
    """Give an invocation that was killed (no return code) the wall time up to its last
    checkpoint: the work after it is lost and done again by the next invocation."""
    newest = max((f.stat().st_mtime for f in (run_dir / "checkpoints").glob("*")), default=None) \
        if (run_dir / "checkpoints").is_dir() else None
    for inv in ledger["invocations"]:
        if "returncode" not in inv:
            inv["interrupted"] = True
            inv["wall_seconds"] = max(0.0, newest - inv["started"]) if newest else 0.0
            inv["returncode"] = None


def run_one(config: str, seed: int, out: Path, quick: bool, protocol: str, extra: list[str], command: str, state,
            resume: bool = False) -> dict:
    """One accuracy run into ``out/runs/<config>-seed<seed>``. A rerun starts clean, so it gives
    the same numbers; with `resume`, a run an interrupted invocation left there is continued
    from its last checkpoint (a finished one is kept), on the same clean commit only."""
    suffix = ("-quick" if quick else "") + ("" if protocol == "default" else f"-{protocol}")
    run_dir = out / "runs" / f"{config}-seed{seed}{suffix}"
    config_path = ROOT / "configs" / f"{config}.yaml"
    overrides = [f"seed={seed}"] + PROTOCOLS[protocol] + (_quick(config, protocol) if quick else []) + extra
    ledger = _ledger_to_continue(run_dir, config, overrides, state) if resume else None
    if ledger is None:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        ledger = dict(config=config, overrides=overrides, commit=state[0], tree_clean=state[1], invocations=[])
    _close_interrupted(ledger, run_dir)
    stderr = ""
    last = ledger["invocations"][-1] if ledger["invocations"] else {}
    if not (last.get("returncode") == 0 and (run_dir / "metrics.json").exists()):  # not finished yet
        if any((run_dir / "checkpoints").glob("*")):
            cmd = [sys.executable, "-m", "pinnjax", "resume", str(run_dir)]
        else:
            cmd = [sys.executable, "-m", "pinnjax", "run", str(config_path), "--out", str(run_dir)]
            for o in overrides:
                cmd += ["--set", o]
        started, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        ledger["invocations"].append(dict(command=command, started=started, pid=proc.pid,
                                          resumed=cmd[3] == "resume", load_average_at_start=_load_average()))
        atomic_write_text(run_dir / LEDGER, json.dumps(ledger, indent=2) + "\n")
        _, stderr = proc.communicate()
        ledger["invocations"][-1].update(wall_seconds=time.perf_counter() - t0, returncode=proc.returncode)
        atomic_write_text(run_dir / LEDGER, json.dumps(ledger, indent=2) + "\n")
    first, last = ledger["invocations"][0], ledger["invocations"][-1]
    rec = dict(config=config, seed=seed, protocol=protocol, quick=quick, overrides=PROTOCOLS[protocol] + extra,
               recipe=recipe_chain(config_path), returncode=last["returncode"])
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    device = metrics.get("device")
    if device and metrics.get("device_kind"):
        device = f"{device} ({metrics['device_kind']})"
    wall = sum(inv["wall_seconds"] for inv in ledger["invocations"])
    rec["provenance"] = provenance(first["command"], state, first["started"], wall, device=device,
                                   versions={**library_versions(), **metrics.get("versions", {})})
    rec["provenance"]["load_average_at_start"] = first["load_average_at_start"]
    if len(ledger["invocations"]) > 1:
        rec["provenance"]["invocations"] = [
            {k: inv[k] for k in ("command", "wall_seconds", "resumed")} | {"interrupted": bool(inv.get("interrupted"))}
            for inv in ledger["invocations"]]
    rec["wall_seconds"] = rec["provenance"]["wall_seconds"]
    if (run_dir / "config.yaml").exists():
        rec["resolved_config"] = yaml.safe_load((run_dir / "config.yaml").read_text())
    if last["returncode"] != 0 or not metrics:
        rec["error"] = (stderr.strip().splitlines() or ["no metrics.json written"])[-1]
        return rec
    rec.update({k: metrics.get(k) for k in ("l2re", "best_l2re", "steps", "train_seconds", "steps_per_second")})
    for k, v in metrics.items():
        if k.startswith("learned_") or k == "unknowns":
            rec[k] = v
    return rec


def expected_seconds(out: Path, protocol: str) -> dict:
    """Each config's mean wall time in the last results file of `protocol` (none: unknown, and
    so first), so that the longest runs start first and the parallel jobs end together. A
    config whose recipe chain has changed since counts as unknown."""
    old = load_json(out / ("accuracy.json" if protocol == "default" else f"accuracy_{protocol}.json")) or {}
    walls = {}
    for r in old.get("runs", []):
        path = ROOT / "configs" / f"{r['config']}.yaml"
        if path.is_file() and r.get("recipe") == recipe_chain(path):
            walls.setdefault(r["config"], []).append(r.get("wall_seconds") or 0.0)
    return {c: sum(w) / len(w) for c, w in walls.items()}


def run_accuracy(args, command: str, state):
    out = Path(args.out)
    jobs = [(c, s) for c in args.configs for s in args.seeds]
    expected = expected_seconds(out, args.protocol)
    jobs.sort(key=lambda job: -expected.get(job[0], float("inf")))  # longest first
    records = []
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = [pool.submit(run_one, c, s, out, args.quick, args.protocol, args.set, command, state, args.resume) for c, s in jobs]
        for f in futures.as_completed(futs):
            rec = f.result()
            records.append(rec)
            status = f"l2re {rec['l2re']:.2e}" if rec.get("l2re") is not None else rec.get("error", "no error metric")
            print(f"[{len(records)}/{len(jobs)}] {rec['config']} seed {rec['seed']}: {status} ({rec['wall_seconds']:.0f} s)",
                  flush=True)
    name = "accuracy" if args.protocol == "default" else f"accuracy_{args.protocol}"
    order = list(args.configs)
    old = load_json(out / f"{name}.json") if args.merge else None
    data = {k: v for k, v in (old or {}).items() if k not in ("rows", "runs")}
    if old:
        kept = [r for r in old.get("runs", []) if r["config"] not in args.configs]
        order = list(dict.fromkeys([r["config"] for r in kept] + order))
        records = kept + records
    records.sort(key=lambda r: (order.index(r["config"]), r["seed"]))
    data["runs"] = records
    write_result(name, data, out)


# --- benchmarks ---------------------------------------------------------------------------------


# name -> (script in scripts/ taking --json PATH, whether it takes --quick)
BENCHMARKS = {
    "derivatives": ("bench_derivatives.py", True),
    "peers": ("bench_peers.py", True),
    "regularisation": ("regularisation.py", False),
    "highdim": ("bench_highdim.py", True),  # --merge: keep the cost part (bench_highdim.py --keep-cost)
    "laplace_coverage": ("laplace_coverage.py", True),
    "curvature": ("curvature_spectra.py", True),
    "scaling": ("bench_scaling.py", True),
}


def run_benchmark(name: str, args, command: str, state):
    """Run a benchmark script into a temporary JSON file, add the provenance, write results."""
    script, has_quick = BENCHMARKS[name]
    if args.quick and not has_quick:
        raise SystemExit(f"reproduce: {script} has no --quick mode; run '--run {name}' without --quick")
    started, t0 = time.time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_json = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, str(ROOT / "scripts" / script), "--json", str(tmp_json)] + (["--quick"] if args.quick else [])
        if name == "highdim":  # its accuracy runs, --jobs at a time
            cmd += ["--jobs", str(args.jobs)] + (["--keep-cost", str(Path(args.out) / "highdim.json")] if args.merge else [])
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            raise SystemExit(f"reproduce: {script} failed; results/{name}.json left as it was")
        data = json.loads(tmp_json.read_text())
    data["provenance"] = provenance(command, state, started, time.perf_counter() - t0)
    write_result(name, data, Path(args.out))


# --- rendering and checking ---------------------------------------------------------------------


def load_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def derive(name: str, data: dict) -> dict:
    """The JSON as the script makes it: an accuracy file's rows are recomputed from its runs."""
    if name.startswith("accuracy"):
        data = dict(data, rows=tables.summarise(data["runs"], PUBLISHED, PUBLISHED_RECENT))
    return data


# Results files whose table another script renders: name -> (module in scripts/, function of
# the JSON data returning the Markdown). reproduce.py still runs and checks them.
SCRIPT_RENDERERS = {
    "optimisers": ("bench_optimisers", "markdown"),
    "optimisers_linalg": ("bench_optimisers", "linalg_markdown"),
    "optimisers_recipes": ("bench_optimisers", "recipes_markdown"),
    "laplace_coverage": ("laplace_coverage", "markdown"),
    "curvature": ("curvature_spectra", "markdown"),
    "scaling": ("bench_scaling", "markdown"),
}


def renderer(name: str):
    """The function making ``<name>.md`` from ``<name>.json``, or None."""
    own = tables.RENDERERS.get("accuracy" if name.startswith("accuracy") else name)
    if own is not None or name not in SCRIPT_RENDERERS:
        return own
    module, function = SCRIPT_RENDERERS[name]
    return getattr(importlib.import_module(module), function)


# Tables made from several JSON files: name -> the JSON files (stems) it is generated from.
COMBINED_TABLES = {"pinnacle_side_by_side": ("accuracy", "accuracy_pinnacle")}


def generated(out: Path) -> tuple[dict[Path, str], list[str]]:
    """Every file the JSON in `out` determines, with its content, and the JSON files that have
    no renderer."""
    files, data_by_name, orphans = {}, {}, []
    for json_path in sorted(out.glob("*.json")):
        name = json_path.stem
        render = renderer(name)
        if render is None:
            orphans.append(f"{shown(json_path)}: no renderer for '{name}' (scripts/results_tables.py RENDERERS, "
                           "or SCRIPT_RENDERERS in scripts/reproduce.py)")
            continue
        data = derive(name, json.loads(json_path.read_text()))
        data_by_name[name] = data
        files[json_path] = json.dumps(data, indent=2) + "\n"
        files[json_path.with_suffix(".md")] = render(data)
    for name, sources in COMBINED_TABLES.items():
        if all(src in data_by_name for src in sources):
            files[out / f"{name}.md"] = tables.render_pinnacle_side_by_side(
                *(data_by_name[src] for src in sources), PUBLISHED, PUBLISHED_VANILLA)
    if out.resolve() == RESULTS.resolve() and README.exists():
        files[README] = readme_with_section(README.read_text(), tables.render_readme(data_by_name))
    return files, orphans


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def matches(path: Path, text: str) -> bool:
    """Whether `path` holds `text`; JSON compares by content, whatever its indentation."""
    if not path.exists():
        return False
    if path.suffix == ".json":
        return json.loads(path.read_text()) == json.loads(text)
    return path.read_text() == text


def readme_with_section(text: str, section: str) -> str:
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"reproduce: README.md lacks the marker lines {README_BEGIN!r} / {README_END!r}")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return head + README_BEGIN + "\n" + section.rstrip("\n") + "\n" + README_END + tail


def write_result(name: str, data: dict, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    render_all(out)
    print((out / f"{name}.md").read_text())


def render_all(out: Path):
    files, orphans = generated(out)
    if orphans:
        raise SystemExit("reproduce: " + "; ".join(orphans))
    for path, text in files.items():
        if not matches(path, text):
            path.write_text(text)
            print(f"wrote {shown(path)}", file=sys.stderr)


def first_difference(path: Path, actual: str | None, expected: str) -> str:
    if actual is None:
        return f"{shown(path)}: missing (the JSON beside it makes it)"
    if path.suffix == ".json":  # compare content: line numbers of the file re-indented as written
        actual = json.dumps(json.loads(actual), indent=2) + "\n"
    pairs = itertools.zip_longest(actual.splitlines(), expected.splitlines())
    for n, (a, e) in enumerate(pairs, start=1):
        if a != e:
            return f"{shown(path)}:{n}: file has {a!r}, the JSON gives {e!r}"
    return f"{shown(path)}: differs in line endings or the final newline"


def check(out: Path) -> list[str]:
    """Differences between the files in `out` (and the README section) and what their JSON gives."""
    files, problems = generated(out)
    problems += [first_difference(p, p.read_text() if p.exists() else None, text)
                 for p, text in files.items() if not matches(p, text)]
    for md in sorted(out.glob("*.md")):
        if md not in files and not md.with_suffix(".json").exists():
            problems.append(f"{shown(md)}: no JSON beside it; every table in results/ is generated from its JSON")
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs="+", choices=("accuracy", *BENCHMARKS), default=None,
                   help="what to measure (default: accuracy)")
    p.add_argument("--check", action="store_true", help="regenerate every table in memory and fail on any difference")
    p.add_argument("--render", action="store_true", help="rewrite every table (and the README section) from the JSON")
    p.add_argument("--configs", nargs="+", help="default: every problem; with --protocol pinnacle, the PINNacle rows")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="reduced budgets, marked in the tables")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="default",
                   help="pinnacle: PINNacle's training protocol, into results/accuracy_pinnacle.*")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)), help="runs in parallel (default: one per core)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--set", action="append", default=[], help="extra override for every run (recorded per run)")
    p.add_argument("--merge", action="store_true", help="keep the runs of other problems already in the JSON "
                   "(--run highdim: keep its cost part, rerun the accuracy part)")
    p.add_argument("--resume", action="store_true", help="continue the run folders an interrupted invocation "
                   "left in OUT/runs (same clean commit and overrides): finished runs are kept, the others resume "
                   "from their last checkpoint; their rows record every invocation")
    args = p.parse_args(argv)
    args.configs = args.configs or (PINNACLE_CONFIGS if args.protocol == "pinnacle" else DEFAULT_CONFIGS)
    out = Path(args.out)
    if args.check:
        problems = check(out)
        for line in problems:
            print(line, file=sys.stderr)
        print(f"reproduce --check: {len(problems)} difference(s)" if problems else "reproduce --check: every table matches its JSON")
        return 1 if problems else 0
    if args.render:
        render_all(out)
        return 0
    command = "python scripts/reproduce.py " + " ".join(sys.argv[1:] if argv is None else argv)
    state = tree_state()  # before anything runs: what the measurements ran on
    for what in args.run or ["accuracy"]:
        if what == "accuracy":
            run_accuracy(args, command, state)
        else:
            run_benchmark(what, args, command, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
