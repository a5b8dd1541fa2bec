"""Scalings from per-leaf (matrix or block) statistics: factored second moments
(Adafactor), block RMS, Newton–Schulz orthogonalisation (Muon), the layer-wise trust
ratio (LARS/LAMB) and SM3's per-axis accumulators."""


from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import optree

from fnopt import backend as _backend
from fnopt import tree
from fnopt._base import (
    Params,
    State,
    Transform,
    Updates,
    check_bool,
    check_int,
    check_nonnegative,
    check_unit_interval,
)
from fnopt.transforms._common import (
    _builtin,
    _check_real,
    _dst,
    _flat,
    _stateless_on_params,
)


class ScaleByFactoredRmsState(NamedTuple):
    """Second-moment estimates: ``v_row`` (shape ``(..., m, 1)``) and ``v_col``
    (``(..., 1, n)``) for leaves with two or more dimensions, ``v`` (the leaf's shape)
    for the others; the unused slots hold 0-d zeros."""

    count: int  # type: ignore[assignment]
    v_row: Any
    v_col: Any
    v: Any


def _eps_for(x: Any, eps: float | None) -> float:
    if eps is not None:
        return eps
    return float(np.finfo(_backend.dtype_name(x.dtype)).eps)


def _factored_rms_init(params: Params) -> ScaleByFactoredRmsState:
    """Zero row/column statistics for leaves of two or more dimensions, a zero
    second moment for the others (0-d zeros in the unused slots)."""
    leaves, spec, be = _flat(params)
    zeros = be.zeros_like(leaves)
    rows, cols, vs = [], [], []
    for x, z in zip(leaves, zeros):
        zero = be.scalar(0.0, x)
        if x.ndim > 1:
            rows.append(be.mean([z], -1)[0])
            cols.append(be.mean([z], -2)[0])
            vs.append(zero)
        else:
            rows.append(zero)
            cols.append(be.clone([zero])[0])
            vs.append(z)
    return ScaleByFactoredRmsState(
        0, spec.unflatten(rows), spec.unflatten(cols), spec.unflatten(vs)
    )


def _factored_variance(
    be: Any, g: list[Any], rows: list[Any], cols: list[Any], w: float,
    eps: float | None, inplace: bool,
) -> tuple[list[Any], list[Any], list[Any]]:
    """New row and column statistics of the matrix leaves ``g`` and the variance
    estimate :math:`R_t C_t / \\max(\\text{mean}_{-2}(R_t), \\epsilon_1)` they give."""
    sq = be.mul(g, g)
    new_rows = be.lerp(rows, be.mean(sq, -1), w, _dst(rows, inplace))
    new_cols = be.lerp(cols, be.mean(sq, -2), w, _dst(cols, inplace))
    row_means = be.mean(new_rows, -2)
    floors = [be.clip([m], _eps_for(x, eps), math.inf)[0] for m, x in zip(row_means, g)]
    return new_rows, new_cols, be.div(be.mul(new_rows, new_cols), floors)


