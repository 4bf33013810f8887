"""Sizes and schedule of the joint gradient method (:func:`cimjax.joint.optimizer.optimize`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from cimjax.search.gradient import check_range


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
        for name in ("starts", "rounds", "steps_per_round", "beam", "exchange"):
            check_range(name, getattr(self, name), 1)
        check_range("polish_rounds", self.polish_rounds, 0)
        check_range("allocation_rounds", self.allocation_rounds, 0)
        check_range("learning_rate", self.learning_rate, np.nextafter(0.0, 1.0))
        check_range("penalty", self.penalty, np.nextafter(0.0, 1.0))
        check_range("penalty_growth", self.penalty_growth, 1.0)
        tau0, tau1 = self.temperature
        check_range("final temperature", tau1, np.nextafter(0.0, 1.0))
        check_range("initial temperature", tau0, tau1)

    @property
    def total_steps(self) -> int:
        return self.rounds * self.steps_per_round
