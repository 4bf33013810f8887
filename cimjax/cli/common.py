"""What every ``cimjax`` command shares: the consoles, the one-line error rule, the progress bar, the
JSON-or-table printer and the options several commands take.

It imports nothing from the rest of :mod:`cimjax.cli`, so each command module imports it and
:mod:`cimjax.cli.main` imports the command modules, without a cycle. JAX, NumPy and the cost model are
imported inside the helpers that use them, so registering the commands (every start-up, ``--help``
included) imports none of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cimjax import validation

err = Console(stderr=True, soft_wrap=True)
out = Console()


def user_errors(fn):
    """Turns ValueError (our validation errors) into a one-line message and exit status 2; so too a write the
    file system refuses (a full disk) and a failure whose cause is a JAX backend the environment asks for and
    this machine cannot start."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            err.print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(2) from None
        except typer.Exit:
            raise
        except Exception as error:
            problem = validation.file_system_refusal(error) or backend_problem()
            if problem is None:  # a fault of ours: the traceback is what a bug report needs
                raise
            err.print(f"[red]error:[/red] {problem}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def backend_problem() -> str | None:
    """Why JAX cannot start a backend (e.g. ``JAX_PLATFORMS=cuda`` on a machine without a working CUDA), or
    None when it can. Asked only after a command failed, so a healthy run pays nothing for it."""
    if "jax" not in sys.modules:
        return None
    import jax

    try:
        jax.devices()
    except Exception as error:  # JAX raises RuntimeError, or a bare AssertionError from a broken plug-in
        cause = " ".join(str(error).split()) or type(error).__name__
        asked = os.environ.get("JAX_PLATFORMS", "")
        if asked:
            return (
                f"JAX_PLATFORMS = {asked!r}: JAX could not start its backend ({cause}); allowed: JAX_PLATFORMS "
                "unset (JAX then uses what this machine has) or a platform this machine has, e.g. cpu"
            )
        settings = ", ".join(f"{k} = {v!r}" for k, v in sorted(os.environ.items()) if k.startswith(("JAX_", "XLA_")))
        if not settings:
            return f"JAX could not start its backend ({cause})"
        return (
            f"JAX could not start its backend ({cause}); the environment sets {settings}; allowed: values JAX "
            "accepts, or unset (JAX then uses what this machine has)"
        )
    return None


def progress_bar(description: str):
    """A transient rich progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def progress_updates(stack: contextlib.ExitStack, description: str) -> Callable[[int, int], None]:
    """A :func:`progress_bar` that lives as long as ``stack``, shown from an update until one that completes
    it; returns the update function, ``(done, total)``, to pass as a ``progress`` callback."""
    bar = stack.enter_context(progress_bar(description))
    task = bar.add_task(description, total=None, visible=False)
    return lambda done, total: bar.update(task, completed=done, total=total, visible=done < total)


def emit(report: dict, as_json: bool, title: str) -> None:
    """One JSON object (floats rounded, ``meta`` included) or a two-column table (``meta`` as a caption)."""
    from cimjax.results import to_json

    if as_json:
        sys.stdout.write(to_json(report) + "\n")
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    meta = report.get("meta")
    if meta:
        w = meta["workload"]
        table.caption = (
            f"{w['generate_tokens']} generated tokens after {w['prefill_tokens']} prompt tokens; "
            f"cimjax {meta['cimjax_version']}; technology overrides: {meta['technology_overrides'] or 'none'}"
        )
    for key, value in report.items():
        if key == "meta" or isinstance(value, list):
            continue
        table.add_row(key, _items(value) if isinstance(value, dict) else _fmt(value))
    out.print(table)


def _items(value: dict) -> str:
    """``k=v, ...`` of a dict; lists (bit tables, round histories) are left to the JSON and ``--out`` files,
    as at the top level."""
    return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if not isinstance(v, list))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + _items(value) + "}"
    return str(value)


def methods_help(registry: dict) -> str:
    """``a (what), b (what) or c (what)``: the methods of a registry (name -> entry with a ``description``)
    for ``--help``."""
    names = [f"{name} ({m.description})" for name, m in registry.items()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def load_technology(path: Path | None):
    """The technology of ``--tech FILE``, else the default (calibrated) one."""
    from cimjax.hardware.technology import Technology, default_technology

    return Technology.from_json(path) if path else default_technology()


def parse_alphas(text: str) -> list[float]:
    """``"0,0.25,1"`` -> ``[0.0, 0.25, 1.0]``, each checked to lie in [0, 1]."""
    from cimjax.search.pareto import check_alphas

    alphas = []
    for item in text.split(","):
        try:
            alpha = float(item)
        except ValueError:
            raise ValueError(f"--alphas must be comma-separated numbers in [0, 1], got {item.strip()!r}") from None
        check_alphas(alpha)
        alphas.append(alpha)
    return alphas


Model = Annotated[str, typer.Option("--model", help="model id (see `cimjax models`) or a path to a config.json")]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        metavar="[int4|int6|int8|wXaYkvZ]",
        help="int4, int6 or int8 (weights, activations and KV cache alike), or per kind wXaYkvZ: w4a8kv8, w4a16kv8",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]
GptqOpt = Annotated[
    bool | None,
    typer.Option(
        help="Weights quantised by GPTQ on training-split calibration windows (the default of measured "
        "checkpoints) or, with --no-gptq, rounded to nearest (docs/quantisation.md)."
    ),
]
GptqWindowsOpt = Annotated[
    int | None,
    typer.Option(
        help="Training-split windows GPTQ's Hessians come from, evenly spaced and the same at every --seed "
        "(default: 128, the reference's sample count; more: a better-conditioned Hessian, more time)."
    ),
]


SensitivityTextOpt = Annotated[
    str | None,
    typer.Option(
        help="Where a checkpoint's sensitivities are measured: 'train' (random training-split windows) or "
        "'check' (as many of the check windows, text the model was not trained on, as budgets and --verify "
        "are; docs/joint.md). Default: train."
    ),
]


def check_sensitivity_text(sensitivity_text: str) -> str:
    """``--sensitivity-text`` if it names a split of :data:`cimjax.quant.calibration.SENSITIVITY_SPLITS`."""
    from cimjax.quant.calibration import SENSITIVITY_SPLITS

    if sensitivity_text not in SENSITIVITY_SPLITS:
        raise validation.fail("--sensitivity-text", sensitivity_text, f"allowed: {', '.join(SENSITIVITY_SPLITS)}")
    return sensitivity_text


MAX_SAMPLES = 10_000
"""Most Hutchinson / output-MSE samples a checkpoint's sensitivities may draw (``--samples``)."""


def checkpoint_calibration(
    checkpoint: Path, sizes: dict[str, int], seed: int, gptq: tuple, sensitivity_text: str | None, samples: int = 4
):
    """The calibration windows ``checkpoint`` is measured on, every option checked by name before any JAX work:
    the windows fit the corpus (in the ids of the checkpoint's tokenizer.json, if it has one), its vocabulary
    holds those ids, and the measurement fits in memory.

    ``sizes``: the sensitivity windows, their length and the check windows, keyed by the command's flags, in that
    order (``proxy sensitivities``: ``--windows``, ``--seq-len``, ``--check-windows``); ``gptq``: --gptq/--no-gptq
    and --gptq-windows as given (None when not); ``samples``: Hutchinson / output-MSE samples.
    """
    from cimjax.quant import corpus
    from cimjax.quant.measured import Calibration, checkpoint_scheme, memory_bytes, with_tokenizer
    from cimjax.workload.hf_config import load_hf_config

    (windows_flag, windows), (seq_len_flag, seq_len), (check_flag, check_windows) = sizes.items()
    spec = load_hf_config(checkpoint)
    calibration = with_tokenizer(Calibration(), checkpoint)
    train_tokens, check_text = calibration.split()
    validation.integer(seq_len_flag, seq_len, 1, min(len(train_tokens), len(check_text)) - 1)
    validation.integer(windows_flag, windows, 1, (len(train_tokens) - 1) // seq_len)
    validation.integer(check_flag, check_windows, 1, (len(check_text) - 1) // seq_len)
    validation.integer("--samples", samples, 1, MAX_SAMPLES)
    calibration = dataclasses.replace(
        calibration, windows=windows, seq_len=seq_len, samples=samples, check_windows=check_windows,
        seed=validation.seed("--seed", seed),
    )  # fmt: skip
    use_gptq, gptq_windows = gptq
    if gptq_windows is not None:
        validation.integer("--gptq-windows", gptq_windows, 1)
        if use_gptq is False:
            raise ValueError("--gptq-windows sets GPTQ's Hessian windows: it does not go with --no-gptq")
        calibration = dataclasses.replace(calibration, gptq_windows=gptq_windows)
    if use_gptq is not False:
        calibration.gptq_tokens()  # GPTQ's Hessian windows fit in the training split
    if sensitivity_text is not None:
        if check_sensitivity_text(sensitivity_text) == "check" and windows > check_windows:
            raise validation.fail(
                windows_flag, windows, f"allowed with --sensitivity-text check: at most {check_flag} ({check_windows})"
            )
        calibration = dataclasses.replace(calibration, sensitivity_split=sensitivity_text)
    if calibration.tokenizer is None and spec.vocab < corpus.VOCAB:
        raise validation.fail("vocab_size", spec.vocab, f"allowed: at least the {corpus.VOCAB} byte ids")
    if calibration.tokenizer is not None and spec.vocab < (ids := int(train_tokens.max()) + 1):
        raise validation.fail("vocab_size", spec.vocab, f"allowed: at least the {ids} ids its tokenizer.json gives")
    gptq_used = checkpoint_scheme(use_gptq).gptq
    validation.memory(
        f"{windows_flag} {windows} x {seq_len_flag} {seq_len} on {checkpoint}",
        memory_bytes(spec, windows, seq_len, gptq_used),
    )
    return calibration


ToleranceOpt = Annotated[
    float,
    typer.Option(
        help="near-tie rule: of the designs within this fraction of the best objective, take the smallest chip"
    ),
]
TechOpt = Annotated[
    Path | None,
    typer.Option("--tech", help="JSON or YAML file of technology overrides (see `cimjax tech`, `cimjax schema tech`)"),
]
Prefill = Annotated[int, typer.Option(help="prompt tokens before decoding")]
Generate = Annotated[int, typer.Option(help="generated tokens")]
