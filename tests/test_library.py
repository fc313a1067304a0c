"""pinnjax as a library: solve() / Solution / load(), precision without process-wide switches,
imports that start no backend, the time axis from the domain type, and the predict / export
commands (their files read back and compared with the solution)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnjax as pj
from pinnjax.cli import main
from pinnjax.problems import Heat1D, Poisson1D, Poisson2D, Poisson2DC

ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY = {
    "model": {"width": 8, "depth": 2},
    "train": {"steps": 20, "scan_steps": 10, "log_every": 10, "checkpoint_every": 10},
    "sampling": {"interior": 32, "boundary": 8, "initial": 8},
    "eval": {"every": 10, "points": 64},
    "output": {"plots": False},
}


def run_cli(args, capsys):
    try:
        status = main(args)
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr()


# --- imports and precision ---------------------------------------------------------------


def test_importing_pinnjax_and_the_zoo_starts_no_backend():
    code = (
        "import pinnjax, pinnjax.problems, pinnjax.cli\n"
        "from jax._src import xla_bridge as xb\n"
        "assert not xb._backends, 'backend started by import'\n"
        "pinnjax.cli.main(['list'])\n"
        "assert not xb._backends, 'backend started by pinnjax list'\n"
        "print('zoo', 'inverse_diffusion' in pinnjax.problems.PROBLEMS, pinnjax.problems.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "poisson2d" in out.stdout and "zoo True pinnjax.problems" in out.stdout


def test_solve_decides_precision_for_its_call_only():
    before = jax.config.jax_enable_x64
    sol = pj.solve(Poisson1D(), TINY, model={"dtype": "float64"})
    assert jax.config.jax_enable_x64 == before
    assert sol.model.layers[0].V.dtype == jnp.float64
    assert sol(np.zeros((3, 1))).dtype == jnp.float64
    with jax.enable_x64(True):  # the caller runs 64-bit: a float32 run stays float32
        sol32 = pj.solve(Poisson1D(), TINY)
        assert jax.config.jax_enable_x64
    assert sol32.model.layers[0].V.dtype == jnp.float32


def test_time_axis_comes_from_the_domain_type():
    class Labelled(pj.Problem):
        """A steady problem whose hole is labelled 'initial': still steady."""

        domain = pj.Difference(pj.Box([0.0, 0.0], [1.0, 1.0]), pj.Ball([0.5, 0.5], 0.2), labels=("outer", "initial"))
        needs = ("lap_u",)

        def residual(self, x, d):
            return d.lap_u

    p = Labelled()
    assert p.time_axis is None
    assert p.namespace.table(("lap_u",)).request.contractions == ((1.0, 1.0),)  # both axes
    assert Heat1D().time_axis == 1
    assert Heat1D().namespace.table(("lap_u",)).request.contractions == ((1.0, 0.0),)


# --- solve / Solution / load ---------------------------------------------------------------


@pytest.fixture(scope="module")
def poisson_solution():
    return pj.solve(Poisson1D(), TINY, model={"dtype": "float64"}, train={"steps": 30})


def test_solve_trains_in_memory_and_returns_a_solution(poisson_solution, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sol = poisson_solution
    assert sol.run_dir is None and list(tmp_path.iterdir()) == []
    assert sol.metrics["steps"] == 30 and np.isfinite(sol.metrics["l2re"])
    assert [r["step"] for r in sol.history] == [10, 20, 30]
    assert sol.config.problem.name == "poisson1d"
    x = np.linspace(-1, 1, 7)[:, None]
    with jax.enable_x64(True):  # a float64 network is evaluated in 64-bit JAX
        direct = sol.problem.predict(sol.model, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(sol(x)), np.asarray(direct), rtol=1e-13, atol=1e-15)  # jit vs eager


def test_solution_jet_matches_nested_autodiff(poisson_solution):
    sol = poisson_solution
    x = np.linspace(-0.9, 0.9, 5)[:, None]

    def u(p):
        return sol.problem.predict(sol.model, p[None])[0, 0]

    with jax.enable_x64(True):
        ref_x = jax.vmap(jax.grad(u))(jnp.asarray(x))[:, 0]
        ref_xx = jax.vmap(jax.hessian(u))(jnp.asarray(x))[:, 0, 0]
    got = sol.jet(x, "u", "u_x", "u_xx")
    np.testing.assert_allclose(got["u_x"], ref_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["u_xx"], ref_xx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.jet(x, "u_xx"), ref_xx, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="unknown derivative name 'u_yy'"):
        sol.jet(x, "u_yy")
    with pytest.raises(ValueError, match=r"shape \(N, 1\)"):
        sol(np.zeros((3, 2)))


def test_save_and_load_round_trip(poisson_solution, tmp_path):
    run = poisson_solution.save(tmp_path / "saved")
    again = pj.load(run)
    x = np.linspace(-1, 1, 9)[:, None]
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(poisson_solution(x)))
    assert again.metrics["l2re"] == poisson_solution.metrics["l2re"]
    assert [r["step"] for r in again.history] == [10, 20, 30]
    # the CLI reads the saved folder too
    assert main(["eval", str(run)]) == 0


def test_load_of_a_user_problem_file_and_a_learned_unknown(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import jax\n"
        "import pinnjax as pj\n"
        "class Scaled(pj.Problem):\n"
        "    c: jax.Array = pj.unknown(0.5)\n"
        "    domain = pj.Interval(0.0, 1.0)\n"
        "    needs = ('u_xx',)\n"
        "    conditions = (pj.Dirichlet(0.0),)\n"
        "    def residual(self, x, d):\n"
        "        return self.c * d.u_xx + 1.0\n"
    )
    from pinnjax.cli._resolve import resolve_problem_class

    cls, _ = resolve_problem_class("mine.py:Scaled", tmp_path)  # as a config names it
    sol = pj.solve(cls(), TINY, run_dir=tmp_path / "run")
    assert sol.config.problem.name == f"{tmp_path / 'mine.py'}:Scaled"
    assert float(sol.problem.c) != 0.5  # trained
    again = pj.load(tmp_path / "run")
    assert type(again.problem).__name__ == "Scaled" and float(again.problem.c) == float(sol.problem.c)

    class InMain(Poisson1D):
        pass

    InMain.__module__ = "__main__"  # as if defined in a script
    pj.solve(InMain(), TINY, run_dir=tmp_path / "main")
    with pytest.raises(pj.config.ConfigError, match="__main__.*problem="):
        pj.load(tmp_path / "main")
    assert type(pj.load(tmp_path / "main", problem=InMain()).problem) is InMain


# --- predict / export ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny finished runs: a steady box, a steady CSG domain, a space-time problem."""
    base = tmp_path_factory.mktemp("runs")
    for name, problem in (("box", Poisson2D()), ("csg", Poisson2DC()), ("heat", Heat1D())):
        pj.solve(problem, TINY, run_dir=base / name)
    return base


