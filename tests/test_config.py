import dataclasses
import pathlib
import textwrap

import pytest
import yaml

from pinnjax.config import (
    config_from_dict,
    config_to_dict,
    ConfigError,
    dump_config,
    load_config,
    RunConfig,
    TrainConfig,
)
from pinnjax.config import EmbeddingConfig


def _write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path, body, overrides=()):
    path = _write(tmp_path, "cfg.yaml", "problem: {name: poisson2d}\n" + body)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- loading, inheritance, overrides ------------------------------------------------


def test_defaults_and_float_strings(tmp_path):
    path = _write(
        tmp_path,
        "c.yaml",
        """
        problem:
          name: burgers1d
          params: {nu: 1e-3}
        train:
          lr: 1e-3
          decay_rate: "5e-1"
          warmup_steps: 10
        loss:
          weights: {pde: 1, bc: 1e2}
        """,
    )
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.train.decay_rate == 0.5
    assert cfg.problem.params == {"nu": 1e-3}
    assert cfg.loss.weights == {"pde": 1.0, "bc": 100.0}
    assert cfg.train.steps == TrainConfig().steps == 5000
    assert cfg.model.embedding is None and cfg.output.name is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.steps = 3


def test_inheritance_and_override_precedence(tmp_path):
    _write(
        tmp_path,
        "root.yaml",
        """
        problem: {name: poisson2d, params: {a: 1, b: 2}}
        model: {width: 32, embedding: {type: fourier, features: 16, scale: 1.0}}
        train: {steps: 100, lr: 0.01}
        seed: 1
        """,
    )
    (tmp_path / "sub").mkdir()
    _write(
        tmp_path / "sub",
        "mid.yaml",
        """
        base: ../root.yaml
        problem: {params: {b: 3}}
        model: {embedding: {scale: 2.0}}
        train: {steps: 200}
        """,
    )
    child = _write(
        tmp_path,
        "child.yaml",
        """
        base: sub/mid.yaml
        train: {lr: 0.002}
        model: {embedding: {type: periodic, axes: [0], periods: [2.0]}}
        """,
    )
    cfg = load_config(child)
    assert cfg.problem.name == "poisson2d"
    assert cfg.problem.params == {"a": 1, "b": 3}
    assert (cfg.train.steps, cfg.train.lr) == (200, 0.002)
    assert (cfg.seed, cfg.model.width) == (1, 32)
    # A changed `type` replaces the embedding rather than mixing keys.
    assert cfg.model.embedding == EmbeddingConfig(type="periodic", axes=[0], periods=[2.0])

    cfg = load_config(
        child,
        [
            "train.steps=2000",
            "problem.params.c=x",
            "model.embedding={type: fourier}",
            "train.lr=1e-4",
            "output.name=null",
        ],
    )
    assert cfg.train.steps == 2000 and cfg.train.lr == 1e-4
    assert cfg.problem.params == {"a": 1, "b": 3, "c": "x"}
    assert cfg.model.embedding == EmbeddingConfig(type="fourier")
    cfg = load_config(child, ["model.embedding.harmonics=3"])
    assert cfg.model.embedding.harmonics == 3


def test_mid_level_base_keeps_partial_merge(tmp_path):
    _write(
        tmp_path,
        "a.yaml",
        "problem: {name: p}\nmodel: {embedding: {type: fourier, scale: 1.0}}\n",
    )
    b = _write(tmp_path, "b.yaml", "base: a.yaml\nmodel: {embedding: {scale: 5.0}}\n")
    assert load_config(b).model.embedding == EmbeddingConfig(type="fourier", scale=5.0)


