"""Derivative names as a PDE writes them (``u_t``, ``u_xx``, ``lap_u``) and the view a residual
reads them through.

Grammar, for an output ``u`` and coordinates named by the domain (``x``, ``y``, ``t``, ...):

- ``u``: the value
- ``u_<c...>``: a partial derivative, the coordinate names concatenated (``u_x``, ``u_xx``,
  ``u_xy``, ``u_ttt``, ``u_xxy``, ``u_xxyy``): any derivative up to fourth order, pure or mixed
- ``lap_u``: the Laplacian over the spatial coordinates (every coordinate but ``t``)
- ``bilap_u``: the biharmonic ``lap(lap u)`` over the spatial coordinates
- ``grad_u``: the gradient over all coordinates, shape (d,)
- ``hessdiag_u``: all pure second derivatives, shape (d,); ``hess_u``: the full Hessian (d, d)
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools

import equinox as eqx
import jax.numpy as jnp

from ..derivatives import Jet, Request


class UndeclaredDerivativeError(KeyError):
    """A residual or condition read a derivative it did not declare in ``needs``."""

    def __str__(self):
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class _Slot:
    kind: str  # value | first | second | mixed | contractions | third | fourth | multi | bilaplacian | grad | hessdiag | hess
    output: int
    index: int | tuple = 0


def _tokenize(coords: str, names: tuple[str, ...]) -> list[int] | None:
    """Split ``"xxy"`` into coordinate indices, longest name first; None if impossible."""
    out, i = [], 0
    by_len = sorted(range(len(names)), key=lambda k: -len(names[k]))
    while i < len(coords):
        for k in by_len:
            if coords.startswith(names[k], i):
                out.append(k)
                i += len(names[k])
                break
        else:
            return None
    return out


@dataclasses.dataclass(frozen=True)
class DerivativeTable:
    """Parsed ``needs``: the engine Request and where each name lives in the Jet. Static."""

    names: tuple[str, ...]
    request: Request
    slots: tuple[tuple[str, _Slot], ...]

    def slot(self, name: str) -> _Slot:
        for n, s in self.slots:
            if n == name:
                return s
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class NameSpace:
    """Coordinate and output names of a problem; parses derivative names."""

    coords: tuple[str, ...]
    outputs: tuple[str, ...]
    time_axis: int | None = None

    def _parse(self, name: str):
        """-> (kind, output index, axes) for one name, or raise ValueError naming it."""
        for prefix, kind in (("lap_", "lap"), ("bilap_", "bilap"), ("grad_", "grad"), ("hessdiag_", "hessdiag"), ("hess_", "hess")):
            if name.startswith(prefix) and name[len(prefix) :] in self.outputs:
                return kind, self.outputs.index(name[len(prefix) :]), ()
        if name in self.outputs:
            return "value", self.outputs.index(name), ()
        for o, out in enumerate(self.outputs):
            if name.startswith(out + "_"):
                axes = _tokenize(name[len(out) + 1 :], self.coords)
                if axes:
                    return "partial", o, tuple(axes)
        valid = list(self.outputs) + [f"{o}_{c}" for o in self.outputs for c in self.coords]
        valid += [f"lap_{o}" for o in self.outputs] + [f"bilap_{o}" for o in self.outputs]
        hint = difflib.get_close_matches(name, valid, n=1)
        raise ValueError(
            f"unknown derivative name {name!r}: outputs are {self.outputs}, coordinates {self.coords}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + "; write e.g. 'u_x', 'u_xx', 'u_xy', 'lap_u', 'grad_u'"
        )

    def table(self, needs) -> DerivativeTable:
        """The Request that propagates exactly what ``needs`` names, and the name -> slot map."""
        needs = tuple(dict.fromkeys(needs))
        d = len(self.coords)
        first, second, mixed, third, fourth, contractions, multi = [], [], [], [], [], [], []
        spatial = tuple(0.0 if k == self.time_axis else 1.0 for k in range(d))
        bilaplacian = ()

        def add(lst, item):
            if item not in lst:
                lst.append(item)
            return lst.index(item)

        parsed = []
        for name in needs:
            if not isinstance(name, str):
                raise TypeError(f"needs must list derivative names as strings, got {name!r}")
            kind, o, axes = self._parse(name)
            if kind == "value":
                parsed.append((name, "value", o, 0))
            elif kind == "lap":
                parsed.append((name, "contractions", o, add(contractions, spatial)))
            elif kind == "bilap":
                bilaplacian = spatial
                parsed.append((name, "bilaplacian", o, 0))
            elif kind == "grad":
                parsed.append((name, "grad", o, tuple(add(first, k) for k in range(d))))
            elif kind == "hessdiag":
                parsed.append((name, "hessdiag", o, tuple(add(second, k) for k in range(d))))
            elif kind == "hess":
                sec = tuple(add(second, k) for k in range(d))
                mix = {(i, j): add(mixed, (i, j)) for i, j in itertools.combinations(range(d), 2)}
                parsed.append((name, "hess", o, (sec, tuple(sorted(mix.items())))))
            else:
                order, distinct = len(axes), sorted(set(axes))
                if order == 1:
                    parsed.append((name, "first", o, add(first, axes[0])))
                elif len(distinct) == 1 and order <= 4:
                    lst = {2: second, 3: third, 4: fourth}[order]
                    parsed.append((name, {2: "second", 3: "third", 4: "fourth"}[order], o, add(lst, axes[0])))
                elif order == 2:
                    parsed.append((name, "mixed", o, add(mixed, tuple(distinct))))
                elif order <= 4:
                    parsed.append((name, "multi", o, add(multi, tuple(sorted(axes)))))
                else:
                    raise ValueError(f"{name!r}: the engine propagates derivatives up to fourth order, this is order {order}")
        request = Request(
            first=tuple(first), second=tuple(second), mixed=tuple(mixed),
            contractions=tuple(contractions), third=tuple(third), fourth=tuple(fourth),
            multi=tuple(multi), bilaplacian=bilaplacian,
        )
        slots = tuple((name, _Slot(kind, o, idx)) for name, kind, o, idx in parsed)
        return DerivativeTable(needs, request, slots)


class Fields(eqx.Module):
    """What a residual sees at one point: ``d.u``, ``d.u_x``, ``d.lap_u``... (only the names
    declared in ``needs``; anything else raises :class:`UndeclaredDerivativeError`).

    Arrays may carry leading batch axes (a periodic condition sees a pair of points)."""

    jet: Jet
    table: DerivativeTable = eqx.field(static=True)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        table = object.__getattribute__(self, "table")
        jet = object.__getattribute__(self, "jet")
        try:
            s = table.slot(name)
        except KeyError:
            raise UndeclaredDerivativeError(
                f"{name!r} was used but not declared: add it to `needs` (declared: {', '.join(table.names) or 'nothing'})"
            ) from None
        return _read(jet, s)

    def __getitem__(self, name):
        return self.__getattr__(name)


def _read(jet: Jet, s: _Slot):
    if s.kind == "value":
        return jet.value[..., s.output]
    if s.kind in ("first", "second", "mixed", "contractions", "third", "fourth", "multi", "bilaplacian"):
        return getattr(jet, s.kind)[..., s.output, s.index]
    if s.kind == "grad":
        return jet.first[..., s.output, jnp.asarray(s.index)]
    if s.kind == "hessdiag":
        return jet.second[..., s.output, jnp.asarray(s.index)]
    if s.kind == "hess":
        sec, mix = s.index
        diag = jet.second[..., s.output, jnp.asarray(sec)]
        d = diag.shape[-1]
        H = jnp.zeros(diag.shape + (d,), diag.dtype)
        H = H.at[..., jnp.arange(d), jnp.arange(d)].set(diag)
        for (i, j), k in mix:
            v = jet.mixed[..., s.output, k]
            H = H.at[..., i, j].set(v).at[..., j, i].set(v)
        return H
    raise AssertionError(s.kind)
