"""optax's ``transforms/_combining_test.py`` (= ``_src/combine_test.py``, optax 0.2.8),
ported: the same params, updates, steps (50) and tolerances, with fnopt.chain,
fnopt.named_chain, fnopt.partition (optax's ``partition``/``multi_transform``) and NumPy
arrays.

Not applicable (listed, not ported): the ``jax.jit`` wrappers around ``init``/``update``
(the cases run the same updates without jit); ``base.with_extra_args_support`` and the
``GradientTransformation``/``GradientTransformationExtraArgs`` class checks (fnopt has one
:class:`fnopt.Transform` class, and every combinator takes optax's extra arguments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fnopt

STEPS = 50
LR = 1e-2
INIT_PARAMS = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
PER_STEP_UPDATES = (np.array([500.0, 5.0]), np.array([300.0, 3.0]))


def assert_trees_all_close(a: Any, b: Any, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """optax.test_utils.assert_trees_all_close (same structure, allclose leaves)."""
    assert fnopt.tree.structure(a) == fnopt.tree.structure(b)
    for x, y in zip(fnopt.tree.leaves(a), fnopt.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_chain() -> None:
    transformations = [
        fnopt.scale_by_adam(),
        fnopt.trace(decay=0, nesterov=False),
        fnopt.scale(-LR),
    ]
    chain_params: Any = INIT_PARAMS
    chained = fnopt.chain(*transformations)
    state = chained.init(chain_params)
    assert isinstance(state, tuple)
    for _ in range(STEPS):
        updates, state = chained.update(PER_STEP_UPDATES, state)
        assert isinstance(state, tuple)
        chain_params = fnopt.apply_updates(chain_params, updates)

    manual_params: Any = INIT_PARAMS
    states = [t.init(manual_params) for t in transformations]
    for _ in range(STEPS):
        updates = PER_STEP_UPDATES
        new_states = []
        for t, s in zip(transformations, states):
            updates, s = t.update(updates, s)
            new_states.append(s)
        manual_params = fnopt.apply_updates(manual_params, updates)
        states = new_states

    assert_trees_all_close(manual_params, chain_params, rtol=1e-4)


def transform(init: Any, update: Any) -> Any:
    """A fnopt.Transform from optax-style ``init``/``update`` functions (the update may
    take extra keyword arguments, which fnopt's typed signature does not list)."""
    return fnopt.Transform(init, update)


def _empty_init(params: Any) -> tuple[()]:
    del params
    return ()


def test_extra_args() -> None:
    def update_fn(updates: Any, state: Any, params: Any = None, *, loss: Any,
                  **extra_args: Any) -> tuple[Any, Any]:
        del extra_args, params
        assert loss == 1
        return updates, state

    t = transform(_empty_init, update_fn)
    result: Any = fnopt.chain(fnopt.adam(1e-3), t)
    # optax's {"a": 1, "b": 2} as 0-d float arrays: an fnopt optimizer refuses Python
    # int leaves (a TypeError that says to pass an array)
    params = {"a": np.array(1.0), "b": np.array(2.0)}
    state = result.init(params)
    result.update(params, state, loss=1, ignored_kwarg="hi")


def test_extra_args_chaining() -> None:
    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        return updates, state

    t1 = transform(lambda p: {}, update_fn)
    t2: Any = fnopt.chain(t1, t1)
    assert isinstance(fnopt.chain(t1, t1), fnopt.Transform)
    # a chain of plain transforms takes extra arguments (optax's "possible gotcha")
    p = {"a": np.ones(1)}
    out, _ = t2.update(p, t2.init(p), p, ignored_kwarg="hi")
    assert_trees_all_close(out, p)


def test_extra_args_positional_params() -> None:
    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        assert params is not None
        return updates, state

    def update_fn_kwargs(updates: Any, state: Any, params: Any = None,
                         **extra_args: Any) -> tuple[Any, Any]:
        del extra_args
        assert params is not None
        return updates, state

    t1 = transform(_empty_init, update_fn)
    t2 = transform(_empty_init, update_fn_kwargs)
    opt: Any = fnopt.chain(t1, t2)
    params = {"a": 1, "b": 2}
    state = opt.init(params)
    opt.update(params, state, params, ignored_kwarg="hi")
    opt.update(params, state, params=params, ignored_kwarg="hi")


def _map_keys_fn(fn: Callable[[str, Any], Any]) -> Callable[[dict[str, Any]], Any]:
    def map_fn(nested: dict[str, Any]) -> Any:
        return {k: map_fn(v) if isinstance(v, dict) else fn(k, v) for k, v in nested.items()}

    return map_fn


@pytest.mark.parametrize("use_fn", [True, False])
def test_partition(use_fn: bool) -> None:
    params = {"a1": 1.0, "b1": 2.0, "z1": {"a2": 3.0, "z2": {"c1": 4.0}}}
    params = fnopt.tree.map(np.asarray, params)
    input_updates = fnopt.tree.map(lambda x: x / 10.0, params)
    tx_dict = {"a": fnopt.scale(-1.0), "b": fnopt.ema(0.0), "c": fnopt.scale(2.0)}
    param_labels: Any = _map_keys_fn(lambda k, _: k[0])
    if not use_fn:
        param_labels = param_labels(params)
    tx = fnopt.partition(tx_dict, param_labels)
    state = tx.init(params)

    correct_update_fn = _map_keys_fn(lambda k, v: {"a": -v, "b": v, "c": 2.0 * v}[k[0]])
    updates, state = tx.update(input_updates, state, params)
    correct_updates = correct_update_fn(input_updates)
    assert_trees_all_close(updates, correct_updates)

    correct_updates = correct_update_fn(correct_updates)
    updates, _ = tx.update(updates, state)
    assert_trees_all_close(updates, correct_updates)


class ArgNotEqual1Error(ValueError):
    """Raised when argument not set as expected."""


def test_partition_extra_args() -> None:
    def init(params: Any) -> Any:
        return {"mu": params}

    def update_with_arg(updates: Any, state: Any, params: Any = None, *, arg: Any,
                        **extra_args: Any) -> tuple[Any, Any]:
        del params, extra_args
        if arg != 1:
            raise ArgNotEqual1Error()
        return updates, state

    def update_without_arg(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        return updates, state

    opt: Any = fnopt.partition({"a": transform(init, update_without_arg),
                           "b": transform(init, update_with_arg)}, ("a", "b"))
    fake_params = ({"u": np.array([1])}, {"v": np.array([1])})
    state = opt.init(fake_params)
    with pytest.raises(TypeError):
        opt.update(fake_params, state)
    with pytest.raises(ArgNotEqual1Error):
        opt.update(fake_params, state, arg=2, ignored_kwarg="hi")
    opt.update(fake_params, state, arg=1, ignored_kwarg="hi")


@pytest.mark.parametrize("container", [list, tuple, dict])
def test_partition_empty(container: type) -> None:
    # partition over an optimizer is an optimizer, whose init refuses empty params
    # (nothing to optimize); its transform view (.inner) is optax's partition
    opt: Any = fnopt.partition({0: fnopt.sgd(1.0)}, lambda _: 0)
    tx = opt.inner
    updates, _ = tx.update(container(), tx.init(container()))
    assert updates == container()
    with pytest.raises(ValueError, match="empty pytree"):
        opt.init(container())


@pytest.mark.parametrize("use_extra_label,use_fn",
                         [(False, False), (False, True), (True, False), (True, True)])
def test_partition_labels_mismatch(use_extra_label: bool, use_fn: bool) -> None:
    params = {"a": 1.0, "b": [2.0, 3.0], "c": {"d": 4.0, "e": (5.0, 6.0)}}
    params = fnopt.tree.map(np.asarray, params)
    label_tree: dict[str, Any] = {"a": 0, "b": [1, 0], "c": 1}  # prefix of params
    if use_extra_label:
        label_tree["a"] = 3
    transforms = {0: fnopt.sgd(1.0), 1: fnopt.adam(1.0, b1=0.0, b2=0.0),
                  2: fnopt.trace(1.0)}
    tx = fnopt.partition(transforms, (lambda _: label_tree) if use_fn else label_tree)
    if use_extra_label:
        with pytest.raises(ValueError):
            tx.init(params)
    else:
        state = tx.init(params)
        updates = fnopt.tree.map(lambda x: x / 10.0, params)
        out, _ = tx.update(updates, state)
        assert fnopt.tree.structure(out) == fnopt.tree.structure(params)


def test_named_chain() -> None:
    def update_fn(updates: Any, state: Any, params: Any, *, loss: Any,
                  **extra_args: Any) -> tuple[Any, Any]:
        del params, extra_args
        return fnopt.tree.map(lambda u: u / loss, updates), state

    scale_by_loss = transform(_empty_init, update_fn)
    tx: Any = fnopt.named_chain(("scale", fnopt.scale(0.1)), ("scale_loss", scale_by_loss))
    params = {"a": np.ones((4,))}
    opt_state = tx.init(params)
    updates, _ = tx.update(params, opt_state, params, loss=0.1)
    assert_trees_all_close(updates, {"a": np.ones((4,))})
