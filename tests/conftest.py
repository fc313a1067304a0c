"""Shared test settings: strict numerics and reproducible random inputs (STYLE.md section 6).

Every test runs with ``jax_numpy_rank_promotion="raise"`` (the autouse ``_no_rank_promotion``),
so an implicit ``(N,)`` vs ``(N, 1)`` broadcast anywhere in the library or a test is an error
instead of a silently wrong residual. ``strict_jax`` (opt in per module with
``pytestmark = pytest.mark.usefixtures("strict_jax")``) also runs a test in float64, so every
tolerance can be justified from float64 rounding. Both are per-test contexts rather than
process-wide ``jax.config.update``s: other test files check float32 defaults.

``seed`` / ``key`` give each test its own seed, derived from ``PINNJAX_TEST_SEED`` (default 0)
and the test id, printed in the report of a failing test. Rerunning the same test reproduces
it; setting ``PINNJAX_TEST_SEED`` draws other inputs.

The tests compile far more than they run (a smoke run compiles a training step for seconds and
takes a few steps), so they ask LLVM for less optimisation of XLA's CPU code
(``--xla_backend_optimization_level=0``, also in the ``XLA_FLAGS`` of the subprocesses they
start). XLA's own graph passes are unchanged, and without fast math LLVM may not reorder
floating-point operations at any level, so the numbers tested are the ones users get, to
round-off. ``PINNJAX_TEST_XLA_OPT=default`` keeps XLA's default level.
"""

import os
import zlib

import jax
import pytest

from pinnjax import use_fast_cpu_flags

use_fast_cpu_flags()  # the XLA flags the pinnjax command runs under, so in-process and CLI runs agree
if os.environ.get("PINNJAX_TEST_XLA_OPT") != "default" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

BASE_SEED = int(os.environ.get("PINNJAX_TEST_SEED", "0"))
_SEED = pytest.StashKey[int]()


@pytest.fixture
def strict_jax():
    """float64 and rank-promotion errors for the duration of one test."""
    with jax.enable_x64(True), jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture
def seed(request) -> int:
    """This test's seed: stable across runs and machines, different for every test id."""
    value = (BASE_SEED + zlib.crc32(request.node.nodeid.encode())) % 2**31
    request.node.stash[_SEED] = value
    print(f"random seed {value} (PINNJAX_TEST_SEED={BASE_SEED}, test {request.node.nodeid})")
    return value


@pytest.fixture
def key(seed):
    """A PRNG key from this test's seed."""
    return jax.random.PRNGKey(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _SEED in item.stash:
        report.sections.append(
            ("random seed", f"seed {item.stash[_SEED]} (from PINNJAX_TEST_SEED={BASE_SEED} and the test id)")
        )
    return report


@pytest.fixture(autouse=True)
def _no_rank_promotion():
    """Implicit rank promotion is an error in every test (the library broadcasts explicitly)."""
    with jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture(autouse=True)
def _restore_x64():
    """A float64 CLI run (the CLI, where a run starts, enables x64 for its process) must not
    change the dtype defaults of the tests that follow it."""
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compiled programs after each test module: a full run compiles thousands of
    them, and keeping them all grew the one pytest process until XLA aborted in a compile."""
    yield
    jax.clear_caches()
