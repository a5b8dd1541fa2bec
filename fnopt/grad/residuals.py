"""Residual providers: residuals and their Jacobian (or Jacobian products) for least squares.

A *residual provider* is ``res_fn(params, *batch) -> Linearization``: the residual
vector :math:`r(x)` evaluated now, and the Jacobian :math:`J = \\partial r / \\partial x`
(or the products :math:`Jv`, :math:`J^T u`) on demand. It is the ``grad_fn`` of a
least-squares optimizer (:func:`fnopt.gauss_newton`, :func:`fnopt.levenberg_marquardt`):
``fnopt.fixed_point(fnopt.levenberg_marquardt(), x0, res_fn, stop=...)``.

**Flattening.** ``params`` and the residuals may be any pytree. Both are flattened the
way :func:`fnopt.tree.leaves` orders the leaves (optree order: dict keys sorted,
sequences in order), each leaf in C (row-major) order, and concatenated. So
``lin.residuals`` is a 1-D array of length ``m`` (all residual elements) and
``lin.jacobian()`` is the ``m x n`` matrix with ``J[i, j] = d r_i / d x_j`` over the
flattened params (``n`` elements in all), on the params' backend and dtype.

A :class:`Linearization` unpacks as a pair, ``r, J = res_fn(params)`` (forming ``J``).
Its Jacobian is formed at most once and only when asked for, so an optimizer that
rejects a trial point pays for the residuals only; ``jvp``/``vjp`` give the products
without forming ``J`` where the provider can (``torch.func``), which is what the
matrix-free solvers use for large problems.

Providers: :func:`residuals_from_functions` (hand-written Jacobian),
:func:`residuals_torch` (``torch.func``: ``jacrev``-style reverse mode or ``jacfwd``,
``jvp``/``vjp`` matrix-free), :func:`residuals_finite_differences` (either backend),
:func:`residuals_matrix_free` (hand-written products), and :func:`check_jacobian`
against finite differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import Params, check_callable, check_params, guarded_call

__all__ = [
    "Linearization",
    "ResidualFn",
    "residuals_from_functions",
    "residuals_torch",
    "residuals_finite_differences",
    "residuals_matrix_free",
    "check_jacobian",
    "JacobianCheckReport",
    "ravel_residuals",
]

ResidualFn = Callable[..., "Linearization"]


class Linearization:
    """What a residual provider returns: residuals now, the Jacobian on demand.

    Attributes:
      residuals: the residual vector :math:`r(x)`, 1-D (length ``m``), on the params'
        backend (the residual pytree flattened, see the module docstring).
      n_params: ``n``, the number of (flattened) parameters.

    ``jacobian()`` returns the ``m x n`` Jacobian (formed once, then reused);
    ``jvp(v)`` returns :math:`Jv` for a flat ``v`` of length ``n``; ``vjp(u)`` returns
    :math:`J^T u` for ``u`` of length ``m``. ``r, J = lin`` unpacks (forming ``J``).
    ``jacobian_formed`` says whether ``J`` exists yet (evaluation counters read it).

    >>> import numpy as np
    >>> lin = Linearization(np.array([1.0, 2.0]), 1, jacobian=lambda: np.array([[3.0], [4.0]]))
    >>> lin.vjp(np.array([1.0, 1.0]))
    array([7.])
    >>> r, J = lin
    >>> J.shape
    (2, 1)
    """

    __slots__ = ("_jac", "_jvp", "_make_jac", "_vjp", "n_params", "residuals")

    def __init__(
        self,
        residuals: Any,
        n_params: int,
        *,
        jacobian: Callable[[], Any] | None = None,
        jvp: Callable[[Any], Any] | None = None,
        vjp: Callable[[Any], Any] | None = None,
    ) -> None:
        if jacobian is None and (jvp is None or vjp is None):
            raise ValueError("Linearization: needs jacobian, or both jvp and vjp")
        self.residuals = residuals
        self.n_params = n_params
        self._jac: Any = None
        self._make_jac = jacobian
        self._jvp = jvp
        self._vjp = vjp

    @property
    def jacobian_formed(self) -> bool:
        """Whether the Jacobian has been formed (by :meth:`jacobian`)."""
        return self._jac is not None

    def jacobian(self) -> Any:
        """The ``m x n`` Jacobian (formed on the first call, reused after)."""
        if self._jac is None:
            if self._make_jac is None:  # matrix-free provider: n products J e_j
                self._jac = _jacobian_by_jvp(self)
            else:
                self._jac = _check_jacobian_shape(
                    self._make_jac(), self.residuals, self.n_params
                )
        return self._jac

    def jvp(self, v: Any) -> Any:
        """:math:`Jv` for a flat ``v`` (length ``n``)."""
        if self._jvp is not None and self._jac is None:
            return self._jvp(v)
        return self.jacobian() @ v

    def vjp(self, u: Any) -> Any:
        """:math:`J^T u` for a flat ``u`` (length ``m``)."""
        if self._vjp is not None and self._jac is None:
            return self._vjp(u)
        return u @ self.jacobian()

    def __iter__(self) -> Any:
        yield self.residuals
        yield self.jacobian()

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        m = _backend.of_value(self.residuals).size(self.residuals)
        return f"Linearization(m={m}, n={self.n_params})"


def _jacobian_by_jvp(lin: Linearization) -> Any:
    """Form ``J`` column by column from ``n`` products ``J e_j`` (matrix-free providers)."""
    assert lin._jvp is not None
    r = lin.residuals
    be = _backend.of_leaves([r], what="residuals")
    eye = be.eye(lin.n_params, r)
    cols = [lin._jvp(eye[j]) for j in range(lin.n_params)]
    return be.stack(cols, 1)


def _check_jacobian_shape(jac: Any, residuals: Any, n: int, what: str = "jac_fn") -> Any:
    m = _backend.of_value(residuals).size(residuals)
    if not _backend.is_array(jac):
        raise TypeError(f"{what}: must return an array or tensor, got {type(jac).__name__}")
    if _backend.of_value(jac) is not _backend.of_value(residuals):
        raise TypeError(f"{what}: returned a Jacobian of the other backend than the residuals")
    if tuple(jac.shape) != (m, n):
        raise ValueError(
            f"{what}: expected an ({m}, {n}) Jacobian ({m} residuals x {n} flattened "
            f"params), got shape {tuple(jac.shape)}"
        )
    if jac.dtype != residuals.dtype:
        jac = _backend.of_value(jac).cast_like(jac, residuals)
    return jac


def ravel_residuals(residuals: Any, like: Any, *, what: str = "residual_fn") -> Any:
    """The residual pytree flattened to one 1-D array (optree leaf order, each leaf in
    C order), on the backend and with the dtype of the array ``like``.

    >>> import numpy as np
    >>> ravel_residuals({"b": np.ones(2), "a": np.zeros((1, 1))}, np.zeros(1))
    array([0., 1., 1.])
    """
    leaves = optree.tree_leaves(residuals)
    if not leaves:
        raise ValueError(f"{what}: returned no residuals (an empty pytree)")
    be = _backend.of_leaves([like])
    try:
        got = _backend.of_leaves(leaves, what=what)
    except TypeError:
        if be is _backend.NUMPY and all(isinstance(x, (int, float, np.generic)) for x in leaves):
            got = be  # Python or NumPy scalars
            leaves = [np.asarray(x) for x in leaves]
        else:
            raise
    if got is not be:
        raise TypeError(f"{what}: returned {got.name} residuals for {be.name} params")
    flat = be.ravel(leaves)
    if not be.is_floating(flat):
        raise TypeError(f"{what}: residuals must be floating point, got dtype {flat.dtype}")
    if flat.dtype != like.dtype:
        flat = be.cast_like(flat, like)
    return flat


def _flat_params(params: Params) -> tuple[Any, list[Any], Any, _backend.Backend]:
    be = check_params(params)
    leaves, spec = optree.tree_flatten(params)
    return be.ravel(leaves), leaves, spec, be


def residuals_from_functions(
    residual_fn: Callable[..., Any], jac_fn: Callable[..., Any]
) -> ResidualFn:
    """A residual provider from hand-written residuals and Jacobian.

    Args:
      residual_fn: ``residual_fn(params, *batch) -> residuals`` (any pytree of arrays
        of the params' backend).
      jac_fn: ``jac_fn(params, *batch) -> J``, the ``m x n`` Jacobian over the
        flattened residuals and params (module docstring); called only when an
        optimizer needs ``J``. A wrong shape is a ``ValueError`` naming ``jac_fn``.

    Returns:
      ``res_fn(params, *batch) -> Linearization``.

    >>> import numpy as np
    >>> res = residuals_from_functions(lambda p: p ** 2 - 1.0, lambda p: np.diag(2 * p))
    >>> r, J = res(np.array([2.0, 3.0]))
    >>> r, J
    (array([3., 8.]), array([[4., 0.],
           [0., 6.]]))
    """
    check_callable(residual_fn, "residual_fn")
    check_callable(jac_fn, "jac_fn")

    def res_fn(params: Params, *batch: Any) -> Linearization:
        x, _, _, be = _flat_params(params)
        r = ravel_residuals(residual_fn(params, *batch), x)
        return Linearization(r, be.size(x), jacobian=lambda: _own_jacobian(jac_fn, params, batch))

    return res_fn


def _own_jacobian(jac_fn: Callable[..., Any], params: Params, batch: tuple[Any, ...]) -> Any:
    """``jac_fn(params, *batch)`` called guarded (:func:`fnopt._base.guarded_call`), as
    fnopt's own copy: a Linearization keeps its Jacobian while the optimizer
    evaluates other points (a ``jac_fn`` may refill one buffer at every call)."""
    jac = guarded_call(jac_fn, params, batch, what="jac_fn")
    return _backend.of_value(jac).clone([jac])[0] if _backend.is_array(jac) else jac


def residuals_torch(
    residual_fn: Callable[..., Any], *, mode: Literal["rev", "fwd"] = "rev"
) -> ResidualFn:
    """A residual provider from torch residuals through ``torch.func``.

    The residuals come from one forward pass (``torch.func.vjp``); ``J`` is formed on
    demand: ``mode="rev"`` by reverse mode (``vmap`` of the VJP over the ``m`` unit
    vectors, as ``torch.func.jacrev``; good when ``m <= n``), ``mode="fwd"`` by
    ``torch.func.jacfwd`` (good when ``n < m``). Without forming ``J``,
    :meth:`Linearization.jvp` uses ``torch.func.jvp`` and :meth:`Linearization.vjp`
    the stored VJP: the matrix-free path.

    >>> import torch
    >>> res = residuals_torch(lambda p: p ** 2 - 1.0)
    >>> r, J = res(torch.tensor([2.0, 3.0], dtype=torch.float64))
    >>> J
    tensor([[4., 0.],
            [0., 6.]], dtype=torch.float64)
    """
    check_callable(residual_fn, "residual_fn")
    if mode not in ("rev", "fwd"):
        raise ValueError(f"mode: expected 'rev' or 'fwd', got {mode!r}")
    import torch
    import torch.func

    def res_fn(params: Params, *batch: Any) -> Linearization:
        x, leaves, spec, be = _flat_params(params)
        if be is not _backend.TORCH:
            raise TypeError("params: residuals_torch needs torch params; got NumPy arrays")
        sizes = [int(leaf.numel()) for leaf in leaves]
        x = x.detach()

        def f(v: Any) -> Any:
            parts = torch.split(v, sizes)
            p = spec.unflatten([q.reshape(leaf.shape) for q, leaf in zip(parts, leaves)])
            return ravel_residuals(residual_fn(p, *batch), v)

        r, vjp_fn = torch.func.vjp(f, x)  # type: ignore[misc]
        r = r.detach()
        dt = x.dtype

        def jacobian() -> Any:
            if mode == "fwd":
                return torch.func.jacfwd(f)(x).to(dt)  # forward mode may promote float32
            eye = torch.eye(r.numel(), dtype=r.dtype, device=r.device)
            return torch.func.vmap(vjp_fn)(eye)[0].to(dt)

        def jvp(v: Any) -> Any:
            return torch.func.jvp(f, (x,), (v.to(dt),))[1].to(dt)

        def vjp(u: Any) -> Any:
            return vjp_fn(u.to(r.dtype))[0].to(dt)

        return Linearization(r, x.numel(), jacobian=jacobian, jvp=jvp, vjp=vjp)

    return res_fn


def _check_step(step: Any) -> None:
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            raise TypeError(f"step: expected a number or None, got {type(step).__name__}")
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step: expected a finite number > 0, got {step}")


def residuals_finite_differences(
    residual_fn: Callable[..., Any],
    *,
    step: float | None = None,
    method: Literal["2-point", "3-point"] = "2-point",
) -> ResidualFn:
    """A residual provider whose Jacobian comes from finite differences (either backend).

    Column ``j`` of ``J`` is :math:`(r(x + h_j e_j) - r(x)) / h_j` (``"2-point"``, ``n``
    extra residual evaluations, :math:`h_j = \\sqrt{\\epsilon}\\max(1, |x_j|)`) or
    :math:`(r(x + h_j e_j) - r(x - h_j e_j)) / 2h_j` (``"3-point"``, ``2n``,
    :math:`h_j = \\epsilon^{1/3}\\max(1, |x_j|)`), with :math:`\\epsilon` the machine
    epsilon of the params' dtype (the steps of scipy's ``approx_derivative``).
    Differences are taken in float64 on the host. ``jvp(v)`` costs one residual
    evaluation (a forward difference along ``v``); ``vjp`` forms ``J``.

    Args:
      residual_fn: ``residual_fn(params, *batch) -> residuals`` (any pytree).
      step: an absolute step ``h`` for every coordinate instead of the default.
      method: ``"2-point"`` (default) or ``"3-point"``.

    >>> import numpy as np
    >>> res = residuals_finite_differences(lambda p: p ** 3, method="3-point")
    >>> r, J = res(np.array([2.0]))
    >>> bool(abs(J[0, 0] - 12.0) < 1e-6)
    True
    """
    check_callable(residual_fn, "residual_fn")
    _check_step(step)
    if method not in ("2-point", "3-point"):
        raise ValueError(f"method: expected '2-point' or '3-point', got {method!r}")

    def res_fn(params: Params, *batch: Any) -> Linearization:
        x, leaves, spec, be = _flat_params(params)
        r = ravel_residuals(residual_fn(params, *batch), x)
        x_host = _backend.to_numpy(x).astype(np.float64)
        eps = float(np.finfo(_backend.to_numpy(x).dtype).eps)
        r_host = _backend.to_numpy(r).astype(np.float64)

        def at(xh: np.ndarray) -> np.ndarray:
            new = be.unravel(be.from_numpy(xh, x), leaves)
            return _backend.to_numpy(
                ravel_residuals(residual_fn(spec.unflatten(new), *batch), x)
            ).astype(np.float64)

        def jacobian() -> Any:
            cols = []
            for j in range(x_host.size):
                e = np.zeros_like(x_host)
                if method == "2-point":
                    h = step or math.sqrt(eps) * max(1.0, abs(x_host[j]))
                    e[j] = h
                    cols.append((at(x_host + e) - r_host) / ((x_host + e)[j] - x_host[j]))
                else:
                    h = step or eps ** (1.0 / 3.0) * max(1.0, abs(x_host[j]))
                    e[j] = h
                    cols.append((at(x_host + e) - at(x_host - e)) / (2.0 * h))
            return be.from_numpy(np.stack(cols, 1), r)

        def jvp(v: Any) -> Any:
            vh = _backend.to_numpy(v).astype(np.float64)
            vn = float(np.linalg.norm(vh))
            if vn == 0.0:
                return be.from_numpy(np.zeros_like(r_host), r)
            h = (step or math.sqrt(eps) * max(1.0, float(np.linalg.norm(x_host)))) / vn
            return be.from_numpy((at(x_host + h * vh) - r_host) / h, r)

        return Linearization(r, x_host.size, jacobian=jacobian, jvp=jvp)

    return res_fn


def residuals_matrix_free(
    residual_fn: Callable[..., Any], jvp_fn: Callable[..., Any], vjp_fn: Callable[..., Any]
) -> ResidualFn:
    """A residual provider from hand-written Jacobian products (``J`` never formed
    unless asked for, then by ``n`` products).

    Args:
      residual_fn: ``residual_fn(params, *batch) -> residuals``.
      jvp_fn: ``jvp_fn(params, v, *batch) -> J v`` with ``v`` flat (length ``n``).
      vjp_fn: ``vjp_fn(params, u, *batch) -> J^T u`` with ``u`` flat (length ``m``).

    >>> import numpy as np
    >>> a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> res = residuals_matrix_free(lambda p: a @ p, lambda p, v: a @ v, lambda p, u: u @ a)
    >>> lin = res(np.zeros(2))
    >>> lin.vjp(np.ones(3)), lin.jacobian_formed
    (array([ 9., 12.]), False)
    """
    check_callable(residual_fn, "residual_fn")
    check_callable(jvp_fn, "jvp_fn")
    check_callable(vjp_fn, "vjp_fn")

    def res_fn(params: Params, *batch: Any) -> Linearization:
        x, _, _, be = _flat_params(params)
        r = ravel_residuals(residual_fn(params, *batch), x)
        return Linearization(
            r,
            be.size(x),
            jvp=lambda v: ravel_residuals(jvp_fn(params, v, *batch), x, what="jvp_fn"),
            vjp=lambda u: ravel_residuals(vjp_fn(params, u, *batch), x, what="vjp_fn"),
        )

    return res_fn


@attrs.frozen
class JacobianCheckReport:
    """The outcome of :func:`check_jacobian`.

    Attributes:
      ok: whether every entry satisfies ``|J - R| <= atol + rtol * |R|``.
      max_abs_error: ``max |J - R|``.
      max_rel_error: ``max |J - R| / max(|R|, tiny)``.
      worst_entry: ``(i, j)``, the entry where the tolerance is most violated.
      residual_abs_error: ``max |r - r_ref|`` between the two providers' residuals.
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_entry: tuple[int, int]
    residual_abs_error: float

    def __bool__(self) -> bool:
        return self.ok


