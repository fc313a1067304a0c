"""Plots of a ``diagnostics.json`` record (matplotlib's object API, as ``train/_plots.py``)."""

from __future__ import annotations

import pathlib

import numpy as np

from ..train._plots import _figure, _save


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

    fig, axes = _figure(1, 1, w=5.5)
    ax = axes[0, 0]
    steps = [r["step"] for r in record["checkpoints"]]
    series = {
        "Hessian max": [r["hessian"]["largest"][0] for r in record["checkpoints"]],
        "-(Hessian min)": [-r["hessian"]["smallest"][0] for r in record["checkpoints"]],
        "Gauss-Newton max": [r["gauss_newton"]["largest"][0] for r in record["checkpoints"]],
        "Gauss-Newton min": [r["gauss_newton"]["smallest"][0] for r in record["checkpoints"]],
    }
    for label, values in series.items():
        pts = [(s, v) for s, v in zip(steps, values) if v > 0]
        if pts:
            ax.semilogy(*zip(*pts), marker="o", label=label)
    ax.set(title="extreme eigenvalues", xlabel="step")
    ax.legend(fontsize=8)
    written.append(_save(fig, plots_dir / "extreme_eigenvalues.png"))

    if record.get("uncertainty"):
        path = plot_uncertainty(record["uncertainty"], plots_dir / "unknowns.png")
        if path is not None:
            written.append(path)
    return written


def plot_uncertainty(unc: dict, path) -> pathlib.Path | None:
    """Each unknown's estimate and its Laplace interval, entry by entry (a grid unknown's
    entries are its nodes: the pointwise band)."""
    shown = {n: u for n, u in unc.get("unknowns", {}).items() if "sd" in u}
    if not shown:
        return None
    fig, axes = _figure(1, len(shown), w=5.0)
    for ax, (name, u) in zip(axes[0], shown.items()):
        value, lo, hi = (np.asarray(u[k]) for k in ("value", "lower", "upper"))
        idx = np.arange(value.shape[0])
        if value.shape[0] > 1:
            ax.fill_between(idx, lo, hi, alpha=0.3, label=f"{100 * unc['level']:g}% interval")
        else:
            ax.errorbar(idx, value, yerr=[value - lo, hi - value], fmt="none", capsize=4,
                        label=f"{100 * unc['level']:g}% interval")
        ax.plot(idx, value, marker="o", label="estimate")
        ax.set(title=f"{name}: Laplace uncertainty (noise {unc['noise']:g})", xlabel="entry")
        ax.legend(fontsize=8)
    return _save(fig, pathlib.Path(path))
