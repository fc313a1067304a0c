"""Run plots: loss history per term, and solution / reference / error in a form that fits
the problem's dimension (line for 1-D, filled contours for 2-D, time slices for space-time,
a 2-D slice through the middle above that). Matplotlib's object API only: no pyplot state."""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..io import atomic_write_bytes
from ._evaluate import eval_set, model_dtype

_MAX_PLOT_POINTS = 20000


def _figure(nrows, ncols, w=4.2, h=3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w * ncols, h * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return atomic_write_bytes(path, buf.getvalue())


def plot_history(rows, path) -> pathlib.Path | None:
    """Loss of every term (and the total) against step, with the L2 relative error."""
    rows = [r for r in rows if "step" in r]
    if not rows:
        return None
    cols = [k for k in rows[0] if k.startswith("loss")]
    for r in rows:
        cols += [k for k in r if k.startswith("loss") and k not in cols]
    has_err = any("l2re" in r for r in rows)
    fig, axes = _figure(1, 2 if has_err else 1, w=5.5)
    ax = axes[0, 0]
    for c in cols:
        pts = [(r["step"], r[c]) for r in rows if c in r and np.isfinite(r[c]) and r[c] > 0]
        if pts:
            s, v = zip(*pts)
            ax.semilogy(s, v, label=c, lw=1.8 if c == "loss" else 1.0)
    switch = [r["step"] for r in rows if r.get("phase") == "lbfgs"]
    if switch:
        for a in axes[0]:
            a.axvline(min(switch), color="gray", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_title("loss")
    ax.legend(fontsize=8)
    if has_err:
        pts = [(r["step"], r["l2re"]) for r in rows if "l2re" in r and np.isfinite(r["l2re"]) and r["l2re"] > 0]
        if pts:
            s, v = zip(*pts)
            axes[0, 1].semilogy(s, v, "o-", ms=3)
        axes[0, 1].set_xlabel("step")
        axes[0, 1].set_title("L2 relative error")
    return _save(fig, pathlib.Path(path))


# --- solution ------------------------------------------------------------------------


def _predict(problem, model, pts):
    dtype = model_dtype(model)
    pred = jax.jit(lambda p: problem.predict(model, p))(jnp.asarray(pts, dtype))
    return np.asarray(pred, np.float64)


def _exact(problem, pts, dtype):
    return np.asarray(problem.exact_batch(jnp.asarray(pts, dtype)), np.float64)


def _grid_in_domain(domain, axes, fixed, n):
    """Grid points over the bbox along `axes` (the other coordinates set from `fixed`),
    kept if inside the domain."""
    lo, hi = (np.asarray(b, np.float64) for b in domain.bbox())
    lines = [np.linspace(lo[a], hi[a], n) for a in axes]
    mesh = np.meshgrid(*lines, indexing="ij")
    pts = np.zeros((mesh[0].size, domain.dim))
    for a, v in fixed.items():
        pts[:, a] = v
    for a, m in zip(axes, mesh):
        pts[:, a] = m.ravel()
    inside = np.asarray(jax.vmap(domain.contains)(jnp.asarray(pts)))
    return pts[inside]


def _field(ax, fig, x, y, v, domain_mask, title, cmap="viridis"):
    """Filled contours of scattered values (scatter if they cannot be triangulated)."""
    import matplotlib.tri as mtri

    ax.set_title(title, fontsize=9)
    try:
        tri = mtri.Triangulation(x, y)
        if domain_mask is not None:
            cx, cy = x[tri.triangles].mean(1), y[tri.triangles].mean(1)
            tri.set_mask(~domain_mask(cx, cy))
        art = ax.tricontourf(tri, v, levels=40, cmap=cmap)
    except Exception:  # too few or collinear points
        art = ax.scatter(x, y, c=v, s=4, cmap=cmap)
    fig.colorbar(art, ax=ax)


def _subsample(n):
    if n <= _MAX_PLOT_POINTS:
        return np.arange(n)
    return np.random.default_rng(0).choice(n, _MAX_PLOT_POINTS, replace=False)


def plot_solution(problem, model, path, *, eval_points=10000) -> list[pathlib.Path]:
    """Solution, reference and error; one file per compared output."""
    domain, dim, ta = problem.domain, problem.domain.dim, problem.time_axis
    names = problem.coords
    dtype = model_dtype(model)
    reference = problem.reference()
    data = eval_set(problem, eval_points, dtype=dtype, reference=reference)
    ref_pts = None if data is None else np.asarray(data.points, np.float64)
    ref_vals = None if data is None else np.asarray(data.values, np.float64)
    has_exact = problem.has_exact
    n_cmp = len(problem.outputs) if ref_vals is None else ref_vals.shape[1]
    outputs = list(range(len(problem.outputs)))[: max(n_cmp, 1)][:4]
    path = pathlib.Path(path)
    out = []
    for o in outputs:
        target = path if len(outputs) == 1 else path.with_name(f"{path.stem}_{problem.outputs[o]}{path.suffix}")
        title = problem.outputs[o]
        cmp = ref_vals is not None and o < ref_vals.shape[1]

        if dim == 1:
            lo, hi = (float(b[0]) for b in domain.bbox())
            x = np.linspace(lo, hi, 512)[:, None]
            pred = _predict(problem, model, x)[:, o]
            fig, axes = _figure(1, 2)
            axes[0, 0].plot(x[:, 0], pred, label="prediction")
            if has_exact:
                ref = _exact(problem, x, dtype)[:, o]
                axes[0, 0].plot(x[:, 0], ref, "--", label="exact")
                ex, err = x[:, 0], np.abs(pred - ref)
            elif cmp:
                idx = np.argsort(ref_pts[:, 0])
                axes[0, 0].plot(ref_pts[idx, 0], ref_vals[idx, o], "--", label="reference")
                ex = ref_pts[idx, 0]
                err = np.abs(_predict(problem, model, ref_pts[idx])[:, o] - ref_vals[idx, o])
            else:
                ex = err = None
            axes[0, 0].set_xlabel(names[0])
            axes[0, 0].set_title(title)
            axes[0, 0].legend(fontsize=8)
            if err is not None:
                axes[0, 1].semilogy(ex, np.maximum(err, 1e-300))
            axes[0, 1].set_title("|error|")
            axes[0, 1].set_xlabel(names[0])
            out.append(_save(fig, target))
            continue

        # 2-D view(s): which two axes, at which values of the others
        if dim == 2:
            views = [((0, 1), {})]
        elif ta is not None and dim == 3:
            t0, t1 = (float(b[ta]) for b in domain.bbox())
            views = [((0, 1), {ta: t}) for t in np.linspace(t0, t1, 3)]
        else:
            lo, hi = (np.asarray(b, np.float64) for b in domain.bbox())
            fixed = {a: 0.5 * (lo[a] + hi[a]) for a in range(2, dim)}
            if ta is not None:
                fixed[ta] = hi[ta]
            views = [((0, 1), fixed)]

        nrows = 3 if (cmp or has_exact) else 1
        if len(views) == 1:  # one view: predicted, reference, error side by side
            fig, grid = _figure(1, nrows)
            axes = grid.T
        else:
            fig, axes = _figure(nrows, len(views))
        for col, (axs, fixed) in enumerate(views):
            pts = vals = None
            if dim == 2 and cmp:  # the evaluation set itself
                pts, vals = ref_pts, ref_vals[:, o]
            elif cmp and not has_exact and reference is not None:
                # reference nodes nearest to the slice (time snapshots for space-time data)
                keep = np.ones(len(ref_pts), bool)
                for a, v in fixed.items():
                    nearest = ref_pts[np.argmin(np.abs(ref_pts[:, a] - v)), a]
                    keep &= np.isclose(ref_pts[:, a], nearest)
                pts, vals = ref_pts[keep], ref_vals[keep, o]
            if pts is None:
                pts = _grid_in_domain(domain, axs, fixed, 120)
                vals = _exact(problem, pts, dtype)[:, o] if has_exact else None
            idx = _subsample(len(pts))
            pts = pts[idx]
            vals = None if vals is None else vals[idx]
            pred = _predict(problem, model, pts)[:, o]

            def mask(cx, cy, fixed=fixed, axs=axs):
                p = np.zeros((len(cx), dim))
                for a, v in fixed.items():
                    p[:, a] = v
                p[:, axs[0]], p[:, axs[1]] = cx, cy
                return np.asarray(jax.vmap(domain.contains)(jnp.asarray(p)))

            where = ", ".join(f"{names[a]}={v:.3g}" for a, v in fixed.items())
            suffix = f" ({where})" if where else ""
            x, y = pts[:, axs[0]], pts[:, axs[1]]
            _field(axes[0, col], fig, x, y, pred, mask, f"{title} predicted{suffix}")
            if vals is not None:
                _field(axes[1, col], fig, x, y, vals, mask, f"{title} reference{suffix}")
                _field(axes[2, col], fig, x, y, np.abs(pred - vals), mask, f"|error|{suffix}", cmap="magma")
            for r in range(axes.shape[0]):
                axes[r, col].set_xlabel(names[axs[0]])
                axes[r, col].set_ylabel(names[axs[1]])
        out.append(_save(fig, target))

        if ta is not None and dim == 2:  # 1-D space + time: profiles at a few times
            out.append(_time_slices(problem, model, o, ref_pts if cmp else None, ref_vals, target, dtype))
    return out


def _time_slices(problem, model, o, ref_pts, ref_vals, target, dtype):
    domain, ta = problem.domain, problem.time_axis
    xa = 1 - ta
    lo, hi = (np.asarray(b, np.float64) for b in domain.bbox())
    times = np.linspace(lo[ta], hi[ta], 4)
    fig, axes = _figure(1, len(times), w=3.6)
    for ax, t in zip(axes[0], times):
        if problem.has_exact or ref_pts is None:
            x = np.linspace(lo[xa], hi[xa], 256)
            pts = np.zeros((len(x), 2))
            pts[:, xa], pts[:, ta] = x, t
            ref = _exact(problem, pts, dtype)[:, o] if problem.has_exact else None
        else:
            t = ref_pts[np.argmin(np.abs(ref_pts[:, ta] - t)), ta]
            keep = np.isclose(ref_pts[:, ta], t)
            pts = ref_pts[keep][np.argsort(ref_pts[keep, xa])]
            ref = ref_vals[keep, o][np.argsort(ref_pts[keep, xa])]
        ax.plot(pts[:, xa], _predict(problem, model, pts)[:, o], label="prediction")
        if ref is not None:
            ax.plot(pts[:, xa], ref, "--", label="reference")
        ax.set_title(f"{problem.coords[ta]} = {t:.3g}", fontsize=9)
        ax.set_xlabel(problem.coords[xa])
    axes[0, 0].legend(fontsize=8)
    return _save(fig, target.with_name(target.stem + "_slices" + target.suffix))


def make_plots(problem, model, history_rows, run_dir, *, eval_points: int = 10000) -> list[pathlib.Path]:
    """Write ``run_dir/plots/loss.png`` and ``solution*.png``. A plot that fails is skipped
    with a warning (plots never stop a run)."""
    plots = pathlib.Path(os.fspath(run_dir)) / "plots"
    made = []
    try:
        p = plot_history(history_rows, plots / "loss.png")
        made += [p] if p else []
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"loss plot skipped: {type(e).__name__}: {e}", stacklevel=2)
    try:
        made += plot_solution(problem, model, plots / "solution.png", eval_points=eval_points)
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"solution plot skipped: {type(e).__name__}: {e}", stacklevel=2)
    return made
