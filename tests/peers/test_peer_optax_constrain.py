"""optax's ``transforms/_constraining_test.py`` (optax 0.2.8), ported: the same grads,
params, learning rate and expected values, with fnopt.keep_params_nonnegative,
fnopt.zero_nans and NumPy arrays. Not applicable: the ``jax.jit`` wrappers (the same
updates run without jit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt

LR = 1e-2


def assert_trees_all_close(a: Any, b: Any, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """optax.test_utils.assert_trees_all_close (allclose leaves, NaNs equal)."""
    la, lb = fnopt.tree.leaves(a), fnopt.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_keep_params_nonnegative() -> None:
    grads = (np.array([500.0, -500.0, 0.0]),) * 3
    params = (np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]),
              np.array([0.0, 0.0, 0.0]))

    opt = fnopt.chain(fnopt.trace(decay=0, nesterov=False), fnopt.scale(-LR))
    updates, _ = opt.update(grads, opt.init(params), params)
    assert_trees_all_close(fnopt.apply_updates(params, updates), (
        np.array([-6.0, 4.0, -1.0]), np.array([-4.0, 6.0, 1.0]), np.array([-5.0, 5.0, 0.0])))

    opt = fnopt.chain(fnopt.trace(decay=0, nesterov=False), fnopt.scale(-LR),
                      fnopt.keep_params_nonnegative())
    updates, _ = opt.update(grads, opt.init(params), params)
    assert_trees_all_close(fnopt.apply_updates(params, updates), (
        np.array([0.0, 4.0, 0.0]), np.array([0.0, 6.0, 1.0]), np.array([0.0, 5.0, 0.0])))


def _found_nan(state: Any) -> tuple[bool, ...]:
    """The per-leaf ``found_nan`` flags of zero_nans' state (optax's ZeroNansState)."""
    return tuple(bool(x) for x in fnopt.tree.leaves(state))


def test_zero_nans() -> None:
    params = (np.zeros([3]), np.zeros([3]), np.zeros([3]))
    opt = fnopt.zero_nans()
    opt_state = opt.init(params)
    assert _found_nan(opt_state) == (False,) * 3

    nan = float("nan")
    grads_with_nans = (np.ones([3]), np.array([1.0, nan, nan]), np.array([nan, 1.0, 1.0]))
    updates, opt_state = opt.update(grads_with_nans, opt_state)
    assert _found_nan(opt_state) == (False, True, True)
    assert_trees_all_close(updates, (np.ones([3]), np.array([1.0, 0.0, 0.0]),
                                     np.array([0.0, 1.0, 1.0])))

    grads_with_nans_infs = (np.ones([3]), np.array([1.0, nan, nan]),
                            np.array([float("inf"), 1.0, 1.0]))
    updates, opt_state = opt.update(grads_with_nans_infs, opt_state)
    assert _found_nan(opt_state) == (False, True, False)
    assert_trees_all_close(updates, (np.ones([3]), np.array([1.0, 0.0, 0.0]),
                                     np.array([float("inf"), 1.0, 1.0])))

    grads = (np.ones([3]), np.ones([3]), np.ones([3]))
    updates, opt_state = opt.update(grads, opt_state)
    assert _found_nan(opt_state) == (False, False, False)
    assert_trees_all_close(updates, grads)


def test_none_arguments() -> None:
    tf = fnopt.keep_params_nonnegative()
    state = tf.init(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        tf.update(np.array([1.0, 2.0, 3.0]), state, None)
