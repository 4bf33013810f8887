"""Checkpoints of the joint descent: its :class:`JointState` saved by orbax after every round, next to a JSON
fingerprint of the problem and settings it was written for, so a stopped run resumes to the same result and
never continues another problem's state."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path

import orbax.checkpoint as ocp

import cimjax.files as files
from cimjax.joint.descent import JointState
from cimjax.joint.problem import JointProblem
from cimjax.joint.settings import JointSettings
from cimjax.validation import json_object, read_json


def fingerprint(problem: JointProblem, settings: JointSettings) -> dict:
    """What a checkpoint must have been written for (compared before resuming)."""
    return {
        "model": problem.spec.id,
        "n_layers": problem.n_layers,
        "budget": problem.budget,
        "alpha": problem.alpha,
        "area_max": problem.area_max,
        "proxy": problem.proxy.name,
        "bits": dataclasses.asdict(problem.bits),
        "settings": dataclasses.asdict(settings),
        "workload": dataclasses.asdict(problem.workload),
        "technology": problem.tech.to_dict(),
    }


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be used as asked (would be overwritten, or another problem's)."""


class Checkpoints:
    """Orbax manager of :class:`JointState` after every round, plus a JSON fingerprint of the problem."""

    def __init__(self, directory: Path, fingerprint: dict, resume: bool):
        self._lock = contextlib.ExitStack()  # one run per directory, released by close() or the process's end
        self.directory = self._lock.enter_context(files.output_dir(directory, "--checkpoint-dir")).resolve()
        try:
            self._check(fingerprint, resume)
            options = ocp.CheckpointManagerOptions(max_to_keep=2)
            self.manager = ocp.CheckpointManager(self.directory / "state", options=options)
        except BaseException:
            if not self._lock.__exit__(*sys.exc_info()):  # also removes the directory if created here
                raise

    def _check(self, fingerprint: dict, resume: bool) -> None:
        meta = self.directory / "problem.json"
        existing = meta.exists()
        if existing and not resume:
            raise CheckpointError(
                f"{self.directory} already holds a joint-optimisation checkpoint; pass resume=True (--resume) to "
                "continue it, or choose another directory"
            )
        if not existing and (self.directory / "state").exists():
            raise CheckpointError(
                f"{self.directory} holds optimiser state without its problem.json, so it cannot be checked to be "
                "this problem's; remove the directory or choose another"
            )
        if existing:
            try:
                saved = json_object(read_json(meta, "checkpoint problem"), "checkpoint problem", meta)
            except ValueError as e:
                raise CheckpointError(str(e)) from None
            wanted = json.loads(json.dumps(fingerprint))
            differs = sorted(k for k in wanted if saved.get(k) != wanted[k])
            if differs:
                raise CheckpointError(f"checkpoint in {self.directory} is for another problem: {differs} differ")
        else:
            files.atomic_write(meta, json.dumps(fingerprint, indent=2) + "\n")

    def restore(self, template: JointState) -> JointState | None:
        """The newest intact saved state (a step left truncated by a killed run is deleted, with a warning), or
        None."""
        return files.restore_newest(self.manager, template)

    def save(self, state: JointState) -> None:
        files.save_step(self.manager, int(state.round), state)  # Ctrl-C during a save: finish it, then stop

    def close(self) -> None:
        try:
            files.close_steps(self.manager)
        finally:
            self._lock.close()
