"""What a caller asks the engine for, by input axis; and the jet of arrays it gets back."""

from __future__ import annotations

import dataclasses
import itertools

import equinox as eqx
import jax


ESTIMATOR_METHODS = ("hutchinson", "sparse")
DISTRIBUTIONS = ("rademacher", "gaussian")


@dataclasses.dataclass(frozen=True)
class Estimator:
    """How a Request's contractions ``sum_k c_k d2u/dx_k^2`` are estimated from random
    directions instead of computed exactly (hashable, static under jit).

    - ``hutchinson``: ``samples`` random vectors ``v`` (``rademacher`` +-1 or ``gaussian``
      entries) per point, scaled by ``sqrt|c|``; the estimate is
      ``sign(c) mean_j v_j^T diag(sqrt|c|) H diag(sqrt|c|) v_j`` (Hutchinson's trace estimator).
    - ``sparse``: ``samples`` axes ``i`` drawn uniformly (with replacement) among the ``m``
      axes with ``c_i != 0``; the estimate is ``(m / samples) sum_j c_i H_ii`` (the sparse
      estimator of SDGD / STDE): the first layer needs ``samples`` columns of W, not ``d``.

    Every direction is one carried row, so a step costs ``samples`` rows whatever ``d``.
    The weights of a contraction must not mix signs (estimate ``L+`` and ``L-`` separately).
    """

    method: str = "hutchinson"
    samples: int = 16
    distribution: str = "rademacher"

    def __post_init__(self):
        if self.method not in ESTIMATOR_METHODS:
            raise ValueError(f"Estimator.method must be one of {ESTIMATOR_METHODS}, got {self.method!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"Estimator.distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        if isinstance(self.samples, bool) or int(self.samples) != self.samples or self.samples < 1:
            raise ValueError(f"Estimator.samples must be a positive integer, got {self.samples!r}")
        object.__setattr__(self, "samples", int(self.samples))


@dataclasses.dataclass(frozen=True)
class Request:
    """Which derivatives of the network output to propagate (hashable, so it is static under jit).

    Axes are input-coordinate indices. Every field is optional; the value is always returned.

    - ``first``: axes ``k`` for ``du/dx_k``.
    - ``second``: axes ``k`` for ``d2u/dx_k^2`` (the diagonal Hessian, seed eq. 23).
    - ``mixed``: pairs ``(i, j)``, ``i < j``, for ``d2u/dx_i dx_j`` (seed eq. 22).
    - ``contractions``: weight vectors ``c`` (one weight per input axis) for
      ``sum_k c_k d2u/dx_k^2``: a Laplacian is all ones, a spatial Laplacian of a space-time
      input has a 0 on the time axis. Propagated as one column, not ``d``.
    - ``third`` / ``fourth``: axes ``k`` for ``d3u/dx_k^3`` / ``d4u/dx_k^4``.
    - ``multi``: axis tuples of length 3 or 4 with at least two different axes, for mixed
      derivatives such as ``(0, 0, 1)`` = ``d3u/dx_0^2 dx_1`` or ``(0, 0, 1, 1)`` (stored sorted).
    - ``bilaplacian``: weights ``c`` (one per input axis) for ``L^2 u`` with
      ``L = sum_k c_k d2/dx_k^2``: the biharmonic ``lap(lap u)`` is all ones (0 on a time axis).
    - ``estimator``: an :class:`Estimator`: the contractions are estimated from random
      directions (the engine then needs a PRNG key); None (default) computes them exactly.
    """

    first: tuple[int, ...] = ()
    second: tuple[int, ...] = ()
    mixed: tuple[tuple[int, int], ...] = ()
    contractions: tuple[tuple[float, ...], ...] = ()
    third: tuple[int, ...] = ()
    fourth: tuple[int, ...] = ()
    multi: tuple[tuple[int, ...], ...] = ()
    bilaplacian: tuple[float, ...] = ()
    estimator: Estimator | None = None

    def __post_init__(self):
        def axes(name):
            value = getattr(self, name)
            try:
                out = tuple(int(k) for k in value)
            except TypeError:
                raise TypeError(f"Request.{name} must be a tuple of axis indices, got {value!r}") from None
            if len(set(out)) != len(out):
                raise ValueError(f"Request.{name} repeats an axis: {out}")
            object.__setattr__(self, name, out)

        for name in ("first", "second", "third", "fourth"):
            axes(name)
        mixed = []
        for pair in self.mixed:
            if len(pair) != 2 or int(pair[0]) == int(pair[1]):
                raise ValueError(f"Request.mixed entries are pairs of two different axes, got {pair!r}")
            mixed.append(tuple(sorted((int(pair[0]), int(pair[1])))))
        if len(set(mixed)) != len(mixed):
            raise ValueError(f"Request.mixed repeats a pair: {mixed}")
        object.__setattr__(self, "mixed", tuple(mixed))
        object.__setattr__(
            self, "contractions", tuple(tuple(float(c) for c in w) for w in self.contractions)
        )
        multi = []
        for axes_ in self.multi:
            axes_ = tuple(sorted(int(k) for k in axes_))
            if len(axes_) not in (3, 4) or len(set(axes_)) < 2:
                raise ValueError(
                    f"Request.multi entries are 3 or 4 axes with at least two different ones, got {axes_!r} "
                    "(pure derivatives go in third/fourth)"
                )
            multi.append(axes_)
        if len(set(multi)) != len(multi):
            raise ValueError(f"Request.multi repeats an entry: {multi}")
        object.__setattr__(self, "multi", tuple(multi))
        object.__setattr__(self, "bilaplacian", tuple(float(c) for c in self.bilaplacian))
        if self.estimator is not None:
            if not isinstance(self.estimator, Estimator):
                raise TypeError(f"Request.estimator must be an Estimator or None, got {self.estimator!r}")
            if self.bilaplacian or self.third or self.fourth or self.multi:
                raise ValueError("Request.estimator estimates second-order contractions only; "
                                 "drop third/fourth/multi/bilaplacian from the request")
            for w in self.contractions:
                if any(c > 0 for c in w) and any(c < 0 for c in w):
                    raise ValueError(
                        f"Request.estimator: contraction weights {w} mix signs; estimate the positive and "
                        "negative parts as two contractions"
                    )

    def estimated(self, estimator: "Estimator | None") -> "Request":
        """This request with its contractions estimated by ``estimator`` (unchanged when it
        has no contractions or ``estimator`` is None)."""
        if estimator is None or not self.contractions:
            return self
        return dataclasses.replace(self, estimator=estimator)

    @classmethod
    def laplacian(cls, dim: int, *, skip: tuple[int, ...] = ()) -> "Request":
        """Only the Laplacian over all axes but ``skip`` (e.g. the time axis)."""
        return cls(contractions=(tuple(0.0 if k in skip else 1.0 for k in range(dim)),))

    @classmethod
    def full_hessian(cls, dim: int) -> "Request":
        return cls(
            first=tuple(range(dim)),
            second=tuple(range(dim)),
            mixed=tuple(itertools.combinations(range(dim), 2)),
        )

    @property
    def max_order(self) -> int:
        if self.fourth or self.bilaplacian or any(len(m) == 4 for m in self.multi):
            return 4
        if self.multi:
            return 3
        if self.fourth:
            return 4
        if self.third:
            return 3
        if self.second or self.mixed or self.contractions:
            return 2
        return 1 if self.first else 0

    def check(self, dim: int) -> None:
        """Raise a named error when an axis is out of range for a ``dim``-dimensional input."""
        for name in ("first", "second", "third", "fourth"):
            for k in getattr(self, name):
                if not 0 <= k < dim:
                    raise ValueError(
                        f"Request.{name} asks for axis {k}, but the input has {dim} dimension(s) "
                        f"(valid axes 0..{dim - 1})"
                    )
        for i, j in self.mixed:
            if not (0 <= i < dim and 0 <= j < dim):
                raise ValueError(f"Request.mixed pair {(i, j)} is out of range for a {dim}-dimensional input")
        for m in self.multi:
            if not all(0 <= k < dim for k in m):
                raise ValueError(f"Request.multi entry {m} is out of range for a {dim}-dimensional input")
        if self.bilaplacian and len(self.bilaplacian) != dim:
            raise ValueError(
                f"Request.bilaplacian has {len(self.bilaplacian)} weights, the input has {dim} dimension(s)"
            )
        for w in self.contractions:
            if len(w) != dim:
                raise ValueError(
                    f"Request.contractions weight vector has {len(w)} entries, the input has {dim} dimension(s)"
                )


class Jet(eqx.Module):
    """The network's value and requested derivatives at one point.

    Each array has the outputs first: ``value`` is ``(n_out,)``; ``first`` is
    ``(n_out, len(request.first))`` in the order of ``request.first``; likewise ``second``,
    ``mixed``, ``contractions``, ``third``, ``fourth``, ``multi``; ``bilaplacian`` is
    ``(n_out, 1)`` when asked for, ``(n_out, 0)`` otherwise.
    """

    value: jax.Array
    first: jax.Array
    second: jax.Array
    mixed: jax.Array
    contractions: jax.Array
    third: jax.Array
    fourth: jax.Array
    multi: jax.Array
    bilaplacian: jax.Array
