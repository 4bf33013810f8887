"""``cimjax optimize``: joint per-layer bits + hardware co-optimisation under an accuracy budget.

Prints the exact metrics of the optimised discrete design next to the best uniform-precision design
meeting the same budget and area limit; with ``--json``, exactly one JSON object (keys: see
:mod:`cimjax.joint.runner`).
"""

from typing import Annotated

import typer

MAX_STARTS = 4096
"""Most parallel starts of the gradient method (each carries its per-layer bit table through the descent)."""
MAX_ROUNDS = 1000
"""Most augmented-Lagrangian rounds (the default is 8)."""


def register(app: typer.Typer) -> None:
    """Adds ``cimjax optimize`` to the command-line app (annotations are evaluated here, see cli/sweep.py)."""
    from cimjax import validation
    from cimjax.cli.main import (
        JsonOpt,
        Model,
        TechOpt,
        ToleranceOpt,
        _technology,
        emit,
        err,
        out,
        progress_bar,
        user_errors,
    )
    from cimjax.files import check_output_dir, output_dir

    @app.command("optimize")
    @user_errors
    def optimize_command(
        model: Model,
        budget: Annotated[
            str, typer.Option(help="int8, int6, int4 (as good as that uniform width) or a loss increase in nats/token")
        ],
        area_max: Annotated[float | None, typer.Option("--area-max", help="chip area limit, mm^2")] = None,
        alpha: Annotated[float, typer.Option(help="objective L^alpha * E^(1-alpha): 1 = tokens/s, 0 = tokens/J")] = 1.0,
        method: Annotated[str, typer.Option(help="gradient (ours), ga (joint GA) or sequential (HW then MILP)")] = (
            "gradient"
        ),
        seed: Annotated[int, typer.Option(help="random seed")] = 0,
        checkpoint_dir: Annotated[
            str | None, typer.Option("--checkpoint-dir", help="save the optimiser state here after every round")
        ] = None,
        resume: Annotated[bool, typer.Option("--resume", help="continue the run saved in --checkpoint-dir")] = False,
        starts: Annotated[int, typer.Option(help="parallel starts of the gradient method")] = 16,
        rounds: Annotated[int, typer.Option(help="augmented-Lagrangian rounds of the gradient method")] = 8,
        tech: TechOpt = None,
        tolerance: ToleranceOpt = 0.0,
        out_dir: Annotated[
            str | None, typer.Option("--out", help="write optimize.json, bits.csv (+ .meta.json) and bits.png here")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Jointly optimise per-layer weight/activation/KV bits and the accelerator under an accuracy budget."""
        from cimjax.joint.optimizer import JointSettings
        from cimjax.joint.runner import optimize_report

        validation.integer("--starts", starts, 1, MAX_STARTS)
        validation.integer("--rounds", rounds, 1, MAX_ROUNDS)
        settings = JointSettings(starts=starts, rounds=rounds, seed=seed)
        for flag, path in (("--checkpoint-dir", checkpoint_dir), ("--out", out_dir)):
            if path is not None:
                check_output_dir(path, flag)

        with progress_bar(f"optimize ({method})") as bar:
            tasks: dict[str, int] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            try:
                report = optimize_report(
                    model, budget, alpha=alpha, area_max=area_max, method=method, seed=seed,
                    checkpoint_dir=checkpoint_dir, resume=resume, tech=_technology(tech), settings=settings,
                    progress=progress, tolerance=tolerance,
                )  # fmt: skip
            except KeyboardInterrupt:
                bar.stop()
                saved = "nothing was saved (no --checkpoint-dir)"
                if checkpoint_dir is not None:
                    saved = (
                        f"the last finished round is saved in {checkpoint_dir}; rerun the same command with --resume"
                    )
                err.print(f"interrupted: {saved}", highlight=False)
                raise typer.Exit(130) from None
        emit(report, as_json, f"{report['model']}: {method} at budget {report['budget_label']}, alpha={alpha}")
        from cimjax.cli.bits import heatmap_table, write_outputs

        if not as_json:
            out.print(heatmap_table(report))
            out.print(report["objective_note"], highlight=False)
        if out_dir is not None:
            title = f"{report['model']}: bits at budget {report['budget_label']}, alpha = {alpha:g} ({method})"
            with output_dir(out_dir, "--out") as directory:
                files = write_outputs(directory, report, title)
            (err if as_json else out).print(f"wrote {', '.join(map(str, files))}", highlight=False)
