"""Benchmark the derivative engine against other ways of computing a PDE's derivatives.

One training step = value and gradient (w.r.t. the network weights) of the mean-squared
Laplacian residual loss ``mean((lap u - f)^2)`` over a batch of points, for a tanh MLP.
Methods, side by side in one process:

  hessian      trace of ``jax.hessian`` (reverse-over-forward), vmapped
  nested_jvp   sum over axes of nested forward ``jax.jvp``
  folx         the ``folx`` package's forward Laplacian (optional: pip install pinnjax[bench])
  engine_lap   pinnjax engine carrying only the Laplacian (``jet_batch``, as the trainer uses it)
  engine_diag  pinnjax engine carrying the whole diagonal Hessian, summed
  engine_vmap  the engine's per-point ``jet`` under ``jax.vmap`` (Laplacian only), for comparison

Prints medians (ms) over repeats and ratios to ``engine_lap``; ``--json PATH`` writes one
record per method, dimension and width with ``method``, ``d``, ``step_ms``, ``forward_ms``,
``temp_bytes`` (XLA's compiled temporary memory for the step).

    python scripts/bench_derivatives.py --quick
    python scripts/bench_derivatives.py --dims 2 10 50 --repeats 20 --json results/derivatives.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from pinnjax.derivatives import Request, jet, jet_batch
from pinnjax.nn import MLP

try:
    import folx
except ImportError:  # optional benchmark extra
    folx = None


def laplacian_fns(model_call, d):
    """Per-point Laplacian functions ``(model, x) -> scalar`` for each method."""

    def hessian_trace(model, x):
        H = jax.hessian(lambda p: model(p)[0])(x)
        return jnp.trace(H)

    def nested_jvp(model, x):
        f = lambda p: model(p)[0]  # noqa: E731
        eye = jnp.eye(d, dtype=x.dtype)

        def second(v):
            g = lambda p: jax.jvp(f, (p,), (v,))[1]  # noqa: E731
            return jax.jvp(g, (x,), (v,))[1]

        return jnp.sum(jax.vmap(second)(eye))

    lap_req = Request.laplacian(d)
    diag_req = Request(second=tuple(range(d)))

    def engine_lap(model, xs):
        return jet_batch(model, xs, lap_req).contractions[:, 0, 0]

    def engine_diag(model, xs):
        return jnp.sum(jet_batch(model, xs, diag_req).second[:, 0], axis=-1)

    def engine_vmap(model, x):
        return jet(model, x, lap_req).contractions[0, 0]

    engine_lap.batched = engine_diag.batched = True

    fns = {"hessian": hessian_trace, "nested_jvp": nested_jvp}
    if folx is not None:

        def folx_lap(model, x):
            return folx.forward_laplacian(lambda p: model(p)[0], sparsity_threshold=0)(x).laplacian

        fns["folx"] = folx_lap
    fns["engine_lap"] = engine_lap
    fns["engine_diag"] = engine_diag
    fns["engine_vmap"] = engine_vmap
    return fns


def make_step(lap_fn):
    if getattr(lap_fn, "batched", False):
        laplacians = lap_fn
    else:
        laplacians = lambda model, xs: jax.vmap(lambda x: lap_fn(model, x))(xs)  # noqa: E731

    def loss(model, xs):
        f = jnp.sum(jnp.sin(xs), axis=1)
        return jnp.mean((laplacians(model, xs) - f) ** 2)

    step = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    forward = eqx.filter_jit(laplacians)
    return step, forward


def time_call(fn, args, repeats):
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def temp_bytes(fn, args):
    try:
        compiled = fn.lower(*args).compile()
        mem = compiled.memory_analysis()
        return int(mem.temp_size_in_bytes)
    except Exception:  # memory analysis is backend dependent
        return None


def run(dims, widths, points, depth, repeats, methods):
    records = []
    for width in widths:
        for d in dims:
            model = MLP(d, 1, width, depth, "tanh", key=jax.random.PRNGKey(0))
            xs = jax.random.uniform(jax.random.PRNGKey(1), (points, d), minval=-1.0, maxval=1.0)
            fns = laplacian_fns(model, d)
            # agreement check: every method must give the same Laplacian (float32)
            ref = None
            for name, fn in fns.items():
                if methods and name not in methods:
                    continue
                step, forward = make_step(fn)
                lap = forward(model, xs[:64])
                if ref is None:
                    ref = lap
                err = float(jnp.max(jnp.abs(lap - ref)) / (jnp.max(jnp.abs(ref)) + 1e-30))
                step_ms = time_call(step, (model, xs), repeats)
                fwd_ms = time_call(forward, (model, xs), repeats)
                rec = dict(
                    method=name, d=d, width=width, depth=depth, points=points,
                    step_ms=step_ms, forward_ms=fwd_ms,
                    temp_bytes=temp_bytes(jax.jit(lambda m, x, s=step: s(m, x)), (model, xs)),
                    max_rel_diff=err,
                )
                records.append(rec)
                print(
                    f"  width={width:4d} d={d:3d} {name:12s} step {step_ms:9.2f} ms  forward {fwd_ms:8.2f} ms  "
                    f"(agrees to {err:.1e})",
                    file=sys.stderr,
                    flush=True,
                )
    return records


def print_table(records):
    by = {}
    for r in records:
        by.setdefault((r["width"], r["d"]), {})[r["method"]] = r
    methods = list(dict.fromkeys(r["method"] for r in records))
    print("\nmedian ms per training step (value + grad), and speed-up of engine_lap over each method")
    head = "| width | d | " + " | ".join(methods) + " | " + " | ".join(f"{m}/engine_lap" for m in methods if m != "engine_lap") + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(methods) - 1))
    for (width, d), row in sorted(by.items()):
        base = row.get("engine_lap", {}).get("step_ms")
        cells = [f"{row[m]['step_ms']:.2f}" if m in row else "-" for m in methods]
        ratios = [
            f"{row[m]['step_ms'] / base:.2f}x" if (m in row and base) else "-" for m in methods if m != "engine_lap"
        ]
        print(f"| {width} | {d} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    print("\nmedian ms forward only (Laplacian at all points, no gradient)")
    print("| width | d | " + " | ".join(methods) + " |")
    print("|" + "---|" * (2 + len(methods)))
    for (width, d), row in sorted(by.items()):
        cells = [f"{row[m]['forward_ms']:.2f}" if m in row else "-" for m in methods]
        print(f"| {width} | {d} | " + " | ".join(cells) + " |")
    print("\nXLA temporary memory of the compiled step (MiB)")
    print("| width | d | " + " | ".join(methods) + " |")
    print("|" + "---|" * (2 + len(methods)))
    for (width, d), row in sorted(by.items()):
        cells = [
            f"{row[m]['temp_bytes'] / 2**20:.1f}" if (m in row and row[m]["temp_bytes"] is not None) else "-"
            for m in methods
        ]
        print(f"| {width} | {d} | " + " | ".join(cells) + " |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 10, 50])
    p.add_argument("--widths", type=int, nargs="+", default=[64])
    p.add_argument("--depth", type=int, default=4, help="hidden layers")
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--quick", action="store_true", help="fewer repeats (finishes in under 3 minutes on 2 cores)")
    p.add_argument("--json", metavar="PATH", help="write the records as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 5)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}), "
          f"{args.points} points, tanh MLP depth {args.depth}, float32, folx: {'yes' if folx else 'not installed'}",
          file=sys.stderr)
    records = run(args.dims, args.widths, args.points, args.depth, args.repeats, args.methods)
    print_table(records)
    if args.json:
        from pathlib import Path

        meta = dict(jax=jax.__version__, device=str(jax.devices()[0]), platform=platform.platform(),
                    repeats=args.repeats, quick=args.quick)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(meta=meta, records=records), indent=2))


if __name__ == "__main__":
    main()
