"""The input boundary: every value a user gives (CLI option, JSON file, ``config.json``, checkpoint file,
environment variable) is checked here before any JAX work, with documented limits (docs/limits.md).

Each check raises :class:`InputError` (a ``ValueError``) with one line naming the field, the value and what
is allowed; the CLI turns it into exit status 2. A JSON boolean is never a number here (``true`` is not a
1 Hz clock), and every number must be finite.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

from cimjax.interrupts import exit_interrupted, noting_interrupts


class InputError(ValueError):
    """A user input outside what cimjax accepts; the message names field, value and what is allowed."""


MAX_TOKENS = 2**24
"""Largest ``prefill`` or ``generate``: 16,777,216 tokens (128x a 128k context). float32 holds every token
count up to it exactly, and the cost model's counts (up to ~1e14 for the attention scores) stay finite."""

MODEL_LIMITS = {
    "n_layers": 1024,
    "hidden": 65536,
    "n_heads": 1024,
    "n_kv_heads": 1024,
    "head_dim": 4096,
    "ffn": 262144,
    "vocab": 2**22,
}
"""Largest model sizes: several times the largest published decoders (Llama 3.1 405B: 126 layers, hidden
16384, FFN 53248, 128 query heads; vocabularies up to 262144)."""

MAX_MATRIX_ELEMENTS = 2**31 - 1
"""A weight matrix's elements (d_in x d_out) must fit int32: the cost model's shape products are integers."""

MAX_SEED = 2**32 - 1
"""Largest random seed: a JAX key keeps 32 bits of it (64-bit mode off), so seed 2**32 would silently
give seed 0's key (``jax.random.key(2**32)`` is ``[0, 0]``)."""
MAX_VERIFY_ROUNDS = 100
"""Most verification rounds of a measured optimisation (``--verify-rounds``, ``max_rounds``; each one
optimisation and one measurement; the default is 5)."""
MAX_REFINE = 10_000
"""Most assignments the refinement may measure (``--refine``; each one forward pass over the check windows)."""
MAX_EVOLVE = 100_000
"""Most assignments the evolutionary search may measure (``--evolve``; each one forward pass over at most 64
selection windows)."""

MAX_ITERATIONS = 10**6
"""Most steps, rounds or generations of an iterative method. At the paper's GA population (20) a million
generations are 2e7 evaluations, six times the exhaustive sweep of the paper's 3,136,000 designs; a float
such as ``n_gen=1e30`` used to be accepted and never finish."""

MAX_BATCH = 2**16
"""Most parallel starts, beam entries or GA individuals: each is a row of one batched evaluation (the
defaults are 16 to 32 starts, 4 to 8 beams and a population of 20)."""

MAX_JSON_DEPTH = 64
"""JSON files cimjax reads are a few levels deep; deeper nesting is refused (instead of a RecursionError)."""

MAX_JSON_BYTES = 64 * 2**20
"""Largest JSON file read (64 MiB); a config or index file is kilobytes."""


