"""Resuming: the newest checkpoint of a run folder that verifies, skipping corrupted ones."""

from __future__ import annotations

import pathlib
import sys

from ..io import CheckpointError, list_checkpoints


def load_newest_state(ckpt_dir, load, *, quiet: bool = False):
    """``(state, path, skipped)``: `load(path)` of the newest checkpoint in `ckpt_dir` that
    loads, or ``(None, None, [])`` when there is none. A newer checkpoint that fails to
    verify (truncated, corrupted, or of another structure) is skipped, and named on stderr
    with the reason once an older one has loaded; `skipped` lists ``(path, reason)``. If every checkpoint fails, raises
    ``CheckpointError`` naming each. Errors that are not about the file (a config that no
    longer fits the run) propagate from the first checkpoint tried."""
    found = list_checkpoints(ckpt_dir)
    skipped = []
    for _, path in reversed(found):
        try:
            state = load(path)
        except CheckpointError as exc:
            reason = " ".join(str(exc).removeprefix(f"{path}: ").split())  # one line
            skipped.append((path, reason))
            continue
        if not quiet:
            for bad, reason in skipped:
                print(f"pinnjax: skipped checkpoint {bad}: {reason}", file=sys.stderr)
        return state, path, skipped
    if skipped:
        reasons = "; ".join(f"{pathlib.Path(p).name}: {r}" for p, r in skipped)
        raise CheckpointError(f"{ckpt_dir}: no checkpoint verifies ({reasons})")
    return None, None, []