def test_round_trip(tmp_path):
    cfg = load_config(
        _write(tmp_path, "c.yaml", "problem: {name: heat, params: {k: [1, 2]}}\n"),
        ["model.embedding={type: fourier, features: 64, scale: 1.0}", "train.lr=3e-4",
         "model.factorization={mean: 1.0, std: 0.1}", "output.name=run1"],
    )
    data = config_to_dict(cfg)
    assert data["train"]["lr"] == 3e-4 and data["problem"]["params"] == {"k": [1, 2]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path) == cfg
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ("train: {stpes: 10}", "unknown key 'train.stpes' (did you mean 'train.steps'?)"),
        ("modle: {}", "unknown key 'modle' (did you mean 'model'?)"),
        ("train: {steps: abc}", "key 'train.steps': expected int, got str ('abc')"),
        ("train: {steps: 10.5}", "key 'train.steps': expected int, got float"),
        ("train: {steps: true}", "key 'train.steps': expected int, got bool"),
        ("train: {lr: fast}", "key 'train.lr': expected float, got str"),
        ("train: 5", "key 'train': expected mapping, got int"),
        ("train: {decay: linear}", "key 'train.decay': invalid value 'linear' (allowed:"),
        ("train: {steps: 0}", "key 'train.steps' must be positive, got 0"),
    ],
)
def test_errors_in_files_name_the_key(tmp_path, body, expected):
    assert expected in _error(tmp_path, body + "\n")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["trian.steps=1"], "unknown key 'trian' (did you mean 'train'?)"),
        (["train.foo=1"], "unknown key 'train.foo' (valid keys: steps, lr,"),
        (["train.lr=true"], "key 'train.lr': expected float, got bool"),
        (["model.hard_constraint=1"], "key 'model.hard_constraint': expected bool"),
        (["output.name=3"], "key 'output.name': expected str or null, got int"),
        (["model.embedding=[1]"], "key 'model.embedding': expected mapping or null"),
        (["problem.params=3"], "key 'problem.params': expected mapping, got int"),
        (["sampling.method=grid"], "key 'sampling.method': invalid value 'grid'"),
        (["loss.balancing=softadapt"], "key 'loss.balancing': invalid value 'softadapt'"),
        (["model.dtype=float16"], "(allowed: float32, float64)"),
        (["sampling.interior=-5"], "key 'sampling.interior' must be positive, got -5"),
        (["model.width=0"], "key 'model.width' must be positive"),
        (["sampling.boundary=-1"], "key 'sampling.boundary' must be >= 0"),
        (["train.lr=0"], "key 'train.lr' must be > 0"),
        (["train.lr=.nan"], "key 'train.lr' must be a finite number"),
        (["loss.weights.pde=-1"], "key 'loss.weights.pde' must be >= 0"),
        (["loss.balance_momentum=1"], "key 'loss.balance_momentum' must be < 1"),
        (
            ["sampling.rad=true", "sampling.rad_pool=10"],
            "key 'sampling.rad_pool' (10) must be >= sampling.interior",
        ),
        (["model.embedding={features: 3}"], "missing required key 'model.embedding.type'"),
        (["model.embedding={type: fourier, periods: [1.0]}"], "key 'model.embedding.periods' does not apply to model.embedding.type 'fourier' (it is a key of periodic"),
        (["model.embedding={type: periodic}"], "model.embedding.type 'periodic' needs the key 'model.embedding.periods'"),
        (["model.embedding={type: periodic, periods: [-1.0]}"], "key 'model.embedding.periods[0]' must be > 0"),
        (["model.embedding={type: wavelet}"], "key 'model.embedding.type': invalid value 'wavelet' (allowed: fourier, periodic)"),
        (["model.factorization={mean: 1.0, sd: 0.1}"], "unknown key 'model.factorization.sd' (did you mean 'model.factorization.std'?)"),
        (["model.type=pirate", "model.depth=3"], "key 'model.depth' does not apply to model.type 'pirate' (it is a key of mlp, modified_mlp; pirate takes: blocks, least_squares_init)"),
        (["model.blocks=3"], "key 'model.blocks' does not apply to model.type 'mlp'"),
        (["model.type=piratenet"], "key 'model.type': invalid value 'piratenet' (allowed: mlp, modified_mlp, pirate, resnet)"),
        (["model.blcoks=3"], "unknown key 'model.blcoks' (did you mean 'model.blocks'?)"),
        (["train.steps"], "malformed override 'train.steps'"),
        (["train..steps=1"], "malformed override"),
        (["train.steps=[1"], "override 'train.steps=[1', line 1"),
        (["seed=3", "seed.x=1"], "key 'seed' is not a mapping (got int)"),
    ],
)
def test_errors_in_overrides_name_the_key(tmp_path, overrides, expected):
    assert expected in _error(tmp_path, "", overrides)


