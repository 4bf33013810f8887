"""Designs the cost model cannot tell apart: mirror images of the cluster and tile grids.

The exact model sees ``c_v`` and ``c_h`` only through ``C = c_v * c_h``, and ``t_v_act`` and ``t_h_act``
only through ``T_A = t_v_act * t_h_act`` (docs/model.md), so a ``2 x 3`` cluster grid costs exactly what a
``3 x 2`` one does, bit for bit (a float product does not depend on the order of its factors).
``tests/test_symmetry.py`` checks it on random designs, models and precisions. A sweep therefore
evaluates one design of each mirror pair, the *canonical* one (``c_v <= c_h``, ``t_v_act <= t_h_act``), and
copies its costs to the mirror image. A pair is folded only where both fields allow the same values.

Enumeration: the canonical designs in increasing flat index, decoded from their rank inside jitted code,
with one digit per folded pair (its ``n (n + 1) / 2`` ordered choices) in place of the pair's two digits.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from cimjax.hardware.config import FIELDS, DesignSpace, HardwareConfig

MIRRORED_FIELDS = (("c_v", "c_h"), ("t_v_act", "t_h_act"))
"""Adjacent field pairs that enter the cost model only through their product."""


class MirrorFolding:
    """The distinct designs of ``space`` up to mirroring, and the map back to all of its designs."""

    def __init__(self, space: DesignSpace):
        self.space = space
        self.pairs = [
            (FIELDS.index(a), FIELDS.index(b)) for a, b in MIRRORED_FIELDS if space.values[a] == space.values[b]
        ]
        # Digits from the most significant: a folded pair is one digit over its ordered choice pairs (i <= j).
        self._digits: list[tuple[int, ...]] = []
        i = 0
        while i < len(FIELDS):
            if (i, i + 1) in self.pairs:
                self._digits.append((i, i + 1))
                i += 2
            else:
                self._digits.append((i,))
                i += 1
        self._tables = {
            pair: np.asarray([(a, b) for a in range(space.radices[pair[0]]) for b in range(a, space.radices[pair[0]])])
            for pair in self.pairs
        }

    def __eq__(self, other) -> bool:
        return isinstance(other, MirrorFolding) and self.space == other.space

    def __hash__(self) -> int:
        return hash((MirrorFolding, self.space))

    def __repr__(self) -> str:  # part of compiled programs' on-disk keys: the same in every process
        return f"MirrorFolding({self.space!r})"

    def _radix(self, digit: tuple[int, ...]) -> int:
        return len(self._tables[digit]) if len(digit) == 2 else self.space.radices[digit[0]]

    @property
    def size(self) -> int:
        """Distinct designs (the space's size when nothing folds)."""
        return int(np.prod([self._radix(d) for d in self._digits], dtype=np.int64))

    def decode(self, rank) -> HardwareConfig:
        """The ``rank``-th canonical design (ranks in ``[0, size)``, increasing flat index). Jittable."""
        rank = jnp.asarray(rank)
        choice = {}
        for digit in reversed(self._digits):
            value = rank % self._radix(digit)
            rank = rank // self._radix(digit)
            if len(digit) == 2:
                table = jnp.asarray(self._tables[digit], jnp.int32)
                choice[digit[0]], choice[digit[1]] = table[value, 0], table[value, 1]
            else:
                choice[digit[0]] = value
        return self.space.lookup({name: choice[i] for i, name in enumerate(FIELDS)})

    def _triangle(self, pair: tuple[int, int], upper: bool) -> np.ndarray:
        """Where choice index of the pair's first field <= (upper) or > (not upper) the second's, broadcastable
        to the space's shape."""
        a, b = pair
        n = self.space.radices[a]
        i, j = np.arange(n)[:, None], np.arange(n)[None, :]
        shape = [1] * len(FIELDS)
        shape[a] = shape[b] = n
        return ((i <= j) if upper else (i > j)).reshape(shape)

    def _canonical_mask(self) -> np.ndarray:
        """Boolean array of the space's shape (``radices``): True where the design is canonical."""
        mask = np.ones(self.space.radices, bool)
        for pair in self.pairs:
            mask &= self._triangle(pair, upper=True)
        return mask

    @property
    def flat_indices(self) -> np.ndarray:
        """Flat indices (into the whole space) of the canonical designs, increasing: rank -> flat index
        (read-only, kept per space)."""
        return _flat_indices(self.space)

    @property
    def ranks(self) -> np.ndarray:
        """The rank of each design's canonical design, by flat index (read-only, kept per space)."""
        return _ranks(self.space)

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Values per canonical design (by rank) -> values per design of the whole space (mirrors copied)."""
        return np.asarray(values)[self.ranks]


@functools.lru_cache(maxsize=4)
def _flat_indices(space: DesignSpace) -> np.ndarray:
    indices = np.flatnonzero(MirrorFolding(space)._canonical_mask())
    indices.flags.writeable = False
    return indices


@functools.lru_cache(maxsize=4)
def _ranks(space: DesignSpace) -> np.ndarray:
    """For every design of ``space`` (by flat index), the rank of its canonical design; kept per space, so a
    sweep copies its costs to the mirrors by one gather per output (3.1 M designs in the paper's space)."""
    folding = MirrorFolding(space)
    mask = folding._canonical_mask()
    dtype = np.int32 if folding.size < 2**31 else np.int64
    full = np.empty(space.radices, dtype)
    full[mask] = np.arange(folding.size, dtype=dtype)
    for pair in folding.pairs:  # after pair k, every design canonical in the pairs after k is filled
        full = np.where(folding._triangle(pair, upper=False), np.swapaxes(full, *pair), full)
    full = full.reshape(-1)
    full.flags.writeable = False
    return full