def _vtk_arrays(path):
    root = ET.parse(path).getroot()
    pts = np.array(root.find(".//Points/DataArray").text.split(), float).reshape(-1, 3)
    data = {a.get("Name"): np.array(a.text.split(), float) for a in root.findall(".//PointData/DataArray")}
    return root, pts, data


def test_predict_points_files_and_grids(runs, tmp_path, capsys):
    sol = pj.load(runs / "heat")
    pts = np.array([[0.1, 0.0], [0.5, 0.25], [0.9, 1.0]])
    np.save(tmp_path / "p.npy", pts)
    (tmp_path / "p.csv").write_text("x,t\n" + "\n".join(f"{a},{b}" for a, b in pts))
    for src, dst in (("p.npy", "o.csv"), ("p.csv", "o.npy")):
        status, out = run_cli(["predict", str(runs / "heat"), "--points", str(tmp_path / src), "--out", str(tmp_path / dst)], capsys)
        assert status == 0, out.err
    table = np.loadtxt(tmp_path / "o.csv", delimiter=",", skiprows=1)
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "x,t,u"
    np.testing.assert_allclose(table[:, :2], pts)
    np.testing.assert_allclose(table[:, 2], np.asarray(sol(pts))[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), table)
    status, out = run_cli(["predict", str(runs / "heat"), "--grid", "4", "--times", "0,0.5", "--out", str(tmp_path / "g.npy")], capsys)
    assert status == 0, out.err
    grid = np.load(tmp_path / "g.npy")
    assert grid.shape == (8, 3)
    np.testing.assert_allclose(grid[:4, 0], np.linspace(0, 1, 4))
    np.testing.assert_allclose(grid[:, 1], [0.0] * 4 + [0.5] * 4)
    np.testing.assert_allclose(grid[:, 2], np.asarray(sol(grid[:, :2]))[:, 0], rtol=1e-6)


def test_export_vtk_structured_grid_for_a_box(runs, tmp_path, capsys):
    out = tmp_path / "box.vts"
    status, res = run_cli(["export", str(runs / "box"), "--format", "vtk", "--grid", "5x3", "--out", str(out)], capsys)
    assert status == 0, res.err
    root, pts, data = _vtk_arrays(out)
    assert root.get("type") == "StructuredGrid" and root.find("StructuredGrid").get("WholeExtent") == "0 4 0 2 0 0"
    # VTK order: x fastest
    np.testing.assert_allclose(pts[:5, 0], np.linspace(-1, 1, 5))
    np.testing.assert_allclose(pts[::5, 1], np.linspace(-1, 1, 3))
    np.testing.assert_allclose(pts[:, 2], 0.0)
    sol = pj.load(runs / "box")
    np.testing.assert_allclose(data["u"], np.asarray(sol(pts[:, :2]))[:, 0], rtol=1e-6)


