"""The Markdown of every file in results/ (and of the README's measured-figures section), made
from the JSON beside it and nothing else.

One function per results file, ``render_<name>(data) -> str``: ``scripts/reproduce.py`` writes
``results/<name>.md`` with it after a run, and ``reproduce.py --check`` compares what it gives
now with the file on disk. Pure Python (no jax), so the check runs anywhere.
"""

from __future__ import annotations

import statistics

LEGACY = "not recorded (pre-issue-11 run)"

# Said of rows made before provenance was recorded, from the repository's history; shown only
# while such a row has no provenance (a rerun replaces it).
LEGACY_NOTES = {
    "poisson2d_c": "boundary weights 1000 were chosen by watching this problem's reference error (commit 7a21785): "
                   "tuned on the test set, to be rerun with a family recipe",
    "poisson_boltzmann2d": "inherits poisson2d_c's boundary weights 1000, chosen on poisson2d_c's reference error",
}


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def ratio_text(value):
    return "-" if value is None else f"{value:.2f}x"


# --- provenance ---------------------------------------------------------------------------------


def provenance_text(prov) -> str:
    """One cell: commit (clean or not), or the legacy marker."""
    if not prov or not prov.get("commit"):
        return LEGACY
    state = "clean tree" if prov.get("tree_clean") else "**uncommitted changes**"
    resumed = f", resumed ({len(prov['invocations'])} invocations)" if prov.get("invocations") else ""
    return f"`{prov['commit'][:10]}`, {state}{resumed}"


def device_text(prov) -> str:
    """One cell: the device a run trained on, with the machine's core count."""
    hw = (prov or {}).get("hardware")
    if not hw:
        return "not recorded"
    return f"{hw.get('device', '?')}, {hw.get('cores', '?')} cores"


def provenance_lines(prov) -> list[str]:
    """A paragraph saying where, when and with what a whole results file was made."""
    if not prov or not prov.get("commit"):
        return [f"Provenance: {LEGACY}.", ""]
    hw = prov.get("hardware", {})
    versions = ", ".join(f"{k} {v}" for k, v in sorted(prov.get("versions", {}).items()))
    load = prov.get("load_average_at_start")
    return [
        f"Made by `{prov['command']}` at commit `{prov['commit'][:10]}` "
        f"({'clean tree' if prov.get('tree_clean') else 'with uncommitted changes'}), {prov.get('date', '?')}, "
        f"in {prov.get('wall_seconds', 0):.0f} s.",
        "",
        f"Hardware: {hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('platform', '?')}; device "
        f"{hw.get('device', '?')}"
        + (f"; load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)" if load else "")
        + f". Versions: {versions}.",
        "",
    ]


# --- accuracy -----------------------------------------------------------------------------------


def summarise(runs, published, recent=None) -> list[dict]:
    """One row per problem from the per-seed run records, in the order the runs are listed;
    `published` maps a problem to ``(l2re, source)`` (the bar the "beaten?" column judges),
    `recent` to ``(l2re, source, note on how its setting compares with ours)`` (the best
    2025-2026 figure, shown for information and never judged against)."""
    recent = recent or {}
    rows = []
    for problem in dict.fromkeys(r["config"] for r in runs):
        rs = [r for r in runs if r["config"] == problem]
        ok = [r for r in rs if r.get("returncode") == 0 and r.get("l2re") is not None]
        l2 = [r["l2re"] for r in ok]
        pub = published.get(problem)
        mean = statistics.fmean(l2) if l2 else None
        row = dict(
            problem=problem, seeds=[r["seed"] for r in rs], runs_ok=len(ok),
            l2re_mean=mean,
            l2re_std=statistics.pstdev(l2) if len(l2) > 1 else 0.0 if l2 else None,
            wall_seconds_mean=statistics.fmean(r["wall_seconds"] for r in rs),
            steps=ok[0]["steps"] if ok else None,
            published_l2re=pub[0] if pub else None, published_source=pub[1] if pub else "none found",
            **_recent_fields(recent.get(problem)),
            errors=[r.get("error") for r in rs if r.get("error")],
            unknowns=[r["unknowns"] for r in ok if r.get("unknowns")],
            quick=any(r.get("quick") for r in rs),
            recipe=sorted({r["recipe"] for r in rs if r.get("recipe")}),
            provenance=sorted({provenance_text(r.get("provenance")) for r in rs}),
            devices=sorted({device_text(r.get("provenance")) for r in rs}),
        )
        if pub and pub[0] is not None and mean is not None:
            # an error near 1 is no solution, whatever the published number (Heat 2d-LT)
            row["beats_published"] = mean < pub[0] and mean < 0.5
        rows.append(row)
    return rows


def _recent_fields(entry) -> dict:
    """A row's fields for the best 2025-2026 figure ``(l2re, source, note)``, or its absence."""
    if entry is None:
        return dict(recent_l2re=None, recent_source=None, recent_note=None)
    l2re, source, note = entry
    return dict(recent_l2re=l2re, recent_source=source, recent_note=note)


def _recent_cells(row) -> tuple[str, str]:
    """The two cells of the 2025-2026 columns: the figure ("not read" where a paper on the same
    PDE is named but its figure was not read in its own text), and its source with the note
    saying how its setting compares with ours."""
    if row.get("recent_source") is None:
        return "-", "none recorded"
    return fmt(row["recent_l2re"], ".2e", "not read"), f"{row['recent_source']}: {row['recent_note']}"


