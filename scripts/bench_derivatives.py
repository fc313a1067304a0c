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
  engine_whole engine_lap with the batch in one piece (``chunk=0``): the engine before it
               chunked batches on CPU
  nested_jvp_chunked  nested_jvp run in the chunks the engine uses on CPU (``auto_chunk``: the
               batch a few hundred points at a time, each chunk rematerialised in the backward
               pass), to show how much of the engine's lead is that memory strategy rather
               than the derivative recursion (the same as nested_jvp where auto_chunk keeps
               the batch whole)

The engine methods run as the trainer runs them: on CPU, a large batch goes through the
network in chunks (``pinnjax.derivatives.auto_chunk``).

Prints medians (ms) over repeats, timed in alternation across methods, and ratios to ``engine_lap``; ``--json PATH`` writes one
record per method, dimension and width with ``network``, ``method``, ``d``, ``step_ms``,
``forward_ms``, ``temp_bytes`` (XLA's compiled temporary memory for the step).

Networks with products of hidden states (``--networks``): the same training step for a
modified MLP (width 128, 4 gated layers) and a PirateNet (width 128, 3 blocks, on 64 Fourier
features) at d = 2 and 5, for engine_lap, nested_jvp, folx and hessian (``network`` field
``modified_mlp`` / ``pirate``; the chain MLP records have ``network: mlp``).

XLA flags (``--xla-flags``): ``pinnjax`` times every method under the XLA:CPU flags the
``pinnjax`` command sets (``pinnjax/_cpu_flags.py``), ``default`` under XLA's defaults, and
``both`` (the default without ``--quick``) runs the whole benchmark once under each, the ``default`` pass in a
second process (XLA reads its flags once per process); each record has ``xla_flags``.

    python scripts/bench_derivatives.py --quick
    python scripts/bench_derivatives.py --dims 2 10 50 --repeats 20 --json /tmp/derivatives.json
    python scripts/reproduce.py --run derivatives        # results/derivatives.{json,md}, with provenance
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results_tables
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pinnjax

import equinox as eqx
import jax
import jax.numpy as jnp

from pinnjax._cpu_flags import use_fast_cpu_flags
from pinnjax.derivatives import Request, auto_chunk, jet, jet_batch
from pinnjax.derivatives._engine import _in_chunks
from pinnjax.nn import MLP, FourierFeatures, ModifiedMLP, PirateNet
from results_tables import derivative_tables  # the same tables results/derivatives.md shows

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

    def engine_whole(model, xs):
        return jet_batch(model, xs, lap_req, chunk=0).contractions[:, 0, 0]

    def engine_diag(model, xs):
        return jnp.sum(jet_batch(model, xs, diag_req).second[:, 0], axis=-1)

    def engine_vmap(model, x):
        return jet(model, x, lap_req).contractions[0, 0]

    def nested_jvp_chunked(model, xs):
        per_point = jax.tree_util.Partial(nested_jvp, model)  # the model enters the chunks as an argument
        chunk = auto_chunk(model, xs.shape[0], lap_req)
        if not chunk:
            return jax.vmap(per_point)(xs)
        return _in_chunks(lambda fn, points, _: jax.vmap(fn)(points), per_point, xs, None, chunk)

    engine_lap.batched = engine_whole.batched = engine_diag.batched = nested_jvp_chunked.batched = True

    fns = {"hessian": hessian_trace, "nested_jvp": nested_jvp}
    if folx is not None:

        def folx_lap(model, x):
            return folx.forward_laplacian(lambda p: model(p)[0], sparsity_threshold=0)(x).laplacian

        fns["folx"] = folx_lap
    fns["engine_lap"] = engine_lap
    fns["engine_diag"] = engine_diag
    fns["engine_vmap"] = engine_vmap
    fns["engine_whole"] = engine_whole
    fns["nested_jvp_chunked"] = nested_jvp_chunked
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


def temp_bytes(fn, args):
    try:
        compiled = fn.lower(*args).compile()
        mem = compiled.memory_analysis()
        return int(mem.temp_size_in_bytes)
    except Exception:  # memory analysis is backend dependent
        return None


def build_network(network, d, width, depth, key):
    if network == "mlp":
        return MLP(d, 1, width, depth, "tanh", key=key)
    if network == "modified_mlp":
        return ModifiedMLP(d, 1, width, depth, "tanh", key=key)
    if network == "pirate":  # `depth` blocks on width / 2 Fourier features (no lifting layer)
        ekey, key = jax.random.split(key)
        emb = FourierFeatures(d, width // 2, 1.0, key=ekey)
        net = PirateNet(d, 1, width, depth, "tanh", key=key, embedding=emb)
        # alpha = 0 (the initialisation) would make the blocks dead code in the derivatives
        return eqx.tree_at(lambda m: m.alpha, net, jnp.full_like(net.alpha, 0.5))
    raise ValueError(network)


def time_interleaved(calls: dict, repeats: int) -> dict:
    """Median ms of each zero-argument call, timed in alternation (round r times every method
    once), so that the machine's changing load falls on all methods alike."""
    for fn in calls.values():
        jax.block_until_ready(fn())  # compile + warm up
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def run(dims, widths, points, depth, repeats, methods, network="mlp"):
    records = []
    for width in widths:
        for d in dims:
            model = build_network(network, d, width, depth, jax.random.PRNGKey(0))
            xs = jax.random.uniform(jax.random.PRNGKey(1), (points, d), minval=-1.0, maxval=1.0)
            fns = {n: f for n, f in laplacian_fns(model, d).items() if not methods or n in methods}
            compiled = {name: make_step(fn) for name, fn in fns.items()}
            # agreement check: every method must give the same Laplacian (float32)
            ref, errs = None, {}
            for name, (_, forward) in compiled.items():
                lap = forward(model, xs[:64])
                ref = lap if ref is None else ref
                errs[name] = float(jnp.max(jnp.abs(lap - ref)) / (jnp.max(jnp.abs(ref)) + 1e-30))
            step_ms = time_interleaved({n: (lambda s=s: s(model, xs)) for n, (s, _) in compiled.items()}, repeats)
            fwd_ms = time_interleaved({n: (lambda f=f: f(model, xs)) for n, (_, f) in compiled.items()}, repeats)
            for name, (step, _) in compiled.items():
                rec = dict(
                    network=network, method=name, d=d, width=width, depth=depth, points=points,
                    step_ms=step_ms[name], forward_ms=fwd_ms[name],
                    temp_bytes=temp_bytes(jax.jit(lambda m, x, s=step: s(m, x)), (model, xs)),
                    max_rel_diff=errs[name],
                )
                records.append(rec)
                print(
                    f"  {network:12s} width={width:4d} d={d:3d} {name:12s} step {step_ms[name]:9.2f} ms  "
                    f"forward {fwd_ms[name]:8.2f} ms  (agrees to {errs[name]:.1e})",
                    file=sys.stderr,
                    flush=True,
                )
    return records


def print_table(records, title=""):
    print(f"\n{title}" + derivative_tables(records))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 10, 50])
    p.add_argument("--widths", type=int, nargs="+", default=[64])
    p.add_argument("--depth", type=int, default=4, help="hidden layers")
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--networks", nargs="*", default=["modified_mlp", "pirate"],
                   help="networks with products of hidden states to time beside the MLP (none: skip)")
    p.add_argument("--network-dims", type=int, nargs="+", default=[2, 5])
    p.add_argument("--network-width", type=int, default=128)
    p.add_argument("--network-depth", type=int, nargs=2, default=[4, 3], metavar=("MODIFIED_DEPTH", "PIRATE_BLOCKS"))
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats, and no jax.hessian for the product networks (under 3 minutes on 2 idle cores)")
    p.add_argument("--xla-flags", choices=["pinnjax", "default", "both"], default=None,
                   help="XLA:CPU flags the methods run under: the pinnjax command's, XLA's defaults, or both "
                        "(two passes, the second in another process; the default, except with --quick: pinnjax)")
    p.add_argument("--json", metavar="PATH", help="write the records as JSON")
    p.add_argument("--md", metavar="PATH", help="also write the printed tables as a Markdown page")
    args = p.parse_args(argv)
    args.xla_flags = args.xla_flags or ("pinnjax" if args.quick else "both")
    if args.xla_flags != "default":
        use_fast_cpu_flags()  # before the first computation starts JAX's backend
    if args.md:
        with _Tee() as tee:
            _bench(args)
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        regen = " ".join(["python scripts/bench_derivatives.py"] + (argv if argv is not None else sys.argv[1:]))
        Path(args.md).write_text("# Derivative engine benchmark\n\n" + tee.text() + f"\nRegenerate: `{regen}`\n")
    else:
        _bench(args)