def scale_by_factored_rms(
    beta2_decay: float = -0.8, eps: float | None = None, d: float = 1.0
) -> Transform:
    """Adafactor's normalisation: divide by a factored second-moment estimate, then
    clip the update's RMS (torch.optim.Adafactor arithmetic).

    With :math:`\\beta_{2,t} = 1 - t^{c}` (:math:`c` = ``beta2_decay``), for a leaf of
    two or more dimensions (the last two factored):
    :math:`R_t = \\beta_{2,t} R_{t-1} + (1-\\beta_{2,t})\\,\\text{mean}_{-1}(g_t^2)`,
    :math:`C_t` likewise over axis -2,
    :math:`\\hat V_t = R_t C_t / \\max(\\text{mean}_{-2}(R_t), \\epsilon_1)`; for other
    leaves :math:`\\hat V_t = \\beta_{2,t}\\hat V_{t-1} + (1-\\beta_{2,t})g_t^2`. Then
    :math:`u_t = g_t / \\sqrt{\\max(\\hat V_t, \\epsilon_1^2)}` divided by
    :math:`\\max(1, \\text{RMS}(u_t)/d)`, leaf by leaf.

    Args:
      beta2_decay: :math:`c` <= 0.
      eps: :math:`\\epsilon_1` >= 0; ``None`` (torch's default) uses the machine epsilon
        of each leaf's dtype.
      d: the RMS clipping threshold >= 1.

    Returns:
      A :class:`fnopt.Transform`. (One host synchronisation per leaf on GPUs is
      avoided: the per-leaf RMS stays a 0-d array.)

    >>> import numpy as np
    >>> t = scale_by_factored_rms()
    >>> u, s = t.update(np.array([[3.0, 4.0]]), t.init(np.zeros((1, 2))))
    >>> u.shape, s.v_row.shape, s.v_col.shape
    ((1, 2), (1, 1), (1, 2))

    Shazeer and Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    ICML 2018.
    """
    _check_real("beta2_decay", beta2_decay)
    if beta2_decay > 0:
        raise ValueError(f"beta2_decay: expected a number <= 0, got {beta2_decay}")
    if eps is not None:
        check_nonnegative("eps", eps)
    check_nonnegative("d", d)
    if d < 1:
        raise ValueError(f"d: expected a number >= 1, got {d}")

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        t = state.count + 1
        w = float(t) ** beta2_decay  # 1 - beta2_t
        rows = spec.flatten_up_to(state.v_row)
        cols = spec.flatten_up_to(state.v_col)
        vs = spec.flatten_up_to(state.v)
        fac = [i for i, x in enumerate(g) if x.ndim > 1]
        vec = [i for i, x in enumerate(g) if x.ndim <= 1]
        var: list[Any] = [None] * len(g)
        if fac:
            new_rows, new_cols, est = _factored_variance(
                be, [g[i] for i in fac], [rows[i] for i in fac], [cols[i] for i in fac],
                w, eps, inplace,
            )
            for j, i in enumerate(fac):
                rows[i], cols[i], var[i] = new_rows[j], new_cols[j], est[j]
        if vec:
            gv = [g[i] for i in vec]
            old_vs = [vs[i] for i in vec]
            new_vs = be.lerp(old_vs, be.mul(gv, gv), w, _dst(old_vs, inplace))
            for j, i in enumerate(vec):
                vs[i] = var[i] = new_vs[j]
        floored = [be.clip([v], _eps_for(x, eps) ** 2, math.inf)[0] for v, x in zip(var, g)]
        u = be.div(g, be.sqrt(floored))
        rms = [n / (math.sqrt(be.size(x)) * d) for n, x in zip(be.norms(u), u)]
        out = be.div(u, [r.clip(min=1.0) for r in rms])
        return spec.unflatten(out), ScaleByFactoredRmsState(
            t, spec.unflatten(rows), spec.unflatten(cols), spec.unflatten(vs)
        )

    return _builtin(
        _factored_rms_init, update, "scale_by_factored_rms", beta2_decay=beta2_decay, eps=eps, d=d
    )


def scale_by_param_block_rms(min_scale: float = 1e-3) -> Transform:
    """Scale each leaf's update by the RMS of that leaf of the params (Adafactor's
    relative step size): :math:`u \\leftarrow u\\,\\max(\\epsilon_2, \\text{RMS}(p))`
    with :math:`\\epsilon_2` = ``min_scale``.

    >>> import numpy as np, fnopt
    >>> t = scale_by_param_block_rms()
    >>> u, _ = t.update(np.array([1.0, 1.0]), t.init(None), np.array([3.0, 4.0]))
    >>> u.round(4)
    array([3.5355, 3.5355])
    """
    check_nonnegative("min_scale", min_scale)

    def fn(u: list[Any], p: list[Any], be: _backend.Backend) -> list[Any]:
        scales = [
            (n / math.sqrt(be.size(x))).clip(min=min_scale) for n, x in zip(be.norms(p), p)
        ]
        return be.mul(u, scales)

    return _stateless_on_params(fn, "scale_by_param_block_rms", min_scale=min_scale)


class ScaleByMuonState(NamedTuple):
    """``mu``: the momentum buffer."""

    count: int  # type: ignore[assignment]
    mu: Any


def _newton_schulz(x: Any, be: _backend.Backend, coeffs: tuple[float, float, float],
                   steps: int, eps: float, dtype: str | None = None) -> Any:
    """The quintic Newton-Schulz iteration towards the orthogonal factor of ``x``, in
    the dtype named ``dtype`` (``None``: ``x``'s own), the result in ``x``'s dtype."""
    if dtype is not None and _backend.dtype_name(x.dtype) != dtype:
        return _newton_schulz_low(x, be, coeffs, steps, eps, dtype)
    a, b, c = coeffs
    tall = x.shape[0] > x.shape[1]
    m = x.T if tall else x
    m = m / be.norms([m])[0].clip(min=eps)
    for _ in range(steps):
        gram = m @ m.T
        m = a * m + (b * gram + c * (gram @ gram)) @ m
    return m.T if tall else m


