"""``train.phases``: the ordered optimiser phases of a run, each an optimiser with its options,
a step budget and a sampling rule. The old ``train.steps`` / ``train.lbfgs_steps`` keys are
the shorthand for ``[adam, lbfgs]``."""

from __future__ import annotations

import dataclasses
import difflib
import typing

from .optimisers import OPTIMISERS, AbstractOptimiser


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase: `steps` steps of `optimiser` from global step `start`.

    The batch is drawn when the phase starts and then every `resample_every` steps (0: never
    again); with `rad` the interior points come from the RAD distribution, its pool refreshed
    every `rad_every` steps of the phase (0: at each draw)."""

    optimiser: AbstractOptimiser
    steps: int
    start: int
    resample_every: int
    rad: bool
    rad_every: int

    @property
    def end(self) -> int:
        return self.start + self.steps

    @property
    def name(self) -> str:
        return self.optimiser.name

    def signature(self) -> dict:
        """What fixes the shapes of this phase's state (stored in checkpoints)."""
        opts = {k: v for k, v in self.optimiser.options.items() if k != "steps"}
        return {"optimiser": self.name, **opts}


def optimiser_from_signature(sig: dict) -> AbstractOptimiser:
    sig = dict(sig)
    return OPTIMISERS[sig.pop("optimiser")](**sig)


def _option(key: str, value, tp: str):
    if tp == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"key '{key}': expected int, got {value!r}")
    if tp == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"key '{key}': expected float, got {value!r}")
        value = float(value)
    if tp == "str" and not isinstance(value, str):
        raise ValueError(f"key '{key}': expected str, got {value!r}")
    if tp == "bool" and not isinstance(value, bool):
        raise ValueError(f"key '{key}': expected bool, got {value!r}")
    return value


def _nonnegative_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"key '{key}': expected an int >= 0, got {value!r}")
    return value


def phases_from_config(train, sampling) -> tuple[Phase, ...]:
    """The phases `train` (a TrainConfig) asks for; ValueError naming the key if invalid."""
    adam_defaults = {"lr": train.lr, "warmup_steps": train.warmup_steps, "decay": train.decay,
                     "decay_rate": train.decay_rate, "decay_steps": train.decay_steps}
    if train.phases is None:
        raw = [{"optimiser": "adam", "steps": train.steps}]
        if train.lbfgs_steps:
            raw.append({"optimiser": "lbfgs", "steps": train.lbfgs_steps, "memory_size": train.lbfgs_memory})
    else:
        if train.lbfgs_steps:
            raise ValueError("key 'train.lbfgs_steps' cannot be combined with train.phases (add an lbfgs phase)")
        if not train.phases:
            raise ValueError("key 'train.phases' is empty: give at least one phase")
        raw = train.phases
    phases, start = [], 0
    for i, entry in enumerate(raw):
        where = f"train.phases[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"key '{where}': expected a mapping, got {entry!r}")  # noqa: TRY004 (a config error)
        entry = dict(entry)
        name = entry.pop("optimiser", None)
        if name not in OPTIMISERS:
            close = difflib.get_close_matches(str(name), list(OPTIMISERS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"key '{where}.optimiser': {name!r} is not one of {', '.join(OPTIMISERS)}{hint}")
        cls = OPTIMISERS[name]
        steps = entry.pop("steps", None)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"key '{where}.steps': expected a positive int, got {steps!r}")
        default_every = sampling.resample_every if cls.redraw_default == -1 else cls.redraw_default
        every = _nonnegative_int(f"{where}.resample_every", entry.pop("resample_every", default_every))
        rad = _option(f"{where}.rad", entry.pop("rad", sampling.rad), "bool")
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)} - {"steps"}
        unknown = sorted(set(entry) - fields)
        if unknown:
            raise ValueError(f"key '{where}.{unknown[0]}': not an option of {name} (options: {', '.join(sorted(fields))})")
        opts = {k: _option(f"{where}.{k}", v, getattr(hints[k], "__name__", str(hints[k]))) for k, v in entry.items()}
        if "lr" in fields:  # Adam-like: train.lr, warm-up and decay are the defaults
            opts = {**{k: v for k, v in adam_defaults.items() if k in fields}, **opts, "steps": steps}
        try:
            optimiser = cls(**opts)
        except ValueError as e:
            raise ValueError(f"key '{where}': {e}") from None
        rad_every = sampling.rad_every if cls.redraw_default == -1 else every
        phases.append(Phase(optimiser, steps, start, every, bool(rad), rad_every))
        start += steps
    return tuple(phases)


def phase_index(phases: tuple[Phase, ...], step: int) -> int:
    """The phase that runs step `step` + 1 (the last phase once all are done)."""
    for i, ph in enumerate(phases):
        if step < ph.end:
            return i
    return len(phases) - 1
