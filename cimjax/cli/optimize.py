"""``cimjax optimize``: joint per-layer bits + hardware co-optimisation under an accuracy budget.

Prints the exact metrics of the optimised discrete design next to the best uniform-precision design
meeting the same budget and area limit; with ``--json``, exactly one JSON object (keys: see
:mod:`cimjax.joint.runner`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

import cimjax.validation as validation
from cimjax.cli.common import (
    GptqOpt,
    GptqWindowsOpt,
    JsonOpt,
    SensitivityTextOpt,
    TechOpt,
    check_sensitivity_text,
    checkpoint_calibration,
    err,
    load_technology,
    methods_help,
    progress_bar,
    progress_updates,
    user_errors,
)
from cimjax.cli.optimize_output import print_report
from cimjax.files import check_output_dir, output_dir
from cimjax.joint.methods import JOINT_METHODS
from cimjax.validation import MAX_EVOLVE, MAX_REFINE, MAX_VERIFY_ROUNDS, InputError

TOLERANCE = 0.01
"""``--tolerance``'s default: :data:`cimjax.joint.compare.TOLERANCE` (written out: the CLI imports no JAX
before it runs)."""
MAX_STARTS = 4096
"""Most parallel starts of the gradient method (each carries its per-layer bit table through the descent)."""
MAX_ROUNDS = 1000
"""Most augmented-Lagrangian rounds (the default is 8)."""
CALIBRATION = {"--calib-windows": 16, "--calib-seq-len": 128, "--check-windows": 64}
"""The windows a checkpoint is measured on by default (those of ``cimjax proxy sensitivities``)."""

RefineOpt = Annotated[
    int | None,
    typer.Option(
        help="with --verify, most assignments measured refining the best verified design (0: none; default "
        "48 with --target kl, 0 with loss, whose noise a measured search would select for)"
    ),
]
EvolveOpt = Annotated[
    int,
    typer.Option(
        help="with --verify, most assignments measured by an evolutionary search of the recommended design's bits "
        "on training-split selection windows, kept only if then measured within the budget on the check windows "
        "(0: off; docs/joint.md)"
    ),
]
TargetOpt = Annotated[
    str,
    typer.Option(
        help="with --checkpoint/--sensitivities, what budgets measure: 'loss' increase or 'kl' "
        "divergence from full precision (nats/token)"
    ),
]
NearTieOpt = Annotated[
    float,
    typer.Option(
        help="near-tie rule: of the designs within this fraction of the best objective, take the smallest "
        "chip (without --area-max, a chip larger than the baseline's must also gain at least its area ratio)"
    ),
]
ProxyOpt = Annotated[
    str | None,
    typer.Option(
        help="with --checkpoint/--sensitivities, the proxy that steers the search: 'interaction' (default), "
        "'pairwise' (adds the checkpoint's measured pair interactions; needs its weights), 'interaction_spline' "
        "(a monotone spline of interaction's features) or 'interaction_envelope' (the larger of the two): "
        "docs/proxy.md"
    ),
]
PairsOpt = Annotated[
    str | None, typer.Option(help="with --proxy pairwise, the pairs measured: block, layer (default) or all")
]


@user_errors
def optimize_command(
    budget: Annotated[
        str, typer.Option(help="int8, int6, int4 (as good as that uniform width) or a loss increase in nats/token")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="model id (see `cimjax models`) or a path to a config.json"),
    ] = None,
    area_max: Annotated[float | None, typer.Option("--area-max", help="chip area limit, mm^2")] = None,
    alpha: Annotated[float, typer.Option(help="objective L^alpha * E^(1-alpha): 1 = tokens/s, 0 = tokens/J")] = 1.0,
    method: Annotated[str, typer.Option(help=methods_help(JOINT_METHODS))] = "gradient",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    checkpoint_dir: Annotated[
        str | None, typer.Option("--checkpoint-dir", help="save the optimiser state here after every round")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run saved in --checkpoint-dir")] = False,
    starts: Annotated[int, typer.Option(help="parallel starts of the gradient method")] = 16,
    rounds: Annotated[int, typer.Option(help="augmented-Lagrangian rounds of the gradient method")] = 8,
    tech: TechOpt = None,
    tolerance: NearTieOpt = TOLERANCE,
    out_dir: Annotated[
        str | None, typer.Option("--out", help="write optimize.json, bits.csv (+ .meta.json) and bits.png here")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="a Hugging Face checkpoint directory: shape from its config, proxy and budgets from its "
            "measured sensitivities (cached by content)",
        ),
    ] = None,
    sensitivities: Annotated[
        Path | None,
        typer.Option(help="a file from `cimjax proxy sensitivities --out` (instead of measuring them here)"),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="measure the result by fake quantisation; correct and re-optimise if over"),
    ] = False,
    verify_rounds: Annotated[int | None, typer.Option(help="most optimisation rounds of --verify (default: 5)")] = None,
    refine: RefineOpt = None,
    evolve: EvolveOpt = 0,
    gptq: GptqOpt = None,
    gptq_windows: GptqWindowsOpt = None,
    sensitivity_text: SensitivityTextOpt = None,
    calib_windows: Annotated[
        int | None, typer.Option(help="calibration windows measured with --checkpoint (default: 16)")
    ] = None,
    calib_seq_len: Annotated[int | None, typer.Option(help="tokens per calibration window (default: 128)")] = None,
    check_windows: Annotated[
        int | None,
        typer.Option(help="validation-split windows that budgets and --verify are measured on (default: 64)"),
    ] = None,
    target: TargetOpt = "loss",
    proxy: ProxyOpt = None,
    pairs: PairsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Jointly optimise per-layer weight/activation/KV bits and the accelerator under an accuracy budget."""
    from cimjax.joint.runner import optimize_report
    from cimjax.joint.settings import JointSettings

    _check_options(target, starts, rounds, (refine, evolve, verify, verify_rounds), checkpoint_dir, out_dir)
    variant, pair_set = _check_proxy(proxy, pairs, model, checkpoint, sensitivities)
    settings = JointSettings(starts=starts, rounds=rounds, seed=validation.seed("--seed", seed))
    with contextlib.ExitStack() as stack:  # --out stays locked for the whole run, not just while written
        directory = None if out_dir is None else stack.enter_context(output_dir(out_dir, "--out"))
        measured = weights = measured_pairs = None
        sizes = {"--calib-windows": calib_windows, "--calib-seq-len": calib_seq_len, "--check-windows": check_windows}
        if _check_sources(model, checkpoint, sensitivities, checkpoint_dir, resume, (verify, gptq)):
            calibration = _calibration(checkpoint, sensitivities, sizes, seed, (gptq, gptq_windows), sensitivity_text)
            measured, weights = _measured(checkpoint, sensitivities, (verify, pair_set), calibration,
                                          (gptq, sensitivity_text))  # fmt: skip
            measured_pairs = _pairs(measured, weights, pair_set)
        else:
            _refuse_weight_options(gptq_windows, sensitivity_text, target, sizes)
        with _phase_progress(f"optimize ({method})", checkpoint_dir, resume) as progress:
            if measured is None:
                report = optimize_report(
                    model, budget, alpha=alpha, area_max=area_max, method=method, seed=seed,
                    checkpoint_dir=checkpoint_dir, resume=resume, tech=load_technology(tech), settings=settings,
                    progress=progress, tolerance=tolerance,
                )  # fmt: skip
            else:
                from cimjax.joint import verified

                report = verified.optimize_measured(
                    measured, budget, model=weights, verify=verify, max_rounds=verify_rounds or verified.MAX_ROUNDS,
                    alpha=alpha, area_max=area_max, method=method, seed=seed, tech=load_technology(tech),
                    settings=settings, progress=progress, tolerance=tolerance, target=target, refine=refine,
                    evolve=evolve,
                    proxy=variant, pairs=measured_pairs, log=_say,
                )  # fmt: skip
        print_report(report, as_json, directory, method, alpha)


