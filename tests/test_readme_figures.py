"""Every measured figure the README quotes comes from results/: the "Measured figures" section
is what the results JSON gives, its tables agree number by number with the JSON, and no
measurement-like figure (a speed-up, a time, a memory size, an error like 3.6e-3) appears
anywhere else in the README."""

import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce  # noqa: E402

README = (ROOT / "README.md").read_text()
BEGIN, END = README.index(reproduce.README_BEGIN), README.index(reproduce.README_END)
SECTION, OUTSIDE = README[BEGIN:END], README[:BEGIN] + README[END:]

# a ratio (6.9x), an error with a decimal mantissa (3.6e-3; config values such as lr 1e-3 have
# none), a speed, a time or a memory size
MEASUREMENT = re.compile(
    r"\b\d+(?:\.\d+)?x\b|\b\d\.\d+e[-+]?\d+\b"
    r"|\b\d+(?:\.\d+)?\s*(?:[A-Za-z-]+\s+)?(?:steps/s|steps per second)|\b\d+(?:\.\d+)?\s*(?:ms\b|MiB|GiB|s of training|s wall)"
)


def table_rows(text, first_cell):
    """The cells of the Markdown table rows whose first cell matches `first_cell`."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(first_cell, cells[0]):
            rows.append(cells)
    return rows


def test_readme_section_is_what_the_results_give():
    expected = reproduce.readme_with_section(README, reproduce.tables.render_readme(
        {p.stem: reproduce.derive(p.stem, json.loads(p.read_text())) for p in (ROOT / "results").glob("*.json")}))
    assert README == expected, reproduce.first_difference(ROOT / "README.md", README, expected)


def test_readme_accuracy_figures_match_accuracy_json():
    rows = {r["problem"]: r for r in json.loads((ROOT / "results" / "accuracy.json").read_text())["rows"]}
    accuracy_table = SECTION[SECTION.index("**Accuracy**"):]
    quoted = [c for c in table_rows(accuracy_table, r"[a-z_0-9]+") if c[0] in rows]
    assert len(quoted) == len(rows)
    for problem, seeds, mean, published, *_ in quoted:
        row = rows[problem]
        assert int(seeds) == len(row["seeds"]), problem
        assert float(mean) == pytest.approx(row["l2re_mean"], rel=5e-3), problem
        if row["published_l2re"] is not None:
            assert float(published) == pytest.approx(row["published_l2re"], rel=5e-3), problem


def test_readme_derivative_figures_match_derivatives_json():
    records = json.loads((ROOT / "results" / "derivatives.json").read_text())["records"]
    header = next(c for c in table_rows(SECTION, "d"))
    methods = {"`jax.hessian` trace": "hessian", "nested jvp": "nested_jvp", "folx forward Laplacian": "folx",
               "engine, Laplacian only": "engine_lap", "engine, whole diagonal": "engine_diag"}
    quoted = table_rows(SECTION, r"\d+")
    assert quoted
    for cells in quoted:
        for title, value in zip(header[1:], cells[1:]):
            rec = next(r for r in records if r["d"] == int(cells[0]) and r["method"] == methods[title])
            assert float(value) == pytest.approx(rec["step_ms"], rel=5e-3), (cells[0], title)


def test_no_measured_figure_outside_the_generated_section():
    in_code, found = False, []
    for n, line in enumerate(OUTSIDE.splitlines(), start=1):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            found += [f"line {n}: {m.group()!r} in {line.strip()[:80]!r}" for m in MEASUREMENT.finditer(line)]
    assert not found, "figures quoted outside the generated section (take them from results/ via reproduce.py):\n" + "\n".join(found)


def test_the_measurement_pattern_catches_typed_claims():
    for typed in ("6.9x faster than DeepXDE", "339 Adam steps/s", "1e-3 after 17.1 s of training",
                  "ends at 2.9e-3", "235 MiB", "1.25-1.35x"):
        assert MEASUREMENT.search(typed), typed
    for config in ("lr 1e-3", "`u_t - 1e-4 u_xx`", "tanh 4 x 50", "5,000 Adam steps"):
        assert not MEASUREMENT.search(config), config


def test_readme_peer_speeds_match_peers_json():
    parts = json.loads((ROOT / "results" / "peers.json").read_text())["parts"]
    quoted = re.findall(r"pinnjax (\d+) Adam steps/s, DeepXDE (\d+) \((\d+\.\d+)x\)", SECTION)
    expected = [parts[k] for k in ("poisson2d_adam", "burgers1d") if k in parts]
    assert len(quoted) == len(expected)
    for (pj, dx, ratio), part in zip(quoted, expected):
        assert int(pj) == round(part["pinnjax"]["adam_steps_per_second"])
        assert int(dx) == round(part["deepxde"]["adam_steps_per_second"])
        measured = part["pinnjax"]["adam_steps_per_second"] / part["deepxde"]["adam_steps_per_second"]
        assert float(ratio) == pytest.approx(measured, abs=5e-3)
