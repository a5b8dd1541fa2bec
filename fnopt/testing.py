"""A testing kit for people writing their own optimizers.

* :func:`check_optimizer` runs fnopt's conformance battery on any
  :class:`fnopt.Optimizer` and reports each property by name (no hypothesis needed).
* Hypothesis strategies — :func:`arrays`, :func:`pytrees`, :func:`quadratics` and
  hyperparameters (:func:`learning_rates`, :func:`decay_rates`, :func:`epsilons`,
  :func:`hyperparameters`) — for property tests of your own. hypothesis is an optional
  dependency: it is imported when a strategy is first built, and a clear
  ``ImportError`` says how to install it when it is missing.
* :func:`make_quadratic` builds a convex quadratic with a known minimum over any
  params pytree, on either backend.

>>> import fnopt
>>> report = fnopt.testing.check_optimizer(lambda: fnopt.sgd(1e-2, momentum=0.9))
>>> report.ok, report.failed
(True, ())
>>> print(report)  # doctest: +ELLIPSIS
conformance of sgd: all 10 properties hold
  ok    constructs ...
"""

from __future__ import annotations

import inspect
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import Descent, Optimizer, is_optimizer
from fnopt.loop import StepFailed
from fnopt.objectives.quadratic import Quadratic as Quadratic
from fnopt.objectives.quadratic import make_quadratic as make_quadratic

__all__ = [
    "check_optimizer",
    "optimizer_factories",
    "ConformanceReport",
    "PropertyResult",
    "PROPERTIES",
    "Quadratic",
    "make_quadratic",
    "Pair",
    "arrays",
    "pytrees",
    "quadratics",
    "learning_rates",
    "decay_rates",
    "epsilons",
    "hyperparameters",
]

BACKENDS = ("numpy", "torch")
DTYPES = ("float32", "float64")


class Pair(NamedTuple):
    """A NamedTuple node used in generated pytrees (so trees exercise NamedTuples)."""

    first: Any
    second: Any


# -- the conformance battery ------------------------------------------------------------


PROPERTIES = (
    "constructs",
    "state_conventions",
    "purity",
    "structure_and_dtype",
    "state_structure_stable",
    "deterministic",
    "records_value",
    "backend_agreement",
    "descent",
    "save_load",
)
"""The properties :func:`check_optimizer` checks, in the order it reports them:

* ``constructs`` — ``make_opt()`` returns an :class:`fnopt.Optimizer`.
* ``state_conventions`` — the state is a NamedTuple with ``count`` (a Python int, 0
  after ``init``, +1 per step), ``value`` and ``grad_norm`` (0-d arrays/tensors).
* ``purity`` — ``init`` and ``step`` leave params, state and gradients unchanged.
* ``structure_and_dtype`` — new params keep the structure, shapes, dtypes and backend
  (float32 and float64, NumPy and torch, a single array and a nested tree).
* ``state_structure_stable`` — the state is a pytree of arrays/tensors, numbers and
  ``None`` whose structure and leaf types/shapes/dtypes do not change between steps.
* ``deterministic`` — the same step twice gives bitwise identical results.
* ``records_value`` — ``state.value`` / ``state.grad_norm`` are the loss and gradient
  norm at the params the step was given (``value_at="input"``) or returned
  (``"output"``).
* ``backend_agreement`` — NumPy and torch trajectories agree in float64 (to 1e-9).
* ``descent`` — a few steps lower a convex quadratic, staying finite.
* ``save_load`` — :func:`fnopt.save` / :func:`fnopt.load` round-trip the state with its
  exact types and values, and the next step from the loaded state is bitwise identical.
"""


@attrs.frozen
class PropertyResult:
    """One property's outcome: ``passed`` is ``True``, ``False``, or ``None`` when the
    property was skipped (``message`` says why)."""

    name: str
    passed: bool | None
    message: str = ""


