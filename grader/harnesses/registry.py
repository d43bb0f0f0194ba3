"""The harness kinds by name: each kind's module registers its class here when imported.

A module of its own (DMOJ's contest-format registry), so a kind imports ``register`` without
importing the package that imports every kind. Nothing here imports Django: the in-sandbox
runner imports it.
"""

from __future__ import annotations

from grader.harnesses.base import Harness

HARNESSES: dict[str, type[Harness]] = {}


def register(harness: type[Harness]) -> type[Harness]:
    """Class decorator: make a harness kind available under its ``kind`` name."""
    if harness.kind in HARNESSES:
        raise ValueError(f"harness kind {harness.kind!r} is registered twice")
    HARNESSES[harness.kind] = harness
    return harness


def harness_get(kind: str) -> type[Harness]:
    """The harness class for ``kind``; KeyError names the kinds that exist."""
    try:
        return HARNESSES[kind]
    except KeyError:
        raise KeyError(f"no harness kind {kind!r}; known: {sorted(HARNESSES)}") from None
