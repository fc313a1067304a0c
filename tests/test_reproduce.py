"""scripts/reproduce.py: every results table is generated from its JSON, --check catches a
hand edit (naming the file and line), legacy rows are marked as such, and computed claims
(beats_published) are recomputed from the stored numbers, never carried over."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce  # noqa: E402
import results_tables  # noqa: E402


@pytest.fixture
def results_copy(tmp_path):
    out = tmp_path / "results"
    shutil.copytree(ROOT / "results", out, ignore=shutil.ignore_patterns("runs"))
    return out


def run_record(config, seed, l2re, *, provenance=None, **extra):
    rec = dict(config=config, seed=seed, l2re=l2re, best_l2re=l2re, steps=100, wall_seconds=1.0, returncode=0)
    if provenance is not None:
        rec["provenance"] = provenance
    rec.update(extra)
    return rec


def test_repository_results_match_their_json():
    assert reproduce.check(ROOT / "results") == []


def test_every_results_table_has_a_json_and_a_renderer():
    for md in (ROOT / "results").glob("*.md"):
        if md.stem in reproduce.COMBINED_TABLES:  # generated from several JSON files
            assert all((md.parent / f"{src}.json").exists() for src in reproduce.COMBINED_TABLES[md.stem]), md
            continue
        assert md.with_suffix(".json").exists(), md
        assert reproduce.renderer(md.stem) is not None, md


def test_check_names_the_file_and_first_differing_line(results_copy):
    md = results_copy / "accuracy.md"
    lines = md.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("| heat2d_lt"))
    lines[row] = lines[row].replace("**no** (unsolved)", "yes")  # the hand edit the issue describes
    md.write_text("\n".join(lines) + "\n")
    problems = reproduce.check(results_copy)
    assert len(problems) == 1
    assert f"accuracy.md:{row + 1}:" in problems[0] and "heat2d_lt" in problems[0]


def test_check_flags_a_json_claim_that_its_numbers_contradict(results_copy):
    path = results_copy / "accuracy.json"
    data = json.loads(path.read_text())
    row = next(r for r in data["rows"] if r["problem"] == "heat2d_lt")
    assert row["l2re_mean"] >= 0.5 and row["beats_published"] is False
    row["beats_published"] = True
    path.write_text(json.dumps(data, indent=2) + "\n")
    problems = reproduce.check(results_copy)
    assert any(p.startswith(str(path)) and "beats_published" in p for p in problems), problems
    reproduce.render_all(results_copy)
    assert reproduce.check(results_copy) == []
    fixed = json.loads(path.read_text())
    assert next(r for r in fixed["rows"] if r["problem"] == "heat2d_lt")["beats_published"] is False


def test_check_flags_a_table_without_json_and_a_missing_table(results_copy):
    (results_copy / "notes.md").write_text("# typed by hand\n")
    (results_copy / "derivatives.md").unlink()
    problems = reproduce.check(results_copy)
    assert any("notes.md" in p and "no JSON" in p for p in problems)
    assert any("derivatives.md: missing" in p for p in problems)


def test_beats_published_is_recomputed_from_the_stored_numbers():
    published = {"a": (1e-2, "paper"), "b": (0.999, "paper"), "d": (None, "same PDE, figure not readable")}
    runs = [run_record("a", 0, 5e-3), run_record("a", 1, 7e-3), run_record("b", 0, 0.998), run_record("c", 0, 0.1),
            run_record("d", 0, 0.1)]
    rows = {r["problem"]: r for r in results_tables.summarise(runs, published)}
    # a published row whose figure was not read: its note is shown, and nothing is judged
    assert "beats_published" not in rows["d"] and rows["d"]["published_source"] == "same PDE, figure not readable"
    assert rows["d"]["published_l2re"] is None
    assert rows["a"]["beats_published"] is True and rows["a"]["l2re_mean"] == pytest.approx(6e-3)
    assert rows["b"]["beats_published"] is False  # below the published figure, but no solution
    assert "beats_published" not in rows["c"] and rows["c"]["published_source"] == "none found"


def test_legacy_rows_are_marked_and_new_rows_show_their_commit():
    prov = dict(commit="0123456789abcdef", tree_clean=True, command="python scripts/reproduce.py --configs a")
    runs = [run_record("old", 0, 1e-3), run_record("a", 0, 2e-3, provenance=prov, recipe="families/x.yaml < base.yaml"),
            run_record("dirty", 0, 2e-3, provenance=dict(prov, tree_clean=False))]
    md = results_tables.render_accuracy({"runs": runs, "rows": results_tables.summarise(runs, {})})
    line = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert "not recorded (pre-issue-11 run)" in line["old"] and "not recorded |" in line["old"]
    assert "`0123456789`, clean tree" in line["a"] and "families/x.yaml < base.yaml" in line["a"]
    assert "uncommitted changes" in line["dirty"]
    assert "`python scripts/reproduce.py --configs a`" in md


def test_recipe_chain_follows_base_configs(tmp_path):
    (tmp_path / "families").mkdir()
    (tmp_path / "problem.yaml").write_text("base: families/family.yaml\nproblem: {name: poisson1d}\n")
    (tmp_path / "families" / "family.yaml").write_text("base: ../root.yaml\ntrain: {steps: 10}\n")
    (tmp_path / "root.yaml").write_text("seed: 0\n")
    chain = reproduce.recipe_chain(tmp_path / "problem.yaml")
    assert chain == f"{tmp_path / 'families' / 'family.yaml'} < {tmp_path / 'root.yaml'}"
    assert reproduce.recipe_chain(tmp_path / "root.yaml") == "(no base)"
    assert reproduce.recipe_chain(ROOT / "configs" / "base.yaml") == "(no base)"


def test_pinnacle_protocol_overrides_are_valid_config_keys():
    from pinnjax.config import load_config

    cfg = load_config(ROOT / "configs" / "burgers1d.yaml", reproduce.PROTOCOLS["pinnacle"])
    assert (cfg.model.width, cfg.model.depth, cfg.train.lr) == (100, 5, 1e-3)
    assert (cfg.sampling.interior, cfg.sampling.boundary, cfg.sampling.rad) == (8192, 2048, False)
    weighted = load_config(ROOT / "configs" / "poisson2d_c.yaml", reproduce.PROTOCOLS["pinnacle"])
    assert weighted.loss.weights == {}  # the shipped boundary weights are dropped: no weighting


def test_an_accuracy_run_records_its_provenance(tmp_path):
    tiny = ["train.steps=20", "train.lbfgs_steps=0", "train.scan_steps=10", "eval.every=10", "eval.points=64",
            "sampling.interior=32", "sampling.boundary=2", "model.width=8", "model.depth=1", "output.plots=false"]
    argv = ["--configs", "poisson1d", "--seeds", "3", "--jobs", "1", "--out", str(tmp_path)]
    for o in tiny:
        argv += ["--set", o]
    assert reproduce.main(argv) == 0
    data = json.loads((tmp_path / "accuracy.json").read_text())
    (run,) = data["runs"]
    prov = run["provenance"]
    assert prov["commit"] == reproduce.git("rev-parse", "HEAD").strip()
    assert prov["tree_clean"] in (True, False) and prov["command"].endswith(" ".join(argv))
    assert prov["versions"]["jax"] and prov["hardware"]["cores"] and prov["wall_seconds"] > 0
    assert run["seed"] == 3 and run["resolved_config"]["seed"] == 3
    assert run["resolved_config"]["problem"]["name"] == "poisson1d" and run["overrides"] == tiny
    assert run["recipe"] == reproduce.recipe_chain(ROOT / "configs" / "poisson1d.yaml") and run["l2re"] > 0
    assert run["recipe"].endswith("base.yaml")
    assert reproduce.check(tmp_path) == []
    assert "`" + prov["commit"][:10] + "`" in (tmp_path / "accuracy.md").read_text()


def test_resume_continues_an_interrupted_run_to_the_unbroken_result(tmp_path, monkeypatch):
    """A run folder cut back to what a killed invocation leaves (its first checkpoint, no
    metrics, an invocation without return code) is resumed by --resume to the numbers of an
    unbroken run; its row records both invocations. A finished run is kept, and a run made on
    another commit is refused."""
    monkeypatch.setattr(reproduce, "tree_state", lambda: ("c0ffee" * 6 + "c0ff", True))
    tiny = ["train.phases.0.steps=20", "train.phases.1.steps=10", "train.phases.1.resample_every=5",
            "train.scan_steps=10", "train.checkpoint_every=10", "output.keep_checkpoints=5", "eval.every=10", "eval.points=64", "sampling.interior=32",
            "sampling.boundary=2", "model.width=8", "model.depth=1", "output.plots=false"]
    argv = ["--configs", "poisson1d", "--seeds", "3", "--jobs", "1", "--resume"] + [a for o in tiny for a in ("--set", o)]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert reproduce.main(argv + ["--out", str(whole)]) == 0
    shutil.copytree(whole, broken)
    run_dir = broken / "runs" / "poisson1d-seed3"
    for step in (20, 30):  # a run killed after its first checkpoint
        (run_dir / "checkpoints" / f"step_{step:08d}.eqx").unlink()
    (run_dir / "metrics.json").unlink()
    ledger = json.loads((run_dir / reproduce.LEDGER).read_text())
    del ledger["invocations"][0]["returncode"], ledger["invocations"][0]["wall_seconds"]
    (run_dir / reproduce.LEDGER).write_text(json.dumps(ledger))
    assert reproduce.main(argv + ["--out", str(broken)]) == 0
    (a,), (b,) = (json.loads((d / "accuracy.json").read_text())["runs"] for d in (whole, broken))
    assert a["l2re"] == b["l2re"] and a["steps"] == b["steps"] == 30
    invocations = b["provenance"]["invocations"]
    assert [i["resumed"] for i in invocations] == [False, True] and invocations[0]["interrupted"]
    assert b["wall_seconds"] == pytest.approx(sum(i["wall_seconds"] for i in invocations))
    assert "resumed (2 invocations)" in (broken / "accuracy.md").read_text() and "invocations" not in a["provenance"]

    history = (run_dir / "history.csv").read_text()
    assert reproduce.main(argv + ["--out", str(broken)]) == 0  # finished: kept, not run again
    assert (run_dir / "history.csv").read_text() == history
    assert len(json.loads((run_dir / reproduce.LEDGER).read_text())["invocations"]) == 2

    monkeypatch.setattr(reproduce, "tree_state", lambda: ("beef" * 10, True))
    with pytest.raises(SystemExit, match="was started at c0ffeec0ff .clean., the tree is now at beefbeefbe"):
        reproduce.main(argv + ["--out", str(broken)])
    monkeypatch.setattr(reproduce, "tree_state", lambda: ("c0ffee" * 6 + "c0ff", True))
    with pytest.raises(SystemExit, match="started with overrides"):
        reproduce.main(argv + ["--out", str(broken), "--set", "train.lr=0.01"])


def test_tree_state_ignores_what_reproduce_writes_and_nothing_else(tmp_path, monkeypatch):
    def sh(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for name in ("README.md", "results/accuracy.md", "configs/poisson1d.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("first\n")
    sh("init", "-q")
    sh("add", "-A")
    sh("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    assert reproduce.tree_state()[1] is True
    (tmp_path / "README.md").write_text("figures rendered by an earlier invocation\n")
    (tmp_path / "results" / "accuracy.md").write_text("a new table\n")
    assert reproduce.tree_state()[1] is True
    (tmp_path / "configs" / "poisson1d.yaml").write_text("changed\n")
    assert reproduce.tree_state()[1] is False
    (tmp_path / "configs" / "poisson1d.yaml").write_text("first\n")
    (tmp_path / "configs" / "new.yaml").write_text("untracked\n")
    assert reproduce.tree_state()[1] is False


def test_runs_start_longest_first_and_rows_name_their_device(tmp_path, monkeypatch):
    chain = {c: reproduce.recipe_chain(ROOT / "configs" / f"{c}.yaml") for c in ("poisson1d", "kdv")}
    (tmp_path / "accuracy.json").write_text(json.dumps({"runs": [
        run_record("poisson1d", 0, 1e-3, wall_seconds=10.0, recipe=chain["poisson1d"]),
        run_record("kdv", 0, 1e-3, wall_seconds=500.0, recipe=chain["kdv"])]}))
    started = []

    def fake_run_one(config, seed, out, *args):
        started.append((config, seed))
        hardware = {"device": "cuda:0 (NVIDIA H100 80GB HBM3)", "cores": 16} if config == "kdv" else {"device": "cpu:0", "cores": 2}
        return run_record(config, seed, 1e-3, provenance={"commit": "abc", "tree_clean": True, "command": "c",
                                                          "hardware": hardware})

    monkeypatch.setattr(reproduce, "run_one", fake_run_one)
    argv = ["--configs", "poisson1d", "heat1d", "kdv", "--seeds", "0", "1", "--jobs", "1", "--out", str(tmp_path)]
    assert reproduce.main(argv) == 0
    # never run before (unknown): first; then by the mean wall time the last results recorded
    assert [c for c, _ in started] == ["heat1d", "heat1d", "kdv", "kdv", "poisson1d", "poisson1d"]
    data = json.loads((tmp_path / "accuracy.json").read_text())
    assert [r["config"] for r in data["runs"]] == ["poisson1d"] * 2 + ["heat1d"] * 2 + ["kdv"] * 2  # table order kept
    table = (tmp_path / "accuracy.md").read_text()
    assert "| cuda:0 (NVIDIA H100 80GB HBM3), 16 cores |" in table and "| cpu:0, 2 cores |" in table


def test_json_is_compared_by_content_and_a_json_without_renderer_is_named(results_copy):
    path = results_copy / "derivatives.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))  # another script's indentation
    (results_copy / "mystery.json").write_text("{}\n")
    problems = reproduce.check(results_copy)
    assert len(problems) == 1 and "mystery.json: no renderer for 'mystery'" in problems[0]


def test_derivative_tables_keep_networks_apart():
    def rec(network, method, ms):
        return dict(network=network, method=method, d=2, width=64, depth=4, points=8, step_ms=ms, forward_ms=1.0,
                    temp_bytes=None)

    md = results_tables.derivative_tables([rec("mlp", "engine_lap", 2.0), rec("mlp", "folx", 4.0),
                                           rec("pirate", "engine_lap", 5.0), rec("pirate", "folx", 20.0)])
    mlp, pirate = md.split("### network: pirate (depth 4)")
    assert "| 64 | 2 | 2.00 | 4.00 | 2.00x |" in mlp and "| 64 | 2 | 5.00 | 20.00 | 4.00x |" in pirate


def test_readme_lists_product_network_speedups_when_recorded():
    def rec(network, method, ms, d=2):
        return dict(network=network, method=method, d=d, width=128, depth=3, points=8, step_ms=ms, forward_ms=1.0)

    mlp = [dict(rec("mlp", m, ms), width=64, depth=4) for m, ms in (("engine_lap", 1.0), ("folx", 2.0))]
    section = results_tables.render_readme({"derivatives": {"meta": {}, "records": mlp + [
        rec("pirate", "engine_lap", 4.0), rec("pirate", "folx", 10.0), rec("pirate", "nested_jvp", 12.0)]}})
    assert "| pirate | 128 x 3 | 2 | 3.00x | 2.50x |" in section
    assert "| 2 | 2.00 | 1.00 |" in section  # the MLP table: folx, engine_lap


def test_quick_pinnacle_protocol_adds_no_lbfgs(tmp_path, monkeypatch):
    seen = {}

    class StoppedRun:  # the run's process, stopped before it trains
        def __init__(self, cmd, **kwargs):
            seen["cmd"], self.pid, self.returncode = cmd, None, 1

        def communicate(self):
            return "", "stopped by the test"

    monkeypatch.setattr(reproduce.subprocess, "Popen", StoppedRun)
    rec = reproduce.run_one("burgers1d", 0, tmp_path, True, "pinnacle", [], "cmd", ("abc", True))
    sets = [seen["cmd"][i + 1] for i, a in enumerate(seen["cmd"]) if a == "--set"]
    assert "train.lbfgs_steps=0" in sets and not any(s.startswith("train.lbfgs_steps=2") for s in sets)
    assert rec["error"] == "stopped by the test"
    # burgers1d's recipe has an SSBroyden phase: the protocol replaces it with one short Adam phase
    from pinnjax.config import load_config

    resolved = load_config(reproduce.ROOT / "configs" / "burgers1d.yaml", [s for s in sets if not s.startswith("seed=")])
    assert resolved.train.phases == [{"optimiser": "adam", "steps": 1000}]


def test_highdim_merge_keeps_the_cost_part_and_says_where_it_came_from(tmp_path, monkeypatch):
    """``--run highdim --merge`` asks bench_highdim.py to keep the stored cost part; the kept
    records are the stored ones, the table names the run that measured them, and keeping a
    kept part again still names that first run."""
    import bench_highdim

    seen = {}
    monkeypatch.setattr(reproduce.subprocess, "run",
                        lambda cmd, **kw: seen.setdefault("cmd", cmd) and subprocess.CompletedProcess(cmd, 1))
    args = reproduce.argparse.Namespace(quick=False, merge=True, out=str(tmp_path), jobs=3)
    with pytest.raises(SystemExit):  # the fake run fails, results are left alone
        reproduce.run_benchmark("highdim", args, "cmd", ("abc", True))
    assert seen["cmd"][-4:] == ["--jobs", "3", "--keep-cost", str(tmp_path / "highdim.json")]

    stored = json.loads((ROOT / "results" / "highdim.json").read_text())
    first_run = stored.get("cost_kept", {}).get("provenance") or stored["provenance"]
    path, new = tmp_path / "old.json", tmp_path / "new.json"
    path.write_text(json.dumps(stored))
    for _ in range(2):  # keep it; reproduce.py adds the new run's provenance; keep the kept part
        bench_highdim.main(["--keep-cost", str(path), "--parts", "accuracy", "--configs", "--json", str(new)])
        data = json.loads(new.read_text())
        assert data["cost"] == stored["cost"] and data["accuracy"] == []
        assert data["cost_kept"]["provenance"] == first_run
        path.write_text(json.dumps(dict(data, provenance={"commit": "f" * 40, "command": "later"})))
    text = results_tables.render_highdim(data)
    assert "kept from an earlier run" in text and first_run["commit"][:10] in text and "f" * 10 not in text
    path.write_text(json.dumps(dict(stored, quick=True)))
    with pytest.raises(SystemExit, match="quick"):
        bench_highdim.main(["--keep-cost", str(path), "--parts", "accuracy", "--configs", "--json", str(new)])


def test_recent_figures_get_their_own_columns_and_never_the_verdict():
    published = {"a": (1e-2, "PINNacle")}
    recent = {"a": (1e-6, "Someone et al. 2025, Table 2, SOAP", "same PDE, other domain"),
              "b": (3e-5, "Other et al. 2026, Table 1", "same setting"),
              "d": (None, "Third et al. 2025", "same setting; table not read")}
    runs = [run_record("a", 0, 5e-3), run_record("b", 0, 1e-4), run_record("c", 0, 1e-3), run_record("d", 0, 1e-3)]
    rows = {r["problem"]: r for r in results_tables.summarise(runs, published, recent)}
    assert rows["a"]["beats_published"] is True  # judged against PUBLISHED only, not the lower recent figure
    assert "beats_published" not in rows["b"] and rows["b"]["recent_l2re"] == 3e-5
    assert rows["c"]["recent_source"] is None
    md = results_tables.render_accuracy({"runs": runs, "rows": list(rows.values())})
    header = next(ln for ln in md.splitlines() if ln.startswith("| problem"))
    cells = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[1:-1]]
             for ln in md.splitlines() if ln.startswith("| ") and "---" not in ln and ln != header}
    columns = [c.strip() for c in header.split("|")[1:-1]]
    value, source = columns.index("best 2025-26"), columns.index("2025-26 source, setting")
    assert cells["a"][value] == "1.00e-06" and cells["a"][source] == "Someone et al. 2025, Table 2, SOAP: same PDE, other domain"
    assert cells["b"][value] == "3.00e-05" and "Other et al. 2026" in cells["b"][source]
    assert (cells["c"][value], cells["c"][source]) == ("-", "none recorded")
    assert (cells["d"][value], cells["d"][source]) == ("not read", "Third et al. 2025: same setting; table not read")


def test_recent_figures_are_well_formed_and_shown_in_the_repository_table():
    configs = set(reproduce.DEFAULT_CONFIGS) | set(reproduce.PINNACLE_CONFIGS)
    table = (ROOT / "results" / "accuracy.md").read_text()
    rows = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ")}
    for problem, (l2re, source, note) in reproduce.PUBLISHED_RECENT.items():
        assert problem in configs, problem
        assert (l2re is None or 0 < l2re < 1) and source.strip() and note.strip(), problem
        assert any(year in source for year in ("2024", "2025", "2026")), source
        if problem in rows:
            shown = "not read" if l2re is None else f"{l2re:.2e}"
            assert f"| {shown} | {source}: {note} |" in rows[problem], problem


def test_derivative_tables_and_readme_keep_xla_flag_settings_apart():
    def rec(network, method, ms, flags):
        return dict(network=network, method=method, d=2, width=128, depth=3, points=8, step_ms=ms, forward_ms=1.0,
                    xla_flags=flags)

    records = [rec("mlp", "engine_lap", 1.0, "default"), rec("mlp", "folx", 3.0, "default"),
               rec("mlp", "engine_lap", 1.0, "pinnjax"), rec("mlp", "folx", 2.0, "pinnjax"),
               rec("pirate", "engine_lap", 4.0, "pinnjax"), rec("pirate", "nested_jvp", 16.0, "pinnjax"),
               rec("pirate", "engine_lap", 5.0, "default"), rec("pirate", "nested_jvp", 10.0, "default")]
    md = results_tables.derivative_tables(records)
    assert md.index("network: mlp (depth 3), XLA flags: pinnjax's") < md.index("network: mlp (depth 3), XLA flags: XLA's defaults")
    section = results_tables.render_readme({"derivatives": {"meta": {}, "records": records}})
    assert "| 2 | 2.00 | 1.00 |" in section  # the MLP table: the pinnjax-flag records
    assert "| pirate | 128 x 3 | 2 | pinnjax | 4.00x |" in section and "| pirate | 128 x 3 | 2 | default | 2.00x |" in section


def test_pinnacle_rows_side_by_side_when_both_protocols_ran(results_copy):
    runs = [run_record("poisson2d_c", s, v, protocol="pinnacle") for s, v in ((0, 0.6), (1, 0.8))]
    (results_copy / "accuracy_pinnacle.json").write_text(json.dumps({"runs": runs}))
    files, _ = reproduce.generated(results_copy)
    table = files[results_copy / "pinnacle_side_by_side.md"]
    default = {r["problem"]: r for r in reproduce.derive("accuracy", json.loads((results_copy / "accuracy.json").read_text()))["rows"]}
    row = next(ln for ln in table.splitlines() if ln.startswith("| poisson2d_c "))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == "7.00e-01 (2)" and cells[3] == "6.94e-01" and cells[4].startswith("1.23e-02")
    assert cells[2] == f"{default['poisson2d_c']['l2re_mean']:.2e} ({len(default['poisson2d_c']['seeds'])})"
    assert next(ln for ln in table.splitlines() if ln.startswith("| burgers1d ")).split("|")[2].strip() == "not run"


def test_readme_compares_optimisers_side_by_side():
    def res(l2re, seconds):
        return {"summary": {"l2re": l2re, "train_seconds": seconds}, "runs": []}

    data = {"settings": dict(quick=False, repeats=1, adam=10, steps=20, gn_steps=5, depth=3, width=30, interior=100),
            "machine": {"load_before": [1.5, 1.0, 1.0]},
            "problems": {"poisson2d": {"adam+lbfgs": res(1e-3, 12.0), "adam+engd": res(2e-6, 30.0)},
                         "wave1d": {"adam+lbfgs": res(0.5, 8.0)}}}
    section = results_tables.render_readme({"optimisers": data})
    assert "| method | poisson2d | wave1d |" in section and "**quick budgets**" not in section
    assert "| adam+lbfgs | 1.00e-03 (12 s) | 5.00e-01 (8 s) |" in section
    assert "| adam+engd | 2.00e-06 (30 s) | - |" in section


def test_longest_runs_start_first_and_a_changed_recipe_counts_as_unknown(tmp_path):
    """expected_seconds reads the last results file's walls only for configs whose recipe
    chain is still the same; a changed or new config is unknown (and so starts first)."""
    chain = reproduce.recipe_chain(ROOT / "configs" / "heat1d.yaml")
    runs = [dict(config="heat1d", wall_seconds=100.0, recipe=chain), dict(config="heat1d", wall_seconds=200.0, recipe=chain),
            dict(config="heat2d", wall_seconds=50.0, recipe="family_other.yaml < base.yaml")]
    (tmp_path / "accuracy.json").write_text(json.dumps({"runs": runs}))
    assert reproduce.expected_seconds(tmp_path, "default") == {"heat1d": 150.0}
