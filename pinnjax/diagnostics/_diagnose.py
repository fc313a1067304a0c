"""``pinnjax diagnose RUN``: the curvature of a run's loss at its checkpoints, written to
``diagnostics.json`` and ``plots/``, and the lighter record ``diagnostics.every`` keeps
during training.

At one state: the critical-point report (Hessian), the extreme eigenvalues of the Hessian and
of the Gauss-Newton matrix ``2 J^T J`` and the latter's condition number, their spectral
densities (SLQ), the same per loss term (residual against boundary, initial and data terms:
``L_i = sum(r_i**2)`` alone), and for an inverse problem with a known noise level the Laplace
uncertainty of the unknowns."""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np

from ._critical import critical_point_report
from ._lanczos import condition_number, extreme_eigenvalues, spectral_density
from ._laplace import laplace_unknowns
from ._objective import flat_loss
from ._products import curvature_operator

KINDS = ("hessian", "gauss_newton")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much Lanczos work a diagnosis does."""

    k: int = 5  # extreme eigenvalues reported at each end
    steps: int = 60  # Lanczos steps for the extremes
    probes: int = 4  # SLQ probes
    density_steps: int = 30  # Lanczos steps per probe
    per_term: bool = True
    seed: int = 0


def _density_summary(density, kind: str) -> dict:
    """SLQ nodes and weights, kept for plotting (the Gauss-Newton density on a log axis)."""
    return {"nodes": [n.tolist() for n in density.nodes], "weights": [w.tolist() for w in density.weights],
            "kind": kind}


def curvature_at(spec, state, settings: Settings = Settings(), *, extremes_only: bool = False) -> dict:
    """The curvature record of one state (module docs); `extremes_only`: just the extreme
    eigenvalues of both matrices (what ``diagnostics.every`` records)."""
    fl = flat_loss(spec, state)
    dim = fl.flat.shape[0]
    dtype = np.asarray(fl.flat).dtype
    out = {"step": int(state.step), "parameters": int(dim), "residuals": int(sum(fl.sizes))}

    def spectra(term):
        rec = {}
        for kind in KINDS:
            op = curvature_operator(fl, kind, term)
            ext = extreme_eigenvalues(op, dim, k=settings.k, steps=settings.steps, seed=settings.seed, dtype=dtype)
            rec[kind] = ext
            if not extremes_only:
                dens = spectral_density(op, dim, steps=settings.density_steps, probes=settings.probes,
                                        seed=settings.seed, dtype=dtype)
                rec[kind + "_density"] = _density_summary(dens, kind)
        rec["gauss_newton_condition_number"] = condition_number(rec["gauss_newton"])
        return rec

    out.update(spectra(None))
    if extremes_only:
        return out
    out["critical_point"] = critical_point_report(jax.jit(fl.loss), fl.flat, extremes=out["hessian"])
    if settings.per_term and len(fl.sizes) > 1:
        out["terms"] = {name: spectra(i) for i, name in enumerate(fl.term_names)}
    return out


def curvature_row(spec, state, dcfg) -> dict:
    """One ``diagnostics.csv`` row (``diagnostics.every``): the extreme eigenvalues of the
    Hessian and the Gauss-Newton matrix, `dcfg.lanczos_steps` Lanczos steps each."""
    return extremes_row(curvature_at(spec, state, Settings(k=dcfg.k, steps=dcfg.lanczos_steps), extremes_only=True))


def extremes_row(rec: dict) -> dict:
    """The extreme eigenvalues of a curvature record as one flat row (``diagnostics.csv``)."""
    row = {"step": rec["step"]}
    for kind in KINDS:
        row[f"{kind}_max"] = rec[kind]["largest"][0]
        row[f"{kind}_min"] = rec[kind]["smallest"][0]
    row["gauss_newton_condition_number"] = rec["gauss_newton_condition_number"]
    return row


def uncertainty(spec, state, cfg) -> dict | None:
    """The Laplace uncertainty of the unknowns (None when the problem has none, or no noise
    level is known: ``diagnostics.noise`` or the problem's ``noise``)."""
    from ..problem import unknown_names

    if not unknown_names(state.problem):
        return None
    noise = cfg.diagnostics.noise or getattr(state.problem, "noise", None)
    if not noise:
        return None
    return laplace_unknowns(flat_loss(spec, state), noise=float(noise), data_term=cfg.diagnostics.data_term,
                            level=cfg.diagnostics.level)


def diagnose_run(run_dir, *, every_checkpoint: bool = False, settings: Settings = Settings(), plots: bool = True) -> dict:
    """Diagnose the newest checkpoint of `run_dir` that verifies (or every checkpoint, oldest
    first); write ``diagnostics.json`` and, with `plots`, ``plots/spectral_density.png``,
    ``plots/term_spectra.png``, ``plots/extreme_eigenvalues.png`` (across checkpoints),
    ``plots/unknowns.png`` (inverse problems with a noise level) and
    ``plots/curvature_history.png`` (a run that recorded ``diagnostics.every``). Returns the
    record."""
    from .._solve import load
    from ..io import list_checkpoints, write_json
    from ..train import make_spec, precision
    from ..train._state import load_state

    run_dir = pathlib.Path(run_dir)
    solution = load(run_dir)
    cfg = solution.config
    with precision(cfg.model.dtype, cfg.model.matmul_precision):
        spec = make_spec(solution.problem, cfg)
        states = [solution._state]
        if every_checkpoint:
            states = [load_state(path, solution.problem, spec, cfg.model, seed=cfg.seed)
                      for _, path in list_checkpoints(run_dir / "checkpoints")]
        records = [curvature_at(spec, s, settings) for s in states]
        final = records[-1]
        unc = uncertainty(spec, states[-1], cfg)
    record = {"run": str(run_dir), "settings": dataclasses.asdict(settings), "checkpoints": records}
    if unc is not None:
        record["uncertainty"] = unc
    record["summary"] = summary(final, unc)
    write_json(run_dir / "diagnostics.json", record)
    if plots:
        from ..train._evaluate import read_history
        from ._plots import plot_diagnostics, plot_extremes

        plot_diagnostics(record, run_dir / "plots")
        recorded = read_history(run_dir, "diagnostics.csv")  # diagnostics.every during training
        if recorded:
            plot_extremes(recorded, run_dir / "plots" / "curvature_history.png")
    return record


def summary(rec: dict, unc: dict | None = None) -> dict:
    """The headline numbers of a record (printed by the CLI)."""
    cp = rec.get("critical_point", {})
    out = {
        "step": rec["step"],
        "hessian_max": rec["hessian"]["largest"][0],
        "hessian_min": rec["hessian"]["smallest"][0],
        "gauss_newton_max": rec["gauss_newton"]["largest"][0],
        "gauss_newton_min": rec["gauss_newton"]["smallest"][0],
        "gauss_newton_condition_number": rec["gauss_newton_condition_number"],
        "gradient_norm": cp.get("gradient_norm"),
        "negative_eigenvalues_found": cp.get("negative_eigenvalues_found"),
        "verdict": cp.get("verdict"),
    }
    if unc is not None:
        out["unknowns_sd"] = {name: u.get("sd") for name, u in unc["unknowns"].items()}
    return out
