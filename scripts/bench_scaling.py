"""Weak and strong scaling of the training step over a 1-D device mesh (``distributed``).

    python scripts/bench_scaling.py --json /tmp/scaling.json [--quick]
    python scripts/reproduce.py --run scaling        # results/scaling.{json,md}

Weak scaling keeps the points per device fixed (the global batch grows with the devices),
strong scaling keeps the global batch fixed. For each device count, one subprocess with
``--xla_force_host_platform_device_count=8`` (the same for every count) builds the poisson2d
step (tanh MLP, Adam) on a mesh of that many devices, reads the compiled program's per-device
memory from XLA (``memory_analysis``: arguments, outputs and temporaries of one device's
program), and times chunks of steps (median steps per second).

Forced host devices share the machine's CPU cores: these figures show that the points are
split (per-device memory falls with the devices under strong scaling) and that the sharded
step runs, not how fast several real accelerators would be.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEVICES = (1, 2, 4, 8)
FORCED = 8


def worker(devices: int, points: int, width: int, depth: int, steps: int, repeats: int) -> dict:
    """One measurement, in a process whose JAX sees FORCED host devices."""
    sys.path.insert(0, str(ROOT))
    import dataclasses

    import jax
    import numpy as np

    from pinnjax._solve import make_config
    from pinnjax.problems import Poisson2D
    from pinnjax.train import init_state, make_mesh, make_spec, phase_chunk
    from pinnjax.train._mesh import place

    problem = Poisson2D()
    cfg = make_config(problem, None, model={"width": width, "depth": depth},
                      train={"steps": 10 * steps, "scan_steps": steps},
                      sampling={"interior": points, "boundary": max(devices, points // 8 // devices * devices)},
                      distributed={"devices": devices})
    mesh = make_mesh(cfg.distributed)
    spec = dataclasses.replace(make_spec(problem, cfg), mesh=mesh)
    state = place(mesh, init_state(problem, spec, cfg.model, seed=0))
    n = np.asarray(steps, np.int32)
    compiled = phase_chunk.lower(spec, 0, state, n).compile()  # equinox's wrapper of jax's Compiled
    memory = compiled.compiled.memory_analysis()
    per_device = None
    if memory is not None:
        per_device = {
            "arguments": int(memory.argument_size_in_bytes), "outputs": int(memory.output_size_in_bytes),
            "temporaries": int(memory.temp_size_in_bytes),
        }
    state, _ = jax.block_until_ready(compiled(spec, 0, state, n))  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(spec, 0, state, n))
        rates.append(steps / (time.perf_counter() - t0))
    return {"devices": devices, "points": points, "points_per_device": points // devices,
            "steps_per_second": statistics.median(rates), "memory_per_device_bytes": per_device,
            "device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform}


def measure(devices, points, args) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={FORCED}")
    cmd = [sys.executable, __file__, "--worker", str(devices), str(points), "--width", str(args.width),
           "--depth", str(args.depth), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench_scaling: {devices} devices, {points} points failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(data: dict) -> str:
    s = data["settings"]
    lines = [
        "# Scaling over a device mesh (forced CPU devices)",
        "",
        f"poisson2d, tanh MLP {s['width']} x {s['depth']}, float32, Adam; {s['forced_devices']} forced host devices "
        f"on a CPU with {s['cores']} cores, of which each run uses the first 1, 2, 4 or 8 as its mesh. "
        f"Steps per second: median of {s['repeats']} chunks of {s['steps']} steps. Memory per device: the "
        "compiled program of one device (XLA's `memory_analysis`: arguments + outputs + temporaries).",
        "",
        "**These are forced host devices sharing the same CPU cores: the figures show that the points are "
        "split over the devices and the sharded step runs, not hardware scaling.** No GPU was available.",
        "",
    ]
    for mode, title in (("weak", f"Weak scaling: {s['weak_points_per_device']} interior points per device"),
                        ("strong", f"Strong scaling: {s['strong_points']} interior points in all")):
        rows = data[mode]
        base = rows[0]
        lines += [f"## {title}", "", "| devices | points | per device | steps/s | vs 1 device | memory per device (KiB) | vs 1 device |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            mem = r["memory_per_device_bytes"]
            total = None if mem is None else sum(mem.values())
            base_mem = base["memory_per_device_bytes"]
            base_total = None if base_mem is None else sum(base_mem.values())
            mem_txt = "n/a" if total is None else f"{total / 1024:.0f}"
            ratio = "n/a" if total is None or not base_total else f"{total / base_total:.2f}"
            lines.append(f"| {r['devices']} | {r['points']} | {r['points_per_device']} | {r['steps_per_second']:.1f} | "
                         f"{r['steps_per_second'] / base['steps_per_second']:.2f} | {mem_txt} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=pathlib.Path, default=None)
    p.add_argument("--quick", action="store_true", help="small batches, few repeats: a check that it runs")
    p.add_argument("--worker", nargs=2, type=int, default=None, metavar=("DEVICES", "POINTS"), help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--weak-points", type=int, default=1024, help="interior points per device (weak scaling)")
    p.add_argument("--strong-points", type=int, default=4096, help="interior points in all (strong scaling)")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.width, args.depth, args.steps, args.repeats)))
        return
    if args.quick:
        args.steps, args.repeats, args.weak_points, args.strong_points = 5, 2, 256, 1024
    data = {
        "settings": {"problem": "poisson2d", "width": args.width, "depth": args.depth, "dtype": "float32",
                     "optimiser": "adam", "steps": args.steps, "repeats": args.repeats,
                     "weak_points_per_device": args.weak_points, "strong_points": args.strong_points,
                     "forced_devices": FORCED, "cores": os.cpu_count(), "quick": args.quick},
        "weak": [], "strong": [],
    }
    for n in DEVICES:
        data["weak"].append(measure(n, args.weak_points * n, args))
        data["strong"].append(measure(n, args.strong_points, args))
        print(f"{n} devices: weak {data['weak'][-1]['steps_per_second']:.1f}, "
              f"strong {data['strong'][-1]['steps_per_second']:.1f} steps/s", file=sys.stderr)
    print(markdown(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
