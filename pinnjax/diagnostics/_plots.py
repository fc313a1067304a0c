"""Plots of a ``diagnostics.json`` record (matplotlib's object API, as ``train/_plots.py``)."""

from __future__ import annotations

import pathlib

import numpy as np

from ..train._plots import _figure, _save
from ._diagnose import extremes_row


def _log_histogram(density: dict, sign: float = 1.0, bins: int = 40):
    """Fraction of the eigenvalues of one sign per bin of log10 |lambda|: a PINN spectrum
    spans many decades (SLQ weights, averaged over the probes)."""
    nodes = np.concatenate([np.asarray(x) for x in density["nodes"]])
    weights = np.concatenate([np.asarray(w) for w in density["weights"]]) / len(density["nodes"])
    keep = sign * nodes > 0
    if not np.any(keep):
        return None, None
    logs = np.log10(np.abs(nodes[keep]))
    edges = np.linspace(logs.min() - 0.1, logs.max() + 0.1, bins + 1)
    hist, _ = np.histogram(logs, edges, weights=weights[keep])
    return 0.5 * (edges[1:] + edges[:-1]), hist


def plot_diagnostics(record: dict, plots_dir) -> list[pathlib.Path]:
    plots_dir = pathlib.Path(plots_dir)
    final = record["checkpoints"][-1]
    written = []

    def panels(axes, rec, label=None, color=None):
        for sign, style in ((1.0, "-"), (-1.0, "--")):
            c, h = _log_histogram(rec["hessian_density"], sign)
            if c is not None:
                axes[0, 0].step(c, h, style, where="mid", color=color,
                                label=f"{label or 'Hessian'} {'positive' if sign > 0 else 'negative'}")
        c, h = _log_histogram(rec["gauss_newton_density"])
        if c is not None:
            axes[0, 1].step(c, h, where="mid", color=color, label=label)

    fig, axes = _figure(1, 2, w=5.0)
    if "hessian_density" in final:
        panels(axes, final)
    if "terms" in final:
        fig2, axes2 = _figure(1, 2, w=5.0)
        for i, (name, rec) in enumerate(final["terms"].items()):
            panels(axes2, rec, name, f"C{i}")
        axes2[0, 0].set(title="Hessian spectrum per loss term", xlabel="log10 |eigenvalue|", ylabel="fraction")
        axes2[0, 1].set(title="Gauss-Newton spectrum per loss term", xlabel="log10 eigenvalue")
        for ax in axes2[0]:
            ax.legend(fontsize=7)
        written.append(_save(fig2, plots_dir / "term_spectra.png"))
    axes[0, 0].set(title=f"Hessian spectrum (SLQ, step {final['step']})", xlabel="log10 |eigenvalue|", ylabel="fraction")
    axes[0, 1].set(title="Gauss-Newton spectrum (SLQ)", xlabel="log10 eigenvalue")
    axes[0, 0].legend(fontsize=8)
    written.insert(0, _save(fig, plots_dir / "spectral_density.png"))

    rows = [extremes_row(r) for r in record["checkpoints"]]
    written.append(plot_extremes(rows, plots_dir / "extreme_eigenvalues.png", "extreme eigenvalues (checkpoints)"))

    if record.get("uncertainty"):
        path = plot_uncertainty(record["uncertainty"], plots_dir / "unknowns.png")
        if path is not None:
            written.append(path)
    return written


def plot_extremes(rows: list[dict], path, title: str = "extreme eigenvalues during training") -> pathlib.Path:
    """The extreme eigenvalues of the Hessian and the Gauss-Newton matrix against the step, on
    a log axis (a negative smallest Hessian eigenvalue as its magnitude, dashed), from rows
    with ``step``, ``hessian_max``, ``hessian_min``, ``gauss_newton_max``, ``gauss_newton_min``
    (``diagnostics.csv``, written by ``diagnostics.every``); with the Gauss-Newton condition
    number beside it when the rows have it."""
    has_cond = any("gauss_newton_condition_number" in r for r in rows)
    fig, axes = _figure(1, 2 if has_cond else 1, w=5.5)
    ax = axes[0, 0]
    series = {"Hessian max": ("hessian_max", 1.0, "-"), "Hessian min > 0": ("hessian_min", 1.0, "-"),
              "-(Hessian min < 0)": ("hessian_min", -1.0, "--"), "Gauss-Newton max": ("gauss_newton_max", 1.0, "-"),
              "Gauss-Newton min": ("gauss_newton_min", 1.0, "-")}
    for label, (key, sign, style) in series.items():
        pts = [(r["step"], sign * r[key]) for r in rows if key in r and sign * r[key] > 0]
        if pts:
            ax.semilogy(*zip(*pts), style, marker="o", ms=3, label=label)
    ax.set(title=title, xlabel="step")
    ax.legend(fontsize=8)
    if has_cond:
        pts = [(r["step"], r["gauss_newton_condition_number"]) for r in rows
               if np.isfinite(r.get("gauss_newton_condition_number", np.nan))]
        if pts:
            axes[0, 1].semilogy(*zip(*pts), marker="o", ms=3)
        axes[0, 1].set(title="Gauss-Newton condition number", xlabel="step")
    return _save(fig, pathlib.Path(path))


def plot_uncertainty(unc: dict, path) -> pathlib.Path | None:
    """Each unknown's estimate and its Laplace interval: a field unknown with a pointwise band
    against x (with the true field where the problem knows it), any other entry by entry."""
    shown = {n: u for n, u in unc.get("unknowns", {}).items() if "sd" in u or "band" in u}
    if not shown:
        return None
    fig, axes = _figure(1, len(shown), w=5.0)
    interval = f"{100 * unc['level']:g}% interval"
    for ax, (name, u) in zip(axes[0], shown.items()):
        if "band" in u:
            b = u["band"]
            ax.fill_between(b["x"], b["lower"], b["upper"], alpha=0.3, label=f"{100 * unc['level']:g}% band")
            ax.plot(b["x"], b["value"], label="estimate")
            if "true" in b:
                ax.plot(b["x"], b["true"], "k--", lw=1, label="true")
            ax.set(xlabel="x")
        else:
            value, lo, hi = (np.asarray(u[k]) for k in ("value", "lower", "upper"))
            idx = np.arange(value.shape[0])
            if value.shape[0] > 1:
                ax.fill_between(idx, lo, hi, alpha=0.3, label=interval)
            else:
                ax.errorbar(idx, value, yerr=[value - lo, hi - value], fmt="none", capsize=4, label=interval)
            ax.plot(idx, value, marker="o", label="estimate")
            ax.set(xlabel="entry")
        ax.set(title=f"{name}: Laplace uncertainty (noise {unc['noise']:g})")
        ax.legend(fontsize=8)
    return _save(fig, pathlib.Path(path))
