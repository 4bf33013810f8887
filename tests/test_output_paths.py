"""Output paths a command cannot write are refused by name before any work (a chart, a sensitivities file, an
exported checkpoint, a script's --out), and a path in directories that do not exist yet is written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
MODEL = "qwen2.5-0.5b"
UNWRITABLE = "/proc/cimjax-test"  # a directory no one may create files in, root included
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc")


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working directory holding a file ``a_file``, a directory ``a_dir`` and a named pipe ``a_fifo``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "a_dir").mkdir()
    os.mkfifo(tmp_path / "a_fifo")
    return tmp_path


def _refused(res, flag: str, reason: str) -> None:
    """Exit 2 with one ``error:`` line naming ``flag`` and ``reason``, and nothing else (no work was reported)."""
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith(f"error: {flag} = "), res.output
    assert reason in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output


BAD_FILES = [
    ("", "is not allowed; allowed: a file path"),
    ("a_dir", "is a directory"),
    ("a_file/chart.png", "a_file is a file, not a directory"),
    ("a_fifo", "is not a regular file"),  # as /dev/null, which the old code replaced with a file when run as root
    pytest.param(UNWRITABLE + "/chart.png", "is not writable", marks=needs_proc),
]


@pytest.mark.parametrize(
    ("path", "reason"), [*BAD_FILES, ("chart.txt", "no known format"), ("chart", "no known format")]
)
def test_evaluate_plot_refuses_a_path_it_cannot_write(scratch, path, reason):
    """Before: "Format 'tmp' is not supported" for '', a directory or a name without a suffix (the temporary
    file's suffix), and a traceback for a path under a file or in an unwritable directory."""
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8", "--json", "--plot", path])
    _refused(res, "--plot", reason)


def test_evaluate_plot_creates_missing_directories(scratch):
    """Before: FileNotFoundError from the temporary file's directory."""
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8", "--plot", "new/dir/chart.svg"])
    assert res.exit_code == 0, res.output
    assert (scratch / "new/dir/chart.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(("path", "reason"), BAD_FILES)
def test_sensitivities_out_is_refused_before_measuring(scratch, exported, path, reason):
    """Before: the checkpoint was measured (minutes on a real one), then a traceback lost the measurement."""
    args = ["proxy", "sensitivities", "--checkpoint", str(exported), "--windows", "2", "--seq-len", "32"]
    res = runner.invoke(app, [*args, "--samples", "1", "--check-windows", "4", "--no-gptq", "--out", path])
    _refused(res, "--out", reason)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "is not allowed"),
        ("a_file", "exists and is not a directory"),
        ("a_file/ckpt", "a_file is a file, not a directory"),
        pytest.param(UNWRITABLE, "is not writable", marks=needs_proc),
    ],
)
def test_export_out_is_refused_before_training(scratch, monkeypatch, path, reason):
    """Before: '' wrote the checkpoint into the working directory, and a path under a file or in an unwritable
    directory was only found after training (about 13 minutes for the benchmark LM)."""
    monkeypatch.setenv("CIMJAX_CACHE", str(scratch / "cache"))
    res = runner.invoke(app, ["proxy", "export", "--size", "tiny", "--out", path])
    _refused(res, "--out", reason)
    assert not (scratch / "cache" / "proxy-lm").exists()  # nothing was trained
    assert not (scratch / "config.json").exists()


def test_plots_save_names_the_path_from_python(tmp_path):
    from matplotlib.figure import Figure

    from cimjax.report import plots

    with pytest.raises(ValueError, match=r"path = 3 is not allowed"):
        plots.save(Figure(), 3)
    with pytest.raises(ValueError, match=r"path = .*no known format for its suffix.*\.png"):
        plots.save(Figure(), tmp_path / "chart.docx")
    assert plots.save(Figure(), tmp_path / "a" / "chart.png").is_file()


@pytest.mark.parametrize(
    ("script", "option"), [("benchmarks/calibrate.py", "--out"), ("experiments/end_to_end.py", "--out")]
)
def test_scripts_refuse_an_output_path_when_parsing(scratch, script, option):
    """Before: the scripts ran (end_to_end.py for an hour) and failed when writing."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), option, "a_file/sub"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert f"argument {option}: value = 'a_file/sub' is not allowed: a_file is a file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_atomic_write_never_replaces_what_is_not_a_regular_file(scratch):
    from cimjax.files import atomic_write

    with pytest.raises(ValueError, match="exists and is not a regular file"):
        atomic_write(scratch / "a_fifo", "text")
    assert (scratch / "a_fifo").is_fifo()


@pytest.fixture
def umask():
    """Sets the process umask for a test (``umask(0o022)``) and restores it afterwards."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_permissions_a_plain_write_gives(scratch, umask, mask, mode):
    """Before: 0o600 whatever the umask (``tempfile.mkstemp``'s mode survived the rename), so results, charts
    and exported checkpoints were unreadable to anyone but their owner."""
    from cimjax.files import atomic_write

    umask(mask)
    atomic_write(scratch / "new.json", "{}")
    assert (scratch / "new.json").stat().st_mode & 0o777 == mode
    (scratch / "kept.json").write_text("{}")
    os.chmod(scratch / "kept.json", 0o640)
    atomic_write(scratch / "kept.json", "[]")  # an existing file keeps its permissions, as open(path, "w") does
    assert (scratch / "kept.json").stat().st_mode & 0o777 == 0o640