def _check_options(target, starts, rounds, measuring: tuple, checkpoint_dir, out_dir) -> None:
    """The options checked before anything runs or --out is locked (``measuring``: --refine, --evolve and
    --verify)."""
    from cimjax.quant.measured import TARGETS

    if target not in TARGETS:
        raise validation.fail("--target", target, f"allowed: {', '.join(TARGETS)}")
    validation.integer("--starts", starts, 1, MAX_STARTS)
    validation.integer("--rounds", rounds, 1, MAX_ROUNDS)
    refine, evolve, verify, verify_rounds = measuring
    if refine is not None:
        validation.integer("--refine", refine, 0, MAX_REFINE)
    validation.integer("--evolve", evolve, 0, MAX_EVOLVE)
    if verify_rounds is not None:
        validation.integer("--verify-rounds", verify_rounds, 1, MAX_VERIFY_ROUNDS)
    for flag, value in (("--evolve", evolve or None), ("--refine", refine or None), ("--verify-rounds", verify_rounds)):
        if value is not None and not verify:
            raise InputError(
                f"{flag} = {value} is not allowed without --verify (it measures designs); allowed: leave it out"
            )
    if checkpoint_dir is not None:
        check_output_dir(checkpoint_dir, "--checkpoint-dir")
        if out_dir is not None and Path(checkpoint_dir).resolve() == Path(out_dir).resolve():
            raise InputError(
                f"--out = {out_dir!r} is not allowed: it is also the --checkpoint-dir; allowed: another directory"
            )