def render_pinnacle_side_by_side(default, pinnacle, published, vanilla) -> str:
    """The PINNacle rows in one table: pinnjax under PINNacle's own protocol and with its family
    recipe (means over the seeds each ran), beside PINNacle's vanilla PINN and best method."""
    def by_problem(data):
        return {r["problem"]: r for r in data["rows"]}

    mine, theirs = by_problem(default), by_problem(pinnacle)
    lines = [
        "# The PINNacle rows side by side",
        "",
        "Generated by `scripts/reproduce.py` from `accuracy.json` (family recipes) and `accuracy_pinnacle.json` "
        "(PINNacle's protocol: its overrides are listed in `accuracy_pinnacle.md`) (do not edit). PINNacle's figures: "
        "Hao et al., NeurIPS 2024, Table 3, means of 3 runs.",
        "",
        "| problem | pinnjax, PINNacle's protocol (seeds) | pinnjax, family recipe (seeds) | PINNacle vanilla PINN "
        "| PINNacle best method | PINNacle best ÷ family recipe |",
        "|---|---|---|---|---|---|",
    ]

    def cell(row):
        if row is None or row.get("l2re_mean") is None:
            return "not run" if row is None else "failed"
        return f"{row['l2re_mean']:.2e} ({len(row['seeds'])})" + (" (quick)" if row.get("quick") else "")

    for problem in (p for p in published if published[p][0] is not None):
        ours, protocol = mine.get(problem), theirs.get(problem)
        best = published[problem][0]
        gain = "-"
        if ours is not None and ours.get("l2re_mean"):
            gain = f"{best / ours['l2re_mean']:.2f}x" + ("" if ours["l2re_mean"] < 0.5 else " (unsolved)")
        lines.append(f"| {problem} | {cell(protocol)} | {cell(ours)} | {fmt(vanilla.get(problem), '.2e')} | "
                     f"{best:.2e} ({published[problem][1].split(', ', 1)[1].split(' (')[0]}) | {gain} |")
    return "\n".join(lines + [""])


def _accuracy_file(data) -> str:
    protocols = {r.get("protocol", "default") for r in data["runs"]} - {"default"}
    return f"accuracy_{min(protocols)}.json" if protocols else "accuracy.json"


