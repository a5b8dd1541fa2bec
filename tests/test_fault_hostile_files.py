"""Hostile checkpoint files (issue 19, item 8): every one raises CheckpointError naming
the problem, quickly, without blocking, and after allocating at most a small multiple
of the file's own size; metadata round-trips exactly or is refused at save."""

from __future__ import annotations

import io
import json
import os
import pathlib
import struct
import threading
import tracemalloc
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest

import fnopt
from fnopt.checkpoint import CheckpointError

MiB = 1 << 20


# -- crafting files ------------------------------------------------------------------


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_header(n: int) -> bytes:
    """The .npy header of a uint8 vector of ``n`` elements (its data to follow)."""
    return _npy(np.zeros(n, np.uint8))[: -n or None]


def _local(name: str, data: bytes) -> bytes:
    raw = name.encode()
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data),
                       len(data), len(data), len(raw), 0) + raw


def _central(name: str, data: bytes, offset: int) -> bytes:
    raw = name.encode()
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21,
                       zlib.crc32(data), len(data), len(data), len(raw), 0, 0, 0, 0, 0,
                       offset) + raw


def _raw_zip(body: bytes, entries: list[tuple[str, bytes, int]]) -> bytes:
    """``body`` (local headers and data, laid out by the caller) and a central
    directory of ``entries`` ``(name, data, local header offset)``."""
    cd = b"".join(_central(n, d, o) for n, d, o in entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(cd),
                      len(body), 0)
    return body + cd + end


def _header(records: list[dict[str, Any]], params: Any, **extra: Any) -> bytes:
    h = {"format": "fnopt-checkpoint", "version": 1, "fnopt_version": "0.1.0",
         "backend": "numpy", "iteration": None, "metadata": {}, "params": params,
         "state": {"t": "none"}, "arrays": records}
    h.update(extra)
    return json.dumps(h).encode()


def _array_nodes(n: int) -> dict[str, Any]:
    return {"t": "list", "c": [{"t": "array", "i": i} for i in range(n)]}


def _overlapping(tmp_path: pathlib.Path, k: int = 24, tail: int = 40_000) -> pathlib.Path:
    """``k`` members nested inside one another: member ``j``'s data is a .npy header
    followed by member ``j+1``'s local header and data, so the arrays together declare
    about ``k/2`` times the file's size (quadratic in ``k``)."""
    blob, sizes = b"\0" * tail, []
    for j in reversed(range(k)):
        data = _npy_header(len(blob)) + blob
        sizes.append(len(blob))
        blob = _local(f"arrays/{j}.npy", data) + data if j else data
    sizes.reverse()
    records = [{"kind": "numpy", "dtype": "|u1", "shape": [n]} for n in sizes]
    head = _header(records, _array_nodes(k))
    body = _local("fnopt-checkpoint.json", head) + head
    entries = [("fnopt-checkpoint.json", head, 0)]
    # walk the nesting again for each member's local header offset and data
    pos, data = len(body), blob
    body += _local("arrays/0.npy", blob) + blob
    for j in range(k):
        entries.append((f"arrays/{j}.npy", data, pos))
        if j + 1 < k:
            start = pos + 30 + len(f"arrays/{j}.npy") + len(_npy_header(sizes[j]))
            inner = data[len(_npy_header(sizes[j])) + 30 + len(f"arrays/{j + 1}.npy"):]
            pos, data = start, inner
    f = tmp_path / "overlap.npz"
    f.write_bytes(_raw_zip(body, entries))
    return f


def _zip(path: pathlib.Path, head: bytes, members: list[tuple[str, bytes]]) -> pathlib.Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("fnopt-checkpoint.json", head)
        for name, data in members:
            zf.writestr(name, data)
    return path


def _good_header(**extra: Any) -> bytes:
    rec = {"kind": "numpy", "dtype": "<f8", "shape": [3]}
    return _header([rec], {"t": "dict", "k": [{"t": "str", "v": "w"}],
                           "c": [{"t": "array", "i": 0}]}, **extra)


def _load_measured(path: pathlib.Path) -> tuple[CheckpointError, int]:
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            fnopt.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    return info.value, peak


