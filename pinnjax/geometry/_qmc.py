"""Random and quasi-random point sets on the unit cube [0, 1)^d.

All generators are pure functions of a PRNG key with a static output shape, so
they can be used inside `jax.jit`. The quasi-random sets are randomised by the
key so that different keys give different (but still low-discrepancy) sets:

- "halton": Halton sequence (radical inverse in the first d prime bases) with a
  Cranley-Patterson random shift, x -> (x + U) mod 1, U ~ uniform per dim.
- "sobol": Sobol sequence with Joe-Kuo direction numbers (up to
  `MAX_SOBOL_DIM` dims) and a random digital shift (XOR with random bits),
  which keeps the (t, m, s)-net structure intact.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("uniform", "sobol", "halton")

# Joe & Kuo primitive polynomials and initial direction numbers for Sobol
# dimensions 2, 3, ...: (degree s, coefficient bits a, initial m_1..m_s).
# Dimension 1 is the van der Corput sequence in base 2.
_JOE_KUO = (
    (1, 0, (1,)),
    (2, 1, (1, 3)),
    (3, 1, (1, 3, 1)),
    (3, 2, (1, 1, 1)),
    (4, 1, (1, 1, 3, 3)),
    (4, 4, (1, 3, 5, 13)),
    (5, 2, (1, 1, 5, 5, 17)),
    (5, 4, (1, 1, 5, 5, 5)),
    (5, 7, (1, 1, 7, 11, 19)),
    (5, 11, (1, 1, 5, 1, 1)),
    (5, 13, (1, 1, 1, 3, 11)),
    (5, 14, (1, 3, 5, 5, 31)),
    (6, 1, (1, 3, 3, 9, 7, 49)),
    (6, 13, (1, 1, 1, 15, 21, 21)),
    (6, 16, (1, 3, 1, 13, 27, 49)),
    (6, 19, (1, 1, 1, 15, 7, 5)),
    (6, 22, (1, 3, 1, 15, 13, 25)),
    (6, 25, (1, 1, 5, 5, 19, 61)),
    (7, 1, (1, 3, 7, 11, 23, 15, 103)),
    (7, 4, (1, 3, 7, 13, 13, 15, 69)),
)
MAX_SOBOL_DIM = len(_JOE_KUO) + 1
_BITS = 32


@functools.lru_cache(maxsize=None)
def _sobol_directions(d: int) -> np.ndarray:
    """Direction numbers v[j, k] (uint32) for dimension j and index bit k."""
    v = np.zeros((d, _BITS), dtype=np.uint64)
    v[0] = [1 << (_BITS - 1 - k) for k in range(_BITS)]
    for j in range(1, d):
        s, a, m = _JOE_KUO[j - 1]
        m = list(m)
        # m_k = 2 a_1 m_{k-1} ^ 4 a_2 m_{k-2} ^ ... ^ 2^s m_{k-s} ^ m_{k-s},
        # with a_i the i-th most significant of the s-1 bits of `a`.
        for k in range(s, _BITS):
            new = m[k - s] ^ (m[k - s] << s)
            for i in range(1, s):
                if (a >> (s - 1 - i)) & 1:
                    new ^= m[k - i] << i
            m.append(new)
        # v_k = m_k / 2^k as a 32-bit binary fraction.
        v[j] = [m[k] << (_BITS - 1 - k) for k in range(_BITS)]
    return v.astype(np.uint32)


def _primes(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


def _bits_to_unit(bits: jax.Array, dtype) -> jax.Array:
    """Map uint32 binary fractions to floats in [0, 1) without rounding to 1."""
    if jnp.finfo(dtype).nmant >= _BITS:
        return bits.astype(dtype) * (2.0**-_BITS)
    # Keep only as many bits as the mantissa holds, so the result is < 1.
    keep = jnp.finfo(dtype).nmant + 1
    return (bits >> (_BITS - keep)).astype(dtype) * (2.0**-keep)


def halton(key, n: int, d: int, dtype=None) -> jax.Array:
    """Randomly shifted Halton points, shape (n, d)."""
    dtype = dtype or jnp.zeros(()).dtype
    idx = jnp.arange(1, n + 1, dtype=jnp.int32)  # skip the all-zero point
    cols = []
    for base in _primes(d):
        n_digits = max(1, math.ceil(math.log(n + 1) / math.log(base)) + 1)
        x = jnp.zeros((n,), dtype)
        i, scale = idx, 1.0 / base
        for _ in range(n_digits):  # radical inverse: mirror the base-b digits
            x = x + (i % base).astype(dtype) * scale
            i, scale = i // base, scale / base
        cols.append(x)
    points = jnp.stack(cols, axis=1)
    shift = jax.random.uniform(key, (d,), dtype)
    return (points + shift[None, :]) % 1.0


def sobol(key, n: int, d: int, dtype=None) -> jax.Array:
    """Sobol points with a random digital shift, shape (n, d)."""
    if d > MAX_SOBOL_DIM:
        raise ValueError(
            f"method='sobol' supports at most {MAX_SOBOL_DIM} dimensions "
            f"(needed {d}); use method='halton' or 'uniform'"
        )
    if n > 2**_BITS:
        raise ValueError(f"method='sobol' supports at most 2**{_BITS} points")
    dtype = dtype or jnp.zeros(()).dtype
    directions = jnp.asarray(_sobol_directions(d))
    idx = jnp.arange(n, dtype=jnp.uint32)
    bits = jnp.zeros((n, d), jnp.uint32)
    # x_i = XOR of the direction numbers of the set bits of i.
    for k in range(max(1, (n - 1).bit_length())):
        on = ((idx >> k) & 1).astype(bool)[:, None]
        bits = jnp.where(on, bits ^ directions[None, :, k], bits)
    bits = bits ^ jax.random.bits(key, (d,), jnp.uint32)[None, :]
    return _bits_to_unit(bits, dtype)


def unit_samples(key, n: int, d: int, method: str = "uniform", dtype=None) -> jax.Array:
    """`n` points in [0, 1)^d drawn with `method` ("uniform", "sobol", "halton")."""
    dtype = dtype or jnp.zeros(()).dtype
    if method == "uniform":
        return jax.random.uniform(key, (n, d), dtype)
    if method == "halton":
        return halton(key, n, d, dtype)
    if method == "sobol":
        return sobol(key, n, d, dtype)
    raise ValueError(f"unknown sampling method {method!r}; expected one of {METHODS}")