def _newton_schulz_low(x: Any, be: _backend.Backend, coeffs: tuple[float, float, float],
                       steps: int, eps: float, dtype: str) -> Any:
    """:func:`_newton_schulz` in the low precision ``dtype`` as torch.optim.Muon runs it:
    every torch op (the norm, the division, each ``addmm``) rounds its result to
    ``dtype`` once, its arithmetic carried in float32 (a matrix product accumulates in
    float32); the result in ``x``'s dtype."""
    wide = "float64" if dtype == "float64" else "float32"

    def rnd(t: Any) -> Any:
        return be.cast(be.cast([t], dtype), wide)[0]

    a, b, c = coeffs
    tall = x.shape[0] > x.shape[1]
    m = be.cast(be.cast([x.T if tall else x], dtype), wide)[0]  # one rounding, as torch
    m = rnd(m / rnd(be.norms([m])[0]).clip(min=eps))
    for _ in range(steps):
        gram = rnd(m @ m.T)
        m = rnd(a * m + rnd(b * gram + c * (gram @ gram)) @ m)
    return be.cast([m.T if tall else m], _backend.dtype_name(x.dtype))[0]


_MUON_LR_ADJUST = ("original", "match_rms_adamw")
_NS_DTYPES = ("bfloat16", "float16", "float32", "float64")


def _check_ns_dtype(ns_dtype: Any) -> str | None:
    """``ns_dtype`` as a dtype name (``"bfloat16"`` for ``torch.bfloat16`` too)."""
    if ns_dtype is None:
        return None
    name = _backend.dtype_name(ns_dtype)
    if name not in _NS_DTYPES:
        raise ValueError(
            f"ns_dtype: expected None (the params' dtype) or one of {_NS_DTYPES} (torch's "
            f"Muon: 'bfloat16'), got {ns_dtype!r}"
        )
    return name


def _check_ns_backend(leaves: list[Any], ns_dtype: str | None) -> None:
    """The params' backend must have ``ns_dtype`` (NumPy lacks bfloat16)."""
    if ns_dtype is None or not leaves:
        return
    be = _backend.of_leaves(leaves)
    try:
        be.cast([be.scalar(0.0, leaves[0])], ns_dtype)
    except TypeError:
        raise TypeError(
            f"ns_dtype: {ns_dtype!r} needs torch params (NumPy has no {ns_dtype}); use "
            "ns_dtype=None (the params' dtype) or 'float16' with NumPy params"
        ) from None