@attrs.frozen
class ConformanceReport:
    """What :func:`check_optimizer` returns; truthy when no property failed.

    Attributes:
      name: the optimizer's name (from ``make_opt``).
      results: one :class:`PropertyResult` per property, in :data:`PROPERTIES` order.
    """

    name: str
    results: tuple[PropertyResult, ...]

    @property
    def ok(self) -> bool:
        """Whether no property failed (skipped ones do not count)."""
        return not self.failed

    @property
    def passed(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if r.passed is True)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if r.passed is False)

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.results if r.passed is None)

    def __getitem__(self, key: str | int) -> PropertyResult:
        """The result of the property named ``key``, or the ``key``-th result (an int,
        in :data:`PROPERTIES` order, as iteration yields them)."""
        if isinstance(key, int) and not isinstance(key, bool):
            return self.results[key]
        for r in self.results:
            if r.name == key:
                return r
        raise KeyError(key)

    def __iter__(self) -> Iterator[PropertyResult]:
        """The :class:`PropertyResult` entries, in :data:`PROPERTIES` order."""
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        n_fail = len(self.failed)
        head = (
            f"conformance of {self.name}: all {len(self.passed)} properties hold"
            if not n_fail
            else f"conformance of {self.name}: {n_fail} of {len(self.results)} properties FAIL"
        )
        if self.skipped:
            head += f" ({len(self.skipped)} skipped)"
        lines = [head]
        for r in self.results:
            mark = {True: "ok", False: "FAIL", None: "skip"}[r.passed]
            lines.append(f"  {mark:<5} {r.name:<24} {r.message}".rstrip())
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the whole report if a property failed."""
        if not self.ok:
            raise AssertionError(str(self))


class _Fail(Exception):
    pass


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise _Fail(message)


def _default_examples() -> list[Any]:
    z = np.zeros
    return [z(5), {"w": z((3, 2)), "b": z(2), "extra": [z(()), Pair(z(4), None)]}]


def _trees(backend: str, dtype: str, examples: Sequence[Any] | None = None) -> list[
    tuple[str, Any]
]:
    trees = list(examples) if examples is not None else _default_examples()
    out = []
    for i, t in enumerate(trees):
        label = "a vector" if examples is None and i == 0 else (
            "a nested tree" if examples is None else f"example {i}")
        shaped = optree.tree_map(lambda x: np.zeros(tuple(x.shape)), t)
        out.append((label, optree.tree_map(lambda x: _backend.array(x, backend, dtype), shaped)))
    return out


def _to_np(x: Any) -> np.ndarray:
    return _backend.to_numpy(x, copy=True)


def _snapshot(tree: Any) -> tuple[Any, list[Any]]:
    leaves, spec = optree.tree_flatten(tree)
    return spec, [_to_np(x) if _is_arr(x) else x for x in leaves]


def _is_arr(x: Any) -> bool:
    return _backend.is_leaf(x)


def _same_bits(a: Any, b: Any) -> bool:
    if _is_arr(a) or _is_arr(b):
        if not (_is_arr(a) and _is_arr(b)):
            return False
        x, y = _to_np(a), _to_np(b)
        return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and bool(a == b)


def _unchanged(tree: Any, snap: tuple[Any, list[Any]]) -> str | None:
    leaves, spec = optree.tree_flatten(tree)
    if spec != snap[0]:
        return "its structure changed"
    for path, x, c in zip(_leaf_names(tree), leaves, snap[1]):
        if not _same_bits(x, c):
            return f"leaf {path} changed"
    return None


def _leaf_names(tree: Any) -> list[str]:
    """Readable leaf paths in optree's leaf order, e.g. ``.inner[0].mu['w']``."""
    accessors = optree.tree_flatten_with_accessor(tree)[0]
    return [a.codify("") or "<root>" for a in accessors]


def _describe(x: Any) -> tuple[Any, ...]:
    """What a state leaf is: its kind (``tensor``, ``ndarray``, a NumPy scalar's type,
    or a Python type), shape, dtype and device."""
    if not _backend.is_leaf(x):
        return (type(x).__name__,)
    kind = "tensor" if _backend.of_value(x) is _backend.TORCH else type(x).__name__
    return (kind, tuple(x.shape), str(x.dtype), str(getattr(x, "device", "cpu")))


