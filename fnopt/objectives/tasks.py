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
from fnopt.objectives import _rosenbrock
from fnopt.objectives._objective import (
    Objective,
    Providers,
    check_backend,
    dtype_name,
    gradient_provider,
    hessian_provider,
)

__all__ = ["Task", "rosenbrock", "make_linear_data", "linear_regression", "mlp"]

Backend = Literal["numpy", "torch"]


@attrs.frozen
class Task(Objective):
    """An optimization problem with everything needed to solve and check it (an
    :class:`fnopt.objectives.Objective`).

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

    @property
    def minimizers(self) -> tuple[Any, ...]:
        """``(solution,)`` where it is known, else ``()``."""
        return () if self.solution is None else (self.solution,)

    @property
    def min_value(self) -> float | None:
        """The loss at ``solution`` (on the task's data), or ``None``."""
        return None if self.solution is None else float(self.loss(self.solution))

    def _derivatives(self, backend: str) -> Providers:
        if backend != self.backend:
            raise ValueError(
                f"backend: the {self.name} task lives on {self.backend!r}, got {backend!r}"
            )
        h = None if self.hessian is None else _grad.hessian_from_function(self.hessian)
        return Providers(self.grad_fn, h, None)


def _task(
    name: str, backend: str, dtype: str, loss: Callable[..., Any],
    grad: Callable[..., Any] | None, init: Callable[[int], Any], *,
    grad_loss: Callable[..., Any] | None = None, **fields: Any,
) -> Task:
    """A :class:`Task` whose ``grad_fn`` is the hand-written ``grad`` on NumPy (paired
    with ``grad_loss``, default ``loss``) and ``torch.func`` of ``loss`` on torch."""
    return Task(
        name=name, backend=backend, dtype=dtype, loss=loss,
        grad_fn=gradient_provider(backend, loss, grad, grad_loss), init=init, **fields,
    )


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
    Hessian. The minimiser is :math:`(a, a^2)` in 2-D and all ones for ``a = 1``. The
    same function as the test problem ``fnopt.problems.by_name("rosenbrock")``, which
    starts from :math:`(-1.2, 1)` instead.

    Args:
      backend: ``"numpy"`` or ``"torch"``.
      dim: number of variables (>= 2).
      a, b: the coefficients.
      dtype: ``"float64"`` (default) or ``"float32"``.

    Returns:
      a :class:`Task`.

    >>> task = rosenbrock(dim=3)
    >>> task.name, float(task.loss(task.solution))
    ('rosenbrock3d', 0.0)
    """
    check_backend(backend)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim: expected an int >= 2, got {dim!r}")
    dt = dtype_name(dtype)
    f = _rosenbrock.functions(dim, a, b)
    solution = _rosenbrock.minimizer(dim, a)
    def init(seed: int) -> Any:
        rng = np.random.default_rng(seed)
        return _backend.array(rng.uniform(-2.0, 2.0, size=dim), backend, dt)

    return _task(
        f"rosenbrock{dim}d" if dim != 2 else "rosenbrock", backend, dt, f.loss, f.grad, init,
        grad_loss=f.loss_np, init_params=_backend.array(np.zeros(dim), backend, dt),
        solution=None if solution is None else _backend.array(solution, backend, dt),
        hessian=hessian_provider(backend, f.loss, f.hessian),
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
    check_backend(backend)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    if noise < 0:
        raise ValueError(f"noise: expected a number >= 0, got {noise}")
    dt = dtype_name(dtype)
    rng = np.random.default_rng(seed)
    x = rng.random(n) * 5.0
    y = slope * x + intercept + rng.random(n) * noise
    return _backend.array(x, backend, dt), _backend.array(y, backend, dt)


def _design(xb: Any) -> Any:
    """``[x, 1]``: the inputs as columns with a bias column appended."""
    xp = _backend.of_leaves([xb], what="x").xp
    cols = xb[:, None] if xb.ndim == 1 else xb
    return xp.concatenate([cols, xp.ones_like(cols[:, :1])], 1)


def linear_regression(x: Any, y: Any) -> Task:
    """Least squares :math:`L(\\theta) = \\frac{1}{2m}\\|X\\theta - y\\|^2` with
    :math:`X = [x, 1]` (a bias column appended), so ``theta = [slope..., intercept]``.

    The backend and dtype are those of ``x`` and ``y``. NumPy: hand-written gradient
    :math:`\\frac{1}{m} X^T(X\\theta - y)`; torch: ``torch.func``. ``solution`` is the
    closed-form least-squares answer. ``grad_fn(theta, xb, yb)`` uses a minibatch.

    Args:
      x: inputs, shape ``(m,)`` or ``(m, d)``.
      y: targets, shape ``(m,)``.

    Returns:
      a :class:`Task` whose ``hessian`` is :math:`X^T X / m`.

    >>> task = linear_regression(*make_linear_data(n=8, noise=0.0))
    >>> [round(float(v), 6) for v in task.solution]
    [2.0, 3.0]
    """
    x, y = (v if _backend.is_array(v) else np.asarray(v) for v in (x, y))
    backend = _backend.of_leaves([x, y], what="x, y").name
    dt = dtype_name(x.dtype)
    if x.ndim not in (1, 2) or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x, y: expected x of shape (m,) or (m, d) and y of shape (m,), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    d = 1 if x.ndim == 1 else x.shape[1]

    def loss(theta: Any, xb: Any = None, yb: Any = None) -> Any:
        r = _design(x if xb is None else xb) @ theta - (y if yb is None else yb)
        return (r * r).sum() / (2 * r.shape[0])

    def grad(theta: Any, xb: Any = None, yb: Any = None) -> Any:
        xd = _design(x if xb is None else xb)
        r = xd @ theta - (y if yb is None else yb)
        return (r @ xd) / r.shape[0]

    xd_np = _design(_backend.to_numpy(x).astype(np.float64))
    sol = np.linalg.lstsq(xd_np, _backend.to_numpy(y).astype(np.float64), rcond=None)[0]
    h_np = xd_np.T @ xd_np / xd_np.shape[0]

    def init(seed: int) -> Any:
        return _backend.array(np.random.default_rng(seed).standard_normal(d + 1), backend, dt)

    def hess(theta: Any) -> Any:
        return _backend.by_name(backend).from_numpy(h_np, theta)

    return _task(
        "linear_regression", backend, dt, loss, grad, init,
        init_params=_backend.array(np.zeros(d + 1), backend, dt),
        solution=_backend.array(sol, backend, dt),
        hessian=hess,
        data=(x, y),
        predict=lambda theta, xb: _design(xb) @ theta,
    )


# -- MLP -----------------------------------------------------------------------------------

_ACTIVATIONS = ("sigmoid", "tanh", "relu")
_LOSSES = ("mse", "bce", "cross_entropy")


@attrs.frozen
class _Net:
    """A fully connected network's shape: layer widths, hidden activation and loss."""

    sizes: tuple[int, ...]
    activation: str
    loss: str

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1


def _check_mlp(sizes: Any, activation: str, loss: str) -> _Net:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {_ACTIVATIONS}, got {activation!r}")
    if loss not in _LOSSES:
        raise ValueError(f"loss: expected one of {_LOSSES}, got {loss!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise ValueError(f"sizes: expected at least two positive ints, got {sizes!r}")
    if loss == "cross_entropy" and sizes[-1] < 2:
        raise ValueError(f"sizes: cross_entropy needs sizes[-1] >= 2 classes, got {sizes!r}")
    return _Net(sizes, activation, loss)


def _init_layers(net: _Net, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random weights ``N(0, 1/fan_in)`` and biases ``N(0, 0.01)`` (NumPy float64)."""
    p = {}
    for i in range(net.n_layers):
        fan_in, fan_out = net.sizes[i], net.sizes[i + 1]
        p[f"w{i + 1}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        p[f"b{i + 1}"] = rng.standard_normal(fan_out) * 0.1
    return p


def _act(net: _Net, z: Any, xp: Any) -> Any:
    if net.activation == "sigmoid":
        return 1.0 / (1.0 + xp.exp(-z))
    if net.activation == "tanh":
        return xp.tanh(z)
    return (z + abs(z)) * 0.5


def _act_grad(net: _Net, da: Any, a: Any) -> Any:
    """The backpropagated gradient through the activation, from its output ``a``."""
    if net.activation == "sigmoid":
        return da * a * (1.0 - a)
    if net.activation == "tanh":
        return da * (1.0 - a * a)
    return da * (a > 0)


def _hidden(net: _Net, params: dict[str, Any], xb: Any, xp: Any) -> list[Any]:
    """The input and every hidden layer's activations."""
    acts = [xb]
    for i in range(1, net.n_layers):
        acts.append(_act(net, acts[-1] @ params[f"w{i}"] + params[f"b{i}"], xp))
    return acts


def _logits(net: _Net, params: dict[str, Any], a: Any) -> Any:
    n = net.n_layers
    return a @ params[f"w{n}"] + params[f"b{n}"]


def _forward(net: _Net, params: dict[str, Any], xb: Any) -> Any:
    xp = _backend.of_leaves([xb], what="x").xp
    return _logits(net, params, _hidden(net, params, xb, xp)[-1])


def _teacher_data(net: _Net, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` standard-normal inputs labelled by a seeded teacher network."""
    rng = np.random.default_rng(seed + 1_000_003)
    teacher = {k: v * 3.0 for k, v in _init_layers(net, rng).items()}  # some curvature
    x = rng.standard_normal((n_samples, net.sizes[0]))
    logits = _forward(net, teacher, x)
    if net.loss == "mse":
        return x, logits
    if net.loss == "bce":
        return x, (logits > 0).astype(np.float64)
    return x, np.eye(net.sizes[-1])[logits.argmax(axis=1)]


def _given_data(net: _Net, data: tuple[Any, Any], backend: str, dt: str) -> tuple[Any, Any]:
    """The user's ``(x, y)`` on the backend in ``dt``, labels one-hot, ``y`` 2-D."""
    x, y = data
    k = net.sizes[-1]
    if net.loss == "cross_entropy" and y.ndim == 1:
        labels = _backend.to_numpy(y)
        if not np.issubdtype(labels.dtype, np.integer) or (
            labels.size and (labels.min() < 0 or labels.max() >= k)
        ):
            raise ValueError(f"data: cross_entropy labels must be integers in 0..{k - 1}")
        y = _backend.array(np.eye(k)[labels], backend, dt)
    be = _backend.by_name(backend)
    x, y = be.cast([be.xp.asarray(x), be.xp.asarray(y)], dt)
    if y.ndim == 1:
        y = y[:, None]
    if tuple(x.shape[1:]) != (net.sizes[0],) or tuple(y.shape[1:]) != (k,):
        raise ValueError(
            f"data: expected x of shape (n, {net.sizes[0]}) and y of shape (n, {k}), "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x, y


def _mlp_loss(net: _Net, params: dict[str, Any], xb: Any, yb: Any) -> Any:
    be = _backend.of_leaves([xb], what="x")
    if yb.ndim == 1:
        yb = yb[:, None]
    z = _forward(net, params, xb)
    if net.loss == "mse":
        r = z - yb
        return (r * r).mean()
    if net.loss == "cross_entropy":
        return -(yb * (z - be.logsumexp(z, 1))).sum() / z.shape[0]
    # stable BCE with logits: max(z, 0) - z*y + log(1 + exp(-|z|))
    return ((z + abs(z)) * 0.5 - z * yb + be.xp.log1p(be.xp.exp(-abs(z)))).mean()


def _output_grad(net: _Net, z: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """The loss's gradient with respect to the logits ``z`` (NumPy)."""
    if net.loss == "mse":
        return 2.0 * (z - yb) / z.size
    if net.loss == "cross_entropy":
        soft = np.exp(z - _backend.NUMPY.logsumexp(z, 1))
        return (soft * yb.sum(axis=1, keepdims=True) - yb) / z.shape[0]
    return (1.0 / (1.0 + np.exp(-z)) - yb) / z.size


def _mlp_grad(net: _Net, params: dict[str, Any], xb: Any, yb: Any) -> dict[str, Any]:
    """Hand-written backpropagation (NumPy)."""
    if yb.ndim == 1:
        yb = yb[:, None]
    acts = _hidden(net, params, xb, np)
    dz = _output_grad(net, _logits(net, params, acts[-1]), yb)
    grads: dict[str, Any] = {}
    for i in range(net.n_layers, 0, -1):
        grads[f"w{i}"] = acts[i - 1].T @ dz
        grads[f"b{i}"] = dz.sum(axis=0)
        if i > 1:
            dz = _act_grad(net, dz @ params[f"w{i}"].T, acts[i - 1])
    dt = params["w1"].dtype
    return {k: grads[k].astype(dt, copy=False) for k in sorted(grads)}


def _predict(net: _Net, params: dict[str, Any], xb: Any) -> Any:
    be = _backend.of_leaves([xb], what="x")
    z = _forward(net, params, xb)
    if net.loss == "cross_entropy":
        return be.xp.exp(z - be.logsumexp(z, 1))
    return z if net.loss == "mse" else 1.0 / (1.0 + be.xp.exp(-z))


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

    Returns:
      a :class:`Task` with ``data`` and ``predict`` (no known solution or Hessian).

    >>> task = mlp((2, 4, 1), n_samples=8)
    >>> sorted(task.init_params), task.data[0].shape
    (['b1', 'b2', 'w1', 'w2'], (8, 2))
    """
    check_backend(backend)
    net = _check_mlp(sizes, activation, loss)
    dt = dtype_name(dtype)
    if data is None:
        x, y = (_backend.array(v, backend, dt) for v in _teacher_data(net, n_samples, seed))
    else:
        x, y = _given_data(net, data, backend, dt)

    def loss_fn(params: dict[str, Any], xb: Any = None, yb: Any = None) -> Any:
        return _mlp_loss(net, params, x if xb is None else xb, y if yb is None else yb)

    def grad_np(params: dict[str, Any], xb: Any = None, yb: Any = None) -> dict[str, Any]:
        return _mlp_grad(net, params, x if xb is None else xb, y if yb is None else yb)

    def init(seed: int) -> dict[str, Any]:
        layers = _init_layers(net, np.random.default_rng(seed))
        return {k: _backend.array(v, backend, dt) for k, v in layers.items()}

    return _task(
        "mlp", backend, dt, loss_fn, grad_np, init, init_params=init(seed),
        data=(x, y),
        predict=lambda params, xb: _predict(net, params, xb),
    )
