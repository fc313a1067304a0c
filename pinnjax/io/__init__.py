"""Crash-safe file output: atomic writes, checkpoints, CSV/JSON logs, progress bar."""

from ._atomic import (
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_text as atomic_write_text,
    to_python as to_python,
    write_csv_rows as write_csv_rows,
    write_json as write_json,
)
from ._checkpoint import (
    checkpoint_path as checkpoint_path,
    CheckpointError as CheckpointError,
    latest_checkpoint as latest_checkpoint,
    list_checkpoints as list_checkpoints,
    load_checkpoint as load_checkpoint,
    prune_checkpoints as prune_checkpoints,
    read_checkpoint_info as read_checkpoint_info,
    save_checkpoint as save_checkpoint,
)
from ._progress import ProgressBar as ProgressBar
