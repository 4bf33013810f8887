"""``cimjax cache info`` and ``cimjax cache clear`` on a scratch cache of hand-made files of known size and age."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cimjax.cli.main import app

runner = CliRunner()
DAY = 86_400


def _file(path, size: int, age_days: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_days * DAY
    os.utime(path, (when, when))


@pytest.fixture
def cache(tmp_path):
    """proxy-lm: 2 files, 1,000 + 2,000 bytes; gptq: 3 files, 500,000 bytes each, 10, 10 and 1 day old;
    pairs: 1 file of 7 bytes; xla: 1 file of 1,000,000 bytes, 40 days old."""
    root = tmp_path / "cache"
    _file(root / "proxy-lm" / "run" / "params.msgpack", 1_000)
    _file(root / "proxy-lm" / "run" / "config.json", 2_000)
    for name, age in (("a.npz", 10), ("b.npz", 10), ("c.npz", 1)):
        _file(root / "gptq" / name, 500_000, age)
    _file(root / "pairs" / "p.npz", 7)
    _file(root / "xla" / "deep" / "er" / "prog", 1_000_000, 40)
    return root


def _cimjax(root, *args):
    return runner.invoke(app, list(args), env={"CIMJAX_CACHE": str(root)})


def _names(root) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_info_counts_files_and_sizes_per_entry(cache):
    result = _cimjax(cache, "cache", "info", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cache_dir"] == str(cache) and report["exists"]
    rows = {e["name"]: (e["files"], e["bytes"], e["mb"]) for e in report["entries"]}
    assert rows == {
        "gptq": (3, 1_500_000, 1.5),
        "pairs": (1, 7, 0.0),
        "proxy-lm": (2, 3_000, 0.003),
        "xla": (1, 1_000_000, 1.0),
    }
    assert report["total"] == {"files": 7, "bytes": 2_503_007, "mb": 2.503}
    table = _cimjax(cache, "cache", "info").stdout
    assert str(cache) in table and "1.500 MB" in table and "2.503 MB" in table


def test_info_of_a_missing_cache_is_an_empty_listing(tmp_path):
    result = _cimjax(tmp_path / "absent", "cache", "info", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entries"] == [] and not report["exists"] and report["total"]["files"] == 0
    assert not (tmp_path / "absent").exists()  # looking does not create it


def test_dry_run_deletes_nothing(cache):
    before = json.loads(_cimjax(cache, "cache", "info", "--json").stdout)
    result = _cimjax(cache, "cache", "clear", "all")
    assert result.exit_code == 0, result.output
    assert "would delete 3 files (1.500 MB) of gptq" in result.stdout and "--yes" in result.stdout
    assert json.loads(_cimjax(cache, "cache", "info", "--json").stdout) == before


def test_yes_deletes_exactly_the_named_entries(cache):
    result = _cimjax(cache, "cache", "clear", "gptq", "pairs", "--yes")
    assert result.exit_code == 0, result.output
    assert _names(cache) == ["proxy-lm", "xla"]
    assert (cache / "xla" / "deep" / "er" / "prog").stat().st_size == 1_000_000


def test_all_keeps_the_trained_lms_unless_named(cache):
    assert _cimjax(cache, "cache", "clear", "all", "--yes").exit_code == 0
    assert _names(cache) == ["proxy-lm"] and len(list((cache / "proxy-lm" / "run").iterdir())) == 2
    assert _cimjax(cache, "cache", "clear", "proxy-lm", "--yes").exit_code == 0
    assert _names(cache) == []


def test_older_than_keeps_newer_files(cache):
    result = _cimjax(cache, "cache", "clear", "all", "--older-than", "5", "--yes")
    assert result.exit_code == 0, result.output
    assert "deleted 2 files (1.000 MB) of gptq" in result.stdout
    assert [p.name for p in (cache / "gptq").iterdir()] == ["c.npz"]  # 1 day old: kept
    assert (cache / "pairs" / "p.npz").exists()  # new: kept
    assert _names(cache) == ["gptq", "pairs", "proxy-lm"]  # xla's only file was 40 days old: emptied, removed


def test_a_linked_file_is_removed_not_its_target(cache, tmp_path):
    outside = tmp_path / "precious.bin"
    _file(outside, 11)
    os.symlink(outside, cache / "pairs" / "link")
    assert _cimjax(cache, "cache", "clear", "pairs", "--yes").exit_code == 0
    assert outside.read_bytes() == b"x" * 11 and "pairs" not in _names(cache)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["unknown"], "KIND = 'unknown'"),
        (["../x"], "KIND = '../x'"),
        (["gptq/../pairs"], "KIND = 'gptq/../pairs'"),
        (["outside"], "KIND = 'outside'"),  # a link out of the cache
        (["gptq", "--older-than", "-1"], "--older-than = -1.0"),
    ],
)
def test_refusals_are_one_line_with_status_2(cache, tmp_path, args, named):
    elsewhere = tmp_path / "elsewhere"
    _file(elsewhere / "keep.bin", 5)
    os.symlink(elsewhere, cache / "outside")
    result = _cimjax(cache, "cache", "clear", *args, "--yes")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and named in result.stderr, result.stderr
    assert _names(cache) == ["gptq", "outside", "pairs", "proxy-lm", "xla"] and (elsewhere / "keep.bin").exists()


def test_clear_that_cannot_delete_a_file_says_which_in_one_line(tmp_path, monkeypatch):
    from cimjax import cache_admin

    (tmp_path / "gptq").mkdir()
    locked = tmp_path / "gptq" / "a.npz"
    locked.write_bytes(b"x")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(cache_admin.InputError, match=r"KIND = 'gptq': could not delete .*a\.npz: Permission denied"):
        cache_admin.clear(tmp_path, cache_admin.plan(tmp_path, ["gptq"]))