def render_accuracy(data) -> str:
    lines = [
        "# Accuracy: pinnjax against the best published L2 relative error",
        "",
        f"Generated by `scripts/reproduce.py` from `{_accuracy_file(data)}` (do not edit); every run's commit, "
        "resolved config, seed, hardware, wall time and library versions are in its `runs` records.",
        "",
        "\"best published\" and \"beaten?\" judge against the bar of issue 11: PINNacle's best method (Hao et al., "
        "NeurIPS 2024, Table 3). \"best 2025-26\" is, for information only, the lowest L2 relative error read in a "
        "2025-2026 paper (a 2024 one where no later figure could be read, the source gives the year) for the same PDE, in the paper's own text or its authors' "
        "repository (the note says which), with the paper, its table and method, and how its setting differs from ours (`PUBLISHED_RECENT` in `scripts/reproduce.py`). \"not read\": papers on the "
        "same PDE are named, but no figure was read in their own text, so none is given; \"none recorded\": no such "
        "paper was identified.",
        "",
    ]
    for protocol in sorted({r.get("protocol", "default") for r in data["runs"]} - {"default"}):
        overrides = next(r.get("overrides", []) for r in data["runs"] if r.get("protocol") == protocol)
        lines += [f"Protocol `{protocol}`: every config run with " + ", ".join(f"`{o}`" for o in overrides) + ".", ""]
    if data.get("hardware") and any(not r.get("provenance") for r in data["runs"]):
        lines += [f"Hardware of the legacy rows: {data['hardware']}.", ""]
    if any(r.get("quick") for r in data["rows"]):
        lines += ["**Rows marked quick ran reduced budgets (`--quick`): a check of the pipeline, not a result.**", ""]
    lines += [
        "| problem | seeds | L2RE mean ± std | steps | wall s (mean) | device | best published | beaten? | recipe "
        "| provenance | source / notes | best 2025-26 | 2025-26 source, setting |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        if r["l2re_mean"] is None:
            l2 = "failed: " + "; ".join(r["errors"])
        else:
            l2 = f"{r['l2re_mean']:.2e} ± {r['l2re_std']:.1e}" + (" (quick)" if r.get("quick") else "")
        beaten = "-"
        if "beats_published" in r:
            beaten = "yes" if r["beats_published"] else "**no**" + (" (unsolved)" if r["l2re_mean"] >= 0.5 else "")
        notes = [r["published_source"]]
        if r.get("unknowns"):
            learned = "; ".join(", ".join(f"{k} = {v:.5g}" if isinstance(v, float) else f"{k} = {v}" for k, v in u.items())
                                for u in r["unknowns"])
            notes.append(f"learned per seed: {learned}")
        if r.get("provenance") == [LEGACY] and r["problem"] in LEGACY_NOTES:
            notes.append(LEGACY_NOTES[r["problem"]])
        recent_value, recent_source = _recent_cells(r)
        lines.append(
            f"| {r['problem']} | {len(r['seeds'])} | {l2} | {r['steps']} | {r['wall_seconds_mean']:.0f} | "
            f"{'; '.join(r.get('devices') or ['not recorded'])} | {fmt(r['published_l2re'], '.2e')} | {beaten} | {', '.join(r.get('recipe') or []) or 'not recorded'} | "
            f"{'; '.join(r['provenance'])} | {'; '.join(notes)} | {recent_value} | {recent_source} |"
        )
    commands = sorted({r["provenance"]["command"] for r in data["runs"] if (r.get("provenance") or {}).get("command")})
    lines += ["", "Invocations that made the rows with provenance: "
              + ("; ".join(f"`{c}`" for c in commands) if commands else "none yet") + ".", ""]
    return "\n".join(lines)


# --- derivatives --------------------------------------------------------------------------------


def derivative_tables(records) -> str:
    """The three tables of the derivative benchmark (step time with speed-ups, forward time,
    XLA temporary memory), one row per width and dimension; one set per network when records
    name several (``network``, default ``mlp``)."""
    def key(r):  # records made before the XLA flags were recorded ran under XLA's defaults
        return r.get("network", "mlp"), r.get("xla_flags", "default")

    groups = list(dict.fromkeys(key(r) for r in records))
    several_flags = len({flags for _, flags in groups}) > 1
    blocks = []
    for network, flags in sorted(groups, key=lambda g: (g[1] != "pinnjax", groups.index(g))):
        mine = [r for r in records if key(r) == (network, flags)]
        table = _derivative_tables_of(mine)
        depths = sorted({r["depth"] for r in mine})
        heading = f"### network: {network} (depth {' / '.join(map(str, depths))})"
        if several_flags:
            heading += ", XLA flags: " + ("pinnjax's" if flags == "pinnjax" else "XLA's defaults")
        blocks.append(table if len(groups) == 1 else f"{heading}\n\n{table}")
    return "\n\n".join(blocks)


def _derivative_tables_of(records) -> str:
    by = {}
    for r in records:
        by.setdefault((r["width"], r["d"]), {})[r["method"]] = r
    methods = list(dict.fromkeys(r["method"] for r in records))
    others = [m for m in methods if m != "engine_lap"]
    out = ["median ms per training step (value + grad), and speed-up of engine_lap over each method",
           "| width | d | " + " | ".join(methods) + " | " + " | ".join(f"{m}/engine_lap" for m in others) + " |",
           "|" + "---|" * (2 + len(methods) + len(others))]
    for (width, d), row in sorted(by.items()):
        base = row.get("engine_lap", {}).get("step_ms")
        cells = [f"{row[m]['step_ms']:.2f}" if m in row else "-" for m in methods]
        ratios = [f"{row[m]['step_ms'] / base:.2f}x" if (m in row and base) else "-" for m in others]
        out.append(f"| {width} | {d} | " + " | ".join(cells + ratios) + " |")
    for title, cell in (
        ("median ms forward only (Laplacian at all points, no gradient)", lambda r: f"{r['forward_ms']:.2f}"),
        ("XLA temporary memory of the compiled step (MiB)",
         lambda r: "-" if r.get("temp_bytes") is None else f"{r['temp_bytes'] / 2**20:.1f}"),
    ):
        out += ["", title, "| width | d | " + " | ".join(methods) + " |", "|" + "---|" * (2 + len(methods))]
        for (width, d), row in sorted(by.items()):
            out.append(f"| {width} | {d} | " + " | ".join(cell(row[m]) if m in row else "-" for m in methods) + " |")
    return "\n".join(out)


def render_derivatives(data) -> str:
    meta, records = data["meta"], data["records"]
    first = next((r for r in records if r.get("network", "mlp") == "mlp"), records[0] if records else {})
    lines = [
        "# Derivative engine benchmark",
        "",
        "Generated by `scripts/reproduce.py --run derivatives` from `derivatives.json` (do not edit).",
        "",
        f"One training step = value and gradient w.r.t. the weights of `mean((lap u - f)^2)`, tanh MLP, "
        f"{first.get('depth', '?')} hidden layers, {first.get('points', '?')} points, float32; medians of "
        f"{meta.get('repeats', '?')} repeats, all methods side by side in one process"
        + (" (**quick: fewer repeats**)" if meta.get("quick") else "")
        + f". jax {meta.get('jax', '?')}, device {meta.get('device', '?')}, {meta.get('platform', '?')}"
        + (f", folx {meta['folx']}" if meta.get("folx") else "") + "."
        + (f" 1-min load average {meta['load_average_start']:.1f} at the start, {meta['load_average_end']:.1f} at "
           f"the end, on {meta.get('cpu_count', '?')} cores." if "load_average_start" in meta else ""),
        "",
        *([f"XLA flags: \"pinnjax's\" tables ran under the flags the `pinnjax` command sets (`{meta['xla_flags_pinnjax']}`, "
           "`pinnjax/_cpu_flags.py`), for every method alike; the \"XLA's defaults\" tables ran the same benchmark "
           "in a second process without them.", ""] if meta.get("xla_flags_pinnjax") else []),
        *provenance_lines(data.get("provenance")),
        derivative_tables(records),
        "",
    ]
    return "\n".join(lines)


# --- peers --------------------------------------------------------------------------------------


def _load(part, cores):
    b, a = part.get("load_average_before"), part.get("load_average_after")
    if not (a and b):
        return "load not recorded"
    text = f"1-min load average {b[0]:.1f} before, {a[0]:.1f} after"
    if max(a[0], b[0]) > cores:
        text += (f" (**overloaded: more runnable processes than the {cores} cores; the speeds and their ratio are "
                 "not those of an idle machine**)")
    return text


def _equal_budget(title, p, cores) -> list[str]:
    """A part where both frameworks ran the same budget: speeds side by side and errors."""
    pj, dx = p["pinnjax"], p["deepxde"]
    lines = [
        f"## {title}",
        "",
        f"{p['setup']}; {_load(p, cores)}.",
        "",
        "| | pinnjax | DeepXDE | pinnjax / DeepXDE |",
        "|---|---|---|---|",
        f"| Adam steps/s (median of 100-step chunks) | {fmt(pj['adam_steps_per_second'], '.1f')} | "
        f"{fmt(dx['adam_steps_per_second'], '.1f')} | {ratio_text(p['steps_per_second_ratio'])} |",
        f"| L2 relative error after {pj['adam_steps']} Adam steps | {fmt(pj['l2re_after_adam'], '.2e')} | "
        f"{fmt(dx['l2re_after_adam'], '.2e')} | |",
    ]
    if pj["lbfgs_steps"] or dx["lbfgs_steps"]:
        lines += [
            f"| L-BFGS steps/s (median) | {fmt(pj['lbfgs_steps_per_second'], '.1f')} | "
            f"{fmt(dx['lbfgs_steps_per_second'], '.1f')} | |",
            f"| L2 relative error after L-BFGS ({pj['lbfgs_steps']} / {dx['lbfgs_steps']} steps) | "
            f"{fmt(pj['l2re'], '.2e')} | {fmt(dx['l2re'], '.2e')} | |",
        ]
    return lines + [""]


def render_peers(data) -> str:
    parts, v, cores = data["parts"], data["versions"], data["threads"]["cpu_count"]
    lines = [
        "# Peers: pinnjax and DeepXDE (PyTorch backend), measured side by side",
        "",
        "Generated by `scripts/reproduce.py --run peers` from `peers.json` (do not edit). Both frameworks ran "
        f"one after the other in one process (`scripts/bench_peers.py`), float32, seed 0: pinnjax (jax "
        f"{v['jax']}) and DeepXDE {v['deepxde']} with PyTorch {v['torch']} ({data['threads']['torch']} threads, "
        f"OMP_WAIT_POLICY={data['threads'].get('omp_wait_policy')}) on "
        f"{data['threads']['cpu_count']} cores. The machine is shared: the load average around each part is given; "
        "ratios are from one run each."
        + (" **Quick budgets: a check of the script, not a result.**" if data.get("quick") else ""),
        "",
        *provenance_lines(data.get("provenance")),
    ]
    if "poisson2d_adam" in parts:
        lines += _equal_budget("2-D Poisson at equal Adam budget", parts["poisson2d_adam"], cores)
    if "poisson2d_time_to" in parts:
        p = parts["poisson2d_time_to"]
        pj, dx = p["pinnjax"], p["deepxde"]

        def cell(t):
            return "not reached" if t["seconds"] is None else f"{t['seconds']:.1f} s (step {t['step']})"

        lines += [
            "## 2-D Poisson, training time to an L2 relative error, each with its recipe",
            "",
            f"pinnjax: {p['recipes']['pinnjax']}. DeepXDE: {p['recipes']['deepxde']}. Error evaluated every 100 "
            f"steps; evaluation and compilation (pinnjax: {pj['compile_seconds']:.1f} s) not counted; {_load(p, cores)}.",
            "",
            "| L2 relative error | pinnjax | DeepXDE | DeepXDE / pinnjax time |",
            "|---|---|---|---|",
        ]
        for key in pj["time_to"]:
            lines.append(f"| {float(key):.0e} | {cell(pj['time_to'][key])} | {cell(dx['time_to'][key])} | "
                         f"{ratio_text(p['speedup'][key])} |")
        lines += [f"| final | {fmt(pj['final_l2re'], '.2e')} | {fmt(dx['final_l2re'], '.2e')} | |", ""]
    if "burgers1d" in parts:
        lines += _equal_budget("Burgers 1d-C (PINNacle) at equal budget", parts["burgers1d"], cores)
    return "\n".join(lines)


# --- regularisation -----------------------------------------------------------------------------


def render_regularisation(data) -> str:
    noise_var = data["noise"] ** 2
    lines = [
        "# Regularising an inverse problem's unknowns against noisy data",
        "",
        "Generated by `scripts/reproduce.py --run regularisation` from `regularisation.json` (do not edit); "
        "`scripts/regularisation.py` made the runs.",
        "",
        f"`{data['problem']}`: kappa(x) learned from observations with noise {data['noise']:g} (noise variance "
        f"{noise_var:.2e}); {data['steps']} Adam then {data['lbfgs_steps']} L-BFGS steps; seeds "
        f"{', '.join(map(str, data['seeds']))}. A method's weight comes from the config, or from the discrepancy "
        f"principle: the largest of {', '.join(f'{w:g}' for w in data['weights_tried'])} whose data misfit stays "
        "within the noise variance on the first seed (kappa's error is not used to choose).",
        "",
        *provenance_lines(data.get("provenance")),
        "| method | weight | weight from | kappa error per seed | kappa error (median) | / unregularised | "
        "data misfit (median) | u L2RE (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['method']} | {r['weight']:g} | {r['weight_from']} | "
            f"{' / '.join(f'{e:.2e}' for e in r['kappa_error'])} | {r['kappa_error_median']:.2e} | "
            f"{ratio_text(r['kappa_error_ratio_to_none'])} | {r['data_misfit_median']:.2e} | {r['u_l2re_median']:.2e} |")
    return "\n".join(lines + [""])


# --- high-dimensional: randomised Laplacians ----------------------------------------------------


def _highdim_cost_rows(data) -> tuple[list[int], dict]:
    by = {}
    for r in data.get("cost", []):
        by.setdefault(r["d"], {})[r["method"]] = r
    return sorted(by), by


def _ms(r) -> str:
    return "not run" if r is None or r.get("step_ms") is None else f"{r['step_ms']:.2f}"


def _speedup(by_d, method):
    exact, other = by_d.get("exact"), by_d.get(method)
    if not exact or not other or exact.get("step_ms") is None or other.get("step_ms") is None:
        return None
    return exact["step_ms"] / other["step_ms"]


def _highdim_load(data) -> str:
    kept = data.get("cost_kept")
    if kept:  # the cost part came from an earlier run (reproduce.py --run highdim --merge)
        return (f"cost part: 1-min load average {kept['load_average_start']:.1f} at its start, "
                f"{kept['load_average_after']:.1f} at its end; accuracy part: {data['load_average_start']:.1f} at the "
                f"start, {data['load_average_end']:.1f} at the end; on {data['cpu_count']} cores, run at nice "
                f"{data['nice']} (the machine was shared: read the ratios)")
    return (f"1-min load average {data['load_average_start']:.1f} at the start, "
            f"{data['load_average_after_cost']:.1f} after the cost part, {data['load_average_end']:.1f} at the end, "
            f"on {data['cpu_count']} cores, run at nice {data['nice']} (the machine was shared: read the ratios)")


def render_highdim(data) -> str:
    dims, by = _highdim_cost_rows(data)
    first = (data.get("cost") or [{}])[0]
    lines = [
        "# High-dimensional PDEs: exact vs randomised Laplacian",
        "",
        "Generated by `scripts/reproduce.py --run highdim` from `highdim.json` (do not edit); "
        "`scripts/bench_highdim.py` made the measurements" + (" (**quick: reduced repeats and budgets**)" if data.get("quick") else "")
        + f". Device {data.get('device', '?')}; {_highdim_load(data)}.",
        "",
        *provenance_lines(data.get("provenance")),
    ]
    if dims:
        lines += [
            "## Cost of one training step against d",
            "",
            f"Value and gradient of `mean((lap u)^2)` over {first.get('points')} points in the unit d-ball, tanh MLP "
            f"{first.get('depth')} x {first.get('width')}, float32; `exact` carries d first-derivative rows per layer, "
            f"`hutchinson` and `sparse` carry {data.get('samples')} random directions per point (fresh each step). "
            "Median ms per step (methods timed in alternation), the speed-up of each estimator over exact, and XLA's "
            "compiled memory of the step (arguments, outputs, temporaries).",
            "",
        ]
        if data.get("cost_kept"):
            lines += ["This part was kept from an earlier run of the script (`reproduce.py --run highdim --merge` "
                      "reran the accuracy part only); that run's provenance:", "",
                      *provenance_lines(data["cost_kept"].get("provenance"))]
        lines += [
            "| d | exact ms | hutchinson ms | sparse ms | exact / hutchinson | exact / sparse | exact MiB | "
            "hutchinson MiB | sparse MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for d in dims:
            row = by[d]
            mib = [("-" if row.get(m, {}).get("memory_bytes") is None else f"{row[m]['memory_bytes'] / 2**20:.1f}")
                   for m in ("exact", "hutchinson", "sparse")]
            lines.append(f"| {d} | {_ms(row.get('exact'))} | {_ms(row.get('hutchinson'))} | {_ms(row.get('sparse'))} | "
                         f"{ratio_text(_speedup(row, 'hutchinson'))} | {ratio_text(_speedup(row, 'sparse'))} | "
                         + " | ".join(mib) + " |")
        skipped = [f"{r['method']} at d = {r['d']}: {r['skipped']}" for r in data["cost"] if r.get("skipped")]
        if skipped:
            lines += ["", "Not run: " + "; ".join(skipped) + "."]
        lines.append("")
    if data.get("accuracy"):
        lines += [
            "## Error reached by the shipped configs",
            "",
            "`pinnjax run configs/<config>.yaml` as shipped (family_highdim.yaml), "
            "stopped after its training budget in seconds (compilation and evaluation not counted); the L2 relative "
            "error at the last evaluation inside the budget, on 2,000 uniform points of the ball"
            + (f"; {data['accuracy_jobs']} runs at a time, sharing the cores" if data.get("accuracy_jobs", 1) > 1
               else "; one run at a time") + ".",
            "",
        ]
        floors = any("linear_floor" in r for r in data["accuracy"])
        if floors:
            lines += [
                "`solution`: the exact solution's coefficients, `centred` (the default, `problems/highdim.py`) or "
                "`published` (as SDGD / STDE publish them: dominated by a constant). The two floor columns are the "
                "errors left by the best `(1 - |x|^2) a` and the best `(1 - |x|^2)(a + b . x)` fitted to the exact "
                "solution by least squares (`scripts/highdim_linear_part.py`, 20,000 points, no network): a run at "
                "the linear floor has learned the constant and linear parts of `w` and nothing more.",
                "",
                "| config | solution | budget s | steps | train s | L2 relative error | best | constant floor | "
                "linear floor | load before / after |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
        else:
            lines += ["| config | budget s | steps | train s | L2 relative error | best | load before / after |",
                      "|---|---|---|---|---|---|---|"]
        for r in data["accuracy"]:
            extra = (f"{r.get('solution', '-')} | " if floors else "")
            tail = (f"{fmt(r.get('constant_floor'), '.2e')} | {fmt(r.get('linear_floor'), '.2e')} | " if floors else "")
            lines.append(f"| {r['config']} | {extra}{r['budget_seconds']:.0f} | {fmt(r['steps'], 'd')} | "
                         f"{fmt(r['train_seconds'], '.0f')} | {fmt(r['l2re'], '.2e')} | {fmt(r['best_l2re'], '.2e')} | "
                         f"{tail}{r['load_average_before']:.1f} / {r['load_average_after']:.1f} |")
        lines.append("")
    return "\n".join(lines)


RENDERERS = {"accuracy": render_accuracy, "derivatives": render_derivatives, "peers": render_peers,
             "regularisation": render_regularisation, "highdim": render_highdim}


# --- the README's measured-figures section ------------------------------------------------------


def _xla_flags(r) -> str:
    """Which XLA:CPU flags a derivative record ran under (older records: XLA's defaults)."""
    return r.get("xla_flags", "default")


def _readme_derivatives(data) -> list[str]:
    flags = "pinnjax" if any(_xla_flags(r) == "pinnjax" for r in data["records"]) else "default"
    several = len({_xla_flags(r) for r in data["records"]}) > 1
    mlp = [r for r in data["records"] if r.get("network", "mlp") == "mlp" and _xla_flags(r) == flags]
    records = [r for r in mlp if r["width"] == min(r["width"] for r in mlp)]
    by = {}
    for r in records:
        by.setdefault(r["d"], {})[r["method"]] = r
    dims = sorted(by)
    columns = [("hessian", "`jax.hessian` trace"), ("nested_jvp", "nested jvp"), ("folx", "folx forward Laplacian"),
               ("engine_lap", "engine, Laplacian only"), ("engine_diag", "engine, whole diagonal")]
    columns = [(m, title) for m, title in columns if any(m in by[d] for d in dims)]
    first, meta = records[0], data.get("meta", {})
    load = ""
    if "load_average_start" in meta:
        load = (f" Taken at a 1-min load average of {meta['load_average_start']:.0f} on {meta.get('cpu_count', '?')} "
                "cores (other work on the machine): the milliseconds are those of a busy machine, read the ratios.")
    lines = [
        f"**Derivative engine** (`results/derivatives.md`): one training step (value and gradient of a "
        f"mean-squared Laplacian residual, tanh MLP {first['width']} x {first['depth']}, {first['points']} points, "
        f"float32), median ms{', under the XLA flags the pinnjax command sets' if flags == 'pinnjax' else ''}.{load}",
        "",
        "| d | " + " | ".join(title for _, title in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for d in dims:
        cells = [f"{by[d][m]['step_ms']:.2f}" if m in by[d] else "-" for m, _ in columns]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")

    def speedups(method):
        vals = [by[d][method]["step_ms"] / by[d]["engine_lap"]["step_ms"] for d in dims if method in by[d]]
        return " / ".join(f"{v:.2f}x" for v in vals)

    dims_text = " / ".join(str(d) for d in dims)
    said = [f"{speedups(m)} faster than {title}" for m, title in columns if m not in ("engine_lap", "engine_diag")]
    lines += ["", f"The Laplacian-only engine is {', '.join(said)} at d = {dims_text}.", ""]
    products = [r for r in data["records"] if r.get("network", "mlp") != "mlp"]
    if products:
        lines += _readme_product_networks(products, several)
    return lines


def _readme_product_networks(records, several_flags=False) -> list[str]:
    """Speed-ups of the Laplacian-only engine on networks with products of hidden states."""
    by = {}
    for r in sorted(records, key=lambda r: _xla_flags(r) != "pinnjax"):
        by.setdefault((r["network"], r["d"], _xla_flags(r)), {})[r["method"]] = r
    others = [m for m in ("nested_jvp", "folx", "hessian") if any(m in row for row in by.values())]
    flag_col = ("| XLA flags ", "---|") if several_flags else ("", "")
    lines = ["Networks with products of hidden states (speed-up of the Laplacian-only engine over each method, "
             "per training step, every method under the same flags"
             + ("; \"pinnjax\": the flags the pinnjax command sets, \"default\": XLA's own" if several_flags else "")
             + "):", "",
             "| network | width x depth | d " + flag_col[0] + "| " + " | ".join(f"over {m}" for m in others) + " |",
             "|---|---|---|" + flag_col[1] + "---|" * len(others)]
    for (network, d, flags), row in by.items():
        lap = row["engine_lap"]
        cells = [f"{row[m]['step_ms'] / lap['step_ms']:.2f}x" if m in row else "-" for m in others]
        flag_cell = f"| {flags} " if several_flags else ""
        lines.append(f"| {network} | {lap['width']} x {lap['depth']} | {d} {flag_cell}| " + " | ".join(cells) + " |")
    return lines + [""]


def _speed_sentence(title, p) -> str:
    pj, dx = p["pinnjax"], p["deepxde"]
    budget = f"{pj['adam_steps']} Adam" + (f" then {pj['lbfgs_steps']} L-BFGS" if pj["lbfgs_steps"] else "")
    return (f"- {title} ({budget} steps): pinnjax {fmt(pj['adam_steps_per_second'], '.0f')} Adam steps/s, DeepXDE "
            f"{fmt(dx['adam_steps_per_second'], '.0f')} ({ratio_text(p['steps_per_second_ratio'])}); L2 relative "
            f"error {fmt(pj['l2re'], '.1e')} (pinnjax) and {fmt(dx['l2re'], '.1e')} (DeepXDE).")


def _readme_peers(data) -> list[str]:
    parts = data["parts"]
    loads = [x[0] for p in parts.values() for x in (p.get("load_average_before"), p.get("load_average_after")) if x]
    overloaded = loads and max(loads) > data["threads"]["cpu_count"]
    lines = ["**Peers** (`results/peers.md`, pinnjax and DeepXDE with PyTorch run side by side by "
             "`scripts/bench_peers.py`" + ("; quick budgets, not a result" if data.get("quick") else "")
             + (f"; measured on an overloaded machine, 1-min load up to {max(loads):.0f} on "
                f"{data['threads']['cpu_count']} cores, so the speed ratios are not those of an idle machine"
                if overloaded else "") + "):", ""]
    if "poisson2d_adam" in parts:
        lines.append(_speed_sentence("2-D Poisson at equal Adam budget", parts["poisson2d_adam"]))
    if "poisson2d_time_to" in parts:
        p = parts["poisson2d_time_to"]

        def t(fw, key):
            s = p[fw]["time_to"][key]["seconds"]
            return "not reached" if s is None else f"{s:.1f} s"

        keys = list(p["pinnjax"]["time_to"])
        lines.append("- 2-D Poisson, training time to an L2 relative error of "
                     + " and ".join(f"{float(k):.0e}" for k in keys) + ", each with its recipe: pinnjax "
                     + " and ".join(t("pinnjax", k) for k in keys) + ", DeepXDE "
                     + " and ".join(t("deepxde", k) for k in keys) + ".")
    if "burgers1d" in parts:
        lines.append(_speed_sentence("Burgers 1d-C at equal budget", parts["burgers1d"]))
    return lines + [""]


def _readme_regularisation(data) -> list[str]:
    rows = data["rows"]
    none = next(r for r in rows if r["method"] == "none")
    chosen = [r for r in rows if "discrepancy" in r["weight_from"]]
    said = "; ".join(f"{r['method']} (weight {r['weight']:g}) {r['kappa_error_median']:.2e}, "
                     f"{ratio_text(r['kappa_error_ratio_to_none'])}" for r in chosen)
    return [
        f"**Regularising unknowns against noise** (`results/regularisation.md`): `{data['problem']}`, median over "
        f"{len(data['seeds'])} seeds of the relative error of kappa, weights chosen by the discrepancy principle "
        f"(never by kappa's error). Unregularised: {none['kappa_error_median']:.2e} (data misfit "
        f"{none['data_misfit_median']:.2e} against the noise variance {data['noise'] ** 2:.2e}; seed to seed "
        f"{min(none['kappa_error']):.2e} to {max(none['kappa_error']):.2e}). {said}.",
        "",
    ]


def _readme_laplace_coverage(data) -> list[str]:
    from laplace_coverage import converged_coverage

    said = []
    for r in data["rows"]:
        n, total, covered = converged_coverage(data, r)
        said.append(f"{r['problem']}: {r['covered']} of {r['intervals']} intervals ({r['coverage']:.2f}); in the "
                    f"{n} of {len(r['runs'])} runs that converged by training loss, {covered} of {total}"
                    + (f"; by the posterior covariance {r['posterior_covered']} of {r['intervals']}"
                       if "posterior_covered" in r else ""))
    said = "; ".join(said)
    return [
        f"**Laplace uncertainty of unknowns** (`results/laplace_coverage.md`): how often the "
        f"{100 * data['level']:g}% interval contains the true coefficient over {len(data['seeds'])} seeds (noise "
        f"draws and networks) with noise {data['noise']:g}, "
        + ("by the error covariance" if data.get("covariance") == "error" else "by the posterior covariance")
        + (" (--quick, not a result)" if data["quick"] else "")
        + f": {said}.",
        "",
    ]


def _readme_curvature(data) -> list[str]:
    parts = []
    for name, stages in data["problems"].items():
        conds = ", ".join(f"{phase} {st['gauss_newton_condition_number']:.1e}" for phase, st in stages.items())
        parts.append(f"{name}: {conds}")
    return [
        "**Curvature** (`results/curvature.md`): Gauss-Newton condition number (Lanczos estimate) where each phase "
        "leaves the loss" + (" (--quick, not a result)" if data["quick"] else "") + ": " + "; ".join(parts) + ".",
        "",
    ]


def _readme_accuracy(data) -> list[str]:
    lines = ["**Accuracy** (`results/accuracy.md`): L2 relative error, mean over seeds.", "",
             "| problem | seeds | pinnjax | best published | beaten? | provenance |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        beaten = {True: "yes", False: "no"}.get(r.get("beats_published"), "-")
        legacy = r.get("provenance") == [LEGACY]
        lines.append(f"| {r['problem']} | {len(r['seeds'])} | {fmt(r['l2re_mean'], '.2e', 'failed')} | "
                     f"{fmt(r['published_l2re'], '.2e')} | {beaten} | "
                     f"{'legacy' + ('; recipe tuned on the reference' if r['problem'] in LEGACY_NOTES else '') if legacy else 'recorded'} |")
    return lines + [""]


def _readme_optimiser_comparison(data) -> list[str]:
    """Final L2 relative error of each optimiser on each problem, side by side (the median over
    the seeds bench_optimisers.py ran), and its training seconds."""
    st, machine = data["settings"], data.get("machine", {})
    problems = list(data["problems"])
    methods = list(dict.fromkeys(m for p in problems for m in data["problems"][p]))
    budget = (f"{st['adam']} Adam steps then {st['steps']} steps of the second phase ({st['gn_steps']} for LM / ENGD), "
              f"float64 tanh MLP {st['depth']} x {st['width']}, {st['interior']} interior points, "
              f"{st['repeats']} seed(s)")
    load = machine.get("load_before")
    lines = ["**Optimisers side by side** (`results/optimisers.md`, `scripts/bench_optimisers.py`"
             + (", **quick budgets**" if st.get("quick") else "") + f"): {budget}; final L2 relative error "
             "(training seconds)" + (f"; 1-min load average {load[0]:.1f} at the start, so seconds are a shared "
                                     "machine's" if load else "") + ".", "",
             "| method | " + " | ".join(problems) + " |", "|---|" + "---|" * len(problems)]
    for m in methods:
        cells = []
        for p in problems:
            summ = data["problems"][p].get(m, {}).get("summary")
            cells.append("-" if not summ else f"{fmt(summ['l2re'], '.2e')} ({fmt(summ['train_seconds'], '.0f')} s)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def _readme_optimisers(data) -> list[str]:
    lines = ["**Optimiser recipes** (`results/optimisers_recipes.md`, from runs of the shipped configs "
             "`pinnjax run configs/<problem>.yaml`, tabulated by `scripts/bench_optimisers.py --collect`; the CPU was "
             "shared with other jobs, so the seconds are not an idle machine's):", "",
             "| problem | recipe | L2 relative error | bar | bar met | train s |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        recipe = " + ".join(f"{ph['optimiser']} {ph['steps']}" for ph in r["phases"] or [])
        met = {True: "yes", False: "no"}[r["bar"] is not None and r["l2re"] <= r["bar"]]
        lines.append(f"| {r['problem']} | {r['dtype']}, {r['depth']} x {r['width']}, {recipe} | {r['l2re']:.2e} | "
                     f"{fmt(r['bar'], '.0e')} | {met} | {r['train_seconds']:.0f} |")
    return lines + [""]


def _readme_highdim(data) -> list[str]:
    dims, by = _highdim_cost_rows(data)
    lines = [f"**High-dimensional Laplacians** (`results/highdim.md`; {_highdim_load(data)}): one training step, "
             f"exact Laplacian against {data.get('samples')} random directions per point, tanh MLP 4 x 128, float32.", "",
             "| dimension | exact ms | hutchinson ms | sparse ms | exact / sparse |", "|---|---|---|---|---|"]
    for d in dims:
        row = by[d]
        lines.append(f"| d = {d} | {_ms(row.get('exact'))} | {_ms(row.get('hutchinson'))} | {_ms(row.get('sparse'))} | "
                     f"{ratio_text(_speedup(row, 'sparse'))} |")
    jobs = data.get("accuracy_jobs", 1)
    for r in data.get("accuracy", []):
        floor = (f"; {r['solution']} solution, whose best linear `w` leaves {fmt(r['linear_floor'], '.2e')}"
                 if "linear_floor" in r else "")
        lines += ["", f"`{r['config']}` as shipped: L2 relative error {fmt(r['l2re'], '.2e')} after {fmt(r['steps'], 'd')} "
                      f"steps in {fmt(r['train_seconds'], '.0f')} s of training (budget {r['budget_seconds']:.0f} s"
                      + (f", {jobs} runs at a time" if jobs > 1 else "") + f"){floor}."]
    return lines + [""]


def render_readme(results: dict) -> str:
    """The README's measured-figures section from the results JSON (by file stem)."""
    lines = ["Every figure in this section is generated from `results/*.json` by `python scripts/reproduce.py "
             "--render` and checked by `--check` (CI runs it); the files in `results/` say which command, commit "
             "and machine made each. Rows marked legacy were made before provenance was recorded.", ""]
    sections = (("derivatives", _readme_derivatives), ("peers", _readme_peers),
                ("regularisation", _readme_regularisation), ("laplace_coverage", _readme_laplace_coverage),
                ("curvature", _readme_curvature), ("optimisers", _readme_optimiser_comparison),
                ("optimisers_recipes", _readme_optimisers),
                ("highdim", _readme_highdim),
                ("accuracy", _readme_accuracy))
    for name, section in sections:
        if name in results:
            lines += section(results[name])
        else:
            lines += [f"**{name.capitalize()}**: not measured yet (`results/{name}.json` is absent).", ""]
    return "\n".join(lines)