def fail(field: str, value, allowed: str) -> InputError:
    """The one-line error: ``<field> = <value> is not allowed; <allowed>``."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InputError(f"{field} = {shown} is not allowed; {allowed}")


def is_number(value) -> bool:
    """A real number that is not a bool (JSON ``true`` is not 1): an int or a float, or a NumPy scalar of either
    (a value taken from an array in a notebook)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(field: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; bools, floats and strings are refused."""
    allowed = f"allowed: an integer in [{low}, {high}]" if high is not None else f"allowed: an integer >= {low}"
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        raise fail(field, value, allowed)
    return value


def number(
    field: str, value, low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False
) -> float:
    """``value`` as a finite float within the given bounds; bools and strings are refused."""
    lo_bracket, hi_bracket = "(" if low_open else "[", ")" if high_open else "]"
    allowed = f"allowed: a finite number in {lo_bracket}{low:g}, {high:g}{hi_bracket}"
    if math.isinf(high):  # not "a finite number in (0, inf]"
        allowed = f"allowed: a finite number {'>' if low_open else '>='} {low:g}"
    if not is_number(value) or not math.isfinite(value):
        raise fail(field, value, allowed)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise fail(field, value, allowed)
    return float(value)


def plain(value):
    """A 0-d array (NumPy or JAX) as the Python number it holds, so the checks here see its value; anything
    else as it is."""
    return value.item() if getattr(value, "ndim", None) == 0 and hasattr(value, "item") else value


def count(field: str, value, low: int, high: int) -> int:
    """A size or iteration count of a method: an integer (a 0-d integer array too) in ``[low, high]``."""
    return integer(field, plain(value), low, high)


def seed(field: str, value) -> int:
    """A random seed: an integer (a 0-d integer array too) in ``[0, MAX_SEED]``."""
    return count(field, value, 0, MAX_SEED)


def names(field: str, text: str, allowed) -> list[str]:
    """The names of a comma-separated option (``--models a,b``), each one of ``allowed``; InputError naming the
    first that is not (an empty one included)."""
    items = text.split(",")
    for item in items:
        if item not in allowed:
            raise fail(field, item, f"allowed: comma-separated names of {', '.join(allowed)}")
    return items


def callback(field: str, value, called_with: str = "the progress so far"):
    """A callback argument (``progress``, ``log``): a callable, or None for none; a number in its place is
    refused here, not as "'int' object is not callable" from inside a run."""
    if value is not None and not callable(value):
        raise fail(field, value, f"allowed: a function (called with {called_with}) or None")
    return value


def instance(field: str, value, kind: type, default=None):
    """A keyword argument of the Python entry points that must be a ``kind``; None means ``default()`` (or
    stays None without a default). A dict or a string in its place is refused here, not deep in the model."""
    if value is None:
        return None if default is None else default()
    if not isinstance(value, kind):
        raise fail(field, value, f"allowed: a {kind.__module__}.{kind.__qualname__}")
    return value


# --- Workloads and models -------------------------------------------------------------------------------


def tokens(field: str, value, low: int) -> int:
    """A token count of a workload: an integer in ``[low, MAX_TOKENS]``."""
    return integer(field, value, low, MAX_TOKENS)


def model_sizes(model_id: str, sizes: Mapping[str, int]) -> None:
    """The sizes of a model: positive integers within :data:`MODEL_LIMITS`, matrices within int32."""
    for name, high in MODEL_LIMITS.items():
        integer(f"model {model_id!r}: {name}", sizes[name], 1, high)
    q_dim, kv_dim = sizes["n_heads"] * sizes["head_dim"], sizes["n_kv_heads"] * sizes["head_dim"]
    hidden, ffn = sizes["hidden"], sizes["ffn"]
    for name, elements in (("q/o projection", hidden * q_dim), ("k/v projection", hidden * kv_dim),
                           ("FFN matrix", hidden * ffn)):  # fmt: skip
        if elements > MAX_MATRIX_ELEMENTS:
            raise InputError(
                f"model {model_id!r}: {name} of {elements:,} elements is not allowed; allowed: at most "
                f"{MAX_MATRIX_ELEMENTS:,} (2^31 - 1) elements per weight matrix"
            )


# --- Files ----------------------------------------------------------------------------------------------


def _depth(text: str) -> int:
    """Deepest nesting of JSON arrays/objects in ``text`` (brackets inside strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


YAML_SUFFIXES = (".yaml", ".yml")


def _first_nonfinite(value, seen: set[int], where: str = "") -> str | None:
    """Where the first NaN/infinity of parsed JSON or YAML is, as ``field 'c_v[0]' = inf``, or None;
    shared (YAML-aliased) nodes are visited once."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"field {where!r} = {value!r}" if where else repr(value)
    if isinstance(value, dict | list) and id(value) not in seen:
        seen.add(id(value))
        if isinstance(value, dict):
            items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
        else:
            items = ((f"{where}[{i}]", item) for i, item in enumerate(value))
        for place, item in items:
            found = _first_nonfinite(item, seen, place)
            if found:
                return found
    return None


def _refuse_nonfinite(data, what: str, path: Path):
    """``data`` unless it holds a NaN or infinity; InputError naming the field otherwise."""
    found = _first_nonfinite(data, set())
    if found:
        raise InputError(f"{what} file {path} holds {found}; allowed: finite numbers only")
    return data


def _parse_yaml(text: str, what: str, path: Path):
    import yaml

    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as err:
        raise InputError(f"{what} file {path} is not valid YAML: {' '.join(str(err).split())[:200]}") from None
    return _refuse_nonfinite(data, what, path)


def read_json(path: str | Path, what: str):
    """Parsed contents of a user's JSON file (YAML when it ends in .yaml/.yml): at most
    :data:`MAX_JSON_BYTES`, :data:`MAX_JSON_DEPTH` levels, UTF-8, no NaN/infinity; InputError naming the
    ``what`` file otherwise."""
    path = Path(path)
    try:
        if path.is_dir():
            raise InputError(f"{what} file {path} is a directory; allowed: a JSON file")
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as err:
        raise InputError(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise InputError(f"{what} file {path} is larger than {MAX_JSON_BYTES // 2**20} MiB; allowed: a small JSON file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} file {path} is not UTF-8 text; allowed: a JSON file") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise InputError(f"{what} file {path} nests deeper than {MAX_JSON_DEPTH} levels; allowed: a flat JSON object")
    if path.suffix.lower() in YAML_SUFFIXES:
        return _parse_yaml(text, what, path)
    try:
        data = json.loads(text)  # NaN and +-Infinity parse as floats, refused below with where they are
    except ValueError as err:
        detail = str(err).splitlines()[0]
        raise InputError(f"{what} file {path} is not valid JSON: {detail}") from None
    return _refuse_nonfinite(data, what, path)


def json_object(data, what: str, path) -> dict:
    """``data`` if it is a JSON object; InputError otherwise."""
    if not isinstance(data, dict):
        raise InputError(f"{what} file {path} holds a JSON {type(data).__name__}; allowed: a JSON object")
    return data


# --- Resources -----------------------------------------------------------------------------------------


def available_memory_bytes() -> int:
    """Memory this process may use: MemAvailable from /proc/meminfo, else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory(what: str, needed_bytes: float) -> None:
    """Refuses a request whose estimated memory exceeds what the machine has available."""
    available = available_memory_bytes()
    if needed_bytes > available:
        raise InputError(
            f"{what} needs about {needed_bytes / 2**30:,.1f} GiB of memory; allowed: at most the "
            f"{available / 2**30:,.1f} GiB available on this machine"
        )


def check_limits(tolerance: float, area_max: float | None) -> tuple[float, float | None]:
    """``(tolerance, area_max)`` as Python floats (a NumPy scalar is not JSON); ValueError naming ``--tolerance`` or
    ``--area-max`` when it is not a usable number."""
    if not (is_number(tolerance) and 0 <= tolerance < 1):
        raise ValueError(f"--tolerance = {tolerance!r} must be a fraction in [0, 1) (e.g. 0.02 for 2 %)")
    if area_max is not None and not (is_number(area_max) and 0 < area_max < float("inf")):
        raise ValueError(f"--area-max = {area_max!r} must be a positive number of mm^2")
    return float(tolerance), None if area_max is None else float(area_max)


FILE_SYSTEM_REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})
"""The errors of a write that say the file system refused it (full, over quota, read-only, file too large,
failing), not that cimjax is wrong."""