def test_export_vtk_points_for_a_csg_domain(runs, tmp_path, capsys):
    out = tmp_path / "csg.vtu"
    status, res = run_cli(["export", str(runs / "csg"), "--format", "vtk", "--grid", "21x21", "--out", str(out)], capsys)
    assert status == 0, res.err
    root, pts, data = _vtk_arrays(out)
    sol = pj.load(runs / "csg")
    inside = np.asarray(jax.vmap(sol.problem.domain.contains)(jnp.asarray(pts[:, :2], jnp.float32)))
    assert root.get("type") == "UnstructuredGrid" and inside.all() and 300 < len(pts) < 21 * 21
    np.testing.assert_allclose(data["u"], np.asarray(sol(pts[:, :2]))[:, 0], rtol=1e-6)
    meshio = pytest.importorskip("meshio")  # an independent reader of the same file
    mesh = meshio.read(out)
    np.testing.assert_allclose(mesh.points, pts)
    np.testing.assert_allclose(mesh.point_data["u"], data["u"])
    assert mesh.cells[0].type == "vertex" and len(mesh.cells[0].data) == len(pts)


def test_export_time_series_collection_and_npz(runs, tmp_path, capsys):
    out = tmp_path / "heat.pvd"
    status, res = run_cli(["export", str(runs / "heat"), "--format", "vtk", "--grid", "6", "--times", "0,0.5,1", "--out", str(out)], capsys)
    assert status == 0, res.err
    sets = ET.parse(out).getroot().findall("./Collection/DataSet")
    assert [float(s.get("timestep")) for s in sets] == [0.0, 0.5, 1.0]
    sol = pj.load(runs / "heat")
    for s in sets:
        _, pts, data = _vtk_arrays(tmp_path / s.get("file"))
        xt = np.stack([pts[:, 0], np.full(len(pts), float(s.get("timestep")))], axis=1)
        np.testing.assert_allclose(data["u"], np.asarray(sol(xt))[:, 0], rtol=1e-6)
    status, res = run_cli(["export", str(runs / "heat"), "--format", "npz", "--grid", "6", "--out", str(tmp_path / "h.npz")], capsys)
    assert status == 0, res.err
    z = np.load(tmp_path / "h.npz")
    assert z["points"].shape == (66, 2) and len(z["times"]) == 11
    np.testing.assert_allclose(z["u"], np.asarray(sol(z["points"]))[:, 0], rtol=1e-6)


@pytest.mark.parametrize(
    "run, args, message",
    [
        ("heat", ["predict", "--points", "nope.npy", "--out", "o.npy"], "--points: file not found"),
        ("heat", ["predict", "--points", "bad3.npy", "--out", "o.npy"], "shape (4, 3); the problem needs (N, 2)"),
        ("heat", ["predict", "--points", "words.csv", "--out", "o.npy"], "not a numeric csv"),
        ("heat", ["predict", "--grid", "4", "--out", "o.txt"], "expected a file ending in .npy or .csv"),
        ("heat", ["predict", "--out", "o.npy"], "exactly one of --points FILE and --grid"),
        ("heat", ["predict", "--grid", "4x4", "--out", "o.npy"], "has 2 axes; the problem has 1 spatial"),
        ("heat", ["predict", "--grid", "axb", "--out", "o.npy"], "expected points per axis"),
        ("heat", ["predict", "--grid", "4", "--times", "0,2", "--out", "o.npy"], "2.0 is outside the problem's time interval"),
        ("box", ["predict", "--grid", "4x4", "--times", "0.5", "--out", "o.npy"], "Poisson2D is steady"),
        ("box", ["export", "--format", "vtk", "--out", "o.vtu"], "expected a file ending in .vts"),
        ("heat", ["export", "--format", "vtk", "--out", "o.vts"], "expected a file ending in .pvd"),
        ("box", ["export", "--format", "npz", "--out", "nowhere/o.npz"], "does not exist"),
        ("missing", ["predict", "--grid", "4", "--out", "o.npy"], "run folder not found"),
    ],
)
def test_predict_and_export_bad_input_is_one_line(runs, tmp_path, capsys, monkeypatch, run, args, message):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "bad3.npy", np.zeros((4, 3)))
    (tmp_path / "words.csv").write_text("x,t\n1,two\n")
    before = sorted(os.listdir(tmp_path))
    status, res = run_cli([args[0], str(runs / run), *args[1:]], capsys)
    lines = [l for l in res.err.strip().splitlines() if l]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("pinnjax: error:"), res.err
    assert message in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == before