def test_cli_outputs_are_readable_by_the_group_under_the_usual_umask(scratch, umask):
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8", "--plot", "chart.png"])
    assert res.exit_code == 0, res.output
    assert (scratch / "chart.png").stat().st_mode & 0o777 == 0o644


def test_a_full_disk_is_one_line_naming_the_file(scratch, monkeypatch):
    """Before: the writer's traceback (PIL's "OSError: [Errno 28] No space left on device" for a chart), after
    the whole run. Now one line naming the file, and no temporary file is left."""
    import matplotlib.figure

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8", "--plot", "chart.png"])
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]  # after the table of the evaluation
    assert last == "error: cannot write chart.png: No space left on device; nothing was written to it"
    assert "Traceback" not in res.output
    assert sorted(p.name for p in scratch.iterdir()) == ["a_dir", "a_fifo", "a_file"]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "ck/_sharding"), "cannot write ck/_sharding: No space"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "a write failed: Disk quota exceeded"),
    ],
)
def test_a_refused_write_outside_the_atomic_writer_is_one_line(monkeypatch, error, line):
    """Writers of their own (orbax checkpoints, a library's files) raise OSError: a full disk or quota is one
    line, as for the files cimjax writes itself; any other OSError keeps its traceback (a fault to report)."""
    import cimjax.api

    raised = [error]

    def failing(*args, **kwargs):
        raise raised[0]

    monkeypatch.setattr(cimjax.api, "evaluate_design", failing)
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {line}") and len(res.output.strip().splitlines()) == 1, res.output
    raised[0] = FileNotFoundError(errno.ENOENT, "No such file or directory", "x")
    assert isinstance(runner.invoke(app, ["evaluate", "--model", MODEL]).exception, FileNotFoundError)


def test_exported_weights_are_readable_and_a_full_disk_names_them(scratch, umask, monkeypatch):
    """Before: ``model.safetensors`` was 0o600 (safetensors wrote its own file over the temporary one), and a full
    disk ended ``proxy export`` in safetensors' SafetensorError traceback. Now the weights go through the same
    atomic writer as every output: the usual permissions, and one line naming the file."""
    import errno

    from flax import nnx

    from cimjax.files import OutputError
    from cimjax.lm import DecoderLM, save_checkpoint
    from cimjax.workload.spec import ModelSpec

    spec = ModelSpec("tiny-llama", "tiny", 1, 8, 2, 1, 4, 16, 16, False)
    model = DecoderLM(spec, rope_theta=500.0, rms_eps=1e-5, rngs=nnx.Rngs(0))
    written = save_checkpoint(model, scratch / "ck")
    assert {p.name: p.stat().st_mode & 0o777 for p in written.iterdir()} == {
        "config.json": 0o644,
        "model.safetensors": 0o644,
    }

    synced = []

    def full_after_the_config(fd):
        synced.append(fd)
        if len(synced) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_after_the_config)
    with pytest.raises(OutputError, match=r"cannot write .*full.model.safetensors: No space left on device"):
        save_checkpoint(model, scratch / "full")
    assert [p.name for p in (scratch / "full").iterdir()] == ["config.json"]


def test_a_full_cache_does_not_fail_a_run_that_has_its_result(tmp_path, monkeypatch):
    """Before: ``proxy sensitivities`` with ``CIMJAX_CACHE`` on a full disk measured, then ended in a traceback
    writing its GPTQ copies to the cache (measured on a 64 KiB tmpfs), losing the measurement. Now the entry is
    not kept, with a warning, and the run goes on; any other failure still ends it."""
    import errno

    import numpy as np

    from cimjax.quant import gptq

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.warns(
        UserWarning, match=r"cannot write .*copies.npz: No space left on device.*the cache entry is not kept"
    ):
        gptq._write(tmp_path / "copies.npz", {(0, "q"): np.zeros((2, 2))})
    assert list(tmp_path.iterdir()) == []
    from cimjax.cache import kept_if_possible

    with pytest.raises(KeyError), kept_if_possible():
        raise KeyError("a fault of ours")


def test_a_long_file_name_the_file_system_takes_is_written(scratch):
    """Before: the temporary file's longer name ("File name too long") ended the command in a traceback after
    its work, for a name the file system takes."""
    name = "a" * (os.pathconf(scratch, "PC_NAME_MAX") - 4) + ".png"
    res = runner.invoke(app, ["evaluate", "--model", MODEL, "--precision", "int8", "--plot", name])
    assert res.exit_code == 0, res.output
    assert (scratch / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("command", [["evaluate", "--model", MODEL, "--plot"], ["sweep", "--model", MODEL, "--out"]])
def test_a_name_longer_than_the_file_system_takes_is_refused_by_flag(scratch, command):
    """Before: OSError "File name too long" from looking at the path, as a traceback."""
    name = "b" * (os.pathconf(scratch, "PC_NAME_MAX") + 1) + ".png"
    _refused(runner.invoke(app, [*command, name]), command[-1], "a name in it is longer than the file system allows")