def _check_proxy(proxy, pairs, model, checkpoint, sensitivities) -> tuple[str, str | None]:
    """``--proxy`` and ``--pairs`` checked before anything runs: the variant that steers the search and the pair
    set to measure (None: none). The weight-less ``--model`` proxy is not chosen; pairs are measured on the
    checkpoint's weights, which a ``--sensitivities`` file alone does not hold (nor does it hold pairs)."""
    from cimjax.quant.proxy import OPTIMIZER_PROXY, OPTIMIZER_VARIANTS

    if proxy is not None and proxy not in OPTIMIZER_VARIANTS:
        raise validation.fail("--proxy", proxy, f"allowed: {', '.join(OPTIMIZER_VARIANTS)}")
    if proxy is not None and model is not None:
        raise validation.fail(
            "--proxy", proxy, "allowed with --checkpoint or --sensitivities (--model's proxy is fixed)"
        )
    if pairs is not None and proxy != "pairwise":
        raise validation.fail("--pairs", pairs, "allowed only with --proxy pairwise")
    if proxy != "pairwise":
        return proxy or OPTIMIZER_PROXY, None
    if checkpoint is None and sensitivities is not None:
        raise validation.fail(
            "--proxy",
            proxy,
            f"--sensitivities {sensitivities} holds no measured pairs; allowed with --checkpoint DIR "
            "too (the pairs are measured on its weights)",
        )
    from cimjax.quant.pairs import CHECKPOINT_PAIR_SET, PAIR_SETS

    if pairs is not None and pairs not in PAIR_SETS:
        raise validation.fail("--pairs", pairs, f"allowed: {', '.join(PAIR_SETS)}")
    return "pairwise", pairs or CHECKPOINT_PAIR_SET


def _pairs(measured, weights, pair_set: str | None):
    """The measured pairs of ``--proxy pairwise`` (:func:`cimjax.quant.pairs.of_checkpoint`, cached), or None."""
    if pair_set is None:
        return None
    from cimjax.quant.pairs import of_checkpoint

    err.print(f"pairwise proxy: measuring (or reading) the '{pair_set}' pairs ...", highlight=False)
    return of_checkpoint(measured.model(weights), measured, pair_set)


def _refuse_given(options: dict, allowed: str) -> None:
    """Refuses by name the first of ``options`` (flag -> value, None when not given) that was given."""
    for flag, value in options.items():
        if value is not None:
            raise validation.fail(flag, value, allowed)


def _refuse_weight_options(gptq_windows, sensitivity_text, target, sizes: dict) -> None:
    """Refuses the options that measure real weights in a --model run (``sizes``: the windows, None if not given)."""
    _refuse_given(sizes, "allowed only with --checkpoint DIR (real weights are measured on them)")
    if gptq_windows is not None:
        raise ValueError("--gptq-windows sets the Hessian windows of real weights: it needs --checkpoint DIR")
    if sensitivity_text is not None:
        raise ValueError("--sensitivity-text says where real weights are measured: it needs --checkpoint DIR")
    if target != "loss":
        raise ValueError(f"--target {target} is measured on weights: it needs --checkpoint or --sensitivities")


def _calibration(checkpoint, sensitivities, sizes: dict, seed: int, gptq: tuple, sensitivity_text):
    """The windows a checkpoint is measured on (``sizes``: --calib-windows, --calib-seq-len and --check-windows,
    None when not given; ``gptq``: --gptq/--no-gptq and --gptq-windows), all checked; None for a --sensitivities
    file, which keeps the windows it was measured on (:func:`_measured` refuses a --sensitivity-text it
    contradicts), so those options are refused with it."""
    if checkpoint is not None and not os.path.isdir(checkpoint):  # False for a name too long, as for a missing one
        raise ValueError(f"--checkpoint {checkpoint} is not a directory")
    if sensitivities is None:
        sizes = {flag: CALIBRATION[flag] if value is None else value for flag, value in sizes.items()}
        return checkpoint_calibration(checkpoint, sizes, seed, gptq, sensitivity_text)
    if gptq[1] is not None:
        raise ValueError("--gptq-windows: a --sensitivities file keeps the GPTQ windows it was measured with")
    _refuse_given(sizes, f"allowed only without --sensitivities ({sensitivities} keeps its windows)")
    if sensitivity_text is not None:
        check_sensitivity_text(sensitivity_text)
    return None


