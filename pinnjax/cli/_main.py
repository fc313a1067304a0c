"""The ``pinnjax`` command: ``run``, ``resume``, ``eval``, ``predict``, ``export``, ``diagnose``, ``list``."""

from __future__ import annotations

import argparse
import datetime
import pathlib
import sys

from .._cpu_flags import use_fast_cpu_flags
from ..config import ConfigError, load_config
from ..io import CheckpointError

EXIT_USAGE = 2


def _die(message: str, status: int = EXIT_USAGE):
    print(f"pinnjax: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _prepare(config_path: pathlib.Path, overrides, base_dir=None):
    """Load, validate and resolve: nothing is written before this succeeds."""
    from ._resolve import make_problem, resolve_problem_class

    cfg = load_config(config_path, overrides)
    from ..train import initialize_distributed

    initialize_distributed(cfg.distributed)  # a multi-process run: before any backend starts
    if cfg.model.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)  # process-wide, before any array exists
    cls, canonical = resolve_problem_class(cfg.problem.name, base_dir or config_path.parent)
    if canonical != cfg.problem.name:
        import dataclasses

        cfg = dataclasses.replace(cfg, problem=dataclasses.replace(cfg.problem, name=canonical))
    problem = make_problem(cls, dict(cfg.problem.params))
    from ..train import make_spec

    make_spec(problem, cfg)  # the config against the problem: ConfigError naming the key
    _check_model_and_reference(problem, cfg)
    return cfg, problem


def _check_model_and_reference(problem, cfg):
    """Build the network abstractly and read the problem's reference: what fails here (an
    unknown activation, an embedding that does not fit, reference data of the wrong shape)
    is a ConfigError before anything is written."""
    import equinox as eqx
    import jax

    from ..train import build_model, eval_set, precision

    with precision(cfg.model.dtype):
        try:
            eqx.filter_eval_shape(lambda: build_model(problem, cfg.model, key=jax.random.key(0)))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"key 'model': {exc}") from None
        ref = problem.reference()
        if ref is not None:
            try:
                eval_set(problem, cfg.eval.points, reference=ref)
            except ValueError as exc:
                raise ConfigError(f"problem.name: {exc}") from None


# Keys a resumed run cannot change: they fix the shapes or the meaning of its saved state.
_FIXED_ON_RESUME = ("problem", "model", "seed", "sampling.interior", "sampling.boundary",
                    "sampling.initial", "sampling.rad", "sampling.rad_pool")


def _changed_keys(old: dict, new: dict, prefix: str = ""):
    for key in sorted(set(old) | set(new)):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _changed_keys(a, b, name + ".")
        elif a != b:
            yield name, a, b


def _check_resume_overrides(saved, cfg):
    from ..config import config_to_dict

    for key, then, now in _changed_keys(config_to_dict(saved), config_to_dict(cfg)):
        if any(key == f or key.startswith(f + ".") for f in _FIXED_ON_RESUME):
            raise ConfigError(
                f"key '{key}' cannot change when resuming ({then!r} in the run, {now!r} now): "
                "start a new run with 'pinnjax run'"
            )


def _finish(metrics: dict, run_dir: pathlib.Path):
    """Print the run's result; fit has written metrics.json (with versions, seed, revision)."""
    l2 = metrics.get("l2re")
    line = f"steps {metrics.get('steps')}, train {metrics.get('train_seconds', 0):.1f} s"
    if l2 is not None:
        line = f"L2 relative error {l2:.3e} (best {metrics.get('best_l2re', l2):.3e}), " + line
    print(line)
    print(f"run folder: {run_dir}")


def cmd_run(args):
    config_path = pathlib.Path(args.config)
    cfg, problem = _prepare(config_path, args.set)
    short = pathlib.Path(cfg.problem.name.split(":")[-1]).stem.lower()
    if args.out:
        run_dir = pathlib.Path(args.out)
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = pathlib.Path(cfg.output.dir) / (cfg.output.name or f"{short}-{stamp}")
    if run_dir.exists() and not run_dir.is_dir():
        _die(f"--out {run_dir} is a file, not a run folder")
    if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        _die(f"run folder {run_dir} already holds a run; continue it with 'pinnjax resume {run_dir}' or pick --out")
    from ..train import fit

    metrics = fit(problem, cfg, run_dir, resume=False)  # writes config.yaml and metrics.json
    _finish(metrics, run_dir)


def _run_dir_config(run_dir: pathlib.Path):
    if not run_dir.is_dir():
        _die(f"run folder not found: {run_dir}")
    if not (run_dir / "config.yaml").is_file():
        _die(f"{run_dir} has no config.yaml: not a pinnjax run folder")
    return run_dir / "config.yaml"


def cmd_resume(args):
    run_dir = pathlib.Path(args.run_dir)
    config_path = _run_dir_config(run_dir)
    if args.set:
        _check_resume_overrides(load_config(config_path), load_config(config_path, args.set))
    cfg, problem = _prepare(config_path, args.set, base_dir=pathlib.Path.cwd())
    from ..train import fit

    metrics = fit(problem, cfg, run_dir, resume=True)
    _finish(metrics, run_dir)


def cmd_eval(args):
    run_dir = pathlib.Path(args.run_dir)
    config_path = _run_dir_config(run_dir)
    cfg, problem = _prepare(config_path, (), base_dir=pathlib.Path.cwd())
    from ..train import evaluate_run

    metrics = evaluate_run(problem, cfg, run_dir)
    _finish(metrics, run_dir)


