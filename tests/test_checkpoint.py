"""fnopt.save / fnopt.load / to_numpy / to_torch, and checkpoint + resume in fixed_point."""

from __future__ import annotations

import json
import math
import os
import pathlib
import random
import re
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from typing import Any, NamedTuple

import attrs
import numpy as np
import optree
import pytest
import torch
from hypothesis import given

import fnopt
from fnopt import checkpoint as fc
from fnopt import testing as ft
from fnopt.checkpoint import CheckpointError, check_saveable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class UserState(NamedTuple):
    count: int
    value: Any
    extra: Any


@attrs.frozen
class AttrsState:
    count: int
    buf: Any
    _private: float = 0.0


def assert_identical(a: Any, b: Any) -> None:
    """Same types everywhere (NamedTuple classes included) and bitwise-equal arrays."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
        assert a.requires_grad == b.requires_grad
        assert _tensor_bytes(a) == _tensor_bytes(b)
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_identical(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_identical(x, y)
    elif attrs.has(type(a)):
        for f in attrs.fields(type(a)):
            assert_identical(getattr(a, f.name), getattr(b, f.name))
    else:
        assert a == b


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def _np_params() -> Any:
    return {"w": np.arange(6.0).reshape(3, 2), "b": np.array([0.5, -1.5])}


def _adam_state(params: Any) -> Any:
    opt = fnopt.adam(1e-2)
    # a quadratic of the params' dtype (its gradients must have the params' dtypes)
    q = ft.make_quadratic(params, dtype=str(next(iter(params.values())).dtype))
    p, s = params, opt.init(params)
    for _ in range(3):
        p, s = opt.step(p, q.grad_fn, s)
    return p, s


STATES = {
    "sgd_momentum": lambda p: fnopt.sgd(0.1, momentum=0.9).init(p),
    "adam_after_steps": lambda p: _adam_state(p)[1],
    "python_scalars": lambda p: (1, 2.5, float("nan"), float("-inf"), True, None, "text"),
    "numpy_scalars": lambda p: [np.float64(1.25), np.float32(-0.0), np.int64(7)],
    "int_and_mixed_keys": lambda p: {3: p, "a": [None, ()], 2.5: {}},
    "empty_containers": lambda p: ((), [], {}),
}


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("state_name", sorted(STATES))
def test_round_trip_restores_types_and_bits(tmp_path, backend, dtype, state_name):
    params = {k: v.astype(dtype) for k, v in _np_params().items()}
    state = STATES[state_name](params)
    if backend == "torch":
        params, state = fnopt.to_torch(params), fnopt.to_torch(state)
    path = fnopt.save(tmp_path / "ck.npz", params, state, iteration=12, metadata={"a": [1, 2]})
    ck = fnopt.load(path)
    assert isinstance(ck, fnopt.Checkpoint)
    assert_identical(ck.params, params)
    assert_identical(ck.state, state)
    assert ck.iteration == 12 and ck.metadata == {"a": [1, 2]}


def test_torch_extras_round_trip(tmp_path):
    params = [torch.tensor([1.0, 2.0], requires_grad=True)]
    state = {"bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
             "view": torch.arange(6.0).reshape(2, 3).t(),  # non-contiguous
             "int": torch.tensor(3)}
    ck = fnopt.load(fnopt.save(tmp_path / "t.npz", params, state))
    assert ck.params[0].requires_grad and ck.params[0].dtype == torch.float32
    assert ck.state["bf16"].dtype == torch.bfloat16
    assert torch.equal(ck.state["bf16"].float(), state["bf16"].float())
    assert torch.equal(ck.state["view"], state["view"])
    assert ck.state["int"].dtype == torch.int64


def test_user_types_need_an_allow_list(tmp_path):
    p = _np_params()
    state = (UserState(1, np.float64(2.0), None), AttrsState(2, np.ones(2), 0.5))
    path = fnopt.save(tmp_path / "u.npz", p, state)
    with pytest.raises(CheckpointError, match=r"UserState.*types="):
        fnopt.load(path)
    ck = fnopt.load(path, types=[UserState, AttrsState])
    assert_identical(ck.state, state)
    # state_like provides the classes too
    ck2 = fnopt.load(path, state_like=state)
    assert_identical(ck2.state, state)


def test_changed_fields_are_reported(tmp_path):
    path = fnopt.save(tmp_path / "f.npz", _np_params(), UserState(1, 2.0, 3))

    class UserState2(NamedTuple):  # same name, different fields
        count: int
        other: Any

    UserState2.__qualname__ = UserState.__qualname__
    UserState2.__module__ = UserState.__module__
    with pytest.raises(CheckpointError, match=r"fields \['count', 'other'\].*\['count', 'value'"):
        fnopt.load(path, types=[UserState2])


@pytest.mark.parametrize("module,name,pattern", [
    ("os", "system", "not importable from fnopt"),
    ("fnopt.__main__", "main", "not importable from fnopt"),
    ("fnopt", "__class__", "not importable from fnopt"),
    ("fnopt.checkpoint", "pathlib.PurePath", "not a class of fnopt"),  # reachable, not ours
    ("fnopt.checkpoint", "save", "not a class of fnopt"),
    ("fnopt.nope", "DescentState", "no longer exists"),
    ("fnopt.transforms.scaling", "TraceState", "fields"),  # a real class with other fields
])
def test_only_fnopt_classes_are_imported(tmp_path, module, name, pattern):
    path = fnopt.save(tmp_path / "x.npz", _np_params(), fnopt.sgd(0.1).init(_np_params()))
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("fnopt-checkpoint.json"))
        arrays = {n: zf.read(n) for n in zf.namelist() if n.startswith("arrays/")}
    header["state"]["module"] = module
    header["state"]["name"] = name
    bad = tmp_path / "evil.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("fnopt-checkpoint.json", json.dumps(header))
        for n, data in arrays.items():
            zf.writestr(n, data)
    with pytest.raises(CheckpointError, match=pattern):
        fnopt.load(bad)


@pytest.mark.parametrize("name", ["sgd", "adam", "lbfgs", "bfgs", "nonlinear_cg"])
def test_a_later_state_matches_its_init_state(tmp_path, name):
    opt = getattr(fnopt, name)()
    task = fnopt.tasks.rosenbrock()
    r = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(4))
    path = fnopt.save(tmp_path / "s.npz", r.params, r.state, iteration=4)
    ck = fnopt.load(path, params_like=task.init_params,
                    state_like=opt.init(task.init_params))
    assert_identical(ck.state, r.state)


def test_a_none_in_the_init_state_matches_only_none(tmp_path):
    # init states have the structure of later ones, so neither load(state_like=) nor
    # fixed_point(state=) lets an array stand where the init state has None
    p = np.ones(3)
    other = fnopt.adam(0.1, amsgrad=True).init(p)  # an array where adam() keeps None
    path = fnopt.save(tmp_path / "a.npz", p, other)
    with pytest.raises(CheckpointError, match=r"state_like: .*expected \('NoneType',\)"):
        fnopt.load(path, state_like=fnopt.adam(0.1).init(p))
    with pytest.raises(ValueError, match="state: expected None, got ndarray"):
        fnopt.fixed_point(fnopt.adam(0.1), p, lambda x: (0.5 * x @ x, x), state=other,
                          stop=fnopt.stop.max_iters(1))


def test_like_mismatch_names_the_leaf(tmp_path):
    p = _np_params()
    opt = fnopt.sgd(0.1, momentum=0.9)
    path = fnopt.save(tmp_path / "m.npz", p, opt.init(p))
    fnopt.load(path, params_like=p, state_like=opt.init(p))  # matches
    with pytest.raises(CheckpointError, match=r"params leaf \['w'\].*\(3, 2\).*\(2, 2\)"):
        fnopt.load(path, params_like={"w": np.zeros((2, 2)), "b": np.zeros(2)})
    with pytest.raises(CheckpointError,
                       match=r"state_like: \.inner\[0\] is a TraceState, expected a Scale"):
        fnopt.load(path, state_like=fnopt.adam(0.1).init(p))
    with pytest.raises(CheckpointError, match=r"state_like: \.inner\[0\]\.trace\['w'\] is"):
        fnopt.load(path, state_like=opt.init({"w": np.zeros(3), "b": np.zeros(2)}))
    with pytest.raises(CheckpointError, match="float32"):
        fnopt.load(path, params_like={k: v.astype("float32") for k, v in p.items()})


# -- corrupt, truncated, foreign files ---------------------------------------------------


@pytest.fixture
def good(tmp_path):
    p = {"w": np.linspace(0.0, 1.0, 200)}
    return fnopt.save(tmp_path / "good.npz", p, fnopt.sgd(0.1, momentum=0.5).init(p))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


CORRUPTIONS = {
    "truncated_half": (lambda b: b[: len(b) // 2], "truncated or corrupt"),
    "truncated_tail": (lambda b: b[:-10], "truncated or corrupt"),
    "empty_file": (lambda b: b"", "truncated or corrupt"),
    "garbage": (lambda b: bytes(range(256)) * 4, "truncated or corrupt"),
    "flipped_array_byte": (
        lambda b: b[: b.rfind(b"\x00\x00\xf0?")] + b"\x01" + b[b.rfind(b"\x00\x00\xf0?") + 1:],
        "CRC|corrupt",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_files_give_a_clear_error(good, tmp_path, case):
    mangle, pattern = CORRUPTIONS[case]
    bad = _write(tmp_path / f"{case}.npz", mangle(good.read_bytes()))
    with pytest.raises(CheckpointError, match=pattern) as info:
        fnopt.load(bad)
    assert str(bad) in str(info.value)


def test_foreign_and_future_files(good, tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(CheckpointError, match="not a fnopt checkpoint"):
        fnopt.load(tmp_path / "plain.npz")
    with zipfile.ZipFile(good) as zf:
        header = json.loads(zf.read("fnopt-checkpoint.json"))
        members = {n: zf.read(n) for n in zf.namelist() if n != "fnopt-checkpoint.json"}
    header["version"] = 99
    future = tmp_path / "future.npz"
    with zipfile.ZipFile(future, "w") as zf:
        zf.writestr("fnopt-checkpoint.json", json.dumps(header))
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(CheckpointError, match=r"format version 99.*up to 1"):
        fnopt.load(future)
    # an array member missing from an otherwise intact archive
    header["version"] = 1
    partial = tmp_path / "partial.npz"
    with zipfile.ZipFile(partial, "w") as zf:
        zf.writestr("fnopt-checkpoint.json", json.dumps(header))
    with pytest.raises(CheckpointError, match="array 0 is missing"):
        fnopt.load(partial)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fnopt.load(tmp_path / "nope.npz")


def test_a_crash_mid_write_keeps_the_previous_checkpoint(good, tmp_path, monkeypatch):
    before = good.read_bytes()
    calls = []
    real = np.lib.format.write_array

    def crashing(f, arr, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(f, arr, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", crashing)
    p = {"w": np.zeros(200)}
    with pytest.raises(KeyboardInterrupt):
        fnopt.save(good, p, fnopt.sgd(0.1, momentum=0.5).init(p))
    assert good.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]  # no temp file left behind
    monkeypatch.undo()
    assert fnopt.load(good).params["w"][-1] == 1.0


def test_same_contents_give_the_same_bytes(tmp_path):
    p = _np_params()
    s = fnopt.adam(0.1).init(p)
    a = fnopt.save(tmp_path / "a.npz", p, s, iteration=3).read_bytes()
    b = fnopt.save(tmp_path / "b.npz", p, s, iteration=3).read_bytes()
    assert a == b


SAVE_ERRORS = [
    ("mixed_backends", lambda p: (p, {"m": torch.zeros(2)}), TypeError, "state: holds torch"),
    ("unsupported_leaf", lambda p: (p, {"f": print}), TypeError, r"state: cannot save.*\['f'\]"),
    ("empty_params", lambda p: ({}, None), ValueError, "params: empty pytree"),
    ("int_params", lambda p: (np.arange(3), None), TypeError, "params: leaf <root>"),
    ("object_array", lambda p: (p, np.array([None])), TypeError, "dtype object"),
]


@pytest.mark.parametrize("name,make,exc,pattern", SAVE_ERRORS, ids=[c[0] for c in SAVE_ERRORS])
def test_save_rejects_bad_input(tmp_path, name, make, exc, pattern):
    params, state = make(_np_params())
    with pytest.raises(exc, match=pattern):
        fnopt.save(tmp_path / "e.npz", params, state)
    assert not list(tmp_path.iterdir())


def test_save_argument_errors(tmp_path):
    p = _np_params()
    with pytest.raises(TypeError, match="metadata: must be JSON"):
        fnopt.save(tmp_path / "m.npz", p, None, metadata={"x": object()})
    with pytest.raises(TypeError, match="iteration"):
        fnopt.save(tmp_path / "m.npz", p, None, iteration=1.5)
    with pytest.raises(TypeError, match="path"):
        fnopt.save(3, p, None)
    with pytest.raises(FileNotFoundError, match="directory"):
        fnopt.save(tmp_path / "missing" / "m.npz", p, None)


# -- backend conversion ---------------------------------------------------------------


def test_to_torch_and_back_preserves_types_and_memory():
    p = _np_params()
    s = _adam_state(p)[1]
    ts = fnopt.to_torch(s)
    assert type(ts) is type(s) and type(ts.inner[0]) is type(s.inner[0])
    arrays = [x for x in optree.tree_leaves(ts) if not isinstance(x, (int, float))]
    assert arrays and all(isinstance(x, torch.Tensor) for x in arrays)
    back = fnopt.to_numpy(ts)
    for x, y in zip(optree.tree_leaves(back), optree.tree_leaves(s)):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()
    tp = fnopt.to_torch(p)
    tp["w"].add_(1.0)  # the conversion owns fresh memory
    assert p["w"][0, 0] == 0.0
    n = fnopt.to_numpy(tp)
    n["w"][0, 0] = 42.0
    assert float(tp["w"][0, 0]) == 1.0


def test_a_run_continues_on_the_other_backend():
    task = fnopt.tasks.rosenbrock()
    opt = fnopt.adam(1e-2)
    stop = fnopt.stop.max_iters(50)
    half = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=fnopt.stop.max_iters(25))
    whole = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop)
    t_task = fnopt.tasks.rosenbrock("torch")
    rest = fnopt.fixed_point(opt, fnopt.to_torch(half.params), t_task.grad_fn,
                             fnopt.to_torch(half.state), start_iteration=25, stop=stop)
    assert rest.iterations == 50
    np.testing.assert_allclose(rest.params.numpy(), whole.params, rtol=1e-12)


@given(ft.pytrees("numpy", ("float32", "float64")))
def test_round_trip_of_random_pytrees_numpy(tree):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ck = fnopt.load(fnopt.save(os.path.join(d, "h.npz"), tree, {"copy": tree}),
                        types=[ft.Pair])
    assert_identical(ck.params, tree)
    assert_identical(ck.state, {"copy": tree})


@given(ft.pytrees("torch", ("float32", "float64"), max_leaves=3))
def test_round_trip_of_random_pytrees_torch(tree):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ck = fnopt.load(fnopt.save(os.path.join(d, "h.npz"), tree, (1, tree)))
    assert_identical(ck.params, tree)
    assert_identical(ck.state, (1, tree))


# -- fixed_point: checkpoint_every, resume ------------------------------------------------


def _optimizers():
    opts = {"sgd_momentum": lambda: fnopt.sgd(1e-3, momentum=0.9),
            "adam": lambda: fnopt.adam(1e-2)}
    if "lbfgs" in fnopt.__all__:
        opts["lbfgs"] = lambda: fnopt.lbfgs()
    return opts


class Boom(Exception):
    pass


def _interrupting(grad_fn, at_call, exc):
    calls = [0]

    def g(p, *batch):
        calls[0] += 1
        if calls[0] == at_call:
            raise exc
        return grad_fn(p, *batch)

    return g


STOPS = ["callback", "keyboard_interrupt", "grad_fn_error"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("opt_name", sorted(_optimizers()))
@pytest.mark.parametrize("how", STOPS)
def test_resume_is_bitwise_identical(tmp_path, backend, opt_name, how):
    task = fnopt.tasks.rosenbrock(backend)
    opt = _optimizers()[opt_name]()
    n = 60
    stop = fnopt.stop.max_iters(n)
    full = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop, record=True)
    assert full.iterations == n
    path = tmp_path / "run.npz"
    kw: dict[str, Any] = dict(stop=stop, record=True, checkpoint_every=10, checkpoint_path=path)
    if how == "callback":
        part = fnopt.fixed_point(opt, task.init_params, task.grad_fn,
                                 callback=lambda i: i.iteration == 23, **kw)
        assert part.reason == "callback"
    elif how == "keyboard_interrupt":
        g = _interrupting(task.grad_fn, 15, KeyboardInterrupt())
        part = fnopt.fixed_point(opt, task.init_params, g, **kw)
        assert part.reason == "interrupted"
    else:
        g = _interrupting(task.grad_fn, 15, Boom("disk on fire"))
        with pytest.raises(fnopt.OptimizationError) as info:
            fnopt.fixed_point(opt, task.init_params, g, **kw)
        part = info.value.result
    ck = fnopt.load(path)
    assert ck.iteration == part.iterations  # the final iterate is always saved
    assert 0 < ck.iteration < n
    assert type(ck.state) is type(full.state)
    rest = fnopt.fixed_point(opt, ck.params, task.grad_fn, ck.state,
                             start_iteration=ck.iteration, stop=stop, record=True)
    assert rest.iterations == n
    a, b = fnopt.to_numpy(rest.params), fnopt.to_numpy(full.params)
    assert a.tobytes() == b.tobytes()
    assert rest.history.loss.tobytes() == full.history.loss[ck.iteration:].tobytes()
    for x, y in zip(optree.tree_leaves(fnopt.to_numpy(rest.state)),
                    optree.tree_leaves(fnopt.to_numpy(full.state))):
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_checkpoint_every_saves_multiples(tmp_path):
    task = fnopt.tasks.rosenbrock()
    path = tmp_path / "every.npz"
    seen = []

    def watch(info):
        if path.exists():
            seen.append(fnopt.load(path).iteration)

    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(20), checkpoint_every=7,
                          checkpoint_path=path, callback=watch)
    # the save at iteration k happens before the callback of iteration k
    assert sorted(set(seen)) == [7, 14]
    ck = fnopt.load(path)
    assert ck.iteration == r.iterations == 20
    assert ck.metadata["value"] == r.value
    assert np.array_equal(ck.params, r.params)


def test_checkpoint_path_alone_saves_the_end(tmp_path):
    task = fnopt.tasks.rosenbrock()
    path = tmp_path / "end.npz"
    r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(5), checkpoint_path=path)
    assert fnopt.load(path).iteration == r.iterations == 5


CHECKPOINT_ARG_ERRORS = [
    (dict(checkpoint_every=0, checkpoint_path="x"), ValueError, "checkpoint_every"),
    (dict(checkpoint_every=2.0, checkpoint_path="x"), TypeError, "checkpoint_every"),
    (dict(checkpoint_every=3), ValueError, "checkpoint_path: required"),
    (dict(checkpoint_path=5), TypeError, "checkpoint_path"),
    (dict(start_iteration=-1), ValueError, "start_iteration"),
    (dict(start_iteration=1.0), TypeError, "start_iteration"),
]


@pytest.mark.parametrize("kw,exc,pattern", CHECKPOINT_ARG_ERRORS)
def test_checkpoint_arguments_are_validated(kw, exc, pattern):
    task = fnopt.tasks.rosenbrock()
    with pytest.raises(exc, match=pattern):
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                          stop=fnopt.stop.max_iters(5), **kw)


def test_a_failing_save_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    task = fnopt.tasks.rosenbrock()
    path = tmp_path / "disk.npz"
    real = np.lib.format.write_array
    calls = []

    def disk_full(f, arr, **kw):
        calls.append(1)
        if len(calls) > 3:  # the first checkpoint (params + state arrays) succeeds
            raise OSError(28, "No space left on device")
        return real(f, arr, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    with pytest.warns(RuntimeWarning, match="could not save iteration") as rec:
        r = fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, task.grad_fn,
                              stop=fnopt.stop.max_iters(12), checkpoint_every=5,
                              checkpoint_path=path)
    assert [str(w.message).split(" (")[0] for w in rec] == [
        "checkpoint_path: could not save iteration 10",
        "checkpoint_path: could not save iteration 12",
    ]
    assert r.iterations == 12 and r.reason == "max_iters"
    monkeypatch.undo()
    assert fnopt.load(path).iteration == 5  # the last checkpoint that was written
    assert sorted(os.listdir(tmp_path)) == ["disk.npz"]


def test_the_last_finite_iterate_is_checkpointed_on_failure(tmp_path):
    task = fnopt.tasks.rosenbrock()
    calls = [0]

    def g(p):
        calls[0] += 1
        v, gr = task.grad_fn(p)
        return (v * np.nan if calls[0] == 9 else v), gr

    path = tmp_path / "nan.npz"
    with pytest.raises(fnopt.OptimizationError) as info:
        fnopt.fixed_point(fnopt.sgd(1e-3), task.init_params, g,
                          stop=fnopt.stop.max_iters(50), checkpoint_path=path,
                          on_failure="raise")
    ck = fnopt.load(path)
    assert ck.iteration == info.value.result.iterations == 7
    assert np.array_equal(ck.params, info.value.result.params)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_resume_with_minibatches(tmp_path, backend):
    x, y = fnopt.tasks.make_linear_data(64, backend=backend, seed=3)
    task = fnopt.tasks.linear_regression(x, y)
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)] * 5  # 40 steps
    opt = fnopt.adam(1e-2)
    stop = fnopt.stop.max_iters(100)
    full = fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop, data=batches,
                             record=True)
    # one update per batch: 40 batches, 40 updates
    assert full.reason == "data_exhausted" and full.iterations == 40
    path = tmp_path / "mb.npz"
    fnopt.fixed_point(opt, task.init_params, task.grad_fn, stop=stop, data=batches,
                      checkpoint_path=path, callback=lambda i: i.iteration == 13)
    ck = fnopt.load(path)
    # one batch per step: the run goes on from batch number ck.iteration
    rest = fnopt.fixed_point(opt, ck.params, task.grad_fn, ck.state, stop=stop,
                             data=batches[ck.iteration:], start_iteration=ck.iteration,
                             record=True)
    assert rest.iterations == 40 and ck.iteration == 13
    assert fnopt.to_numpy(rest.params).tobytes() == fnopt.to_numpy(full.params).tobytes()
    assert rest.history.loss.tobytes() == full.history.loss[13:].tobytes()


# -- hostile and damaged files: CheckpointError and nothing else, memory bounded ----------

_HDR = "fnopt-checkpoint.json"


@pytest.fixture
def good_torch(tmp_path):
    p = {"w": torch.linspace(0.0, 1.0, 50, requires_grad=True)}
    state = (fnopt.adam(0.1).init(p), {"n": torch.tensor([1, 2])},
             torch.tensor([1.5], dtype=torch.bfloat16))
    return fnopt.save(tmp_path / "good_t.npz", p, state, iteration=3)


def _members(path: Any) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _rezip(path: Any, members: list[tuple[str, bytes]], deflate: tuple[str, ...] = ()) -> Any:
    """Write ``members`` (duplicate names allowed) as a zip with valid CRCs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is what some cases want
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                kind = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
                zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                            compress_type=kind)
    return path


