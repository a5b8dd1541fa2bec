"""optax's ``transforms/_clipping_test.py`` (optax 0.2.8), ported: the same updates,
params, steps (50) and checks, with fnopt's transforms and NumPy arrays. optax's
``unitwise_norm`` is written out below (fnopt has it inside adaptive_grad_clip).
The per-example clips need per-example gradients, which fnopt's grad_fn does not
return: they are listed as not supported in docs/migration/optax-table.md."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fnopt

STEPS = 50
INIT_PARAMS = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
PER_STEP_UPDATES = (np.array([500.0, 5.0]), np.array([300.0, 3.0]))
E = fnopt.transforms.EmptyState()


def unitwise_norm(x: np.ndarray, axis: Any = None) -> np.ndarray:
    """optax.transforms._clipping.unitwise_norm."""
    if axis is not None:
        sq = np.sum(x * x, axis=axis, keepdims=True)
    elif np.squeeze(x).ndim <= 1:
        sq = np.sum(x * x, keepdims=True)
    elif x.ndim in (2, 3):
        sq = np.sum(x * x, axis=0, keepdims=True)
    elif x.ndim == 4:
        sq = np.sum(x * x, axis=(0, 1, 2), keepdims=True)
    else:
        sq = np.sum(x * x, axis=(0, 1, 2, 3), keepdims=True)
    return np.broadcast_to(np.sqrt(sq), x.shape)


def assert_trees_all_close(a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    for x, y in zip(fnopt.tree.leaves(a), fnopt.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_clip() -> None:
    updates = PER_STEP_UPDATES
    clipped, _ = fnopt.clip(1e6).update(updates, E)
    assert_trees_all_close(clipped, updates)
    clipped, _ = fnopt.clip(1.0).update(updates, E)
    assert_trees_all_close(clipped, tuple(np.ones_like(u) for u in updates))


def test_clip_by_block_rms() -> None:
    updates: Any = PER_STEP_UPDATES
    for i in range(1, STEPS + 1):
        clipper = fnopt.clip_by_block_rms(1.0 / i)
        updates, _ = clipper.update(updates, E)
        assert np.sqrt(np.mean(updates[0] ** 2)) == pytest.approx(1.0 / i, abs=1e-7)
        assert np.sqrt(np.mean(updates[1] ** 2)) == pytest.approx(1.0 / i, abs=1e-7)
        updates_step, _ = clipper.update(PER_STEP_UPDATES, E)
        assert_trees_all_close(updates, updates_step)


def test_clip_by_global_norm() -> None:
    updates: Any = PER_STEP_UPDATES
    for i in range(1, STEPS + 1):
        clipper = fnopt.clip_by_global_norm(1.0 / i)
        updates, _ = clipper.update(updates, E)
        assert float(fnopt.tree.global_norm(updates)) == pytest.approx(1.0 / i, abs=1e-6)
        updates_step, _ = clipper.update(PER_STEP_UPDATES, E)
        assert_trees_all_close(updates, updates_step)


def test_adaptive_grad_clip_with_axis() -> None:
    conv3d_grad, conv3d_param = np.ones((2, 2, 2, 3, 4)) * 2.0, np.ones((2, 2, 2, 3, 4))
    linear_grad, linear_param = np.ones((5, 6)) * 3.0, np.ones((5, 6))
    agc_conv3d = fnopt.adaptive_grad_clip(clipping=0.5, axis=(0, 1, 2))
    agc_linear = fnopt.adaptive_grad_clip(clipping=0.5)
    clipped_conv3d = agc_conv3d.update([conv3d_grad], E, [conv3d_param])[0][0]
    clipped_linear = agc_linear.update([linear_grad], E, [linear_param])[0][0]
    assert clipped_conv3d.shape == conv3d_grad.shape
    assert clipped_linear.shape == linear_grad.shape
    assert np.all(unitwise_norm(clipped_conv3d, axis=(0, 1, 2))
                  <= 0.5 * unitwise_norm(conv3d_param, axis=(0, 1, 2)) + 1e-6)
    assert np.all(unitwise_norm(clipped_linear) <= 0.5 * unitwise_norm(linear_param) + 1e-6)
    small = np.ones((2, 2, 2, 3, 4)) * 0.1
    unclipped, _ = fnopt.adaptive_grad_clip(clipping=2.0, axis=(0, 1, 2)).update(
        [small], E, [np.ones((2, 2, 2, 3, 4))])
    assert_trees_all_close(unclipped[0], small, rtol=1e-6)


def test_adaptive_grad_clip_default_axis_conv3d() -> None:
    grad, param = np.ones((2, 2, 2, 3, 4)) * 2.0, np.ones((2, 2, 2, 3, 4))
    clipped = fnopt.adaptive_grad_clip(clipping=0.5).update([grad], E, [param])[0][0]
    assert clipped.shape == grad.shape
    assert_trees_all_close(unitwise_norm(clipped), unitwise_norm(clipped, axis=(0, 1, 2, 3)))
    assert np.all(unitwise_norm(clipped) <= 0.5 * unitwise_norm(param) + 1e-6)


def test_adaptive_grad_clip() -> None:
    updates: Any = PER_STEP_UPDATES
    params = INIT_PARAMS
    for i in range(1, STEPS + 1):
        clip_r = 1.0 / i
        clipper = fnopt.adaptive_grad_clip(clipping=clip_r)
        updates, _ = clipper.update(updates, E, params)
        for u, p in zip(updates, params):
            assert (unitwise_norm(u) - clip_r * unitwise_norm(p) < 1e-6).all()
        updates_step, _ = clipper.update(PER_STEP_UPDATES, E, params)
        assert_trees_all_close(updates, updates_step)
    grads_small = [np.array([[1.0, 2.0], [3.0, 4.0]])]
    params_small = [np.ones_like(grads_small[0])]
    clipped = fnopt.adaptive_grad_clip(clipping=1.0).update(grads_small, E, params_small)[0]
    assert np.all(unitwise_norm(clipped[0]) <= unitwise_norm(params_small[0]) + 1e-6)


@pytest.mark.parametrize("name", ["per_example_global_norm_clip",
                                  "per_example_layer_norm_clip"])
def test_per_example_clips_are_not_supported(name: str) -> None:
    """Not supported (per-example gradients): the name is absent and the migration table
    says so."""
    assert not hasattr(fnopt, name)
    from pathlib import Path
    table = Path(__file__).resolve().parents[2] / "docs" / "migration" / "optax-table.md"
    row = next(line for line in table.read_text(encoding="utf-8").splitlines()
               if line.startswith(f"| `optax.{name}` |"))
    assert "not supported" in row