# --- unknowns, fixed data and regularisation -----------------------------------------------


class FixedAndUnknown(pj.Problem):
    """-c u_xx = s(x) on [0, 1], u = 0 at the ends: ``c`` unknown, the source samples ``s``
    fixed data on a grid (an array field that is not marked)."""

    c: jax.Array = pj.unknown(0.5)
    s: np.ndarray | None = None  # default: ones, set in __post_init__
    domain = pj.Interval(0.0, 1.0)
    needs = ("u_xx",)
    conditions = (pj.Dirichlet(0.0),)

    def __post_init__(self):
        if self.s is None:
            self.s = np.full(9, 1.0)

    def residual(self, x, d):
        return -self.c * d.u_xx - jnp.interp(x[0], jnp.linspace(0.0, 1.0, 9, dtype=x.dtype), self.s)


def test_fixed_data_is_an_argument_and_only_unknowns_train():
    from pinnjax.train import TRACE_COUNTS

    first = pj.solve(FixedAndUnknown(), TINY)
    np.testing.assert_array_equal(np.asarray(first.problem.s), 1.0)  # fixed data is not trained
    assert float(first.problem.c) != 0.5  # the unknown is
    assert first.metrics["unknowns"] == {"c": pytest.approx(float(first.problem.c))}
    traces = dict(TRACE_COUNTS)
    second = pj.solve(FixedAndUnknown(s=np.full(9, 3.0)), TINY)  # other data, same shapes
    assert dict(TRACE_COUNTS) == traces  # the compiled step was reused: the data is an argument
    np.testing.assert_array_equal(np.asarray(second.problem.s), 3.0)
    assert float(second.problem.c) != float(first.problem.c)


def _regularization_loss(problem, method):
    from pinnjax.train import make_spec
    from pinnjax.train._spec import active_terms

    cfg = pj._solve.make_config(problem, TINY, loss={"regularization": method})
    spec = make_spec(problem, cfg)
    term = active_terms(problem, spec)[spec.term_names.index("regularization")]
    model = pj.MLP(1, 1, 4, 1, "tanh", key=jax.random.PRNGKey(0))
    pts = term.sample(problem, jax.random.PRNGKey(1), term.condition.batch)
    return float(jnp.mean(term.residuals(problem, model, pts) ** 2)), spec


@pytest.mark.parametrize("method", ["tikhonov", "smoothness", "tv"])
def test_regularisation_of_a_grid_unknown_matches_its_formula(method):
    from pinnjax.problems import InverseDiffusionField

    kappa = np.array([0.5, 1.0, 0.25, 0.25, 2.0])
    got, spec = _regularization_loss(InverseDiffusionField(kappa=kappa), method)
    diffs = np.diff(kappa)
    want = {"tikhonov": np.mean(kappa**2), "smoothness": np.mean(diffs**2), "tv": np.mean(np.abs(diffs))}[method]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert spec.fixed_weights[spec.term_names.index("regularization")] == 1e-3


def test_regularisation_of_a_field_network_unknown():
    """A field network marked unknown: smoothness is the mean |grad a|^2 at interior points,
    checked against jax.grad of the network; it trains."""

    class FieldCoef(pj.Problem):
        a: pj.MLP = pj.unknown(factory=lambda: pj.MLP(1, 1, 8, 1, "tanh", key=jax.random.PRNGKey(3)))
        domain = pj.Interval(0.0, 1.0)
        needs = ("u_xx",)
        conditions = (pj.Dirichlet(0.0),)

        def residual(self, x, d):
            return -(1.0 + self.a(x)[0] ** 2) * d.u_xx - 1.0

    problem = FieldCoef()
    from pinnjax.train import make_spec
    from pinnjax.train._spec import active_terms

    cfg = pj._solve.make_config(problem, TINY, loss={"regularization": "smoothness", "regularization_points": 16})
    spec = make_spec(problem, cfg)
    term = active_terms(problem, spec)[-1]
    pts = term.sample(problem, jax.random.PRNGKey(1), 16)
    model = pj.MLP(1, 1, 4, 1, "tanh", key=jax.random.PRNGKey(0))
    got = float(jnp.mean(term.residuals(problem, model, pts) ** 2))
    want = float(jnp.mean(jax.vmap(jax.grad(lambda p: problem.a(p)[0]))(pts) ** 2))
    assert got == pytest.approx(want, rel=1e-5)
    sol = pj.solve(problem, cfg)
    moved = jax.tree.leaves(sol.problem.a)[0] - jax.tree.leaves(problem.a)[0]
    assert float(jnp.max(jnp.abs(moved))) > 0  # the field network trains
    assert "loss_regularization" in sol.history[-1]