def _load_run(run_dir: pathlib.Path):
    _run_dir_config(run_dir)
    from .._solve import load

    return load(run_dir)


def cmd_predict(args):
    from ._predict import check_out, predict

    check_out(pathlib.Path(args.out), (".npy", ".csv"))  # before the (slow) load
    solution = _load_run(pathlib.Path(args.run_dir))
    out = predict(solution, points=args.points, grid=args.grid, times=args.times, out=args.out)
    print(f"wrote {out}")


def cmd_export(args):
    from ._predict import export

    solution = _load_run(pathlib.Path(args.run_dir))
    for path in export(solution, fmt=args.format, out=args.out, grid=args.grid, times=args.times):
        print(f"wrote {path}")


def cmd_diagnose(args):
    run_dir = pathlib.Path(args.run_dir)
    config_path = _run_dir_config(run_dir)
    cfg, _ = _prepare(config_path, (), base_dir=pathlib.Path.cwd())  # one-line errors; x64 for a float64 run
    from ..diagnostics import Settings, diagnose_run

    settings = Settings(k=args.k, steps=args.steps, probes=args.probes, density_steps=args.density_steps,
                        per_term=not args.no_terms)
    record = diagnose_run(run_dir, every_checkpoint=args.every_checkpoint, settings=settings,
                          plots=cfg.output.plots)
    s = record["summary"]
    print(f"step {s['step']}: Hessian eigenvalues [{s['hessian_min']:.3e}, {s['hessian_max']:.3e}], "
          f"Gauss-Newton [{s['gauss_newton_min']:.3e}, {s['gauss_newton_max']:.3e}] "
          f"(condition number {s['gauss_newton_condition_number']:.3e}); gradient norm {s['gradient_norm']:.3e}, "
          f"{s['negative_eigenvalues_found']} negative eigenvalue(s) found: {s['verdict']}")
    print(f"wrote {run_dir / 'diagnostics.json'}")


def cmd_list(args):
    from ..problems import PROBLEMS

    for name, cls in sorted(PROBLEMS.items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:22s} {doc[0] if doc else ''}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pinnjax", description="Physics-informed neural networks in JAX.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train a problem from a YAML config and write a run folder")
    r.add_argument("config", help="path to a YAML config (see configs/)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. train.steps=2000")
    r.add_argument("--out", help="run folder (default: output.dir/output.name or problem-timestamp)")
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("resume", help="continue a run from its last checkpoint")
    s.add_argument("run_dir")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.steps=20000 to train longer")
    s.set_defaults(func=cmd_resume)
    e = sub.add_parser("eval", help="recompute metrics and plots from a run's last checkpoint")
    e.add_argument("run_dir")
    e.set_defaults(func=cmd_eval)
    pr = sub.add_parser("predict", help="evaluate a finished run at new points")
    pr.add_argument("run_dir")
    pr.add_argument("--points", metavar="FILE", help="(N, dim) points, .npy or .csv (time last)")
    pr.add_argument("--grid", metavar="NxM", help="a grid over the spatial bounding box (inside the domain)")
    pr.add_argument("--times", metavar="T1,T2,...", help="times of the grid (time-dependent problems; default 11)")
    pr.add_argument("--out", required=True, metavar="FILE", help=".npy or .csv: coordinates then outputs, one row per point")
    pr.set_defaults(func=cmd_predict)
    ex = sub.add_parser("export", help="write a finished run's solution for ParaView (VTK) or numpy (npz)")
    ex.add_argument("run_dir")
    ex.add_argument("--format", required=True, choices=("vtk", "npz"))
    ex.add_argument("--out", required=True, metavar="FILE",
                    help=".vts (box) or .vtu (other domains), .pvd for a time series, or .npz")
    ex.add_argument("--grid", metavar="NxM", help="points per spatial axis (default 201, 101x101 or 41x41x41)")
    ex.add_argument("--times", metavar="T1,T2,...", help="times (time-dependent problems; default 11)")
    ex.set_defaults(func=cmd_export)
    dg = sub.add_parser("diagnose", help="curvature of a run's loss: spectra, critical point, uncertainty")
    dg.add_argument("run_dir")
    dg.add_argument("--every-checkpoint", action="store_true", help="every checkpoint kept, not only the newest")
    dg.add_argument("--k", type=_positive_int, default=5, help="extreme eigenvalues at each end (default 5)")
    dg.add_argument("--steps", type=_positive_int, default=60, help="Lanczos steps for the extremes (default 60)")
    dg.add_argument("--probes", type=_positive_int, default=4, help="probes of the spectral density (default 4)")
    dg.add_argument("--density-steps", type=_positive_int, default=30, help="Lanczos steps per probe (default 30)")
    dg.add_argument("--no-terms", action="store_true", help="skip the spectra of each loss term")
    dg.set_defaults(func=cmd_diagnose)
    l = sub.add_parser("list", help="list the shipped problems")
    l.set_defaults(func=cmd_list)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    use_fast_cpu_flags()  # before JAX starts its backend (pinnjax/_cpu_flags.py)
    try:
        args.func(args)
    except (ConfigError, CheckpointError) as exc:
        _die(" ".join(str(exc).split()))
    except KeyboardInterrupt:
        print("\npinnjax: interrupted; the last checkpoint is kept (continue with 'pinnjax resume RUN_DIR')", file=sys.stderr)
        return 130
    except FileNotFoundError as exc:
        _die(str(exc))
    except FloatingPointError as exc:
        _die(str(exc), status=1)
    return 0