def check_jacobian(
    res_fn: ResidualFn,
    reference: ResidualFn | None,
    params: Params,
    *batch: Any,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> JacobianCheckReport:
    """Compare the Jacobian of ``res_fn`` with ``reference`` at ``params``.

    Args:
      res_fn: the residual provider to check.
      reference: another provider; ``None`` means central finite differences of
        ``res_fn``'s residuals (:func:`residuals_finite_differences` with
        ``method="3-point"``).
      params: where to compare.
      rtol, atol: the tolerance ``|J - R| <= atol + rtol |R|`` entry by entry.

    >>> import numpy as np
    >>> res = residuals_from_functions(lambda p: np.sin(p), lambda p: np.diag(np.cos(p)))
    >>> check_jacobian(res, None, np.array([0.3, 1.2])).ok
    True
    """
    check_callable(res_fn, "res_fn")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    lin = res_fn(params, *batch)
    if reference is None:
        reference = residuals_finite_differences(
            lambda p, *b: res_fn(p, *b).residuals, method="3-point"
        )
    check_callable(reference, "reference")
    ref = reference(params, *batch)
    j1 = _backend.to_numpy(lin.jacobian()).astype(np.float64)
    j2 = _backend.to_numpy(ref.jacobian()).astype(np.float64)
    if j1.shape != j2.shape:
        raise ValueError(f"reference: Jacobian shape {j2.shape} differs from {j1.shape}")
    d = np.abs(j1 - j2)
    tiny = np.finfo(np.float64).tiny
    ratio = d / (atol + rtol * np.abs(j2) + tiny)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    r_err = np.abs(
        _backend.to_numpy(lin.residuals).astype(np.float64)
        - _backend.to_numpy(ref.residuals).astype(np.float64)
    )
    return JacobianCheckReport(
        bool(np.all(d <= atol + rtol * np.abs(j2))),
        float(d.max()),
        float((d / np.maximum(np.abs(j2), tiny)).max()),
        (int(worst[0]), int(worst[1])),
        float(r_err.max()),
    )