def test_missing_required_problem(tmp_path):
    with pytest.raises(ConfigError, match="missing required key 'problem.name'"):
        load_config(_write(tmp_path, "c.yaml", "problem: {params: {}}\n"))
    with pytest.raises(ConfigError, match="missing required key 'problem'"):
        load_config(_write(tmp_path, "c.yaml", "seed: 1\n"))


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    child = _write(tmp_path, "c.yaml", "base: gone.yaml\nproblem: {name: p}\n")
    with pytest.raises(ConfigError, match=r"gone\.yaml \(base of .*c\.yaml\)"):
        load_config(child)


def test_malformed_yaml_names_file_and_line(tmp_path):
    text = "problem:\n  name: p\ntrain: {steps: 1\nseed: 2\n"
    path = _write(tmp_path, "bad.yaml", text)
    pattern = r"bad\.yaml, line 4, column \d+: invalid YAML"
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    assert "\n" not in str(info.value)
    dup = _write(tmp_path, "dup.yaml", "problem: {name: p}\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml, line 3.*duplicate key 'seed'"):
        load_config(dup)
    top = _write(tmp_path, "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a"):
        load_config(top)


def test_inheritance_cycle(tmp_path):
    _write(tmp_path, "a.yaml", "base: b.yaml\nproblem: {name: p}\n")
    b = _write(tmp_path, "b.yaml", "base: a.yaml\n")
    pattern = r"cycle: .*b\.yaml -> .*a\.yaml -> .*b\.yaml"
    with pytest.raises(ConfigError, match=pattern):
        load_config(b)
    _write(tmp_path, "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "self.yaml")


def test_loader_does_not_change_pyyaml_globally():
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}
    assert yaml.safe_load("{a: 1, a: 2}") == {"a": 2}


def test_base_yaml_agrees_with_the_schema_defaults():
    """configs/base.yaml restates defaults; it must not differ from the schema (one source)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    tree = yaml.safe_load((root / "configs" / "base.yaml").read_text())
    defaults = config_to_dict(config_from_dict({"problem": {"name": "x"}}))
    for section, values in tree.items():
        for key, value in values.items():
            assert defaults[section][key] == value, f"base.yaml {section}.{key}={value!r}, schema {defaults[section][key]!r}"
    assert load_config(root / "configs" / "base.yaml", ["problem.name=x"]) == config_from_dict({"problem": {"name": "x"}})


def test_readme_config_reference_lists_the_schema_defaults():
    """Each single-key row of README.md's config table shows the schema's default."""
    root = pathlib.Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    table = text[text.index("### Config reference"):]
    table = table[: table.index("\n## ")]
    defaults = config_to_dict(config_from_dict({"problem": {"name": "x"}}))
    checked = 0
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`") or "," in cells[0] or "," in cells[1]:
            continue
        key = cells[0].strip("`")
        if "." not in key or key.startswith("problem."):
            continue
        section, name = key.split(".", 1)
        if section not in defaults or name not in defaults[section]:
            continue
        want = defaults[section][name]
        shown = cells[1].strip("`")
        expected = {None: "none", True: "true", False: "false"}.get(want, want) if not isinstance(want, dict) else "{}"
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            assert float(shown) == float(want), f"README {key}: {shown}, schema {want}"
        else:
            assert shown == str(expected), f"README {key}: {shown}, schema {expected}"
        checked += 1
    assert checked >= 10
