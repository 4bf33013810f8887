"""The sharded sweep on four CPU host devices equals the single-device sweep, bit for bit.

XLA's device count is fixed when JAX starts, so the comparison runs in a fresh interpreter with
``--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cimjax.hardware.config import PAPER_SPACE, DesignSpace
from cimjax.hardware.technology import default_technology
from cimjax.search.distributed import PartialSweep, load_partial, merge_partials, process_index_range
from cimjax.search.exhaustive import sweep
from cimjax.workload.models import get_model
from cimjax.workload.precision import preset

CACHE = """
import jax
from cimjax.cache import cache_dir
jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
"""

SCRIPT = CACHE + textwrap.dedent(
    """
    import numpy as np

    from cimjax.hardware.config import PAPER_SPACE, DesignSpace
    from cimjax.hardware.technology import default_technology
    from cimjax.search.distributed import merge_partials, process_index_range, sharded_sweep, sweep_range
    from cimjax.search.exhaustive import sweep
    from cimjax.workload.models import get_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    assert len(jax.devices()) == 4, jax.devices()
    space = DesignSpace({name: values[:3] for name, values in PAPER_SPACE.values.items()})  # 3^9 = 19,683
    spec = get_model("qwen3-0.6b")
    args = (spec, preset("int4", spec.n_layers), Workload(prefill=37, generate=5, attention_block=16))
    args += (default_technology(), space)
    single = sweep(*args, chunk=512)
    sharded = sharded_sweep(*args, chunk_per_device=512)  # 2,048 designs per step, last step partly past the end
    # Three "hosts", each sweeping its share on all four devices, merged afterwards.
    parts = [sweep_range(*args, *process_index_range(space.size, i, 3), chunk_per_device=512) for i in range(3)]
    merged = merge_partials(space, parts)
    for name in ("latency_s", "energy_j", "area_mm2"):
        reference = getattr(single, name)
        assert np.isfinite(reference).all() and reference.min() > 0, name
        assert np.array_equal(getattr(sharded, name), reference), name
        assert np.array_equal(getattr(merged, name), reference), name
    assert sharded.best(0.5) == single.best(0.5)
    assert np.array_equal(sharded.pareto_indices(), single.pareto_indices())
    print("OK", space.size)
    """
)


HOST_SCRIPT = (
    textwrap.dedent(
        """
    import sys
    import jax

    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    """
    )
    + CACHE
    + textwrap.dedent(
        """
    from cimjax.hardware.config import PAPER_SPACE, DesignSpace
    from cimjax.hardware.technology import default_technology
    from cimjax.search.distributed import host_sweep
    from cimjax.workload.models import get_model
    from cimjax.workload.operators import Workload
    from cimjax.workload.precision import preset

    assert jax.process_count() == 2 and len(jax.local_devices()) == 2 and len(jax.devices()) == 4
    space = DesignSpace({name: values[:3] for name, values in PAPER_SPACE.values.items()})
    spec = get_model("qwen3-0.6b")
    workload = Workload(prefill=37, generate=5, attention_block=16)
    part = host_sweep(spec, preset("int4", spec.n_layers), workload, default_technology(), space, chunk_per_device=512)
    part.save(f"{sys.argv[3]}/part-{jax.process_index()}.npz")
    """
    )
)


def _env(devices: int) -> dict:
    return os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


def test_sharded_sweep_on_four_host_devices_equals_single_device(tmp_path):
    """Run twice on one fresh cache: the second process must not load an executable kept on disk by the first
    (with several devices it expects one shard per device and refused the single-device sweep's arguments)."""
    env = _env(4) | {"CIMJAX_CACHE": str(tmp_path)}
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "OK 19683" in proc.stdout


def test_two_process_jax_distributed_sweep_merges_to_single_device(tmp_path, small_workload):
    """Two processes of two CPU devices each, joined by jax.distributed on localhost, then merged here."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOST_SCRIPT, address, str(i), str(tmp_path)],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output

    space = DesignSpace({name: values[:3] for name, values in PAPER_SPACE.values.items()})
    merged = merge_partials(space, [load_partial(tmp_path / f"part-{i}.npz") for i in range(2)])
    spec = get_model("qwen3-0.6b")
    single = sweep(spec, preset("int4", spec.n_layers), small_workload, default_technology(), space, chunk=512)
    for name in ("latency_s", "energy_j", "area_mm2"):
        assert np.array_equal(getattr(merged, name), getattr(single, name)), name


@pytest.mark.parametrize("count", [1, 3, 7])
def test_process_ranges_tile_the_space(count):
    ranges = [process_index_range(100, i, count) for i in range(count)]
    assert ranges[0][0] == 0 and ranges[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


def test_process_range_rejects_bad_index():
    with pytest.raises(ValueError, match="process index 3"):
        process_index_range(100, 3, 3)


def _part(start, stop):
    values = np.arange(start, stop, dtype=np.float64) + 1.0
    return PartialSweep(start, stop, values, 2 * values, 3 * values, compile_s=1.0, wall_s=float(stop))


def test_partials_round_trip_and_merge_in_any_order(tmp_path):
    space = DesignSpace({name: values[:2] for name, values in PAPER_SPACE.values.items()})  # 512 designs
    paths = []
    for i, (start, stop) in enumerate([(300, 512), (0, 100), (100, 300)]):
        paths.append(tmp_path / f"part-{i}.npz")
        _part(start, stop).save(paths[-1])
    merged = merge_partials(space, [load_partial(p) for p in paths])
    assert np.array_equal(merged.latency_s, np.arange(512) + 1.0)
    assert np.array_equal(merged.area_mm2, 3 * (np.arange(512) + 1.0))
    assert merged.wall_s == 512.0


def test_merge_rejects_gaps_and_short_coverage():
    space = DesignSpace({name: values[:2] for name, values in PAPER_SPACE.values.items()})
    with pytest.raises(ValueError, match="gap or overlap at design index 100"):
        merge_partials(space, [_part(0, 100), _part(150, 512)])
    with pytest.raises(ValueError, match=r"cover designs \[0, 300\)"):
        merge_partials(space, [_part(0, 300)])


def test_load_partial_reports_unreadable_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not an npz")
    with pytest.raises(ValueError, match="cannot read partial sweep"):
        load_partial(bad)


@pytest.mark.parametrize("damage", ["text", "truncated", "empty", "missing key"])
def test_load_partial_names_a_damaged_file(tmp_path, damage):
    path = tmp_path / "part.npz"
    _part(0, 100).save(path)
    whole = path.read_bytes()
    if damage == "missing key":
        np.savez(path, range=np.asarray([0, 100]))
    else:
        path.write_bytes({"text": b"not an npz", "truncated": whole[: len(whole) // 2], "empty": b""}[damage])
    with pytest.raises(ValueError, match=f"cannot read partial sweep {path}"):
        load_partial(path)


def test_a_save_stopped_midway_leaves_the_previous_share_whole(tmp_path, monkeypatch):
    """Saving writes a temporary file and renames it: a save interrupted after half its bytes leaves the share
    saved before untouched and no stray file; a name without .npz gets it, as np.savez gives it."""
    path = tmp_path / "part.npz"
    _part(0, 100).save(path)

    def half_then_interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(np, "savez", half_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            _part(0, 200).save(path)
    assert load_partial(path).stop == 100 and list(tmp_path.iterdir()) == [path]
    _part(0, 50).save(tmp_path / "named")
    assert load_partial(tmp_path / "named.npz").stop == 50