class _Tee:
    """Copies what is printed to stdout into a buffer."""

    def __enter__(self):
        import io

        self._buffer, self._stdout = io.StringIO(), sys.stdout
        outer = self

        class Both:
            def write(self, text):
                outer._stdout.write(text)
                return outer._buffer.write(text)

            def flush(self):
                outer._stdout.flush()

        sys.stdout = Both()
        return self

    def __exit__(self, *exc):
        sys.stdout = self._stdout

    def text(self):
        return self._buffer.getvalue()


def _bench(args):
    if args.quick:
        args.repeats = min(args.repeats, 5)
    load_before = os.getloadavg()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores), {args.points} points, float32, medians of {args.repeats} repeats, "
          f"folx: {'yes' if folx else 'not installed'}; 1-min load average at start {load_before[0]:.1f}")
    records = run(args.dims, args.widths, args.points, args.depth, args.repeats, args.methods)
    print_table(records, f"tanh MLP (depth {args.depth}): ")
    sizes = {"modified_mlp": args.network_depth[0], "pirate": args.network_depth[1]}
    net_methods = (["nested_jvp", "folx", "engine_lap"] if args.quick
                   else ["hessian", "nested_jvp", "folx", "engine_lap", "engine_whole", "nested_jvp_chunked"])
    for network in args.networks:
        recs = run(args.network_dims, [args.network_width], args.points, sizes[network],
                   min(args.repeats, 2) if args.quick else args.repeats, net_methods, network)
        what = "PirateNet, 64 Fourier features, alpha = 0.5, blocks" if network == "pirate" else "modified MLP, gated layers"
        print_table(recs, f"{network} (tanh {what} {sizes[network]}, width {args.network_width}): ")
        records += recs
    flags = "default" if args.xla_flags == "default" else "pinnjax"
    for r in records:
        r["xla_flags"] = flags
    if args.xla_flags == "both":
        records += _default_flags_pass(args)
        print_table([r for r in records if r["xla_flags"] == "default"], "the same under XLA's default flags:")
    load_after = os.getloadavg()
    print(f"\n1-min load average at the end {load_after[0]:.1f} (the machine's other work shares the cores: "
          "compare methods by their ratios, measured side by side)")
    if args.json:
        meta = dict(jax=jax.__version__, device=str(jax.devices()[0]), platform=platform.platform(),
                    repeats=args.repeats, quick=args.quick, cpu_count=os.cpu_count(),
                    folx=getattr(folx, "__version__", None), xla_flags_pinnjax=_pinnjax_flags(),
                    xla_flags_env=os.environ.get("XLA_FLAGS", ""),
                    load_average_start=load_before[0], load_average_end=load_after[0])
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(meta=meta, records=records), indent=2))


def _pinnjax_flags() -> str:
    """The XLA_FLAGS entries the pinnjax command adds (pinnjax/_cpu_flags.py)."""
    return " ".join(use_fast_cpu_flags(environ={}))


def _default_flags_pass(args) -> list:
    """The same benchmark in a second process under XLA's default flags: its records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "default.json"
        argv = [sys.executable, __file__, "--xla-flags", "default", "--json", str(out),
                "--dims", *map(str, args.dims), "--widths", *map(str, args.widths), "--depth", str(args.depth),
                "--points", str(args.points), "--repeats", str(args.repeats),
                "--network-dims", *map(str, args.network_dims), "--network-width", str(args.network_width),
                "--network-depth", *map(str, args.network_depth), "--networks", *args.networks]
        argv += (["--methods", *args.methods] if args.methods else []) + (["--quick"] if args.quick else [])
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())["records"]


if __name__ == "__main__":
    main()