def file_system_refusal(error: BaseException) -> str | None:
    """The one-line reason when ``error`` is a write the file system refused, else None (a fault of ours)."""
    if not (isinstance(error, OSError) and error.errno in FILE_SYSTEM_REFUSALS):
        return None
    return f"cannot write {error.filename}: {error.strerror}" if error.filename else f"a write failed: {error.strerror}"


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """Runs a benchmark or experiment script's ``main`` and exits with its status: an input it refuses (a
    ``ValueError``, as every check here raises) or a write the file system refuses (a full disk) ends the run
    with one line, ``<script>: error: <message>``, and status 2, as argparse ends its own usage errors; Ctrl-C
    stops it where it lands, with ``<script>: interrupted (Ctrl-C)`` and status 130, as in the CLI
    (:mod:`cimjax.interrupts`); anything else keeps its traceback (a bug report needs it)."""
    script = Path(sys.argv[0]).name
    try:
        with noting_interrupts() as interrupts:
            code = main()
        if interrupts:  # a Ctrl-C that other code swallowed
            raise KeyboardInterrupt
    except ValueError as err:
        print(f"{script}: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as err:
        if (reason := file_system_refusal(err)) is None:
            raise
        print(f"{script}: error: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{script}: interrupted (Ctrl-C)", file=sys.stderr)
        exit_interrupted()
    raise SystemExit(code or 0)