# -- amplification: refused before the memory is taken ---------------------------------


def test_overlapping_members_are_refused(tmp_path):
    f = _overlapping(tmp_path)
    size = f.stat().st_size
    with zipfile.ZipFile(f) as zf:  # the crafted file really declares ~k/2 times its size
        declared = sum(i.file_size for i in zf.infolist())
    assert declared > 8 * size
    err, peak = _load_measured(f)
    assert "overlap" in str(err).lower()
    assert peak < 2 * size + MiB, (peak, size)


def test_member_overlapping_the_central_directory_is_refused(tmp_path):
    arr = _npy(np.ones(3))
    head = _good_header()
    body = _local("fnopt-checkpoint.json", head) + head
    at = len(body)
    body += _local("arrays/0.npy", arr) + arr
    # the directory declares the member 40 bytes longer: it runs into the directory
    f = tmp_path / "into_cd.npz"
    f.write_bytes(_raw_zip(body, [("fnopt-checkpoint.json", head, 0),
                                  ("arrays/0.npy", arr + b"\0" * 40, at)]))
    err, _ = _load_measured(f)
    assert "overlaps the central directory" in str(err)


def test_two_entries_for_one_member_are_refused(tmp_path):
    err, _ = _load_measured(_two_names_one_member(tmp_path))
    assert "overlap" in str(err).lower()


def _two_names_one_member(tmp_path: pathlib.Path) -> pathlib.Path:
    """Two directory entries that point at the same local header."""
    arr = _npy(np.ones(3))
    head = _header([{"kind": "numpy", "dtype": "<f8", "shape": [3]}] * 2, _array_nodes(2))
    body = _local("fnopt-checkpoint.json", head) + head
    at = len(body)
    body += _local("arrays/0.npy", arr) + arr
    f = tmp_path / "twice.npz"
    f.write_bytes(_raw_zip(body, [("fnopt-checkpoint.json", head, 0),
                                  ("arrays/0.npy", arr, at), ("arrays/1.npy", arr, at)]))
    return f


def test_huge_json_metadata_is_refused_before_parsing(tmp_path):
    head = _good_header(metadata={"x": [{}] * 600_000})
    f = _zip(tmp_path / "meta.npz", head, [("arrays/0.npy", _npy(np.ones(3)))])
    size = f.stat().st_size
    assert size > 2 * MiB
    err, peak = _load_measured(f)
    assert "memory" in str(err)
    assert peak < 4 * size, (peak, size)


def test_deeply_nested_json_is_refused(tmp_path):
    head = _good_header().replace(b'"metadata": {}', b'"metadata": ' + b"[" * 200_000
                                  + b"]" * 200_000)
    f = _zip(tmp_path / "deep.npz", head, [("arrays/0.npy", _npy(np.ones(3)))])
    _load_measured(f)


def test_many_tiny_arrays_are_refused_before_reading(tmp_path):
    n = 6_000
    tiny = _npy(np.zeros((), np.uint8))
    head = _header([{"kind": "numpy", "dtype": "|u1", "shape": []}] * n, _array_nodes(n))
    f = _zip(tmp_path / "tiny.npz", head, [(f"arrays/{i}.npy", tiny) for i in range(n)])
    size = f.stat().st_size
    err, peak = _load_measured(f)
    assert "memory" in str(err)
    assert peak < 4 * size, (peak, size)


def test_many_stray_entries_are_refused_before_zipfile_parses_them(tmp_path):
    head = _good_header()
    arr = _npy(np.ones(3))
    body = _local("fnopt-checkpoint.json", head) + head
    entries = [("fnopt-checkpoint.json", head, 0), ("arrays/0.npy", arr, len(body))]
    body += _local("arrays/0.npy", arr) + arr
    parts = [body]
    pos = len(body)
    for i in range(40_000):  # empty members: a local header and a directory record each
        name = f"{i:05d}"
        entries.append((name, b"", pos))
        parts.append(_local(name, b""))
        pos += len(parts[-1])
    f = tmp_path / "stray.npz"
    f.write_bytes(_raw_zip(b"".join(parts), entries))
    size = f.stat().st_size
    err, peak = _load_measured(f)
    assert "ZIP directory" in str(err)
    assert peak < size, (peak, size)