def scale_by_muon(
    momentum: float = 0.95,
    *,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    ns_steps: int = 5,
    eps: float = 1e-7,
    adjust_lr_fn: str | None = None,
    ns_dtype: Any = None,
) -> Transform:
    """Muon's direction for matrix leaves: momentum, then orthogonalisation by
    Newton-Schulz iterations (torch.optim.Muon's; in bfloat16 with ``ns_dtype``).

    :math:`b_t = \\mu b_{t-1} + (1-\\mu) g_t`, :math:`d_t = (1-\\mu) g_t + \\mu b_t`
    with Nesterov (else :math:`b_t`), :math:`u_t = s\\,\\text{NS}(d_t)` where NS runs
    ``ns_steps`` iterations :math:`X \\leftarrow aX + (bA + cA^2)X`, :math:`A = XX^T`,
    from :math:`X_0 = d_t / \\max(\\|d_t\\|_F, \\epsilon)` (on the transpose of a tall
    matrix), and :math:`s = \\sqrt{\\max(1, m/n)}` for an :math:`m\\times n` leaf
    (``adjust_lr_fn="original"``/``None``), or :math:`0.2\\sqrt{\\max(m, n)}`
    (``"match_rms_adamw"``).

    Args:
      momentum: :math:`\\mu` in [0, 1].
      nesterov: Nesterov momentum (torch's default).
      ns_coefficients: :math:`(a, b, c)`.
      ns_steps: number of iterations, 0 <= ns_steps < 100.
      eps: floor of the norm, >= 0.
      adjust_lr_fn: ``None``/``"original"`` or ``"match_rms_adamw"``.
      ns_dtype: the iteration's dtype, ``None`` (the params') or ``"bfloat16"`` (torch's;
        torch params), ``"float16"``, ``"float32"``, ``"float64"``; the result in the params'.

    Returns:
      A :class:`fnopt.Transform`; every leaf must be a matrix (use
      :func:`partition` to send the other leaves elsewhere).

    >>> import numpy as np
    >>> t = scale_by_muon(ns_steps=20, ns_coefficients=(1.5, -0.5, 0.0))
    >>> u, _ = t.update(np.diag([3.0, 0.5]), t.init(np.zeros((2, 2))))
    >>> np.round(u, 3)
    array([[1., 0.],
           [0., 1.]])

    Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024;
    Liu et al., "Muon is Scalable for LLM Training", 2025 (``match_rms_adamw``).
    """
    check_bool("nesterov", nesterov)
    check_unit_interval("momentum", momentum, closed=True)
    check_int("ns_steps", ns_steps, 0)
    if ns_steps >= 100:
        raise ValueError(f"ns_steps: expected fewer than 100 iterations, got {ns_steps}")
    if len(ns_coefficients) != 3:
        raise ValueError(f"ns_coefficients: expected three numbers, got {ns_coefficients}")
    for k in ns_coefficients:
        _check_real("ns_coefficients", k)
    check_nonnegative("eps", eps)
    if adjust_lr_fn is not None and adjust_lr_fn not in _MUON_LR_ADJUST:
        raise ValueError(
            f"adjust_lr_fn: expected None or one of {_MUON_LR_ADJUST}, got {adjust_lr_fn!r}"
        )
    coeffs = (float(ns_coefficients[0]), float(ns_coefficients[1]), float(ns_coefficients[2]))
    ns_dtype = _check_ns_dtype(ns_dtype)

    def ratio(shape: tuple[int, ...]) -> float:
        m, n = shape[0], shape[1]
        if adjust_lr_fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(m, n))
        return math.sqrt(max(1.0, m / n))

    def init(params: Params) -> ScaleByMuonState:
        leaves = optree.tree_leaves(params)
        for path, x in zip(optree.tree_paths(params), leaves):
            if x.ndim != 2:
                where = "".join(f"[{k!r}]" for k in path) or "<root>"
                raise ValueError(
                    f"params: leaf {where} has shape {tuple(x.shape)}; scale_by_muon "
                    f"needs matrices (route other leaves with fnopt.partition)"
                )
        _check_ns_backend(leaves, ns_dtype)
        return ScaleByMuonState(0, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        mu = spec.flatten_up_to(state.mu)
        mu = be.lerp(mu, g, 1.0 - momentum, _dst(mu, inplace))
        d = be.lerp(g, mu, momentum) if nesterov else mu
        out = [
            be.scale([_newton_schulz(x, be, coeffs, ns_steps, eps, ns_dtype)],
                     ratio(tuple(x.shape)))[0]
            for x in d
        ]
        return spec.unflatten(out), ScaleByMuonState(state.count + 1, spec.unflatten(mu))

    return _builtin(
        init, update, "scale_by_muon", momentum=momentum, nesterov=nesterov,
        ns_coefficients=coeffs, ns_steps=ns_steps, eps=eps, adjust_lr_fn=adjust_lr_fn,
        ns_dtype=ns_dtype,
    )


def scale_by_trust_ratio(
    min_norm: float = 0.0, trust_coefficient: float = 1.0, eps: float = 0.0
) -> Transform:
    """Scale each leaf's update by the trust ratio :math:`\\|p\\| / \\|u\\|` (LARS, LAMB).

    :math:`u \\leftarrow u \\cdot c\\,\\|p\\| / (\\|u\\| + \\epsilon)` leaf by leaf, with
    :math:`c` = ``trust_coefficient``; a leaf whose params or update norm is
    ``<= min_norm`` is left unscaled (optax's semantics for ``min_norm=0``; with
    ``min_norm > 0`` optax floors the norms at ``min_norm`` instead, which differs only
    for such leaves). The norms are read on the host (one synchronisation per leaf on
    a GPU).

    Args:
      min_norm: the norm at or below which a leaf is not scaled, >= 0.
      trust_coefficient: :math:`c` >= 0.
      eps: added to the update norm, >= 0.

    Returns:
      A :class:`fnopt.Transform`; its ``update`` needs params.

    >>> import numpy as np
    >>> t = scale_by_trust_ratio()
    >>> t.update(np.array([0.0, 2.0]), t.init(np.zeros(2)), np.array([3.0, 4.0]))[0]
    array([0., 5.])

    You et al., "Large Batch Training of Convolutional Networks", 2017.
    """
    check_nonnegative("min_norm", min_norm)
    check_nonnegative("trust_coefficient", trust_coefficient)
    check_nonnegative("eps", eps)

    def fn(u: list[Any], p: list[Any], be: _backend.Backend) -> list[Any]:
        ratios = []
        for pn, un in zip(be.norms(p), be.norms(u)):
            pf, uf = be.to_float(pn), be.to_float(un)
            ok = pf > min_norm and uf > min_norm
            ratios.append(trust_coefficient * pf / (uf + eps) if ok else 1.0)
        return [be.scale([x], r)[0] for x, r in zip(u, ratios)]

    return _stateless_on_params(
        fn, "scale_by_trust_ratio", min_norm=min_norm, trust_coefficient=trust_coefficient,
        eps=eps,
    )




class ScaleBySM3State(NamedTuple):
    """``mu``: per leaf, one accumulator per axis (the whole leaf for a vector);
    ``nu``: the momentum of the scaled updates."""

    count: int  # type: ignore[assignment]
    mu: Any
    nu: Any


def _sm3_accumulate(g: Any, mu: list[Any], b2: float, xp: Any) -> Any:
    """SM3's per-element bound :math:`c_1 g^2 + c_2 \\min_r \\mu_r`, each axis
    accumulator broadcast along its own axis (a vector's accumulator is itself)."""
    c1 = 1.0 if b2 == 1.0 else 1.0 - b2
    if g.ndim < 2:
        return c1 * g * g + b2 * mu[0].reshape(g.shape)
    shaped = [m.reshape([1] * i + [g.shape[i]] + [1] * (g.ndim - i - 1))
              for i, m in enumerate(mu)]
    low = shaped[0]
    for m in shaped[1:]:
        low = xp.minimum(low, m)
    return c1 * g * g + b2 * low


def _sm3_axes(acc: Any, xp: Any) -> list[Any]:
    """The new axis accumulators: the maximum of ``acc`` over the other axes."""
    if acc.ndim < 2:
        return [acc.reshape(-1)]
    return [xp.amax(acc, tuple(j for j in range(acc.ndim) if j != i)) for i in range(acc.ndim)]


def scale_by_sm3(b1: float = 0.9, b2: float = 1.0, eps: float = 1e-8) -> Transform:
    """SM3's memory-efficient adaptive scaling (optax.scale_by_sm3).

    For a leaf with axes :math:`r = 1..k` it keeps one accumulator :math:`\\mu_r` per
    axis (a vector keeps a full one). At each step
    :math:`\\nu = c_1 g^2 + \\beta_2 \\min_r \\mu_r` (element-wise, each :math:`\\mu_r`
    broadcast along its axis; :math:`c_1 = 1` for :math:`\\beta_2 = 1`, else
    :math:`1-\\beta_2`), :math:`\\mu_r \\leftarrow \\max_{\\text{other axes}} \\nu`, and
    the update is the momentum :math:`m_t = \\beta_1 m_{t-1} + (1-\\beta_1)\\,g /
    \\sqrt{\\nu + \\epsilon}` (0 where :math:`\\nu = 0`).

    Args:
      b1: momentum decay :math:`\\beta_1` in [0, 1].
      b2: accumulator decay :math:`\\beta_2` in [0, 1] (1: SM3's sums).
      eps: added under the square root, >= 0.

    Returns:
      A :class:`fnopt.Transform` with state :class:`ScaleBySM3State`.

    >>> import numpy as np
    >>> t = scale_by_sm3(b1=0.0)
    >>> u, s = t.update(np.array([[3.0, 4.0]]), t.init(np.zeros((1, 2))))
    >>> u.round(6), s.mu[0]
    (array([[1., 1.]]), [array([16.]), array([ 9., 16.])])

    Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019.
    """
    check_unit_interval("b1", b1, closed=True)
    check_unit_interval("b2", b2, closed=True)
    check_nonnegative("eps", eps)

    def init(params: Params) -> ScaleBySM3State:
        leaves, _, be = _flat(params)
        if any(be.is_complex(x) for x in leaves):
            raise TypeError("scale_by_sm3: complex params are not supported")
        mu = [_sm3_axes(z, be.xp) for z in be.zeros_like(leaves)]
        return ScaleBySM3State(0, mu, tree.zeros_like(params))

    def update(
        updates: Updates, state: State, params: Params | None = None, *, inplace: bool = False
    ) -> tuple[Updates, State]:
        del params
        g, spec, be = _flat(updates)
        xp = be.xp
        accs = [_sm3_accumulate(x, m, b2, xp) for x, m in zip(g, state.mu)]
        scaled = [x * xp.where(a > 0, 1.0 / xp.sqrt(xp.where(a > 0, a + eps, 1.0)), 0.0)
                  for x, a in zip(g, accs)]
        nu = spec.flatten_up_to(state.nu)
        nu = be.lerp(nu, scaled, 1.0 - b1, _dst(nu, inplace))
        mu = [_sm3_axes(a, xp) for a in accs]
        return spec.unflatten(nu), ScaleBySM3State(state.count + 1, mu, spec.unflatten(nu))

    return _builtin(init, update, "scale_by_sm3", b1=b1, b2=b2, eps=eps)
