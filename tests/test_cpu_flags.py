"""The XLA:CPU flags the pinnjax command sets (pinnjax/_cpu_flags.py)."""

import subprocess
import sys

import pytest

from pinnjax._cpu_flags import CHECKED_JAXLIB, FAST_CPU_FLAGS, _jaxlib_version, use_fast_cpu_flags

checked = pytest.mark.skipif(not _jaxlib_version().startswith(CHECKED_JAXLIB), reason="flags not checked on this jaxlib")


@checked
def test_flags_are_added_to_what_the_user_set():
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    added = use_fast_cpu_flags(env)
    assert added == tuple(f"--{n}={v}" for n, v in FAST_CPU_FLAGS)
    assert env["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x", *added]
    assert use_fast_cpu_flags(env) == ()  # already there: nothing added twice


@checked
def test_a_flag_the_user_set_is_kept_and_the_switch_turns_it_off():
    name = FAST_CPU_FLAGS[0][0]
    env = {"XLA_FLAGS": f"--{name}=dot"}
    assert use_fast_cpu_flags(env) == () and env["XLA_FLAGS"] == f"--{name}=dot"
    env = {"PINNJAX_XLA_DEFAULTS": "1"}
    assert use_fast_cpu_flags(env) == () and "XLA_FLAGS" not in env


@checked
def test_flags_take_effect_before_the_backend_starts_and_not_after():
    """In a fresh process: import pinnjax (which starts nothing), add the flags, compile a
    reduction; XLA then keeps it out of YNN fusions. Once the backend runs, nothing is added."""
    code = """
import jax, jax.numpy as jnp, pinnjax
added = pinnjax.use_fast_cpu_flags()
hlo = jax.jit(lambda x: jnp.sum(jnp.tanh(x) * x, axis=1)).lower(jnp.ones((256, 128))).compile().as_text()
print(bool(added), 'ynn_fusion' in hlo, pinnjax.use_fast_cpu_flags({}) != (), bool(pinnjax.use_fast_cpu_flags()))
"""
    env_out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"})
    assert env_out.stdout.split() == ["True", "False", "True", "False"]