def _state_signature(state: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    leaves, spec = optree.tree_flatten(state)
    return spec, [_describe(x) for x in leaves]


def _float(x: Any) -> float:
    return float(x)  # a Python float from a 0-d array/tensor or a number


def _solved(q: Quadratic, p: Any) -> bool:
    """Whether ``p`` solves ``q`` to round-off: its gap to the minimum is at most 1e-10
    of the start's (later steps then depend on the round-off of one CPU)."""
    gap0 = _float(q.loss(q.init_params)) - q.min_value
    return _float(q.loss(p)) - q.min_value <= 1e-10 * gap0


def _name_of(make_opt: Any) -> str:
    name = getattr(make_opt, "__name__", None) or type(make_opt).__name__
    if name == "<lambda>":
        code = getattr(make_opt, "__code__", None)
        names = code.co_names if code is not None else ()
        cand = [n for n in names if n not in ("fnopt", "testing")]
        return cand[0] if cand else "optimizer"
    return str(name)


def optimizer_factories() -> dict[str, Callable[..., Any]]:
    """Every optimizer factory in the :mod:`fnopt` namespace: the callables in
    ``fnopt.__all__`` annotated to return an :class:`fnopt.Optimizer` or a
    :class:`fnopt.Descent`, by name (what the conformance tests, the robustness tables
    and the command line enumerate).

    >>> names = optimizer_factories()
    >>> {"sgd", "adam", "lbfgs", "descent"} <= set(names)
    True
    """
    import fnopt

    found = {}
    for name in fnopt.__all__:
        obj = getattr(fnopt, name)
        if not callable(obj) or isinstance(obj, type):
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        if sig.return_annotation in (Optimizer, "Optimizer", Descent, "Descent"):
            found[name] = obj
    return found


def check_optimizer(
    make_opt: Callable[..., Optimizer | Descent] | Optimizer | Descent,
    *,
    steps: int = 10,
    backends: Sequence[str] = BACKENDS,
    seed: int = 0,
    name: str | None = None,
    takes_problem: bool = False,
    examples: Sequence[Any] | None = None,
) -> ConformanceReport:
    """Run the conformance battery (:data:`PROPERTIES`) on an optimizer.

    Every property is checked on fixed, seeded convex quadratics (:func:`make_quadratic`)
    over a single vector and over a nested pytree, in float32 and float64 — no
    hypothesis needed. Exceptions raised by the optimizer are reported as failures of
    the property that raised them, never propagated.

    Args:
      make_opt: a zero-argument callable returning a fresh :class:`fnopt.Optimizer`
        (e.g. ``lambda: my_opt(learning_rate=1e-2)``; use a learning rate that is small
        for a quadratic with curvatures in [0.5, 2]), or the optimizer itself.
      steps: how many steps each trajectory runs.
      backends: which backends to check; torch is skipped when it is not installed
        (and ``backend_agreement`` with it).
      seed: seeds the quadratics.
      name: the name shown in the report (default: guessed from ``make_opt``).
      takes_problem: call ``make_opt(problem)`` with each :class:`Quadratic` instead,
        for optimizers that need problem-specific providers, e.g.
        ``lambda q: fnopt.newton(q.hessian_fn)``.
      examples: params pytrees whose structure and leaf shapes the checks use (their
        values and backend are ignored), for optimizers that accept only some shapes
        (e.g. matrices); default a vector of 5 and a nested tree with a matrix, a
        vector, a 0-d leaf, a NamedTuple and a ``None``. The last one is used for
        ``descent``.

    Returns:
      A :class:`ConformanceReport`; ``report.ok``, ``report.failed``, ``print(report)``,
      ``report.assert_ok()``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: expected an int >= 2, got {steps!r}")
    for b in backends:
        if b not in BACKENDS:
            raise ValueError(f"backends: expected 'numpy' and/or 'torch', got {b!r}")
    label = name if name is not None else _name_of(make_opt)
    if not callable(make_opt) and not is_optimizer(make_opt):
        raise TypeError(f"make_opt: expected a callable or an Optimizer, got "
                        f"{type(make_opt).__name__}")
    if examples is not None:
        _check_examples(examples)
    opt_box: list[Optimizer | Descent] = []
    results = {"constructs": _property(
        "constructs", lambda: _construct(make_opt, takes_problem, seed, opt_box))}
    if not opt_box:
        for prop in PROPERTIES[1:]:
            results[prop] = PropertyResult(prop, None, "skipped: the optimizer was not built")
        return ConformanceReport(label, tuple(results[p] for p in PROPERTIES))
    make_for = make_opt if takes_problem and callable(make_opt) else None
    battery = _Battery(opt_box[0], make_for, steps=steps, backends=backends, seed=seed,
                       examples=examples)
    for prop, check in battery.checks():
        results[prop] = _property(prop, check)
    return ConformanceReport(label, tuple(results[p] for p in PROPERTIES))


def _property(prop: str, fn: Callable[[], str | None]) -> PropertyResult:
    """Run one property check: it passes (its note), fails (a ``_Fail`` or any
    exception the optimizer under test raised) or is skipped (a note ``"skipped: ..."``)."""
    try:
        note = fn()
    except _Fail as exc:
        return PropertyResult(prop, False, str(exc))
    except Exception as exc:  # the optimizer under test raised
        return PropertyResult(prop, False, f"raised {type(exc).__name__}: {exc}")
    if note is not None and note.startswith("skipped:"):
        return PropertyResult(prop, None, note[len("skipped:"):].strip())
    return PropertyResult(prop, True, note or "")


def _check_examples(examples: Any) -> None:
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Sequence):
        raise TypeError(f"examples: expected a sequence of params pytrees, got "
                        f"{type(examples).__name__}")
    if not examples:
        raise ValueError("examples: expected at least one params pytree")
    for i, ex in enumerate(examples):
        leaves = optree.tree_leaves(ex)
        if not leaves or not all(_is_arr(x) for x in leaves):
            raise ValueError(f"examples: item {i} must be a non-empty pytree of arrays")


def _construct(make_opt: Any, takes_problem: bool, seed: int,
               box: list[Optimizer | Descent]) -> str:
    """The ``constructs`` property: build the optimizer (appended to ``box``)."""
    opt: Any
    if not callable(make_opt):
        opt = make_opt
    else:
        opt = make_opt(make_quadratic(seed=seed)) if takes_problem else make_opt()
    _require(is_optimizer(opt),
             f"make_opt() returned {type(opt).__name__}, not an fnopt.Optimizer")
    _require(opt.value_at in ("input", "output"),
             f"value_at is {opt.value_at!r}, expected 'input' or 'output'")
    box.append(opt)
    return f"value_at={opt.value_at!r}"


class _Battery:
    """The properties after ``constructs``, one method each (see :data:`PROPERTIES`), on
    the cases :func:`check_optimizer` was asked for: every backend (torch when it is
    installed), dtype and example tree.

    ``make_for`` (``takes_problem``) builds a new optimizer for each problem; ``opt`` is
    then the one of the last problem built, as the trajectories need.
    """

    def __init__(self, opt: Optimizer | Descent, make_for: Callable[..., Any] | None, *,
                 steps: int, backends: Sequence[str], seed: int,
                 examples: Sequence[Any] | None) -> None:
        self.opt: Any = opt
        self.make_for = make_for
        self.steps, self.backends, self.seed, self.examples = steps, backends, seed, examples
        self.have_torch = True
        try:
            import torch  # noqa: F401
        except ImportError:
            self.have_torch = False
        self.use = [b for b in backends if b == "numpy" or self.have_torch]
        self.cases = [
            (b, dt, lbl, tree) for b in self.use for dt in DTYPES
            for lbl, tree in _trees(b, dt, examples)
        ]

    def checks(self) -> list[tuple[str, Callable[[], str | None]]]:
        """``(property, check)`` for :data:`PROPERTIES` after ``constructs``, in order."""
        return [
            ("state_conventions", self.state_conventions),
            ("purity", self.purity),
            ("structure_and_dtype", self.structure_and_dtype),
            ("state_structure_stable", self.state_structure_stable),
            ("deterministic", self.deterministic),
            ("records_value", self.records_value),
            ("backend_agreement", self.backend_agreement),
            ("descent", self.descent),
            ("save_load", self.save_load),
        ]

    def problem(self, b: str, dt: str, tree: Any) -> Quadratic:
        q = make_quadratic(tree, seed=self.seed, backend=b, dtype=dt)
        if self.make_for is not None:
            self.opt = self.make_for(q)
        return q

    def run(self, q: Quadratic, n: int) -> list[tuple[Any, Any]]:
        p = q.init_params
        s = self.opt.init(p)
        out = [(p, s)]
        for _ in range(n):
            try:
                p, s = self.opt.step(p, q.grad_fn, s)
            except StepFailed as exc:
                # converged, or a step refused once the problem is solved to round-off
                # (which then depends on the last bits of one CPU): the trajectory ends
                if not (exc.reason.converged or _solved(q, p)):
                    raise
                break
            out.append((p, s))
        return out

    def state_conventions(self) -> str | None:
        for b, dt, _, tree in self.cases[:1] + self.cases[-1:]:
            q = self.problem(b, dt, tree)
            traj = self.run(q, 3)
            for k, (_, s) in enumerate(traj):
                _require(optree.is_namedtuple_instance(s),
                         f"state is a {type(s).__name__}, not a NamedTuple")
                fields = type(s)._fields
                for f in ("count", "value", "grad_norm"):
                    _require(f in fields, f"state {type(s).__name__} has no field {f!r}")
                _require(type(s.count) is int,
                         f"state.count is a {type(s.count).__name__}, not a Python int")
                _require(s.count == k, f"state.count is {s.count} after {k} step(s)")
                if k:
                    for f in ("value", "grad_norm"):
                        v = getattr(s, f)
                        _require(_is_arr(v) and tuple(v.shape) == (),
                                 f"state.{f} is {_describe(v)}, not a 0-d array/tensor")
        return None

    def purity(self) -> str | None:
        for b, dt, lbl, tree in self.cases:
            q = self.problem(b, dt, tree)
            p0 = q.init_params
            snap_p = _snapshot(p0)
            s0 = self.opt.init(p0)
            _require(_unchanged(p0, snap_p) is None, f"init changed params ({b} {dt}, {lbl})")
            grads_seen: list[tuple[Any, tuple[Any, list[Any]]]] = []

            def grad_fn(p: Any, q: Quadratic = q, seen: list[Any] = grads_seen) -> Any:
                v, g = q.grad_fn(p)
                seen.append((g, _snapshot(g)))
                return v, g

            p, s = p0, s0
            for _ in range(3):
                snap_p, snap_s = _snapshot(p), _snapshot(s)
                p1, s1 = self.opt.step(p, grad_fn, s)
                why = _unchanged(p, snap_p)
                _require(why is None, f"step mutated params: {why} ({b} {dt}, {lbl})")
                why = _unchanged(s, snap_s)
                _require(why is None, f"step mutated the state: {why} ({b} {dt}, {lbl})")
                p, s = p1, s1
            for g, snap in grads_seen:
                why = _unchanged(g, snap)
                _require(why is None, f"step mutated the gradients: {why} ({b} {dt}, {lbl})")
        return None

    def structure_and_dtype(self) -> str | None:
        for b, dt, lbl, tree in self.cases:
            q = self.problem(b, dt, tree)
            ref = _state_signature(q.init_params)
            for k, (p, _) in enumerate(self.run(q, 3)[1:], 1):
                sig = _state_signature(p)
                _require(sig[0] == ref[0],
                         f"params structure changed after step {k}: {sig[0]} vs {ref[0]} "
                         f"({b} {dt}, {lbl})")
                for path, got, want in zip(_leaf_names(p), sig[1], ref[1]):
                    _require(got == want, f"params leaf {path} is {got} after step "
                             f"{k}, was {want} ({b} {dt}, {lbl})")
        return f"{len(self.cases)} cases"

    def state_structure_stable(self) -> str | None:
        for b, dt, lbl, tree in self.cases:
            q = self.problem(b, dt, tree)
            traj = self.run(q, 3)
            sigs = [_state_signature(s) for _, s in traj]
            for x in optree.tree_leaves(traj[-1][1]):
                _require(_is_arr(x) or x is None or isinstance(x, (bool, int, float, str)),
                         f"state holds a {type(x).__name__} leaf; a state is a pytree of "
                         f"arrays/tensors and numbers ({b} {dt}, {lbl})")
            # init may hold placeholders of another array kind (a 0-d array where steps
            # give a NumPy scalar), but not another structure: a None that later becomes
            # an array means buffers cannot be allocated once (in place, on a device)
            # and states of different steps cannot be stacked or compared leaf by leaf.
            _require(sigs[0][0] == sigs[1][0],
                     f"init's state structure differs from the steps' "
                     f"({_named_diff(traj[0][1], traj[1][1])}); initialise every field with its "
                     f"final structure, e.g. zeros_like(params) instead of None "
                     f"({b} {dt}, {lbl})")
            for k in range(2, len(sigs)):
                _require(sigs[k] == sigs[1],
                         f"state structure or leaf types changed at step {k}: "
                         f"{_named_diff(traj[1][1], traj[k][1])} ({b} {dt}, {lbl})")
            if sigs[0] != sigs[1]:
                return (f"note: init and step states differ in leaf types "
                        f"({_named_diff(traj[0][1], traj[1][1])})")
        return None

    def deterministic(self) -> str | None:
        for b, dt, lbl, tree in self.cases:
            q = self.problem(b, dt, tree)
            p, s = self.run(q, 2)[-1]
            a: Any = self.opt.step(p, q.grad_fn, s)
            c: Any = self.opt.step(p, q.grad_fn, s)
            la, lc = optree.tree_leaves(a), optree.tree_leaves(c)
            _require(len(la) == len(lc) and all(_same_bits(x, y) for x, y in zip(la, lc)),
                     f"two identical steps gave different results ({b} {dt}, {lbl})")
        return None

    def records_value(self) -> str | None:
        for b, dt, lbl, tree in self.cases:
            if dt != "float64":
                continue
            q = self.problem(b, dt, tree)
            traj = self.run(q, 3)
            for k in range(1, len(traj)):
                at = traj[k - 1][0] if self.opt.value_at == "input" else traj[k][0]
                v, g = q.grad_fn(at)
                s = traj[k][1]
                want_v = _float(v)
                want_g = float(np.sqrt(sum(float((_to_np(x) ** 2).sum())
                                           for x in optree.tree_leaves(g))))
                got_v, got_g = _float(s.value), _float(s.grad_norm)
                _require(math.isclose(got_v, want_v, rel_tol=1e-8, abs_tol=1e-12),
                         f"state.value after step {k} is {got_v}, the loss at the "
                         f"{self.opt.value_at} params is {want_v} ({b}, {lbl})")
                _require(math.isclose(got_g, want_g, rel_tol=1e-8, abs_tol=1e-12),
                         f"state.grad_norm after step {k} is {got_g}, the gradient norm "
                         f"at the {self.opt.value_at} params is {want_g} ({b}, {lbl})")
        return None

    def backend_agreement(self) -> str | None:
        if not ("numpy" in self.backends and "torch" in self.backends):
            return "skipped: needs both backends"
        if not self.have_torch:
            return "skipped: torch is not installed"
        worst = 0.0
        compared = 0
        for (lbl, tn), (_, tt) in zip(_trees("numpy", "float64", self.examples),
                                      _trees("torch", "float64", self.examples)):
            qn = self.problem("numpy", "float64", tn)
            tn_traj = self.run(qn, self.steps)
            tt_traj = self.run(self.problem("torch", "float64", tt), self.steps)
            gaps = [_float(qn.loss(p)) - qn.min_value for p, _ in tn_traj]
            for k, ((pn, sn), (pt, st)) in enumerate(zip(tn_traj, tt_traj)):
                # once a method has solved the problem to round-off, its later steps
                # (step sizes, restarts) legitimately depend on the round-off itself
                if k and gaps[k - 1] <= 1e-10 * gaps[0]:
                    break
                compared = max(compared, k)
                for what, a, c in (("params", pn, pt), ("state", sn, st)):
                    worst = max(worst, _backend_gap(what, a, c, k, lbl))
        return f"max relative difference {worst:.2g} over {compared} steps"

    def descent(self) -> str | None:
        notes = []
        for b in self.use:
            q = self.problem(b, "float64", _trees(b, "float64", self.examples)[-1][1])
            traj = self.run(q, self.steps)
            f0 = _float(q.loss(traj[0][0]))
            fs = [_float(q.loss(p)) for p, _ in traj]
            _require(all(math.isfinite(f) for f in fs), f"the loss became non-finite ({b})")
            _require(fs[-1] < f0, f"loss {fs[-1]:.6g} after {self.steps} steps is not below the "
                     f"start {f0:.6g} ({b}); is the learning rate small and the sign right?")
            notes.append(f"{b} {f0:.3g} -> {fs[-1]:.3g}")
        return "; ".join(notes)

    def save_load(self) -> str | None:
        from fnopt.checkpoint import _collect_types, load, save

        with tempfile.TemporaryDirectory() as d:
            for b, dt, lbl, tree in self.cases:
                q = self.problem(b, dt, tree)
                p, s = self.run(q, 2)[-1]
                path = os.path.join(d, f"{b}-{dt}.npz")
                save(path, p, s, iteration=2)
                types: dict[tuple[str, str], type] = {}
                _collect_types(s, types)
                ck = load(path, types=types.values())
                for what, got, want in (("params", ck.params, p), ("state", ck.state, s)):
                    lg, sg = optree.tree_flatten(got)
                    lw, sw = optree.tree_flatten(want)
                    _require(sg == sw, f"loaded {what} structure {sg} differs from saved {sw} "
                             f"({b} {dt}, {lbl})")
                    for path_, x, y in zip(_leaf_names(want), lg, lw):
                        _require(_describe(x) == _describe(y) and _same_bits(x, y),
                                 f"loaded {what} leaf {path_} differs: {_describe(x)} "
                                 f"vs {_describe(y)} ({b} {dt}, {lbl})")
                a: Any = self.opt.step(ck.params, q.grad_fn, ck.state)
                c: Any = self.opt.step(p, q.grad_fn, s)
                la, lc = optree.tree_leaves(a), optree.tree_leaves(c)
                _require(all(_same_bits(x, y) for x, y in zip(la, lc)),
                         f"the step after loading differs from the step before saving "
                         f"({b} {dt}, {lbl})")
        return None



def _backend_gap(what: str, a: Any, c: Any, k: int, lbl: str) -> float:
    """The largest relative difference between the NumPy tree ``a`` and the torch tree
    ``c`` (``inf`` for NaN) after step ``k`` of the example ``lbl``; a ``_Fail`` when they
    differ in structure, kind, a number, or by more than 1e-9."""
    worst = 0.0
    la, sa = optree.tree_flatten(a)
    lc, sc = optree.tree_flatten(c)
    _require(sa == sc, f"{what} structures differ between backends ({lbl})")
    for path, x, y in zip(_leaf_names(a), la, lc):
        if not (_is_arr(x) or _is_arr(y)):
            close = (
                isinstance(x, float) and isinstance(y, float)
                and (math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
                     or (math.isnan(x) and math.isnan(y)))
            )
            _require(close or _same_bits(x, y),
                     f"{what} leaf {path} is {x!r} on numpy, {y!r} on torch (step {k}, {lbl})")
            continue
        _require(_is_arr(x) and _is_arr(y),
                 f"{what} leaf {path} is an array on one backend only (step {k}, {lbl})")
        xn, yn = _to_np(x), _to_np(y)
        both_nan = np.isnan(xn) & np.isnan(yn)
        err = np.where(both_nan, 0.0, np.abs(xn - yn) / (1.0 + np.abs(xn)))
        e = float(err.max()) if err.size else 0.0
        worst = max(worst, e if not math.isnan(e) else math.inf)
        _require(e <= 1e-9, f"{what} leaf {path} differs by {e:.3g} "
                 f"(relative) between numpy and torch at step {k} ({lbl})")
    return worst


def _named_leaves(tree: Any, path: str = "") -> dict[str, tuple[Any, ...]]:
    """Leaf descriptors keyed by readable paths (NamedTuple fields by name; ``None``
    subtrees included)."""
    if tree is None:
        return {path or "<root>": ("None",)}
    if optree.is_namedtuple_instance(tree):
        out: dict[str, tuple[Any, ...]] = {}
        for f, v in zip(type(tree)._fields, tree):
            out.update(_named_leaves(v, f"{path}.{f}"))
        return out
    if type(tree) in (tuple, list):
        out = {}
        for i, v in enumerate(tree):
            out.update(_named_leaves(v, f"{path}[{i}]"))
        return out or {path or "<root>": (f"empty {type(tree).__name__}",)}
    if type(tree) is dict:
        out = {}
        for k, v in tree.items():
            out.update(_named_leaves(v, f"{path}[{k!r}]"))
        return out or {path or "<root>": ("empty dict",)}
    return {path or "<root>": _describe(tree)}


def _named_diff(a: Any, b: Any) -> str:
    """The first leaf where two states differ in kind, e.g. ``.grads: None -> array``."""
    na, nb = _named_leaves(a), _named_leaves(b)
    diffs = [f"{p}: {na.get(p, ('absent',))} -> {nb.get(p, ('absent',))}"
             for p in list(na) + [p for p in nb if p not in na] if na.get(p) != nb.get(p)]
    if not diffs:
        return "no difference in leaf kinds"
    more = f" (and {len(diffs) - 2} more)" if len(diffs) > 2 else ""
    return "; ".join(diffs[:2]) + more


# -- hypothesis strategies -------------------------------------------------------------


def _hypothesis() -> Any:
    try:
        import hypothesis.strategies as st
    except ImportError:
        raise ImportError(
            "fnopt.testing strategies need hypothesis: pip install hypothesis "
            "(or fnopt[testing]); check_optimizer works without it"
        ) from None
    return st


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")


def arrays(
    backend: str = "numpy",
    dtype: str = "float64",
    shape: tuple[int, ...] | None = None,
    *,
    bound: float = 10.0,
    max_side: int = 3,
) -> Any:
    """Finite arrays (NumPy) or tensors (torch) with values in ``[-bound, bound]``.

    Args:
      backend: ``"numpy"`` or ``"torch"``.
      dtype: ``"float32"`` or ``"float64"``.
      shape: a fixed shape; by default 0-d to 2-d with sides 1..``max_side``.
      bound: the largest absolute value.
      max_side: the largest side of a drawn shape.

    Returns:
      A hypothesis strategy.
    """
    st = _hypothesis()
    from hypothesis.extra import numpy as hnp

    _check_choice("backend", backend, BACKENDS)
    _check_choice("dtype", dtype, DTYPES)
    width = 32 if dtype == "float32" else 64
    elements = st.floats(-bound, bound, width=width, allow_nan=False, allow_infinity=False,
                         allow_subnormal=False)
    shapes = (hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=max_side)
              if shape is None else st.just(tuple(shape)))
    strat = hnp.arrays(np.dtype(dtype), shapes, elements=elements)
    return strat.map(lambda a: _backend.array(a, backend, dtype))


def pytrees(
    backend: str = "numpy",
    dtypes: Sequence[str] = ("float64",),
    *,
    max_leaves: int = 4,
    bound: float = 10.0,
    structures: Sequence[str] = ("dict", "list", "tuple", "namedtuple"),
) -> Any:
    """Pytrees of finite arrays on one backend: a single array, or nested ``dict`` /
    ``list`` / ``tuple`` / :class:`Pair` (a NamedTuple) nodes with ``None`` subtrees,
    always with at least one array.

    Args:
      backend: ``"numpy"`` or ``"torch"`` (never mixed within a tree).
      dtypes: the dtypes leaves are drawn from (one per leaf).
      max_leaves: the most array leaves in a tree.
      bound: the largest absolute value.
      structures: which container nodes to use.

    Returns:
      A hypothesis strategy.
    """
    st = _hypothesis()
    _check_choice("backend", backend, BACKENDS)
    for d in dtypes:
        _check_choice("dtypes", d, DTYPES)
    for s in structures:
        _check_choice("structures", s, ("dict", "list", "tuple", "namedtuple"))
    leaf = st.sampled_from(tuple(dtypes)).flatmap(lambda d: arrays(backend, d, bound=bound))
    keys = st.sampled_from(["a", "b", "w", "bias"])

    def extend(children: Any) -> Any:
        maybe = children | st.none()
        options = {
            "dict": st.dictionaries(keys, maybe, min_size=1, max_size=3),
            "list": st.lists(children, min_size=1, max_size=3),
            "tuple": st.tuples(children, maybe),
            "namedtuple": st.builds(Pair, children, maybe),
        }
        return st.one_of(*(options[s] for s in structures))

    return st.recursive(leaf, extend, max_leaves=max_leaves).filter(
        lambda t: len(optree.tree_leaves(t)) > 0
    )


def quadratics(
    backend: str = "numpy",
    dtype: str = "float64",
    *,
    max_leaves: int = 3,
    eigenvalues: tuple[float, float] = (0.5, 2.0),
) -> Any:
    """Convex quadratics (:class:`Quadratic`) with known minima over drawn pytree
    shapes, with a drawn seed.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(quadratics())
    ... def test_minimum_is_stationary(q):
    ...     value, grads = q.grad_fn(q.minimum)
    ...     assert abs(float(value) - q.min_value) < 1e-12
    >>> test_minimum_is_stationary()
    """
    st = _hypothesis()
    trees = pytrees("numpy", (dtype,), max_leaves=max_leaves)
    return st.builds(
        lambda t, seed: make_quadratic(t, seed=seed, backend=backend, dtype=dtype,
                                       eigenvalues=eigenvalues),
        trees,
        st.integers(0, 2**31 - 1),
    )


def learning_rates(low: float = 1e-4, high: float = 1e-1) -> Any:
    """Learning rates in ``[low, high]``, drawn log-uniformly."""
    st = _hypothesis()
    if not (0 < low <= high):
        raise ValueError(f"low, high: expected 0 < low <= high, got {low}, {high}")
    return st.floats(math.log(low), math.log(high)).map(math.exp)


def decay_rates(low: float = 0.0, high: float = 0.999) -> Any:
    """Decay rates / betas / momentum in ``[low, high]`` (within [0, 1))."""
    st = _hypothesis()
    if not (0 <= low <= high < 1):
        raise ValueError(f"low, high: expected 0 <= low <= high < 1, got {low}, {high}")
    return st.floats(low, high)


def epsilons(low: float = 1e-10, high: float = 1e-6) -> Any:
    """Small positive numerical-stability constants, drawn log-uniformly."""
    return learning_rates(low, high)


_HYPERPARAMETERS: dict[str, Callable[[], Any]] = {
    "learning_rate": learning_rates,
    "momentum": decay_rates,
    "dampening": lambda: decay_rates(0.0, 0.5),
    "b1": lambda: decay_rates(0.0, 0.99),
    "b2": lambda: decay_rates(0.9, 0.9999),
    "decay": decay_rates,
    "eps": epsilons,
    "weight_decay": lambda: decay_rates(0.0, 0.1),
}


def hyperparameters(*names: str) -> Any:
    """Dicts of valid hyperparameters for the given argument names (default: all of
    ``learning_rate``, ``momentum``, ``dampening``, ``b1``, ``b2``, ``decay``, ``eps``,
    ``weight_decay``), ready for ``make_opt(**hp)``.

    >>> hyperparameters("learning_rate", "b1")
    fixed_dictionaries({'learning_rate': ..., 'b1': ...})
    """
    st = _hypothesis()
    names = names or tuple(_HYPERPARAMETERS)
    for n in names:
        _check_choice("names", n, tuple(_HYPERPARAMETERS))
    return st.fixed_dictionaries({n: _HYPERPARAMETERS[n]() for n in names})