def test_a_few_stray_entries_are_named(tmp_path):
    f = _zip(tmp_path / "stray.npz", _good_header(),
             [("arrays/0.npy", _npy(np.ones(3))), ("evil.txt", b"x")])
    err, _ = _load_measured(f)
    assert "evil.txt" in str(err)


def test_legitimate_checkpoint_of_many_small_leaves_loads_within_the_bound(tmp_path):
    params = [np.full(3, float(i)) for i in range(1_000)]
    f = fnopt.save(tmp_path / "many.npz", params, [np.float64(i) for i in range(200)])
    size = f.stat().st_size
    tracemalloc.start()
    try:
        ck = fnopt.load(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all((a == b).all() for a, b in zip(ck.params, params))
    assert peak < 4 * size + 4 * MiB


def test_save_refuses_a_checkpoint_load_would_refuse(tmp_path):
    p = {"w": np.ones(3)}
    f = fnopt.save(tmp_path / "ck.npz", p, None, iteration=1)
    before = f.read_bytes()
    with pytest.raises(ValueError, match="memory to load"):
        fnopt.save(f, p, list(range(100_000)))
    assert f.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left


# -- files that are not files ----------------------------------------------------------


def test_dev_zero_is_refused_without_reading(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(CheckpointError, match="not a regular file"):
        fnopt.load("/dev/zero")


def test_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="directory"):
        fnopt.load(tmp_path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fnopt.load(tmp_path / "absent.npz")


def test_symlink_to_a_checkpoint_loads(tmp_path):
    f = fnopt.save(tmp_path / "ck.npz", {"w": np.ones(2)})
    link = tmp_path / "link.npz"
    link.symlink_to(f)
    assert (fnopt.load(link).params["w"] == 1).all()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome: list[BaseException | str] = []

    def target() -> None:
        try:
            fnopt.load(fifo)
            outcome.append("loaded")
        except BaseException as exc:  # reported below
            outcome.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the blocked open so the suite goes on, then fail
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(5)
        pytest.fail("load blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointError), outcome
    assert "FIFO" in str(outcome[0])


# -- values out of range, devices --------------------------------------------------------


@pytest.mark.parametrize("where", ["state", "key"])
def test_float_out_of_range_is_a_checkpoint_error(tmp_path, where):
    big = {"t": "float", "v": "0x1p+1024"}
    if where == "state":
        head = _good_header(state=big)
    else:
        head = _good_header(state={"t": "dict", "k": [big], "c": [{"t": "none"}]})
    f = _zip(tmp_path / "float.npz", head, [("arrays/0.npy", _npy(np.ones(3)))])
    err, _ = _load_measured(f)
    assert "0x1p+1024" in str(err) or "too large" in str(err)


def _torch_file(tmp_path: pathlib.Path, device: str) -> pathlib.Path:
    rec = {"kind": "torch", "dtype": "float32", "shape": [3], "device": device,
           "requires_grad": False}
    head = _header([rec], {"t": "array", "i": 0}, backend="torch")
    return _zip(tmp_path / "dev.npz", head, [("arrays/0.npy",
                                             _npy(np.ones(3, np.float32)))])


@pytest.mark.parametrize("device", ["hpu", "xla:0", "hpu:3"])
def test_unusable_recorded_device_is_a_checkpoint_error(tmp_path, device):
    pytest.importorskip("torch")
    f = _torch_file(tmp_path, device)
    err, _ = _load_measured(f)
    assert device.split(":")[0] in str(err)
    ck = fnopt.load(f, device="cpu")  # the way out the message names
    assert ck.params.device.type == "cpu"


@pytest.mark.parametrize("device", ["hpu", "xla:0"])
def test_unusable_device_argument_is_a_checkpoint_error_naming_device(tmp_path, device):
    pytest.importorskip("torch")
    f = _torch_file(tmp_path, "cpu")
    with pytest.raises(CheckpointError, match=r"^device: cannot put tensors on") as info:
        fnopt.load(f, device=device)
    assert isinstance(info.value, ValueError)


def test_unknown_device_argument_is_a_value_error(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="device: expected a torch device"):
        fnopt.load(_torch_file(tmp_path, "cpu"), device="no_such_device")


# -- metadata round-trips exactly, or save refuses it --------------------------------------


@pytest.mark.parametrize("meta, path", [
    ({1: "a"}, "metadata"),
    ({True: "a"}, "metadata"),
    ({None: "a"}, "metadata"),
    ({1.5: "a"}, "metadata"),
    ({"a": (1, 2)}, "metadata['a']"),
    ({"a": [{"b": {2: 0}}]}, "metadata['a'][0]['b']"),
    ({"a": {"b": [0, (1,)]}}, "metadata['a']['b'][1]"),
])
def test_metadata_that_would_change_is_refused_at_save(tmp_path, meta, path):
    f = tmp_path / "m.npz"
    with pytest.raises(ValueError) as info:
        fnopt.save(f, {"w": np.ones(2)}, metadata=meta)
    assert str(info.value).startswith(path + ":"), str(info.value)
    assert not f.exists()


def test_metadata_round_trips_exactly(tmp_path):
    meta = {"a": [1, 2.5, -0.0, None, True, "é", 10**30], "b": {"c": {"d": []}},
            "inf": float("inf"), "": ""}
    ck = fnopt.load(fnopt.save(tmp_path / "m.npz", {"w": np.ones(2)}, metadata=meta))
    assert ck.metadata == meta
    assert json.dumps(ck.metadata) == json.dumps(meta)  # order and types too
    assert type(ck.metadata["a"]) is list and type(ck.metadata["a"][6]) is int


# -- any damage: CheckpointError or a correct load, nothing else --------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_random_byte_damage_raises_only_checkpoint_error(tmp_path, backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
        params = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2)}
    else:
        params = {"w": np.arange(6.0).reshape(2, 3), "b": np.zeros(2, np.float32)}
    opt = fnopt.adam(0.1)
    good = fnopt.save(tmp_path / "good.npz", params, opt.init(params), iteration=3,
                      metadata={"k": [1.5, None]})
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npz"
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(150):
        mutated = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            mutated[at] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(mutated))
        try:
            fnopt.load(bad)
            outcomes["loaded"] += 1  # e.g. a flipped byte in a name's padding
        except CheckpointError as exc:
            assert str(bad) in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100, outcomes


