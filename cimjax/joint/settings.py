"""Sizes and schedule of the joint gradient method (:func:`cimjax.joint.optimizer.optimize`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from cimjax import validation
from cimjax.search.gradient import check_range, check_temperature


@dataclasses.dataclass(frozen=True)
class JointSettings:
    """Sizes and schedule of a joint optimisation (all of it must match to resume a checkpoint).

    The descent uses ``starts`` to ``penalty_growth`` and ``seed``; the discretisation ``beam`` to
    ``exchange``.
    """

    starts: int = 16
    rounds: int = 8
    steps_per_round: int = 50
    learning_rate: float = 0.08
    temperature: tuple[float, float] = (1.0, 1e-3)
    penalty: float = 1.0
    penalty_growth: float = 2.0
    beam: int = 4
    allocation_rounds: int = 1
    hardware_sweep: bool | None = None  # None: sweep when the problem has an area limit
    polish_rounds: int = 60
    exchange: int = 12
    seed: int = 0

    def __post_init__(self):
        for name in ("starts", "beam", "exchange"):
            validation.count(name, getattr(self, name), 1, validation.MAX_BATCH)
        for name, low in (("rounds", 1), ("steps_per_round", 1), ("polish_rounds", 0), ("allocation_rounds", 0)):
            validation.count(name, getattr(self, name), low, validation.MAX_ITERATIONS)
        validation.seed("seed", self.seed)
        if not isinstance(self.hardware_sweep, bool | None):
            raise validation.fail("hardware_sweep", self.hardware_sweep, "allowed: True, False or None")
        check_range("learning_rate", self.learning_rate, np.nextafter(0.0, 1.0))
        check_range("penalty", self.penalty, np.nextafter(0.0, 1.0))
        check_range("penalty_growth", self.penalty_growth, 1.0)
        check_temperature(self.temperature)

    @property
    def total_steps(self) -> int:
        return self.rounds * self.steps_per_round
