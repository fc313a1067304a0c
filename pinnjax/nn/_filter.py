"""What the optimiser trains in a network: every inexact array except those a module marks as
fixed in its ``fixed_fields`` class attribute (e.g. a Fourier feature matrix)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax


def _fixed_nodes(tree):
    """The subtrees named in ``fixed_fields`` of every module inside ``tree``."""
    out = []

    def visit(node):
        if isinstance(node, eqx.Module):
            fixed = getattr(type(node), "fixed_fields", ())
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if f.name in fixed:
                    if value is not None:
                        out.append(value)
                else:
                    visit(value)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)
        elif isinstance(node, dict):
            for v in node.values():
                visit(v)

    visit(tree)
    return out


def trainable_filter(model):
    """Filter spec (a pytree of bools like ``model``) of the arrays the optimiser trains: use
    with ``eqx.partition(model, trainable_filter(model))``."""
    spec = jax.tree.map(eqx.is_inexact_array, model)
    if not _fixed_nodes(spec):
        return spec
    return eqx.tree_at(_fixed_nodes, spec, replace_fn=lambda node: jax.tree.map(lambda _: False, node))