def _npy(shape: Any, descr: Any = "<f8", data: bytes = b"", fortran: Any = False) -> bytes:
    """An .npy member with any header (np.lib.format refuses to write a lying one)."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"  # the whole header: a multiple of 64
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1") + data


def _npy_raw(text: bytes) -> bytes:
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"t": "array", "i": 0}
    for _ in range(depth):
        node = {"t": "tuple", "c": [node]}
    return node


def _edit(base: str, header: Any = None, members: Any = None, deflate: tuple[str, ...] = ()):
    """A crafted file: ``header(h)`` edits the parsed JSON header in place (or returns
    the raw header bytes), ``members(ms)`` returns a new list of (name, bytes)."""

    def make(bases: dict[str, Any], out: Any) -> Any:
        ms = _members(bases[base])
        h = json.loads(ms[0][1])
        raw = header(h) if header else None
        ms[0] = (_HDR, raw if raw is not None else json.dumps(h).encode())
        if members:
            ms = members(ms)
        assert ms != _members(bases[base]) or deflate, "the edit changed nothing"
        return _rezip(out, ms, deflate)

    return make


def _patch(base: str, fn: Any):
    """A crafted file: ``fn(bytes) -> bytes`` on the raw archive."""

    def make(bases: dict[str, Any], out: Any) -> Any:
        data = bases[base].read_bytes()
        out.write_bytes(fn(bytearray(data)))
        assert out.read_bytes() != data, "the patch changed nothing"
        return out

    return make


def _set_rec(i: int, **kw: Any):
    return lambda h: h["arrays"][i].update(kw)


def _set(key: str, value: Any):
    return lambda h: h.update({key: value})


def _member(name: str, data: bytes):
    return lambda ms: [(n, data if n == name else d) for n, d in ms]


def _zip_fields(buf: bytearray, sig: bytes, offset: int, value: int) -> bytearray:
    """Overwrite a 2-byte field at ``offset`` in every zip record starting with ``sig``."""
    at = buf.find(sig)
    while at >= 0:
        buf[at + offset: at + offset + 2] = value.to_bytes(2, "little")
        at = buf.find(sig, at + 4)
    return buf


_CENTRAL, _LOCAL = b"PK\x01\x02", b"PK\x03\x04"
_BIG = 2 ** 27  # 1 GiB of float64


def _set_node(where: str, node: Any):
    def edit(h: dict[str, Any]) -> None:
        if where == "params":
            h["params"] = node
        else:  # the first array node of params["w"]
            h["params"]["c"][0] = node
    return edit


def _share_index(h: dict[str, Any]) -> None:
    h["params"]["c"][0]["i"] = 3  # params["w"] and the momentum trace: the same array


CRAFTED = {
    # .npy members that declare more than they hold, or are not plain arrays
    "npy_declares_1e12_elements": _edit(
        "numpy", _set_rec(0, shape=[10 ** 12]),
        _member("arrays/0.npy", _npy((10 ** 12,), data=bytes(1600)))),
    "npy_declares_1GiB": _edit(
        "numpy", _set_rec(0, shape=[_BIG]),
        _member("arrays/0.npy", _npy((_BIG,), data=bytes(1600)))),
    "npy_shape_differs_from_header": _edit(
        "numpy", None, _member("arrays/0.npy", _npy((10 ** 12,), data=bytes(1600)))),
    "npy_negative_shape": _edit(
        "numpy", _set_rec(0, shape=[-1]), _member("arrays/0.npy", _npy((-1,)))),
    "npy_object_dtype": _edit(
        "numpy", _set_rec(0, dtype="|O"), _member("arrays/0.npy", _npy((200,), "|O", bytes(1600)))),
    "npy_zero_itemsize": _edit(
        "numpy", _set_rec(0, dtype="|V0", shape=[10 ** 12]),
        _member("arrays/0.npy", _npy((10 ** 12,), "|V0"))),
    "npy_bad_magic": _edit("numpy", None, _member("arrays/0.npy", b"garbage!" * 40)),
    "npy_header_too_long": _edit(
        "numpy", None, _member("arrays/0.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr'")),
    "npy_header_not_a_dict": _edit(
        "numpy", None, _member("arrays/0.npy", _npy_raw(b"[1, 2]" + b" " * 107 + b"\n"))),
    "npy_header_deep": _edit(
        "numpy", None, _member("arrays/0.npy", _npy_raw(b"(" * 1000 + b")" * 1000))),
    "npy_header_bad_descr": _edit(
        "numpy", None, _member("arrays/0.npy", _npy((200,), "<q99", bytes(1600)))),
    "npy_fortran_order_not_bool": _edit(
        "numpy", None, _member("arrays/0.npy", _npy((200,), data=bytes(1600), fortran="yes"))),
    "npy_short_data": _edit("numpy", None, _member("arrays/0.npy", _npy((200,), data=bytes(80)))),
    "npy_trailing_data": _edit(
        "numpy", None, _member("arrays/0.npy", _npy((200,), data=bytes(1608)))),
    "npy_big_endian_tensor": _edit(
        "torch", None, _member("arrays/0.npy", _npy((50,), ">f4", bytes(200)))),
    # compressed members: a deflate bomb (64 MiB from 64 KiB) and a deflated header
    "deflate_bomb": _edit(
        "numpy", _set_rec(0, shape=[2 ** 23]),
        _member("arrays/0.npy", _npy((2 ** 23,), data=bytes(8 * 2 ** 23))),
        deflate=("arrays/0.npy",)),
    "deflated_header": _edit("numpy", deflate=(_HDR,)),
    # the zip structure
    "zip_version_needed": _patch("numpy", lambda b: _zip_fields(b, _CENTRAL, 6, 0xFFFF)),
    "zip_unknown_compression": _patch(
        "numpy", lambda b: _zip_fields(_zip_fields(b, _CENTRAL, 10, 99), _LOCAL, 8, 99)),
    "zip_encrypted_flag": _patch("numpy", lambda b: _zip_fields(b, _CENTRAL, 8, 0x1)),
    "duplicate_array_member": _edit(
        "numpy", None, lambda ms: [*ms, ("arrays/0.npy", _npy((200,), data=bytes(1600)))]),
    "duplicate_header_member": _edit("numpy", None, lambda ms: [*ms, (_HDR, b"{}")]),
    "unexpected_member": _edit("numpy", None, lambda ms: [*ms, ("notes.txt", b"hi")]),
    "missing_array_member": _edit("numpy", None, lambda ms: ms[:-1]),
    # the JSON header
    "json_5000_deep": _edit("numpy", lambda h: json.dumps(h).replace(
        '"metadata": {}', '"metadata": ' + "[" * 5000 + "]" * 5000).encode()),
    "tree_300_deep": _edit("numpy", _set_node("params", _nested(300))),
    "header_not_utf8": _edit("numpy", lambda h: b"\xff\xfe{}"),
    "header_a_list": _edit("numpy", lambda h: b"[1, 2]"),
    "header_nan": _edit("numpy", lambda h: b"NaN"),
    "header_huge_int": _edit("numpy", lambda h: json.dumps(h).replace(
        '"iteration": null', '"iteration": ' + "9" * 5000).encode()),
    "version_0": _edit("numpy", _set("version", 0)),
    "version_2": _edit("numpy", _set("version", 2)),
    "version_true": _edit("numpy", _set("version", True)),
    "version_str": _edit("numpy", _set("version", "1")),
    "version_float": _edit("numpy", _set("version", 1.0)),
    "iteration_negative": _edit("numpy", _set("iteration", -1)),
    "iteration_float": _edit("numpy", _set("iteration", 1.5)),
    "iteration_inf": _edit("numpy", _set("iteration", float("inf"))),
    "iteration_str": _edit("numpy", _set("iteration", "3")),
    "iteration_bool": _edit("numpy", _set("iteration", True)),
    "metadata_list": _edit("numpy", _set("metadata", [1, 2])),
    "metadata_str": _edit("numpy", _set("metadata", "x")),
    "backend_unknown": _edit("numpy", _set("backend", "jax")),
    "backend_disagrees": _edit("torch", _set("backend", "numpy")),
    "arrays_not_a_list": _edit("numpy", _set("arrays", {"0": 1})),
    "array_record_not_a_dict": _edit("numpy", lambda h: h["arrays"].__setitem__(0, 5)),
    "array_kind_unknown": _edit("numpy", _set_rec(0, kind="pickle")),
    "array_dtype_differs": _edit("numpy", _set_rec(0, dtype="<f4")),
    "array_shape_differs": _edit("numpy", _set_rec(0, shape=[201])),
    "array_shape_not_a_list": _edit("numpy", _set_rec(0, shape="200")),
    "array_shape_bool": _edit("numpy", _set_rec(1, shape=[True])),
    "numpy_scalar_not_0d": _edit("numpy", _set_rec(0, kind="numpy_scalar")),
    "index_out_of_range": _edit("numpy", _set_node("w", {"t": "array", "i": 99})),
    "index_negative": _edit("numpy", _set_node("w", {"t": "array", "i": -1})),
    "index_bool": _edit("numpy", _set_node("w", {"t": "array", "i": True})),
    "index_str": _edit("numpy", _set_node("w", {"t": "array", "i": "0"})),
    "index_shared": _edit("numpy", _share_index),
    "node_not_a_dict": _edit("numpy", _set_node("params", 5)),
    "node_type_unknown": _edit("numpy", _set_node("w", {"t": "frob"})),
    "node_int_as_str": _edit("numpy", _set_node("w", {"t": "int", "v": "12"})),
    "node_int_as_float": _edit("numpy", _set_node("w", {"t": "int", "v": 1.5})),
    "node_bool_as_int": _edit("numpy", _set_node("w", {"t": "bool", "v": 1})),
    "node_float_not_hex": _edit("numpy", _set_node("w", {"t": "float", "v": "zz"})),
    "node_float_as_number": _edit("numpy", _set_node("w", {"t": "float", "v": 1.5})),
    "node_str_as_int": _edit("numpy", _set_node("w", {"t": "str", "v": 3})),
    "node_tuple_children_str": _edit("numpy", _set_node("w", {"t": "tuple", "c": "abc"})),
    "dict_keys_children_differ": _edit("numpy", lambda h: h["params"]["k"].append(
        {"t": "str", "v": "x"})),
    "dict_duplicate_keys": _edit("numpy", lambda h: h["params"].update(
        k=[{"t": "str", "v": "w"}] * 2, c=[{"t": "array", "i": 0}, {"t": "none"}])),
    "dict_key_unhashable": _edit("numpy", lambda h: h["params"].update(
        k=[{"t": "list", "c": []}])),
    "namedtuple_module_not_str": _edit("numpy", lambda h: h["state"].update(module=5)),
    "namedtuple_module_relative": _edit("numpy", lambda h: h["state"].update(
        module="fnopt..x")),
    "namedtuple_fields_short": _edit("numpy", lambda h: h["state"]["fields"].remove("inner")),
    "namedtuple_fields_not_str": _edit("numpy", lambda h: h["state"].update(
        fields=[1, 2, 3, 4])),
    # tensors
    "device_bogus": _edit("torch", _set_rec(0, device="bogus")),
    "device_empty": _edit("torch", _set_rec(0, device="")),
    "device_not_str": _edit("torch", _set_rec(0, device=5)),
    "device_cuda_99": _edit("torch", _set_rec(0, device="cuda:99")),
    "device_meta": _edit("torch", _set_rec(0, device="meta")),
    "requires_grad_on_int": _edit("torch", _set_rec(5, requires_grad=True)),
    "requires_grad_not_bool": _edit("torch", _set_rec(0, requires_grad="yes")),
    "torch_dtype_not_a_dtype": _edit("torch", _set_rec(0, dtype="Tensor")),
    "torch_dtype_dunder": _edit("torch", _set_rec(0, dtype="__class__")),
    "bfloat16_over_float32_data": _edit("torch", _set_rec(0, dtype="bfloat16")),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_hostile_files_raise_checkpoint_error_in_bounded_memory(good, good_torch, tmp_path,
                                                                 case):
    bad = CRAFTED[case]({"numpy": good, "torch": good_torch}, tmp_path / f"{case}.npz")
    size = bad.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            fnopt.load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(bad) in str(info.value)
    # nothing near what the file declares is allocated: a few times the file's own size
    assert peak < 4 * size + 4 * 2 ** 20, (case, peak, size)


def _bases(good: Any, good_torch: Any) -> dict[str, Any]:
    return {"numpy": good, "torch": good_torch}


def _assert_same_checkpoint(a: Any, b: Any) -> None:
    assert_identical(a.params, b.params)
    assert_identical(a.state, b.state)
    assert (a.iteration, a.metadata) == (b.iteration, b.metadata)


@pytest.mark.parametrize("base", ["numpy", "torch"])
def test_truncations_at_many_offsets_are_refused(good, good_torch, tmp_path, base):
    data = _bases(good, good_torch)[base].read_bytes()
    n = len(data)
    offsets = sorted(set(range(0, n, n // 97)) | set(range(n - 40, n)))
    bad = tmp_path / "cut.npz"
    for k in offsets:
        bad.write_bytes(data[:k])
        with pytest.raises(CheckpointError):
            fnopt.load(bad)


@pytest.mark.parametrize("base", ["numpy", "torch"])
def test_random_bit_flips_are_refused_or_harmless(good, good_torch, tmp_path, base):
    src = _bases(good, good_torch)[base]
    data, ref = src.read_bytes(), fnopt.load(src)
    rng = random.Random(20261201)
    bad = tmp_path / "flipped.npz"
    refused = 0
    for _ in range(250):
        buf = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 8])):
            pos = rng.randrange(len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(buf)
        try:
            ck = fnopt.load(bad)
        except CheckpointError:
            refused += 1
            continue
        # a flip in a zip field nothing reads (a timestamp, "version made by") is
        # harmless; every byte that matters is covered by a CRC or a check
        _assert_same_checkpoint(ck, ref)
    assert refused > 0


_POOL: list[Any] = [None, True, 0, -1, 1, 7, 2 ** 63, 1.5, float("nan"), "", "x", "array",
                    "torch", "cpu", "meta", "<f8", "float32", [], {}, [0], [-1], [10 ** 12],
                    {"t": "array", "i": 0}, {"t": "tuple", "c": [{"t": "array", "i": 1}]},
                    {"t": "int", "v": 1}, [[[[]]]]]


def _json_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for k, v in items:
        out += _json_paths(v, (*prefix, k))
    return out


def _mutate(h: Any, rng: random.Random) -> None:
    """Replace, drop or duplicate one value somewhere in the JSON header."""
    paths = _json_paths(h)[1:]
    path = rng.choice(paths)
    parent = h
    for k in path[:-1]:
        parent = parent[k]
    op = rng.randrange(3)
    if op == 0:
        parent[path[-1]] = json.loads(json.dumps(rng.choice(_POOL)))
    elif op == 1:
        del parent[path[-1]]
    else:  # another subtree of the same header in its place
        other = h
        for k in rng.choice(paths):
            other = other[k]
        parent[path[-1]] = json.loads(json.dumps(other))


@pytest.mark.parametrize("base", ["numpy", "torch"])
def test_random_header_mutations_raise_only_checkpoint_error(good, good_torch, tmp_path,
                                                             base):
    members = _members(_bases(good, good_torch)[base])
    rng = random.Random(7)
    bad = tmp_path / "mutated.npz"
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(200):
        h = json.loads(members[0][1])
        for _ in range(rng.choice([1, 1, 3])):
            _mutate(h, rng)
        _rezip(bad, [(_HDR, json.dumps(h).encode()), *members[1:]])
        try:
            assert isinstance(fnopt.load(bad), fnopt.Checkpoint)
            outcomes["loaded"] += 1  # e.g. another iteration number: still a checkpoint
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > outcomes["loaded"] > 0


@pytest.mark.parametrize("base", ["numpy", "torch"])
def test_random_npy_header_damage_raises_only_checkpoint_error(good, good_torch, tmp_path,
                                                               base):
    members = _members(_bases(good, good_torch)[base])
    rng = random.Random(11)
    bad = tmp_path / "npy.npz"
    refused = 0
    for _ in range(200):
        ms = list(members)
        j = rng.randrange(1, len(ms))
        npy = bytearray(ms[j][1])
        for _ in range(rng.choice([1, 2, 4])):
            pos = rng.randrange(min(128, len(npy)))
            if rng.random() < 0.5:
                npy[pos] ^= 1 << rng.randrange(8)
            else:  # a printable byte: reaches the header's parser more often
                npy[pos] = ord(rng.choice("(),:'0123456789-<>|fiVOU {}[]"))
        ms[j] = (ms[j][0], bytes(npy))
        _rezip(bad, ms)
        try:
            fnopt.load(bad)
        except CheckpointError:
            refused += 1
    assert refused > 0


# -- temporary files of killed saves ---------------------------------------------------


def _killed_save(path: Any) -> None:
    """A process killed (os._exit) in the middle of fnopt.save(path, ...)."""
    code = (
        "import os, numpy as np, fnopt\n"
        "real = np.lib.format.write_array\n"
        "def dying(f, arr, **kw):\n"
        "    real(f, arr, **kw)\n"
        "    os._exit(9)\n"
        "np.lib.format.write_array = dying\n"
        f"fnopt.save({str(path)!r}, {{'w': np.zeros(1000)}})\n"
    )
    root = pathlib.Path(fnopt.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get(
        "PYTHONPATH", "")]))
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode == 9


def test_a_save_removes_the_temp_files_killed_saves_of_its_path_left(tmp_path):
    path = tmp_path / "run.npz"
    _killed_save(path)
    (killed,) = [p.name for p in tmp_path.iterdir()]
    assert re.fullmatch(r"\.run\.npz\.[a-z0-9_]{8}\.tmp", killed) and not path.exists()
    stale = ".run.npz.stale_01.tmp"
    kept = ["run.npz.bak", ".third.npz.stale_01.tmp", ".run.npz.stale.tmp",
            ".run.npz.STALE_01.tmp", ".run.npz.stale_01.tmp.keep", ".xrun.npz.stale_01.tmp",
            ".run.npz.stale_01.tmpx", "x.tmp"]
    for name in [stale, *kept]:
        (tmp_path / name).write_bytes(bytes(100))
    live = tmp_path / ".run.npz.live_001.tmp"  # a save of run.npz in progress elsewhere
    live.write_bytes(bytes(100))
    lock = open(live, "rb")  # noqa: SIM115
    try:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        p = {"w": np.ones(3)}
        fnopt.save(tmp_path / "other.npz", p)  # another path: run.npz's files stay
        assert (tmp_path / killed).exists() and (tmp_path / stale).exists()
        fnopt.save(path, p, iteration=4)
    finally:
        lock.close()
    left = sorted(p.name for p in tmp_path.iterdir())
    expected = {"run.npz", "other.npz", *kept}
    if fcntl is not None:
        expected.add(live.name)
    assert left == sorted(expected)
    assert fnopt.load(path).iteration == 4


# -- check_saveable: fail at the start of a run, not at its first save -----------------


def _deep_list(depth: int) -> Any:
    x: Any = None
    for _ in range(depth):
        x = [x]
    return x


def _torch_case(state: Any) -> Any:
    return lambda p: (fnopt.to_torch(p), state())


UNSAVEABLE = [
    ("unsupported_leaf", lambda p: (p, {"f": print}), TypeError,
     r"state: cannot save a value of type .* at \['f'\]"),
    ("object_array", lambda p: (p, [np.array([None])]), TypeError,
     r"state: cannot save an array of dtype object \(at \[0\]\)"),
    ("mixed_backends", lambda p: (p, {"m": torch.zeros(2)}), TypeError, "state: holds torch"),
    ("tuple_key", lambda p: (p, {(1, 2): 0}), TypeError, r"state: dict key \(1, 2\)"),
    ("too_deep", lambda p: (p, _deep_list(150)), ValueError, "state: nested deeper than 100"),
    ("huge_int", lambda p: (p, (10 ** 5000,)), ValueError, r"state: the int at \[0\]"),
    ("empty_params", lambda p: ({}, None), ValueError, "params: empty pytree"),
    ("sparse_tensor", _torch_case(lambda: [torch.eye(2).to_sparse()]), TypeError,
     r"state: cannot save a tensor with layout torch.sparse_coo \(at \[0\]\)"),
    ("meta_tensor", _torch_case(lambda: {"m": torch.empty(2, device="meta")}), TypeError,
     r"state: cannot save a tensor on the 'meta' device .*\['m'\]"),
    ("complex32_tensor", _torch_case(lambda: [torch.zeros(2, dtype=torch.complex32)]),
     TypeError, r"state: cannot save a tensor of dtype torch.complex32.*\(at \[0\]\)"),
]


@pytest.mark.parametrize("name,make,exc,pattern", UNSAVEABLE, ids=[c[0] for c in UNSAVEABLE])
def test_check_saveable_names_what_save_cannot_write(tmp_path, name, make, exc, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex32 is "experimental"
        params, state = make(_np_params())
    with pytest.raises(exc, match=pattern):
        check_saveable(params, state)
    with pytest.raises(exc, match=pattern):  # save refuses it the same way
        fnopt.save(tmp_path / "x.npz", params, state)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_check_saveable_accepts_what_save_writes(tmp_path, backend):
    for name, make in sorted(STATES.items()):
        params = _np_params()
        state = make(params)
        if backend == "torch":
            params, state = fnopt.to_torch(params), fnopt.to_torch(state)
        assert check_saveable(params, state) is None, name
        fnopt.load(fnopt.save(tmp_path / f"{name}.npz", params, state))
    deep = _deep_list(99)  # the deepest tree that can be saved and loaded
    check_saveable(_np_params(), deep)
    assert fnopt.load(fnopt.save(tmp_path / "deep.npz", _np_params(), deep)).state == deep


class LoggedState(NamedTuple):
    count: int
    value: Any
    grad_norm: Any
    inner: Any
    log: Any  # a function: no checkpoint can hold it


def test_fixed_point_checks_the_state_can_be_saved_before_the_first_step(tmp_path):
    task = fnopt.tasks.rosenbrock()
    opt = fnopt.sgd(1e-3)
    calls = []

    def step(params, grad_fn, state, *batch):
        calls.append(1)
        params, inner = opt.step(params, grad_fn, state.inner, *batch)
        return params, LoggedState(inner.count, inner.value, inner.grad_norm, inner, state.log)

    inner = opt.init(task.init_params)
    state = LoggedState(0, inner.value, inner.grad_norm, inner, print)
    with pytest.raises(TypeError, match=r"state: cannot save a value of type .* at \.log"):
        fnopt.fixed_point(step, task.init_params, task.grad_fn, state,
                          stop=fnopt.stop.max_iters(20), checkpoint_every=5,
                          checkpoint_path=tmp_path / "run.npz")
    assert calls == [] and not list(tmp_path.iterdir())
    r = fnopt.fixed_point(step, task.init_params, task.grad_fn, state,
                          stop=fnopt.stop.max_iters(3))  # no checkpoint: runs
    assert r.iterations == 3 and calls


# -- format versions and classes that moved --------------------------------------------


def _rewrite_header(src: Any, dst: Any, edit: Any) -> Any:
    members = _members(src)
    h = json.loads(members[0][1])
    edit(h)
    return _rezip(dst, [(_HDR, json.dumps(h).encode()), *members[1:]])


def _move_classes(h: dict[str, Any]) -> None:
    """The header as an older fnopt wrote it, with DescentState and TraceState
    kept in modules (and under names) that no longer exist."""
    h["state"].update(module="fnopt.old_base", name="OldDescentState")
    trace = h["state"]["c"][3]["c"][0]
    assert trace["name"] == "TraceState"
    trace["module"] = "fnopt.old_transforms"


def test_a_checkpoint_naming_a_class_fnopt_no_longer_has_is_refused(tmp_path):
    p = _np_params()
    opt = fnopt.sgd(0.1, momentum=0.9)
    s = _adam_state(p)[1]._replace(inner=opt.init(p).inner)
    path = fnopt.save(tmp_path / "new.npz", p, s, iteration=2)
    old = _rewrite_header(path, tmp_path / "old.npz", _move_classes)
    with pytest.raises(CheckpointError, match=r"fnopt\.old_base\.OldDescentState.*no longer"):
        fnopt.load(old)
    assert not hasattr(fc, "_MOVED") and not hasattr(fc, "_MOVED_MODULES")


@pytest.mark.parametrize("version,kind", [(2, "a newer"), (99, "a newer"), (0, "an unknown"),
                                          (-1, "an unknown"), ("2", "an unknown"),
                                          (True, "an unknown"), (None, "an unknown")])
def test_an_unknown_format_version_is_refused_naming_both(good, tmp_path, version, kind):
    bad = _rewrite_header(good, tmp_path / "v.npz", lambda h: h.update(version=version))
    readable = ", ".join(map(str, fc.READABLE_VERSIONS))
    pattern = (rf"{kind} checkpoint format version {re.escape(repr(version))} \(by fnopt "
               rf"'.*'\); fnopt .* reads format versions {readable} \(up to {fc.VERSION}\)")
    with pytest.raises(CheckpointError, match=pattern):
        fnopt.load(bad)
    for v in fc.READABLE_VERSIONS:
        ok = _rewrite_header(good, tmp_path / f"ok{v}.npz", lambda h, v=v: h.update(version=v))
        assert isinstance(fnopt.load(ok), fnopt.Checkpoint)


def test_unusual_numpy_layouts_round_trip(tmp_path):
    params = {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "b": np.zeros(3)}
    state = {"big_endian": np.arange(4.0).astype(">f8"), "empty": np.zeros((0, 3)),
             "record": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
             "when": np.array(["2026-12-01"], dtype="datetime64[D]"), "text": np.array(["ab"]),
             "f4_scalar": np.float32(1.5), "bool": np.array([True, False])}
    ck = fnopt.load(fnopt.save(tmp_path / "odd.npz", params, state))
    assert_identical(ck.params, params)
    assert_identical(ck.state, state)
    assert ck.params["f"].flags.f_contiguous and ck.params["f"].flags.writeable


@pytest.mark.skipif(fcntl is None, reason="POSIX file locks")
def test_a_save_whose_fresh_temp_file_a_cleaner_removed_takes_another(tmp_path, monkeypatch):
    # the race: another process's save lists this save's fresh temporary file, locks it
    # before this save does, and removes it as stale; this save must notice and go on
    real, removed = fcntl.flock, []

    def flock(fd, op):
        if op == fcntl.LOCK_EX and not removed:  # the writer's lock, the first time
            name = next(p for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
            name.unlink()
            removed.append(name.name)
        return real(fd, op)

    monkeypatch.setattr(fc.fcntl, "flock", flock)
    p = {"w": np.arange(3.0)}
    fnopt.save(tmp_path / "race.npz", p, iteration=1)
    monkeypatch.undo()
    assert removed and sorted(os.listdir(tmp_path)) == ["race.npz"]
    assert fnopt.load(tmp_path / "race.npz").iteration == 1