# -- the estimate load checks is an upper bound of what loading takes ---------------------


_SHAPES = {
    "0-d arrays": lambda n: ([np.array(float(i)) for i in range(n)], None, None),
    "python ints": lambda n: ({"w": np.ones(3)}, list(range(n)), None),
    "python floats": lambda n: ({"w": np.ones(3)}, [i * 1.1 for i in range(n)], None),
    "nested tuples": lambda n: ({"w": np.ones(3)}, [((),) for _ in range(n)], None),
    "metadata dicts": lambda n: ({"w": np.ones(3)}, None, {"h": [{} for _ in range(n)]}),
    "metadata lists": lambda n: ({"w": np.ones(3)}, None, {"h": [[[]] for _ in range(n)]}),
    "metadata keys": lambda n: ({"w": np.ones(3)}, None, {str(i): i for i in range(n)}),
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_the_memory_estimate_bounds_the_real_peak(tmp_path, monkeypatch, shape):
    """load refuses a file when its estimate exceeds 4x size + 4 MiB, so the estimate
    must never be below what loading really allocates (tracemalloc's peak)."""
    from fnopt import checkpoint as ck

    monkeypatch.setattr(ck, "_BUDGET_FACTOR", 1000)  # let save and load accept anything
    params, state, meta = _SHAPES[shape](3000)
    f = fnopt.save(tmp_path / "x.npz", params, state, metadata=meta)
    size = f.stat().st_size
    with zipfile.ZipFile(f) as zf:
        text = zf.read("fnopt-checkpoint.json")
        infos = {i.filename: i for i in zf.infolist()}
    with open(f, "rb") as fh:
        estimate = max(ck._members_cost(text, infos), ck._directory_cost(fh, size))
    tracemalloc.start()
    try:
        fnopt.load(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= estimate, (shape, peak, estimate)
