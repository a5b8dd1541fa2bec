"""The classic tasks: Rosenbrock, linear regression and a small MLP.

Each task is a :class:`Task` with a ``loss``, a gradient provider ``grad_fn``
(hand-written derivatives on NumPy, ``torch.func`` on torch), a starting point
``init_params`` and ``init(seed)`` for random starts, and the ``solution`` where it is
known. All random numbers are drawn with NumPy, so a seed gives the same numbers on
both backends.

>>> import fnopt
>>> task = fnopt.tasks.rosenbrock()
>>> float(task.loss(task.init_params)), task.solution
(1.0, array([1., 1.]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np

from fnopt import backend as _backend
from fnopt import grad as _grad

__all__ = ["Task", "rosenbrock", "make_linear_data", "linear_regression", "mlp"]

Backend = Literal["numpy", "torch"]


@attrs.frozen
class Task:
    """An optimization problem with everything needed to solve and check it.

    Attributes:
      name: a short name.
      backend: ``"numpy"`` or ``"torch"``.
      dtype: ``"float32"`` or ``"float64"``.
      loss: ``loss(params, *batch) -> 0-d array/tensor``.
      grad_fn: ``grad_fn(params, *batch) -> (value, grads)``.
      init_params: the conventional starting point.
      init: ``init(seed) -> params``, a random starting point.
      solution: the minimiser where known, else ``None``.
      hessian: ``hessian(params) -> 2-D array`` where available, else ``None``.
      data: the task's data ``(x, y)`` where it has data, else ``None``.
      predict: ``predict(params, x)`` for tasks with a model, else ``None``.
    """

    name: str
    backend: str
    dtype: str
    loss: Callable[..., Any]
    grad_fn: Callable[..., Any]
    init_params: Any
    init: Callable[[int], Any]
    solution: Any = None
    hessian: Callable[[Any], Any] | None = None
    data: tuple[Any, Any] | None = None
    predict: Callable[..., Any] | None = None


# -- helpers -----------------------------------------------------------------------


def _dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "")
    if name in ("float", "<class 'float'>"):
        name = "float64"
    try:
        name = np.dtype(name).name
    except TypeError:
        pass
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return name


def _check_backend(backend: str) -> None:
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")


def _xp(backend: str) -> Any:
    if backend == "torch":
        import torch

        return torch
    return np


def _to(a: Any, backend: str, dtype: str) -> Any:
    """Convert a NumPy array (or nested dict of them) to the backend and dtype."""
    if isinstance(a, dict):
        return {k: _to(v, backend, dtype) for k, v in a.items()}
    return _backend.array(a, backend, dtype)


# -- Rosenbrock -----------------------------------------------------------------------


def rosenbrock(
    backend: Backend = "numpy",
    dim: int = 2,
    a: float = 1.0,
    b: float = 100.0,
    *,
    dtype: Any = "float64",
) -> Task:
    """The Rosenbrock function :math:`f(x) = \\sum_{i<n} (a - x_i)^2 + b (x_{i+1} -
    x_i^2)^2`, started from the origin as in the classic tutorial.

    NumPy: hand-written gradient and Hessian; torch: ``torch.func`` gradient and
    Hessian. The minimiser is :math:`(a, a^2)` in 2-D and all ones for ``a = 1``.

    Args:
      backend: ``"numpy"`` or ``"torch"``.
      dim: number of variables (>= 2).
      a, b: the coefficients.
      dtype: ``"float64"`` (default) or ``"float32"``.
    """
    _check_backend(backend)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim: expected an int >= 2, got {dim!r}")
    dt = _dtype_name(dtype)

    def loss(x: Any) -> Any:
        return ((a - x[:-1]) ** 2).sum() + b * ((x[1:] - x[:-1] ** 2) ** 2).sum()

    def grad(x: Any) -> Any:
        g = np.zeros_like(x)
        t = x[1:] - x[:-1] ** 2
        g[:-1] = -2.0 * (a - x[:-1]) - 4.0 * b * x[:-1] * t
        g[1:] += 2.0 * b * t
        return g

    def hess(x: Any) -> Any:
        x = np.asarray(x)
        n = x.size
        h = np.zeros((n, n), dtype=x.dtype)
        i = np.arange(n - 1)
        diag = np.zeros(n, dtype=x.dtype)
        diag[:-1] = 2.0 - 4.0 * b * (x[1:] - 3.0 * x[:-1] ** 2)
        diag[1:] += 2.0 * b
        h[i, i + 1] = h[i + 1, i] = -4.0 * b * x[:-1]
        h[np.arange(n), np.arange(n)] = diag
        return h

    if dim == 2:
        solution = np.array([a, a * a])
    elif a == 1.0:
        solution = np.ones(dim)
    else:
        solution = None

    if backend == "numpy":
        if dim == 2:
            # the classic tutorial's hand-written partial derivatives, scalar by scalar
            def grad2(x: Any) -> Any:
                x0 = x[0]
                x1 = x[1]
                t = x1 - x0 * x0
                return np.array(
                    [-2.0 * (a - x0) - 4.0 * b * x0 * t, 2.0 * b * t], dtype=x.dtype
                )

            def loss2(x: Any) -> Any:
                x0 = x[0]
                t = x[1] - x0 * x0
                return (a - x0) ** 2 + b * (t * t)

            grad_fn = _grad.from_functions(loss2, grad2)
        else:
            grad_fn = _grad.from_functions(loss, grad)
        hessian: Callable[[Any], Any] | None = hess
    else:
        import torch.func

        grad_fn = _grad.torch_func(loss)
        hessian = torch.func.hessian(loss)

    def init(seed: int) -> Any:
        rng = np.random.default_rng(seed)
        return _to(rng.uniform(-2.0, 2.0, size=dim), backend, dt)

    return Task(
        name=f"rosenbrock{dim}d" if dim != 2 else "rosenbrock",
        backend=backend,
        dtype=dt,
        loss=loss,
        grad_fn=grad_fn,
        init_params=_to(np.zeros(dim), backend, dt),
        init=init,
        solution=None if solution is None else _to(solution, backend, dt),
        hessian=hessian,
    )


# -- linear regression ------------------------------------------------------------------


def make_linear_data(
    n: int = 32,
    slope: float = 2.0,
    intercept: float = 3.0,
    noise: float = 2.0,
    seed: int = 0,
    backend: Backend = "numpy",
    *,
    dtype: Any = "float64",
) -> tuple[Any, Any]:
    """Noisy points on a line, as in the classic tutorial.

    :math:`y = \\text{slope}\\cdot x + \\text{intercept} + \\text{noise}\\cdot u`,
    with :math:`x` and :math:`u` uniform in [0, 5) and [0, 1). Returns ``(x, y)``, each
    of shape ``(n,)``; the same numbers on both backends for the same seed.

    >>> x, y = make_linear_data(n=4, seed=0)
    >>> x.shape, y.shape
    ((4,), (4,))
    """
    _check_backend(backend)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    if noise < 0:
        raise ValueError(f"noise: expected a number >= 0, got {noise}")
    dt = _dtype_name(dtype)
    rng = np.random.default_rng(seed)
    x = rng.random(n) * 5.0
    y = slope * x + intercept + rng.random(n) * noise
    return _to(x, backend, dt), _to(y, backend, dt)


def linear_regression(x: Any, y: Any) -> Task:
    """Least squares :math:`L(\\theta) = \\frac{1}{2m}\\|X\\theta - y\\|^2` with
    :math:`X = [x, 1]` (a bias column appended), so ``theta = [slope..., intercept]``.

    The backend and dtype are those of ``x`` and ``y``. NumPy: hand-written gradient
    :math:`\\frac{1}{m} X^T(X\\theta - y)`; torch: ``torch.func``. ``solution`` is the
    closed-form least-squares answer. ``grad_fn(theta, xb, yb)`` uses a minibatch.

    Args:
      x: inputs, shape ``(m,)`` or ``(m, d)``.
      y: targets, shape ``(m,)``.
    """
    is_torch = _backend.is_tensor(x)
    backend = "torch" if is_torch else "numpy"
    if is_torch != _backend.is_tensor(y):
        raise TypeError("x, y: must both be numpy arrays or both torch tensors")
    if not is_torch:
        x, y = np.asarray(x), np.asarray(y)
    dt = _dtype_name(x.dtype)
    if x.ndim not in (1, 2) or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x, y: expected x of shape (m,) or (m, d) and y of shape (m,), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    xp = _xp(backend)
    d = 1 if x.ndim == 1 else x.shape[1]

    def design(xb: Any) -> Any:
        cols = xb[:, None] if xb.ndim == 1 else xb
        ones = xp.ones_like(cols[:, :1])
        return xp.concatenate([cols, ones], 1)  # torch.concatenate is torch.cat

    def loss(theta: Any, xb: Any = None, yb: Any = None) -> Any:
        xb = x if xb is None else xb
        yb = y if yb is None else yb
        r = design(xb) @ theta - yb
        return (r * r).sum() / (2 * r.shape[0])

    def grad(theta: Any, xb: Any = None, yb: Any = None) -> Any:
        xb = x if xb is None else xb
        yb = y if yb is None else yb
        xd = design(xb)
        r = xd @ theta - yb
        return (r @ xd) / r.shape[0]

    grad_fn = _grad.from_functions(loss, grad) if backend == "numpy" else _grad.torch_func(loss)
    x_np, y_np = _backend.to_numpy(x), _backend.to_numpy(y)
    xd_np = np.concatenate([x_np.reshape(len(y_np), -1), np.ones((len(y_np), 1))], 1)
    sol = np.linalg.lstsq(xd_np.astype(np.float64), y_np.astype(np.float64), rcond=None)[0]

    def init(seed: int) -> Any:
        return _to(np.random.default_rng(seed).standard_normal(d + 1), backend, dt)

    def hess(theta: Any) -> Any:
        del theta
        return xd_np.T @ xd_np / xd_np.shape[0]

    return Task(
        name="linear_regression",
        backend=backend,
        dtype=dt,
        loss=loss,
        grad_fn=grad_fn,
        init_params=_to(np.zeros(d + 1), backend, dt),
        init=init,
        solution=_to(sol, backend, dt),
        hessian=hess,
        data=(x, y),
        predict=lambda theta, xb: design(xb) @ theta,
    )


# -- MLP -----------------------------------------------------------------------------------

_ACTIVATIONS = ("sigmoid", "tanh", "relu")
_LOSSES = ("mse", "bce", "cross_entropy")


def _log_sum_exp(z: Any, m: Any) -> Any:
    """Row-wise ``log(sum(exp(z)))`` of a 2-D array, kept 2-D, computed stably."""
    if m is np:
        top = z.max(axis=1, keepdims=True)
        return top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    return m.logsumexp(z, 1, keepdim=True)


def mlp(
    sizes: tuple[int, ...] = (5, 3, 1),
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid",
    loss: Literal["mse", "bce", "cross_entropy"] = "mse",
    backend: Backend = "numpy",
    dtype: Any = "float64",
    data: tuple[Any, Any] | None = None,
    *,
    n_samples: int = 64,
    seed: int = 0,
) -> Task:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    Params are a dict ``{"w1", "b1", "w2", "b2", ...}`` (``w_l`` of shape
    ``(sizes[l-1], sizes[l])``). Hidden layers use ``activation``; the output layer is
    linear for ``loss="mse"`` (mean squared error) and a sigmoid for ``loss="bce"``
    (binary cross-entropy, computed stably from the logits); for
    ``loss="cross_entropy"`` the outputs are the logits of a softmax over
    ``sizes[-1] >= 2`` classes and the loss is the mean softmax cross-entropy
    :math:`-\\frac{1}{n}\\sum_i \\sum_k y_{ik} \\log \\mathrm{softmax}(z_i)_k`. NumPy:
    hand-written backpropagation; torch: ``torch.func``.

    Without ``data``, a seeded *teacher* network of the same shape labels
    ``n_samples`` standard-normal inputs (its outputs for mse, its decisions for bce
    and cross_entropy), so the loss can approach zero. ``grad_fn(params, xb, yb)`` uses a minibatch.

    Args:
      sizes: layer widths, at least two.
      activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
      loss: ``"mse"``, ``"bce"`` (targets in {0, 1}) or ``"cross_entropy"`` (one-hot
        targets of shape ``(n, sizes[-1])``; ``data`` may give integer labels ``(n,)``
        instead, which are turned into one-hot rows).
      backend: ``"numpy"`` or ``"torch"``.
      dtype: ``"float64"`` or ``"float32"``.
      data: ``(x, y)`` with ``x`` of shape ``(n, sizes[0])`` and ``y`` of shape
        ``(n, sizes[-1])`` (or ``(n,)`` when ``sizes[-1] == 1``, or integer labels
        ``(n,)`` for cross_entropy).
      n_samples: size of the synthetic dataset.
      seed: seeds the initial params and the synthetic data.
    """
    _check_backend(backend)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {_ACTIVATIONS}, got {activation!r}")
    if loss not in _LOSSES:
        raise ValueError(f"loss: expected one of {_LOSSES}, got {loss!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"sizes: expected at least two positive ints, got {sizes!r}")
    if loss == "cross_entropy" and sizes[-1] < 2:
        raise ValueError(f"sizes: cross_entropy needs sizes[-1] >= 2 classes, got {sizes!r}")
    dt = _dtype_name(dtype)
    n_layers = len(sizes) - 1
    xp = _xp(backend)

    def init_np(rng: np.random.Generator) -> dict[str, np.ndarray]:
        p = {}
        for i in range(n_layers):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            p[f"w{i + 1}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
            p[f"b{i + 1}"] = rng.standard_normal(fan_out) * 0.1
        return p

    def act(z: Any, m: Any = xp) -> Any:
        if activation == "sigmoid":
            return 1.0 / (1.0 + m.exp(-z))
        if activation == "tanh":
            return m.tanh(z)
        return (z + abs(z)) * 0.5

    def forward(params: dict[str, Any], xb: Any, m: Any = xp) -> Any:
        a = xb
        for i in range(1, n_layers):
            a = act(a @ params[f"w{i}"] + params[f"b{i}"], m)
        return a @ params[f"w{n_layers}"] + params[f"b{n_layers}"]

    if data is None:
        rng = np.random.default_rng(seed + 1_000_003)
        teacher = init_np(rng)
        teacher = {k: v * 3.0 for k, v in teacher.items()}  # a teacher with some curvature
        x_np = rng.standard_normal((n_samples, sizes[0]))
        logits = forward(teacher, x_np, np)
        if loss == "mse":
            y_np = logits
        elif loss == "bce":
            y_np = (logits > 0).astype(np.float64)
        else:
            y_np = np.eye(sizes[-1])[logits.argmax(axis=1)]
        x, y = _to(x_np, backend, dt), _to(y_np, backend, dt)
    else:
        x, y = data
        if loss == "cross_entropy" and y.ndim == 1:
            labels = _backend.to_numpy(y)
            if not np.issubdtype(labels.dtype, np.integer) or (
                labels.size and (labels.min() < 0 or labels.max() >= sizes[-1])
            ):
                raise ValueError(
                    f"data: cross_entropy labels must be integers in 0..{sizes[-1] - 1}"
                )
            y = _to(np.eye(sizes[-1])[labels], backend, dt)
        if backend == "numpy":
            x, y = np.asarray(x, dtype=dt), np.asarray(y, dtype=dt)
        if y.ndim == 1:
            y = y[:, None]
        if tuple(x.shape[1:]) != (sizes[0],) or tuple(y.shape[1:]) != (sizes[-1],):
            raise ValueError(
                f"data: expected x of shape (n, {sizes[0]}) and y of shape (n, {sizes[-1]}), "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )

    def loss_fn(params: dict[str, Any], xb: Any = None, yb: Any = None) -> Any:
        xb = x if xb is None else xb
        yb = y if yb is None else yb
        if yb.ndim == 1:
            yb = yb[:, None]
        z = forward(params, xb)
        if loss == "mse":
            r = z - yb
            return (r * r).mean()
        if loss == "cross_entropy":
            return -(yb * (z - _log_sum_exp(z, xp))).sum() / z.shape[0]
        # stable BCE with logits: max(z, 0) - z*y + log(1 + exp(-|z|))
        return ((z + abs(z)) * 0.5 - z * yb + xp.log1p(xp.exp(-abs(z)))).mean()

    def grad_np(params: dict[str, Any], xb: Any = None, yb: Any = None) -> dict[str, Any]:
        xb = x if xb is None else xb
        yb = y if yb is None else yb
        if yb.ndim == 1:
            yb = yb[:, None]
        acts = [xb]
        a = xb
        for i in range(1, n_layers):
            a = act(a @ params[f"w{i}"] + params[f"b{i}"], np)
            acts.append(a)
        z = a @ params[f"w{n_layers}"] + params[f"b{n_layers}"]
        if loss == "mse":
            dz = 2.0 * (z - yb) / z.size
        elif loss == "cross_entropy":
            soft = np.exp(z - _log_sum_exp(z, np))
            dz = (soft * yb.sum(axis=1, keepdims=True) - yb) / z.shape[0]
        else:
            dz = (1.0 / (1.0 + np.exp(-z)) - yb) / z.size
        grads: dict[str, Any] = {}
        for i in range(n_layers, 0, -1):
            a_prev = acts[i - 1]
            grads[f"w{i}"] = a_prev.T @ dz
            grads[f"b{i}"] = dz.sum(axis=0)
            if i > 1:
                da = dz @ params[f"w{i}"].T
                if activation == "sigmoid":
                    dz = da * a_prev * (1.0 - a_prev)
                elif activation == "tanh":
                    dz = da * (1.0 - a_prev * a_prev)
                else:
                    dz = da * (a_prev > 0)
        return {k: grads[k].astype(dt, copy=False) for k in sorted(grads)}

    grad_fn = (
        _grad.from_functions(loss_fn, grad_np) if backend == "numpy" else _grad.torch_func(loss_fn)
    )

    def init(seed: int) -> dict[str, Any]:
        return _to(init_np(np.random.default_rng(seed)), backend, dt)

    def predict(params: dict[str, Any], xb: Any) -> Any:
        z = forward(params, xb)
        if loss == "cross_entropy":
            return xp.exp(z - _log_sum_exp(z, xp))
        return z if loss == "mse" else 1.0 / (1.0 + xp.exp(-z))

    return Task(
        name="mlp",
        backend=backend,
        dtype=dt,
        loss=loss_fn,
        grad_fn=grad_fn,
        init_params=init(seed),
        init=init,
        solution=None,
        hessian=None,
        data=(x, y),
        predict=predict,
    )
