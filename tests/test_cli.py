"""The pinnjax command: bad input is one clear line, exit status 2, and nothing written."""

import os
import pathlib
import subprocess
import sys

import pytest

from pinnjax.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(args, tmp_path, capsys):
    """Run the CLI in-process; return (exit status, stderr)."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        try:
            status = main(args)
        except SystemExit as exc:
            status = exc.code
    finally:
        os.chdir(cwd)
    return status, capsys.readouterr().err


def write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("problem: {name: poisson1d}\ntrain: {stpes: 10}\n", [], "unknown key 'train.stpes' (did you mean 'train.steps'?)"),
        ("problem: {name: poisson1d}\ntrain: {steps: many}\n", [], "train.steps"),
        ("problem: {name: poison1d}\n", [], "did you mean 'poisson1d'?"),
        ("problem: {name: poisson1d}\nmodel: {width: [1,\n", [], "invalid YAML"),
        ("problem: {name: poisson1d}\n", ["train.steps=abc"], "train.steps"),
        ("problem: {name: poisson1d}\n", ["model.widht=3"], "did you mean 'model.width'?"),
        ("problem: {name: poisson1d, params: {alpah: 1}}\n", [], "problem.params.alpah"),
        ("problem: {name: missing.py:Foo}\n", [], "file not found: missing.py"),
        ("base: nowhere.yaml\nproblem: {name: poisson1d}\n", [], "nowhere.yaml"),
    ],
)
def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, overrides, message):
    cfg = write(tmp_path, text)
    args = ["run", str(cfg), "--out", str(tmp_path / "out")]
    for o in overrides:
        args += ["--set", o]
    status, err = run_cli(args, tmp_path, capsys)
    assert status == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1, err
    assert lines[0].startswith("pinnjax: error:")
    assert message in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    assert "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    status, err = run_cli(["run", str(tmp_path / "nope.yaml")], tmp_path, capsys)
    assert status == 2 and "nope.yaml" in err and "Traceback" not in err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    status, err = run_cli(["resume", str(tmp_path)], tmp_path, capsys)
    assert status == 2 and "config.yaml" in err


def test_user_problem_file_class_not_found(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(
        "import pinnjax as pj\n"
        "class MyPoisson(pj.Problem):\n"
        "    domain = pj.Interval(0.0, 1.0)\n"
        "    needs = ('u_xx',)\n"
        "    def residual(self, x, d):\n"
        "        return d.u_xx\n"
    )
    cfg = write(tmp_path, "problem: {name: mine.py:MyPoison}\n")
    status, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "o")], tmp_path, capsys)
    assert status == 2 and "did you mean 'MyPoisson'?" in err


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "pinnjax", "list"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "poisson2d" in out.stdout
