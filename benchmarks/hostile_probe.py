"""Throws hostile inputs at every ``cimjax`` command and counts how each one ends.

Each case is a command line (plus the bad files and environment it needs, generated here) and what a
correct CLI must do with it: ``refuse`` (exit 2, one clear line on stderr, nothing written) or ``finite``
(exit 0 with finite numbers: realistic inputs that must work). Outcomes:

- ``traceback``: an uncaught exception (in-process), or a Python traceback on stderr / an exit status
  other than 0 and 2 (subprocess), or killed / out of time (a refusal that should have named a limit);
- ``bad_exit0``: exit 0 on a ``refuse`` case, or exit 0 with NaN/Infinity in the output or written files;
- ``clear``: exit 2 without a traceback (``clear_multiline`` counts those whose stderr has more than one line,
  ``left_files`` those that nevertheless wrote or created something);
- ``ok``: a ``finite`` case that exits 0 with finite output.

Most cases run in-process with typer's CliRunner (one JAX start-up); cases that could exhaust memory or
run for hours run as subprocesses under a 6 GB address-space limit and a time limit. Library-level cases
(HardwareConfig built directly, None as a model, the relaxed model at tiny temperatures) are counted too.

Usage: ``PYTHONPATH=. CIMJAX_CACHE=/tmp/cimjax-probe python benchmarks/hostile_probe.py [--json out.json]``
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAN_RE = re.compile(r"(?<![A-Za-z_])(nan|NaN|-?inf|-?Infinity)(?![A-Za-z_])")
TIME_LIMIT_S = 120
MEMORY_LIMIT_KB = 6_000_000
MODEL = "qwen2.5-0.5b"
RELAXED_DESIGNS = 10_000
SMALL_SPACE = {"c_v": [2], "c_h": [3], "t_v_act": [4], "t_h_act": [2], "m": [1, 2], "pes_per_tile": [4]}


def deep(n: int) -> str:
    return "[" * n + "]" * n


def hf_config(**overrides) -> dict:
    base = {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    }
    return {k: v for k, v in (base | overrides).items() if v is not ...}


class Workspace:
    """A temporary directory holding every bad file the cases name."""

    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def file(self, text: str | bytes, suffix: str = ".json") -> str:
        self.n += 1
        path = self.root / f"f{self.n}{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def json(self, value) -> str:
        return self.file(json.dumps(value))

    def fresh(self) -> Path:
        """A path that does not exist yet (for outputs)."""
        self.n += 1
        return self.root / f"out{self.n}"

    def checkpoint(self, config: dict | None = None, index=None, extra_files: dict | None = None) -> str:
        """A tiny real checkpoint, with config.json fields overridden and an optional index file."""
        from cimjax.lm import save_checkpoint

        self.n += 1
        path = self.root / f"ckpt{self.n}"
        save_checkpoint(_tiny_model(), path)
        if config is not None:
            cfg = json.loads((path / "config.json").read_text())
            cfg = {k: v for k, v in (cfg | config).items() if v is not ...}
            (path / "config.json").write_text(json.dumps(cfg))
        if index is not None:
            (path / "model.safetensors.index.json").write_text(json.dumps(index))
        for name, text in (extra_files or {}).items():
            (path / name).write_text(text)
        return str(path)

    def sensitivities(self, checkpoint: str) -> dict:
        """The measured sensitivities of a checkpoint (a small calibration), as the JSON object of the file."""
        from cimjax.quant.calibration import Calibration
        from cimjax.quant.measured import checkpoint_scheme, for_checkpoint

        calibration = Calibration(windows=2, seq_len=32, samples=1, check_windows=4)
        return for_checkpoint(checkpoint, calibration, scheme=checkpoint_scheme(gptq=False)).to_json()


def edit(payload: dict, path: tuple, value) -> dict:
    """A copy of ``payload`` with the entry at ``path`` (keys and list indices) set to ``value``."""
    payload = json.loads(json.dumps(payload))
    entry = payload
    for key in path[:-1]:
        entry = entry[key]
    entry[path[-1]] = value
    return payload


_TINY = None


def _tiny_model():
    global _TINY
    if _TINY is None:
        from flax import nnx

        from cimjax.lm import DecoderLM
        from cimjax.workload.spec import ModelSpec

        spec = ModelSpec("tiny", "tiny", 2, 24, 4, 2, 6, 40, 256, False)
        _TINY = DecoderLM(spec, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0))
    return _TINY


def cases(ws: Workspace) -> list[dict]:
    """Every hostile case: command, class, argv, expectation, environment, how to run it."""
    out: list[dict] = []

    def add(command, cls, argv, expect="refuse", env=None, heavy=False, outputs=()):
        out.append(
            {
                "command": command,
                "class": cls,
                "argv": [str(a) for a in argv],
                "expect": expect,
                "env": env or {},
                "heavy": heavy,
                "outputs": [str(o) for o in outputs],
            }
        )

    ev = ["evaluate", "--model", MODEL]
    # Workload sizes.
    for flag, value in [
        ("--prefill", 10**9),
        ("--prefill", 2**31),
        ("--prefill", 10**18),
        ("--prefill", -1),
        ("--generate", 10**9),
        ("--generate", 0),
        ("--generate", 2**31),
        ("--prefill", "1e9"),
        ("--generate", "1e9"),
        ("--prefill", "nan"),
    ]:
        add("evaluate", "workload size", [*ev, flag, value, "--json"], heavy=True)
    for flag, value in [("--prefill", 131072), ("--generate", 46341), ("--generate", 32768)]:
        add("evaluate", "realistic long context", [*ev, flag, value, "--json"], expect="finite", heavy=True)
    # Hardware fields on the command line and in --config files.
    for flag, value in [("--c-v", 0), ("--c-v", -3), ("--pes-per-tile", 7), ("--bus-intra-tile", 10**12)]:
        add("evaluate", "hardware flag", [*ev, flag, value, "--json"])
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN as base  # a valid config to spoil field by field

    for bad in [{"m": True}, {"c_v": 2.0000001}, {"c_v": "2"}, {"c_v": None}, {"c_v": [2]}, {"c_v": {"a": 1}}]:
        add("evaluate", "config field type", [*ev, "--config", ws.json(base | bad), "--json"])
    for text in [
        '{"c_v": NaN}',
        '{"c_v": Infinity}',
        '{"c_v": 1e400}',
        deep(100_000),
        '{"config": ' + deep(5000) + "}",
        "",
        "\xff\xfe",
        "[1, 2]",
        "null",
        '"text"',
    ]:
        add("evaluate", "config file content", [*ev, "--config", ws.file(text), "--json"])
    add("evaluate", "config file path", [*ev, "--config", ws.root, "--json"])
    add("evaluate", "config file path", [*ev, "--config", ws.root / "missing.json", "--json"])
    add("evaluate", "config file path", [*ev, "--config", "/dev/null", "--json"])
    # Technology files: valid floats, absurd values.
    for name, value in [
        ("clock_hz", 1e300),
        ("clock_hz", 1e-300),
        ("clock_hz", 5e-324),
        ("dram_peak_bytes_per_s", 1e-300),
        ("dram_peak_bytes_per_s", 1e308),
        ("pe_cycle_energy", 1e300),
        ("dram_energy_per_bit", 1e308),
        ("leakage_w_per_mm2", 1e300),
        ("pe_area_mm2", 1e300),
        ("fu_lanes", 1e-300),
        ("psum_bits", 1e300),
        ("cluster_buffer_bits", 1e-300),
        ("clock_hz", True),
        ("dram_efficiency", True),
        ("fu_lanes", "16"),
        ("clock_hz", None),
    ]:
        add("evaluate", "technology constant", [*ev, "--tech", ws.json({name: value}), "--json"])
    for text in ['{"clock_hz": NaN}', '{"clock_hz": -Infinity}', '{"clock_hz": 1e999}', deep(100_000), "[]", ""]:
        add("evaluate", "technology file content", [*ev, "--tech", ws.file(text), "--json"])
    # Hugging Face config.json as --model.
    for name, value in [
        ("hidden_size", 10**9),
        ("hidden_size", 10**12),
        ("intermediate_size", 10**12),
        ("head_dim", 10**9),
        ("num_hidden_layers", 10**9),
        ("num_hidden_layers", 10**12),
        ("vocab_size", 10**12),
        ("num_attention_heads", 10**9),
        ("hidden_size", 896.0),
        ("num_key_value_heads", 0),
        ("vocab_size", True),
        ("tie_word_embeddings", "yes"),
        ("model_type", {"a": 1}),
        ("model_type", ["qwen2"]),
        ("model_type", 3),
    ]:
        add("evaluate", "HF config field", ["evaluate", "--model", ws.json(hf_config(**{name: value})), "--json"])
    for arch in [5, [["Qwen2ForCausalLM"]], "Qwen2ForCausalLM", {"x": 1}, [None]]:
        add(
            "evaluate",
            "HF config architectures",
            ["evaluate", "--model", ws.json(hf_config(model_type=..., architectures=arch)), "--json"],
        )
    add("evaluate", "HF config file", ["evaluate", "--model", ws.file(deep(100_000)), "--json"])
    add("evaluate", "HF config file", ["evaluate", "--model", ws.file('{"model_type": NaN}'), "--json"])
    add("evaluate", "model id", ["evaluate", "--model", "", "--json"])
    add("evaluate", "precision", [*ev, "--precision", "int3", "--json"])
    # search
    se = ["search", "--model", MODEL, "--method", "ga", "--json"]
    for flag, value in [
        ("--alpha", "nan"),
        ("--alpha", "inf"),
        ("--alpha", 2),
        ("--alpha", -0.1),
        ("--method", "foo"),
        ("--seed", -1),
        ("--prefill", 10**9),
        ("--generate", 10**9),
    ]:
        add("search", "option value", [*se, flag, value], heavy=flag in ("--prefill", "--generate"))
    for name, value in [("clock_hz", 1e-300), ("dram_peak_bytes_per_s", 1e308), ("leakage_w_per_mm2", 1e300)]:
        add("search", "technology constant", [*se, "--tech", ws.json({name: value})])
    # sweep (a two-design space keeps each case fast)
    space = ws.json(SMALL_SPACE)
    sw = ["sweep", "--model", MODEL, "--space", space, "--alphas", "0,1"]
    a_file = ws.file("not a directory", suffix=".txt")
    for target, cls in [
        ("", "out path"),
        (a_file, "out path"),
        ("/dev/null", "out path"),
        (Path(a_file) / "sub", "out path"),
        ("/proc/cimjax-probe", "out path (unwritable)"),
    ]:
        add("sweep", cls, [*sw, "--out", target])
    for alphas in ["nan", "0,inf", "", "0,,1", "2"]:
        out_dir = ws.fresh()
        add(
            "sweep",
            "option value",
            ["sweep", "--model", MODEL, "--space", space, "--alphas", alphas, "--out", out_dir],
            outputs=[out_dir],
        )
    for value in [-1, 10**9]:
        out_dir = ws.fresh()
        add("sweep", "option value", [*sw, "--ga-runs", value, "--out", out_dir], heavy=value > 0, outputs=[out_dir])
    for bad in [{"m": [True]}, {"m": [1.5]}, {"m": []}, {"m": 3}, {"m": [10**9]}, {"bus_intra_tile": [0]}, {"zz": [1]}]:
        out_dir = ws.fresh()
        add(
            "sweep",
            "space file",
            ["sweep", "--model", MODEL, "--space", ws.json(SMALL_SPACE | bad), "--out", out_dir],
            outputs=[out_dir],
        )
    # A user's space may hold any whole width up to the limit (the cost model takes bus widths as bit rates),
    # e.g. a 7-bit bus outside the paper's 512..4096: evaluated, not refused.
    out_dir = ws.fresh()
    space = ws.json(SMALL_SPACE | {"bus_intra_tile": [7]})
    add("sweep", "space file", ["sweep", "--model", MODEL, "--space", space, "--out", out_dir], expect="finite")
    out_dir = ws.fresh()
    add(
        "sweep",
        "space file",
        ["sweep", "--model", MODEL, "--space", ws.file(deep(100_000)), "--out", out_dir],
        outputs=[out_dir],
    )
    out_dir = ws.fresh()
    add(
        "sweep",
        "technology constant",
        [*sw, "--tech", ws.json({"clock_hz": 1e-300}), "--out", out_dir],
        outputs=[out_dir],
    )
    # reproduce
    for target in ["", a_file, "/dev/null", Path(a_file) / "sub", "/proc/cimjax-probe"]:
        add("reproduce", "out path", ["reproduce", "--models", MODEL, "--out", target])
    out_dir = ws.fresh()
    add("reproduce", "option value", ["reproduce", "--models", "gpt-9", "--out", out_dir], outputs=[out_dir])
    out_dir = ws.fresh()
    add("reproduce", "option value", ["reproduce", "--models", ",", "--out", out_dir], outputs=[out_dir])
    # optimize
    op = ["optimize", "--model", MODEL, "--budget", "int8", "--json"]
    for flag, value in [
        ("--starts", 10**9),
        ("--rounds", 10**9),
        ("--starts", 0),
        ("--area-max", "nan"),
        ("--area-max", -1),
        ("--area-max", "inf"),
        ("--alpha", "nan"),
        ("--method", "foo"),
    ]:
        add("optimize", "option value", [*op, flag, value], heavy=flag in ("--starts", "--rounds") and value)
    for budget in ["nan", "-1", "inf", "int3", "", "1e400"]:
        add("optimize", "budget", ["optimize", "--model", MODEL, "--budget", budget, "--json"])
    for target in [a_file, Path(a_file) / "sub", "/proc/cimjax-probe", "/dev/null", ""]:
        add("optimize", "checkpoint dir", [*op, "--checkpoint-dir", target, "--rounds", 1, "--starts", 2])
    add("optimize", "resume", [*op, "--resume"])
    # proxy validate
    pv = ["proxy", "validate", "--size", "tiny", "--json"]
    add("proxy validate", "option value", [*pv, "--granularity", "foo"], heavy=True)
    for flag, value in [("--configs", 0), ("--configs", 10**9), ("--size", "huge")]:
        add("proxy validate", "option value", [*pv, flag, value], heavy=True)
    for target in [a_file, "/dev/null", ""]:
        add("proxy validate", "out path", [*pv, "--out", target], heavy=True)
    # proxy sensitivities
    good = ws.checkpoint()
    ps = ["proxy", "sensitivities", "--json", "--checkpoint"]
    for flag, value in [("--windows", 10**9), ("--seq-len", 10**9), ("--samples", 10**9), ("--windows", 0)]:
        add("proxy sensitivities", "resource limit", [*ps, good, flag, value], heavy=True)
    for name, value in [
        ("rope_theta", "10000"),
        ("rope_theta", float("nan")),
        ("rope_theta", -1.0),
        ("rms_norm_eps", -1e-6),
        ("rms_norm_eps", True),
        ("rms_norm_eps", float("inf")),
        ("rope_theta", [1]),
    ]:
        add("proxy sensitivities", "checkpoint config field", [*ps, ws.checkpoint({name: value})])
    for index in [
        {"weight_map": []},
        {"weight_map": {"model.embed_tokens.weight": 3}},
        {"weight_map": "x"},
        {"weight_map": {"model.embed_tokens.weight": "/etc/passwd"}},
        {"weight_map": {"model.embed_tokens.weight": "../outside.safetensors"}},
        [],
    ]:
        add("proxy sensitivities", "checkpoint index", [*ps, ws.checkpoint(index=index)])
    add("proxy sensitivities", "checkpoint path", [*ps, a_file])
    add(
        "proxy sensitivities",
        "checkpoint config file",
        [*ps, ws.checkpoint(extra_files={"config.json": deep(100_000)})],
    )
    # optimize --sensitivities: a measured file with one entry edited by hand
    sens = ws.sensitivities(good)
    for path, value in [
        (("sensitivities", "numel", 0, 0), True),
        (("sensitivities", "fisher", 0, 1), -1.0),
        (("sensitivities", "err", 0, 0, 2), 1e300),
        (("uniform_kl", "8"), 1e300),
        (("joint", "tables", 0, 0, 0), 4.5),
        (("model", "id"), {}),
        (("checkpoint_hash",), 5),
        (("scheme", "weight", "symmetric"), "x"),
    ]:
        edited = ws.json(edit(sens, path, value))
        add("optimize", "sensitivities file", ["optimize", "--sensitivities", edited, "--budget", "int4", "--json"])
    # output files: a chart, a sensitivities file, an exported checkpoint (a named pipe stands for /dev/null,
    # which the old code replaced with a regular file when run as root)
    a_dir, a_fifo = ws.fresh(), ws.fresh()
    a_dir.mkdir()
    os.mkfifo(a_fifo)
    unwritable = "/proc/cimjax-probe/out.png"
    for target in ["", a_dir, Path(a_file) / "chart.png", a_fifo, unwritable, ws.fresh() / "chart.txt", ws.fresh()]:
        add("evaluate", "plot path", [*ev, "--json", "--plot", target])
    small = ["--windows", "2", "--seq-len", "32", "--samples", "1", "--check-windows", "4", "--no-gptq"]
    for target in ["", a_dir, Path(a_file) / "sens.json", a_fifo, unwritable]:
        add("proxy sensitivities", "out path", [*ps, good, *small, "--out", target])
    for target in [a_file, Path(a_file) / "ckpt", unwritable]:  # not "": the old code exported into the cwd
        add("proxy export", "out path", ["proxy", "export", "--size", "tiny", "--out", target])
    # an endless input file (heavy: run under the memory limit)
    for flag in ["--config", "--tech"]:
        add("evaluate", "endless file", [*ev, flag, "/dev/zero", "--json"], heavy=True)
    add("sweep", "endless file", ["sweep", "--model", MODEL, "--space", "/dev/zero", "--out", ws.fresh()], heavy=True)
    add("optimize", "endless file", ["optimize", "--sensitivities", "/dev/zero", "--budget", "int4"], heavy=True)
    # environment
    for env in [
        {"CIMJAX_CACHE": a_file},
        {"CIMJAX_CACHE": str(Path(a_file) / "sub")},
        {"CIMJAX_CACHE": None, "HOME": "/proc/cimjax-probe"},
        {"CIMJAX_CACHE": "/proc/cimjax-probe"},
    ]:
        add("models", "environment", ["models", "--json"], expect="finite", env=env)
        add("evaluate", "environment", [*ev, "--json"], env=env, expect="finite")
    for platform in ["bogus", "tpu"]:  # a JAX backend this machine cannot start (no TPU here)
        add("models", "environment", ["models", "--json"], expect="finite", env={"JAX_PLATFORMS": platform})
        add("evaluate", "environment", [*ev, "--json"], env={"JAX_PLATFORMS": platform})
    return out


def _scan_nan(text: str) -> bool:
    return bool(NAN_RE.search(text))


def _written(paths: list[str]) -> list[str]:
    return [p for p in paths if Path(p).exists()]


def _classify(case, exit_code, stdout, stderr, exception, files_text) -> tuple[str, list[str]]:
    notes = []
    stderr_lines = [line for line in stderr.splitlines() if line.strip()]
    if exception or "Traceback" in stderr or exit_code not in (0, 2):
        return "traceback", notes
    if exit_code == 0:
        if _scan_nan(stdout) or _scan_nan(files_text):
            return "bad_exit0", ["NaN/inf in output"]
        return ("ok", notes) if case["expect"] == "finite" else ("bad_exit0", ["accepted"])
    if len(stderr_lines) != 1:
        notes.append("multiline")
    if _written(case["outputs"]):
        notes.append("left_files")
    return "clear", notes


def run_in_process(case, runner, app):
    env = {k: v for k, v in case["env"].items()}
    result = runner.invoke(app, case["argv"], env=env)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, result.stderr, exception


def run_subprocess(case):
    env = dict(os.environ)
    for k, v in case["env"].items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    code = "from cimjax.cli.main import app; app()"
    argv = ["bash", "-c", f'ulimit -v {MEMORY_LIMIT_KB}; exec "$0" -c "$@"', sys.executable, code, *case["argv"]]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIME_LIMIT_S, env=env)
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {TIME_LIMIT_S} s", None
    return proc.returncode, proc.stdout, proc.stderr, None


def files_text(case) -> str:
    text = []
    for root in case["outputs"]:
        for path in Path(root).rglob("*") if Path(root).is_dir() else []:
            if path.suffix in (".json", ".csv", ".md"):
                text.append(path.read_text(errors="replace"))
    return "\n".join(text)


def library_cases() -> list[dict]:
    """Library-level hostile inputs: each returns (outcome, note)."""
    import jax.numpy as jnp
    import numpy as np

    results = []

    def record(name, fn):
        try:
            value = fn()
        except ValueError as e:
            results.append({"command": "library", "class": name, "outcome": "clear", "notes": [str(e)[:80]]})
            return
        except Exception as e:  # noqa: BLE001 - the probe counts every uncaught exception
            results.append({"command": "library", "class": name, "outcome": "traceback", "notes": [repr(e)[:80]]})
            return
        value = np.asarray(value)
        good = bool(np.all(np.isfinite(value) & (value > 0)))  # latencies: finite and positive
        outcome = "ok" if good else "bad_exit0"
        results.append({"command": "library", "class": name, "outcome": outcome, "notes": [] if good else [str(value)]})

    from cimjax.api import evaluate_design
    from cimjax.cost.model import evaluate
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN, HardwareConfig
    from cimjax.hardware.technology import default_technology
    from cimjax.workload.models import get_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    spec = get_model(MODEL)
    for field, value in [("c_v", 0.0), ("m", -1.0), ("pes_per_tile", float("nan")), ("bus_intra_tile", 0.0)]:
        values = {k: jnp.asarray(float(v)) for k, v in EDGECIM_ALPHA05_DESIGN.items()} | {field: jnp.asarray(value)}

        def direct(values=values):
            hw = HardwareConfig(**values)
            return evaluate(hw, preset("int8", spec.n_layers), spec, Workload(), default_technology()).latency_s

        record(f"HardwareConfig({field}={value}) evaluated", direct)
    for model in [None, 3, ["qwen2.5-0.5b"]]:
        record(
            f"evaluate_design(model={model!r})",
            lambda model=model: evaluate_design(model, "int8", EDGECIM_ALPHA05_DESIGN)["latency_s"],
        )
    record("evaluate_design(precision=None)", lambda: evaluate_design(MODEL, None, EDGECIM_ALPHA05_DESIGN)["latency_s"])
    record("evaluate_design(config=None)", lambda: evaluate_design(MODEL, "int8", None)["latency_s"])
    _keyword_cases(record)
    results += _relaxed_cases()
    return results


def _keyword_cases(record) -> None:
    """Keyword arguments of the notebook entry points given the wrong thing (and ``cimjax.search`` called
    after ``cimjax.optimize_report`` imported the package of the same name)."""
    import cimjax
    from cimjax.api import evaluate_design
    from cimjax.hardware.config import EDGECIM_ALPHA05_DESIGN
    from cimjax.hardware.technology import default_technology
    from cimjax.workload.operators import Workload

    cimjax.optimize_report  # noqa: B018 - imports cimjax.search's modules, as a notebook's earlier cell may
    small = {"pop_size": 4, "n_gen": 1, "workload": Workload(prefill=4, generate=4)}
    nan_clock = dataclasses.replace(default_technology(), clock_hz=float("nan"))

    def paper_design(**kwargs):
        return evaluate_design(MODEL, "int8", EDGECIM_ALPHA05_DESIGN, **kwargs)

    for name, call in [
        ("evaluate_design(tech=a NaN clock set by dataclasses.replace)", lambda: paper_design(tech=nan_clock)),
        ("evaluate_design(tech='65nm')", lambda: paper_design(tech="65nm")),
        ("evaluate_design(workload={'prefill': 64})", lambda: paper_design(workload={"prefill": 64})),
        ("evaluate_design(space='paper')", lambda: paper_design(space="paper")),
        ("search(seed='x')", lambda: cimjax.search(MODEL, "int8", 0.5, "ga", seed="x", **small)),
        ("search(pop_size='x')", lambda: cimjax.search(MODEL, "int8", 0.5, "ga", **small | {"pop_size": "x"})),
        ("search(method='gradient', starts='x')", lambda: cimjax.search(MODEL, "int8", 0.5, "gradient", starts="x")),
        ("cimjax.search after cimjax.optimize_report", lambda: cimjax.search(MODEL, "int8", 0.5, "ga", **small)),
    ]:  # fmt: skip
        record(name, lambda call=call: call()["latency_s"])


def _relaxed_cases() -> list[dict]:
    """The relaxed model at temperatures JointSettings accepts: value and gradient finite for random designs."""
    from cimjax.joint.settings import JointSettings

    out = []
    for tau in (1e-5, 1e-6, 1e-7):
        try:
            JointSettings(temperature=(1.0, tau))
        except ValueError as e:
            out.append(
                {
                    "command": "library",
                    "class": f"JointSettings temperature {tau}",
                    "outcome": "clear",
                    "notes": [str(e)[:80]],
                }
            )
            continue
        bad = _relaxed_nonfinite(tau, n=RELAXED_DESIGNS)
        out.append(
            {
                "command": "library",
                "class": f"relaxed model at temperature {tau}",
                "outcome": "bad_exit0" if bad else "ok",
                "notes": [f"{bad} bad of {RELAXED_DESIGNS}"],
            }
        )
    return out


def _relaxed_nonfinite(tau: float, n: int) -> int:
    """Random continuous designs at temperature ``tau``: how many give a non-finite or negative latency, or a
    non-finite gradient with respect to the hardware leaves."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from cimjax.cost.model import evaluate
    from cimjax.cost.relaxed import relaxed_ops
    from cimjax.hardware.config import FIELDS, PAPER_SPACE, HardwareConfig
    from cimjax.hardware.technology import default_technology
    from cimjax.workload.models import get_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    spec = get_model(MODEL)
    prec = preset("int8", spec.n_layers)
    tech = default_technology()
    rng = np.random.default_rng(0)
    lo = np.array([min(PAPER_SPACE.values[f]) for f in FIELDS], np.float32)
    hi = np.array([max(PAPER_SPACE.values[f]) for f in FIELDS], np.float32)
    z = jnp.asarray(lo + (hi - lo) * rng.random((n, 9), dtype=np.float32))

    ops = relaxed_ops(tau)

    def costs(zi):
        hw = HardwareConfig(**{f: zi[i] for i, f in enumerate(FIELDS)})
        c = evaluate(hw, prec, spec, Workload(), tech, ops, False)
        return jnp.stack([c.latency_s, c.energy_j])

    vals = np.asarray(jax.jit(jax.vmap(costs))(z))
    grads = np.asarray(jax.jit(jax.vmap(jax.jacfwd(costs)))(z))
    ok = np.all(np.isfinite(vals) & (vals > 0), axis=1) & np.all(np.isfinite(grads), axis=(1, 2))
    return int((~ok).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every case and its outcome here")
    parser.add_argument("--only", help="run only the commands whose name starts with this")
    parser.add_argument("--no-heavy", action="store_true", help="skip the subprocess (resource-limit) cases")
    args = parser.parse_args()

    from typer.testing import CliRunner

    from cimjax.cli.main import app

    runner = CliRunner()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cimjax-probe-") as tmp:
        ws = Workspace(Path(tmp))
        for case in cases(ws):
            if args.only and not case["command"].startswith(args.only):
                continue
            if case["heavy"] and args.no_heavy:
                continue
            t0 = time.perf_counter()
            if case["heavy"] or case["env"]:
                code, stdout, stderr, exc = run_subprocess(case)
            else:
                code, stdout, stderr, exc = run_in_process(case, runner, app)
            outcome, notes = _classify(case, code, stdout, stderr, exc, files_text(case))
            first = (repr(exc) if exc else (stderr.strip().splitlines() or [""])[-1])[:160]
            rows.append(
                case
                | {
                    "outcome": outcome,
                    "notes": notes,
                    "exit": code,
                    "message": first,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(
                f"{outcome:10s} {' '.join(notes):22s} {case['command']:20s} {case['class']:28s} "
                f"{' '.join(case['argv'][1:])[-70:]} | {first[:100]}",
                flush=True,
            )
        if not args.only or "library".startswith(args.only):
            for row in library_cases():
                rows.append(row)
                print(f"{row['outcome']:10s} {'':22s} library              {row['class']} | {row['notes']}", flush=True)

    summary: dict = collections.defaultdict(collections.Counter)
    for row in rows:
        summary[row["command"]][row["outcome"]] += 1
        for note in row.get("notes", []):
            if note in ("multiline", "left_files"):
                summary[row["command"]][f"clear_{note}" if note == "multiline" else note] += 1
    totals = collections.Counter()
    for counts in summary.values():
        totals.update(counts)
    print(f"\n{'command':22s} cases  traceback  bad_exit0  clear  ok  clear_multiline  left_files")
    for command, counts in list(summary.items()) + [("TOTAL", totals)]:
        n = sum(counts[k] for k in ("traceback", "bad_exit0", "clear", "ok"))
        print(
            f"{command:22s} {n:5d}  {counts['traceback']:9d}  {counts['bad_exit0']:9d}  {counts['clear']:5d}  "
            f"{counts['ok']:2d}  {counts['clear_multiline']:15d}  {counts['left_files']:10d}"
        )
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps({"summary": {k: dict(v) for k, v in summary.items()}, "cases": rows}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