def _check_sources(model, checkpoint, sensitivities, checkpoint_dir, resume, weights: tuple) -> bool:
    """Whether the run reads a checkpoint's measured sensitivities (else it takes ``--model``); refuses
    options that do not go together (``weights``: --verify and an explicit --gptq/--no-gptq, which need
    real weights)."""
    verify, gptq = weights
    if checkpoint is not None or sensitivities is not None:
        if model is not None:
            raise ValueError("give either --model or --checkpoint/--sensitivities, not both")
        if checkpoint_dir is not None or resume:
            raise ValueError("--checkpoint-dir/--resume apply to --model runs, not to --checkpoint/--sensitivities")
        return True
    if model is None:
        raise ValueError("give --model ID (or a config.json), or --checkpoint DIR, or --sensitivities FILE")
    if verify or gptq is not None:
        gptq_action = "--gptq quantises real weights" if gptq else "--no-gptq rounds real weights"
        action = "--verify measures real weights" if verify else gptq_action
        raise ValueError(f"{action}: it needs --checkpoint DIR")
    return False


@contextlib.contextmanager
def _phase_progress(description: str, checkpoint_dir: str | None, resume: bool = False):
    """Yields ``progress(phase, done, total)``, one bar per phase; with ``resume`` it says which round the run
    resumes from. Ctrl-C ends the run with status 130 and says what was saved."""
    with progress_bar(description) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if resume and phase == "descent" and phase not in tasks:
                start = f"resuming from round {done} of {total}" if done else "no saved round to resume: starting anew"
                err.print(f"{start} (--checkpoint-dir {checkpoint_dir})", highlight=False)
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        try:
            yield progress
        except KeyboardInterrupt:
            bar.stop()
            saved = "nothing was saved (no --checkpoint-dir)"
            if checkpoint_dir is not None:
                saved = f"the last finished round is saved in {checkpoint_dir}; "
                saved += "rerun the same command with --resume"
            err.print(f"interrupted: {saved}", highlight=False)
            raise typer.Exit(130) from None


def _say(msg: str) -> None:
    """A progress line of the measured path, on stderr (stdout keeps the one JSON object of ``--json``)."""
    err.print(msg, highlight=False)


def _measured(checkpoint: Path | None, sensitivities: Path | None, uses: tuple, calibration, explicit=(None, None)):
    """The checkpoint's measured data (from the file, the cache, or measured now with GPTQ weights or, when
    --no-gptq, rounded to nearest) and its weights when needed (``uses``: --verify and the pair set to measure,
    each needing them; ``explicit``: --gptq/--no-gptq and --sensitivity-text as given, None when not).

    A file and a checkpoint given together must be the same checkpoint (content hash); a file's quantiser and
    sensitivity windows are those it was measured with, so an explicit --gptq, --no-gptq or --sensitivity-text
    that the file contradicts is refused.
    """
    from cimjax.lm.checkpoint import load_checkpoint
    from cimjax.quant.measured import checkpoint_hash, checkpoint_scheme, for_checkpoint, load, with_tokenizer

    gptq, sensitivity_text = explicit
    if sensitivities is not None:
        measured = load(sensitivities)
        if sensitivity_text not in (None, split := measured.calibration.sensitivity_split):
            raise validation.fail(
                "--sensitivity-text", sensitivity_text, f"--sensitivities {sensitivities} was measured with '{split}'"
            )
        if checkpoint is not None and checkpoint_hash(checkpoint) != measured.checkpoint_hash:
            raise ValueError(
                f"--sensitivities {sensitivities} was measured on another checkpoint than {checkpoint} "
                f"(content hash {measured.checkpoint_hash[:12]}... differs)"
            )
        if gptq is not None and gptq != measured.scheme.gptq:
            flag, how = ("--gptq", "without") if gptq else ("--no-gptq", "with")
            raise ValueError(
                f"{flag}: --sensitivities {sensitivities} was measured {how} GPTQ weights; measure it with "
                f"`cimjax proxy sensitivities {flag}`, or leave out {flag}"
            )
        if checkpoint is not None:  # verified on this checkpoint's windows, in its tokenizer's ids
            measured.calibration = with_tokenizer(measured.calibration, checkpoint)
    else:
        scheme = checkpoint_scheme(gptq)
        with contextlib.ExitStack() as bar:
            measured = for_checkpoint(
                checkpoint, calibration, log=_say, scheme=scheme, progress=progress_updates(bar, "measuring")
            )
    verify, pair_set = uses
    weights = load_checkpoint(checkpoint) if (verify or pair_set) and checkpoint is not None else None
    return measured, weights


def register(app: typer.Typer) -> None:
    """Adds ``cimjax optimize`` to the command-line app."""
    app.command("optimize")(optimize_command)
