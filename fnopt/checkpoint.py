"""Checkpoints: :func:`save` / :func:`load` params and optimizer state, and convert
them between backends (:func:`to_numpy`, :func:`to_torch`).

File format (version 1)
-----------------------
One format for both backends: a ZIP archive (uncompressed) that :func:`numpy.load`
can also open, holding

* ``fnopt-checkpoint.json`` — a UTF-8 JSON header::

      {"format": "fnopt-checkpoint", "version": 1, "fnopt_version": "0.1.0",
       "backend": "numpy" | "torch", "iteration": 120 | null, "metadata": {...},
       "params": <node>, "state": <node>, "arrays": [<array record>, ...]}

* ``arrays/<i>.npy`` — array ``i`` in NumPy's ``.npy`` format (never pickled).

A ``<node>`` describes one value of the params or state tree:
``{"t": "array", "i": 3}`` (array 3), ``{"t": "none"}``, ``{"t": "bool" | "int" |
"str", "v": ...}``, ``{"t": "float", "v": "0x1.8p+1"}`` (``float.hex``, exact, NaN and
inf included), ``{"t": "tuple" | "list", "c": [<node>...]}``, ``{"t": "dict", "k":
[<node>...], "c": [<node>...]}`` (keys in insertion order), and
``{"t": "namedtuple" | "attrs", "module": "fnopt._base", "name": "DescentState",
"fields": [...], "c": [<node>...]}``. An ``<array record>`` gives ``kind``
(``"numpy"``, ``"numpy_scalar"`` for a NumPy scalar such as ``np.float64(1.0)``, or
``"torch"``), ``dtype``, ``shape``, and for tensors ``device`` and ``requires_grad``.
Tensors are stored through NumPy bit for bit (``bfloat16`` as its 16-bit pattern).
Every array is used by exactly one node; trees are at most ``_MAX_DEPTH`` deep.

Versions: :func:`load` reads the format versions in ``READABLE_VERSIONS`` and refuses
others (a newer fnopt's files) with a :class:`CheckpointError` naming both. A state
class is found under the module and qualified name it was saved with; fnopt has not
been released, so no class has an older home to look in.

Safety: loading never unpickles and never runs code from the file. NamedTuple and
attrs state classes are re-imported by name only if ``fnopt`` defines them (a module
``fnopt.*`` without dunder names, and the class's own ``__module__``/``__qualname__``
must be the recorded ones); other classes must be passed in ``types=`` (or be found in
``state_like=``), and their field names must match the file. A hostile or damaged
file raises :class:`CheckpointError` and nothing else, after allocating at most a small
multiple of the file's own size: only a regular file is opened (a FIFO, ``/dev/zero``, a
directory or socket is refused after an ``os.stat``, so load never blocks or reads
without end); the memory that zipfile's directory, the JSON header and the arrays will
take is estimated from the file before anything is parsed and the file is refused if
it exceeds ``4 x size + 4 MiB`` (:func:`save` refuses to write such a file); members
must be stored uncompressed (as :func:`save` writes them) and must not overlap one
another or the central directory; each ``.npy`` member must hold exactly the bytes its
header declares before anything is allocated for it, and every header field is checked.
Metadata round-trips exactly: :func:`save` refuses what JSON would change (non-``str``
keys, tuples).

Writes are atomic: the archive is written to a temporary file ``.<name>.<random>.tmp``
in the same directory, flushed to disk and renamed over ``path``, so a crash mid-write
leaves the previous checkpoint intact. A save removes the temporary files that killed
saves of the same path left behind (on POSIX, a save in progress holds a lock on its
temporary file, so it is never removed under it).
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import os
import pathlib
import re
import stat
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import Params, State, check_params

try:  # POSIX: a save in progress locks its temporary file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "save", "load", "Checkpoint", "CheckpointError", "to_numpy", "to_torch",
    "check_saveable",
]

FORMAT = "fnopt-checkpoint"
VERSION = 1
#: the checkpoint format versions this fnopt reads
READABLE_VERSIONS: tuple[int, ...] = (1,)
_HEADER = "fnopt-checkpoint.json"
_TRUSTED_PREFIX = "fnopt"
_MAX_DEPTH = 100  # levels of nesting of a params/state tree or of the metadata
_NPY_MAX_HEADER = 10_000  # bytes, as numpy.load's default max_header_size
_NPY_MAX_DIMS = 64
_CHUNK = 1 << 20
_MAX_ITERATION = 2**63


PathLike = str | os.PathLike[str]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: corrupt, truncated, from a newer format
    version, or not matching what the caller expects."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns.

    Attributes:
      params: the params, with the backend, dtypes (and devices) they were saved with.
      state: the optimizer state, NamedTuple/attrs types restored exactly.
      iteration: the iteration number saved with them (``None`` if none was given).
      metadata: the JSON metadata saved with them (``{}`` if none).
      stop_state: the stop criterion's state saved with them (early stopping's best
        value, best params and counter: ``fixed_point(..., stop_state=ck.stop_state)``
        resumes it); ``None`` if none was saved.
    """

    params: Params
    state: State
    iteration: int | None
    metadata: dict[str, Any]
    stop_state: Any = None


def _show(x: Any, limit: int = 60) -> str:
    """``repr(x)`` (an exception: its type and message), shortened: values from a
    hostile file go into messages."""
    r = f"{type(x).__name__}: {x}" if isinstance(x, BaseException) else repr(x)
    return r if len(r) <= limit else r[: limit - 3] + "..."


# -- tree walking ------------------------------------------------------------------


def _is_namedtuple(x: Any) -> bool:
    return optree.is_namedtuple_instance(x)


def _map(fn: Callable[[Any], Any], tree: Any, what: str, path: str = "") -> Any:
    """Rebuild ``tree`` with ``fn`` applied to each array leaf (other leaves kept)."""
    if _backend.is_leaf(tree):
        return fn(tree)
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if _is_namedtuple(tree):
        return type(tree)(
            *(_map(fn, v, what, f"{path}.{f}") for f, v in zip(tree._fields, tree))
        )
    if type(tree) in (tuple, list):
        return type(tree)(_map(fn, v, what, f"{path}[{i}]") for i, v in enumerate(tree))
    if type(tree) is dict:
        return {k: _map(fn, v, what, f"{path}[{k!r}]") for k, v in tree.items()}
    if attrs.has(type(tree)):
        kwargs = {
            a.alias: _map(fn, getattr(tree, a.name), what, f"{path}.{a.name}")
            for a in _attrs_fields(type(tree), what, path)
        }
        return type(tree)(**kwargs)
    raise TypeError(
        f"{what}: unsupported value of type {type(tree).__name__} at {path or '<root>'}"
    )


def _attrs_fields(cls: type, what: str, path: str) -> tuple[Any, ...]:
    fields = attrs.fields(cls)
    for a in fields:
        if not a.init:
            raise TypeError(
                f"{what}: attrs class {cls.__qualname__} at {path or '<root>'} has a field "
                f"{a.name!r} with init=False, which cannot be restored"
            )
    return tuple(fields)


# -- encoding ----------------------------------------------------------------------


class _Encoder:
    """Turns a tree into header nodes and a list of arrays; with ``dry_run`` it only
    checks that it could (no copies, nothing moved off a device)."""

    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.arrays: list[np.ndarray] = []
        self.records: list[dict[str, Any]] = []

    def array(self, x: Any) -> dict[str, Any]:
        be = _backend.of_value(x)
        rec = be.storage_record(x)  # TypeError: cannot be stored
        if not self.dry_run:
            self.records.append(rec)
            self.arrays.append(be.storage_array(x))
        return {"t": "array", "i": len(self.arrays) - 1}

    def node(self, x: Any, what: str, path: str, depth: int = 0) -> dict[str, Any]:
        where = path or "<root>"
        if depth > _MAX_DEPTH:
            raise ValueError(f"{what}: nested deeper than {_MAX_DEPTH} levels at {where}")
        if _backend.is_leaf(x):
            try:
                return self.array(x)
            except TypeError as exc:
                raise TypeError(f"{what}: {exc} (at {where})") from None
        if x is None:
            return {"t": "none"}
        if isinstance(x, bool):
            return {"t": "bool", "v": x}
        if isinstance(x, int):
            if x.bit_length() > 12_000:  # JSON (and int()) stop at 4300 digits
                raise ValueError(f"{what}: the int at {where} has too many digits to save")
            return {"t": "int", "v": int(x)}
        if isinstance(x, float):
            return {"t": "float", "v": float(x).hex()}
        if isinstance(x, str):
            return {"t": "str", "v": x}
        if _is_namedtuple(x) or attrs.has(type(x)):
            return self.record(x, what, path, depth)
        if type(x) in (tuple, list):
            return {
                "t": type(x).__name__,
                "c": [self.node(v, what, f"{path}[{i}]", depth + 1) for i, v in enumerate(x)],
            }
        if type(x) is dict:
            keys = []
            for k in x:
                if k is not None and not isinstance(k, (bool, int, float, str)):
                    raise TypeError(
                        f"{what}: dict key {k!r} at {where} is a {type(k).__name__}; "
                        "only str, int, float, bool or None keys can be saved"
                    )
                keys.append(self.node(k, what, where, depth + 1))
            return {
                "t": "dict",
                "k": keys,
                "c": [self.node(v, what, f"{path}[{k!r}]", depth + 1) for k, v in x.items()],
            }
        raise TypeError(
            f"{what}: cannot save a value of type {type(x).__name__} at {where}; a "
            "checkpoint holds arrays/tensors, None, bool, int, float, str, and tuples, lists, "
            "dicts, NamedTuples and attrs classes of them"
        )

    def record(self, x: Any, what: str, path: str, depth: int) -> dict[str, Any]:
        """A NamedTuple or attrs instance."""
        cls = type(x)
        if _is_namedtuple(x):
            kind, names = "namedtuple", list(cls._fields)
        else:
            kind, names = "attrs", [a.name for a in _attrs_fields(cls, what, path)]
        return {
            "t": kind,
            **_type_name(cls),
            "fields": names,
            "c": [self.node(getattr(x, f), what, f"{path}.{f}", depth + 1) for f in names],
        }


def _type_name(cls: type) -> dict[str, str]:
    return {"module": cls.__module__, "name": cls.__qualname__}


# -- decoding ----------------------------------------------------------------------


_SCALAR_NODES = {"none", "bool", "int", "float", "str"}


class _Decoder:
    """Rebuilds trees from header nodes, checking every node: each array is used
    exactly once, nesting is bounded, values have their node's JSON type."""

    def __init__(
        self,
        arrays: list[Any],
        types: dict[tuple[str, str], type],
        path: str,
    ) -> None:
        self.arrays = arrays
        self.types = types
        self.path = path
        self.used = [False] * len(arrays)

    def fail(self, msg: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {msg}")

    def tree(self, n: Any, what: str) -> Any:
        try:
            return self.node(n, what, 0)
        except RecursionError:
            raise self.fail(f"{what} is nested too deeply") from None

    def check_all_used(self) -> None:
        unused = [i for i, u in enumerate(self.used) if not u]
        if unused:
            raise self.fail(f"corrupt header (arrays {unused[:5]} belong to no leaf)")

    def node(self, n: Any, where: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail(f"corrupt header (nested deeper than {_MAX_DEPTH} levels at "
                            f"{_show(where, 200)})")
        if not isinstance(n, dict) or not isinstance(n.get("t"), str):
            raise self.fail(f"malformed header node at {where}")
        t = n["t"]
        try:
            if t == "array":
                return self.array(n["i"], where)
            if t in _SCALAR_NODES:
                return self.scalar(t, n.get("v"), where)
            if t in ("tuple", "list"):
                c = self.children(n, "c", where)
                items = [self.node(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(c)]
                return tuple(items) if t == "tuple" else items
            if t == "dict":
                return self.mapping(n, where, depth)
            if t in ("namedtuple", "attrs"):
                return self.record(n, where, depth)
        except CheckpointError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError,
                OverflowError) as exc:
            raise self.fail(f"malformed header node at {where}: {_show(exc, 200)}") from None
        raise self.fail(f"unknown node type {_show(t)} at {where}")

    def children(self, n: dict[str, Any], key: str, where: str) -> list[Any]:
        c = n[key]
        if not isinstance(c, list):
            raise self.fail(f"malformed header node at {where} ({key!r} is not a list)")
        return c

    def array(self, i: Any, where: str) -> Any:
        if type(i) is not int or not 0 <= i < len(self.arrays):
            raise self.fail(f"corrupt header (array index {_show(i)} at {where} is not one "
                            f"of the {len(self.arrays)} arrays)")
        if self.used[i]:
            raise self.fail(f"corrupt header (array {i} at {where} is used twice)")
        self.used[i] = True
        return self.arrays[i]

    def scalar(self, t: str, v: Any, where: str) -> Any:
        want = {"none": type(None), "bool": bool, "int": int, "float": str, "str": str}[t]
        if type(v) is not want:
            raise self.fail(f"malformed header node at {where} (a {t} node holding "
                            f"{_show(v)})")
        return float.fromhex(str(v)) if t == "float" else v

    def mapping(self, n: dict[str, Any], where: str, depth: int) -> dict[Any, Any]:
        knodes, cnodes = self.children(n, "k", where), self.children(n, "c", where)
        if len(knodes) != len(cnodes):
            raise self.fail(f"malformed header node at {where} ({len(knodes)} keys, "
                            f"{len(cnodes)} values)")
        out: dict[Any, Any] = {}
        for kn, cn in zip(knodes, cnodes):
            if not isinstance(kn, dict) or kn.get("t") not in _SCALAR_NODES:
                raise self.fail(f"malformed header node at {where} (a key that is not a "
                                "scalar)")
            k = self.scalar(kn["t"], kn.get("v"), where)
            if k in out:
                raise self.fail(f"malformed header node at {where} (key {_show(k)} twice)")
            out[k] = self.node(cn, f"{where}[{_show(k, 40)}]", depth + 1)
        return out

    def record(self, n: dict[str, Any], where: str, depth: int) -> Any:
        fields, cnodes = self.children(n, "fields", where), self.children(n, "c", where)
        if len(fields) != len(cnodes) or not all(isinstance(f, str) for f in fields):
            raise self.fail(f"malformed header node at {where} (fields {_show(fields)} for "
                            f"{len(cnodes)} values)")
        cls = self.resolve(n, where)
        vals = [self.node(c, f"{where}.{f}", depth + 1) for f, c in zip(fields, cnodes)]
        try:
            if n["t"] == "namedtuple":
                return cls(*vals)
            names = {a.name: a.alias for a in attrs.fields(cls)}
            return cls(**{names[f]: v for f, v in zip(fields, vals)})
        except Exception as exc:  # the class's own checks refuse these values
            raise self.fail(f"cannot rebuild {cls.__qualname__} at {where}: "
                            f"{_show(exc, 200)}") from None

    def resolve(self, n: dict[str, Any], where: str) -> type:
        module, name, kind = n["module"], n["name"], n["t"]
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.fail(f"malformed header node at {where} (class name "
                            f"{_show(module)}.{_show(name)})")
        full = f"{module}.{name}"
        key = (module, name)
        cls = self.types.get(key)
        if cls is None:
            cls = self.import_fnopt_class(*key, full, where)
        if not isinstance(cls, type):
            raise self.fail(f"{full} is not a class")
        if kind == "namedtuple":
            if not optree.is_namedtuple_class(cls):
                raise self.fail(f"{full} is not a NamedTuple class")
            fields = optree.namedtuple_fields(cls)
        else:
            if not attrs.has(cls):
                raise self.fail(f"{full} is not an attrs class")
            fields = tuple(a.name for a in attrs.fields(cls))
        if list(fields) != list(n["fields"]):
            raise self.fail(
                f"state type {full} has fields {list(fields)} but the checkpoint has "
                f"{_show(n['fields'], 200)}; it was saved by a different version of that class"
            )
        return cls

    def import_fnopt_class(
        self, module: str, name: str, full: str, where: str
    ) -> type:
        """The fnopt class ``module.name``, defined in that module."""
        trusted = module == _TRUSTED_PREFIX or module.startswith(_TRUSTED_PREFIX + ".")
        parts = (*module.split("."), *name.split("."))
        dunder = any(p.startswith("__") for p in parts)
        if not trusted or dunder or not all(p.isidentifier() for p in parts):
            raise self.fail(
                f"state type {_show(full, 120)} (at {where}) is not importable from fnopt; "
                f"pass the class in load(..., types=[...]) or state_like=..."
            )
        try:
            obj: Any = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
        except Exception:  # ImportError, AttributeError, or a module failing to import
            raise self.fail(
                f"state type {full} (at {where}) no longer exists in this version of fnopt"
            ) from None
        home = getattr(obj, "__module__", None)
        if not (isinstance(obj, type) and obj.__qualname__ == name and (
            home == module
        )):
            # only a class defined where the file says, not one reachable through
            # another module's attributes
            raise self.fail(f"{full} (at {where}) is not a class of fnopt")
        return obj


def _collect_types(tree: Any, out: dict[tuple[str, str], type]) -> None:
    if _is_namedtuple(tree):
        out[(type(tree).__module__, type(tree).__qualname__)] = type(tree)
        for v in tree:
            _collect_types(v, out)
    elif type(tree) in (tuple, list):
        for v in tree:
            _collect_types(v, out)
    elif type(tree) is dict:
        for v in tree.values():
            _collect_types(v, out)
    elif attrs.has(type(tree)):
        out[(type(tree).__module__, type(tree).__qualname__)] = type(tree)
        for a in attrs.fields(type(tree)):
            _collect_types(getattr(tree, a.name), out)


# -- public API: save --------------------------------------------------------------


def save(
    path: PathLike,
    params: Params,
    state: State = None,
    *,
    iteration: int | None = None,
    metadata: dict[str, Any] | None = None,
    stop_state: Any = None,
) -> pathlib.Path:
    """Write ``params`` and ``state`` to ``path`` atomically (format: module docstring).

    The file appears complete or not at all: it is written to a temporary file in the
    same directory, flushed to disk and renamed over ``path``, so a crash or Ctrl-C
    mid-write leaves an earlier checkpoint at ``path`` intact. Temporary files that a
    killed save of the same ``path`` left behind are removed first.

    Args:
      path: the file to write (``.npz`` is a good suffix; it is used as given).
      params: a pytree of NumPy arrays or of torch tensors.
      state: an optimizer state (NamedTuples, attrs classes, tuples, lists, dicts of
        arrays of the same backend, ``None``, bool, int, float, str), nested at most
        100 levels deep.
      iteration: the iteration number of ``params``, an int in ``[0, 2**63)``
        (returned by :func:`load`).
      metadata: a dict of JSON values stored alongside, returned by :func:`load`
        exactly as given: ``str`` keys only, lists not tuples (a key ``1``, ``True``
        or ``None`` would come back as a string and a tuple as a list, so save refuses
        them with a ``ValueError`` naming the key path), at most 100 levels deep.
      stop_state: a stop criterion's state (:attr:`fnopt.Result.stop_state`, e.g.
        early stopping's), saved like ``state`` and returned by :func:`load` as
        ``Checkpoint.stop_state``; ``None``: none is saved.

    Returns:
      The path written, as a :class:`pathlib.Path`.

    Raises:
      TypeError: a leaf or metadata value that cannot be stored.
      ValueError: metadata that would not round-trip (the message names the key
        path), a bad ``iteration``, or a checkpoint :func:`load` would refuse as too
        costly to read (more than 4x its size + 4 MiB of memory: e.g. tens of
        thousands of Python scalars or tiny arrays; store them as one array). The
        file at ``path`` is left as it was.

    >>> import numpy as np, fnopt, tempfile, os
    >>> opt = fnopt.sgd(0.1, momentum=0.9)
    >>> p = {"w": np.array([1.0, 2.0])}
    >>> p, s = opt.step(p, lambda p: (p["w"] @ p["w"], {"w": 2 * p["w"]}), opt.init(p))
    >>> f = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> _ = fnopt.save(f, p, s, iteration=1)
    >>> ck = fnopt.load(f)
    >>> type(ck.state).__name__, ck.state.count, ck.iteration
    ('DescentState', 1, 1)
    >>> bool((ck.params["w"] == p["w"]).all())
    True
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    be = _check_backends(params, state)
    if iteration is not None:
        if isinstance(iteration, bool) or not isinstance(iteration, int):
            raise TypeError(f"iteration: expected an int or None, got {type(iteration).__name__}")
        if not 0 <= iteration < _MAX_ITERATION:
            raise ValueError(f"iteration: expected an int in [0, 2**63), got {iteration}")
    if metadata is None:
        metadata = {}
    _check_metadata(metadata)

    enc = _Encoder()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "fnopt_version": _fnopt_version(),
        "backend": be.name,
        "iteration": iteration,
        "metadata": metadata,
        "params": enc.node(params, "params", ""),
        "state": enc.node(state, "state", ""),
        "arrays": enc.records,
    }
    if stop_state is not None:  # an optional member: files without it read as before
        header["stop_state"] = enc.node(stop_state, "stop_state", "")
    path = pathlib.Path(path)
    _atomic_write(path, header, enc.arrays)
    return path


def check_saveable(params: Params, state: State = None) -> None:
    """Check that :func:`save` can write ``params`` and ``state``, without writing or
    copying anything, so a run that checkpoints fails at its start rather than at its
    first save (``fixed_point`` calls it when given ``checkpoint_path``).

    Args:
      params: a pytree of NumPy arrays or of torch tensors.
      state: an optimizer state, as :func:`save` takes it.

    Raises:
      TypeError: a leaf :func:`save` cannot store (an unsupported type, an object
        array, a sparse/quantized/meta tensor, a torch dtype NumPy lacks, a non-scalar
        dict key), or a state whose arrays are of another backend than ``params``; the
        message names the argument and the leaf.
      ValueError: params :func:`save` refuses (empty, integer, non-finite), or a tree
        nested more than 100 levels deep.

    >>> import numpy as np
    >>> from fnopt.checkpoint import check_saveable
    >>> check_saveable({"w": np.ones(2)}, (0, None))
    >>> check_saveable({"w": np.ones(2)}, {"f": print})
    Traceback (most recent call last):
    ...
    TypeError: state: cannot save a value of type builtin_function_or_method at ['f']; ...
    """
    _check_backends(params, state)
    enc = _Encoder(dry_run=True)
    enc.node(params, "params", "")
    enc.node(state, "state", "")


def _check_backends(params: Params, state: State) -> _backend.Backend:
    be = check_params(params, low_precision=True)
    state_arrays = [x for x in optree.tree_leaves(state) if _backend.is_leaf(x)]
    if state_arrays:
        st_be = _backend.of_leaves(
            [np.asarray(x) if isinstance(x, np.generic) else x for x in state_arrays],
            what="state",
        )
        if st_be is not be:
            raise TypeError(
                f"state: holds {st_be.name} arrays but params are {be.name}; convert one "
                "with fnopt.to_numpy / fnopt.to_torch"
            )
    return be


def _check_metadata(metadata: Any) -> None:
    """``metadata`` must come back from :func:`load` exactly as given: JSON values
    with ``str`` keys and lists (a tuple would come back as a list, a key ``1``,
    ``True`` or ``None`` as a string), at most ``_MAX_DEPTH`` levels deep."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"metadata: must be JSON-serialisable ({_show(exc, 200)})") from None
    level: list[tuple[str, Any]] = [("", metadata)]
    depth = 0
    while level:  # breadth first: no recursion on a deep dict
        depth += 1
        if depth > _MAX_DEPTH:
            raise ValueError(f"metadata: nested deeper than {_MAX_DEPTH} levels")
        nxt: list[tuple[str, Any]] = []
        for where, x in level:
            if isinstance(x, tuple):
                raise ValueError(f"metadata{where}: a tuple would come back from load as "
                                 "a list; pass a list")
            if isinstance(x, dict):
                for k, v in x.items():
                    if not isinstance(k, str):
                        raise ValueError(
                            f"metadata{where}: key {_show(k)} is a {type(k).__name__}; it "
                            f"would come back from load as the string "
                            f"{_show(json.dumps({k: 0})[1:-4])}; use str keys")
                    nxt.append((f"{where}[{_show(k)}]", v))
            elif isinstance(x, list):
                nxt.extend((f"{where}[{i}]", v) for i, v in enumerate(x))
        level = [(w, v) for w, v in nxt if isinstance(v, (dict, list, tuple))]


def _fnopt_version() -> str:
    import fnopt

    return str(getattr(fnopt, "__version__", "unknown"))


# -- writing: atomic, with a lock held while the temporary file is alive ---------------


def _temp_pattern(name: str) -> re.Pattern[str]:
    # tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp") names: 8 of [a-z0-9_]
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}" + re.escape(".tmp"))


def _atomic_write(path: pathlib.Path, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"path: directory {str(directory)!r} does not exist")
    _remove_stale_temps(directory, path.name)
    fd, tmp = _new_temp(directory, path.name)
    text = json.dumps(header).encode()  # not sorted: metadata keeps its key order
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(_zipinfo(_HEADER), text)
                for i, arr in enumerate(arrays):
                    with zf.open(_zipinfo(f"arrays/{i}.npy"), "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                infos = {i.filename: i for i in zf.infolist()}
            raw.flush()
            _check_loadable(tmp, raw.tell(), text, infos)
            os.fsync(raw.fileno())
            if fcntl is not None:  # rename while the lock is held: never removed as stale
                os.replace(tmp, path)
        if fcntl is None:  # pragma: no cover - Windows renames only closed files
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _check_loadable(tmp: str, size: int, text: bytes,
                    infos: dict[str, zipfile.ZipInfo]) -> None:
    """Refuse to write a file :func:`load` would refuse as too costly to read (a state
    of very many Python scalars or tiny arrays, or huge metadata)."""
    with open(tmp, "rb") as fh:
        cost = max(_directory_cost(fh, size), _members_cost(text, infos))
    if cost > _budget(size):
        raise ValueError(
            f"params/state/metadata: this checkpoint ({len(infos) - 1} arrays, a "
            f"{len(text)}-byte header, {size} bytes) would take about {cost} bytes of "
            f"memory to load, more than load accepts ({_BUDGET_FACTOR}x the file size + "
            f"{_BUDGET_SLACK >> 20} MiB); store many scalars as one array"
        )


def _new_temp(directory: pathlib.Path, name: str) -> tuple[int, str]:
    """A new temporary file for ``name``, locked (POSIX) while it lives."""
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        if fcntl is None:  # pragma: no cover
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system: nothing removes it either
            return fd, tmp
        # a cleaner that locked it first has unlinked it: take another name
        if _same_file(fd, tmp):
            return fd, tmp
        os.close(fd)
    raise OSError(f"path: could not create a temporary file in {str(directory)!r}")


def _same_file(fd: int, name: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _remove_stale_temps(directory: pathlib.Path, name: str) -> None:
    """Remove the temporary files that killed saves of ``directory/name`` left: those
    named like :func:`_new_temp` names them and not locked by a save in progress."""
    pattern = _temp_pattern(name)
    try:
        entries = [e for e in os.listdir(directory) if pattern.fullmatch(e)]
    except OSError:
        return
    for entry in entries:
        tmp = os.path.join(directory, entry)
        if fcntl is None:  # pragma: no cover - Windows: a file open for writing stays
            try:
                os.unlink(tmp)
            except OSError:
                pass
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by a live save: skip
            if stat.S_ISREG(os.fstat(fd).st_mode) and _same_file(fd, tmp):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _zipinfo(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp keeps files byte-identical for identical contents.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    return info


def _fsync_dir(directory: pathlib.Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- public API: load --------------------------------------------------------------


def load(
    path: PathLike,
    *,
    types: Iterable[type] = (),
    params_like: Params | None = None,
    state_like: State | None = None,
    device: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    A file that is not one :func:`save` wrote (truncated, bit-flipped, crafted)
    raises :class:`CheckpointError` and nothing else, after allocating at most a small
    multiple of the file's size.

    Args:
      path: the file.
      types: NamedTuple/attrs state classes from outside fnopt that the file may
        contain (classes from ``fnopt`` are found by name).
      params_like: if given, the loaded params must have its structure, shapes and
        dtypes (a :class:`CheckpointError` names the first leaf that differs).
      state_like: a state the loaded one must be like, e.g. ``opt.init(params)``: the
        same classes, keys, ``None`` leaves, tuple lengths and array shapes (every
        optimizer's init state has the structure of its later states). Its
        NamedTuple/attrs classes are also allowed, as if passed in ``types``.
      device: for torch checkpoints, the device to put tensors on (default: the
        device each was saved from); not ``"meta"``.

    Returns:
      A :class:`Checkpoint` ``(params, state, iteration, metadata)``.

    Raises:
      FileNotFoundError: no file at ``path``.
      TypeError, ValueError: a bad argument (``device`` that torch does not know,
        ``types`` that are not classes); a ``device`` torch knows but cannot put a
        tensor on here (``"hpu"`` or ``"xla:0"`` without their modules, ``"cuda"``
        without a GPU) raises :class:`CheckpointError`, a ``ValueError`` naming
        ``device``, before the file is read.
      CheckpointError: (a ``ValueError``) the file is not a regular file, is not a
        checkpoint, is truncated or corrupt (CRC mismatch, compressed, duplicate or
        overlapping members, arrays larger or smaller than declared, malformed header
        fields, a float out of range), would take more than 4x its size + 4 MiB of
        memory to read, comes from a format version
        this fnopt does not read, names a class that is not allowed or whose fields
        changed, holds tensors of a device this machine lacks (pass ``device=``), or
        does not match ``params_like`` / ``state_like``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = pathlib.Path(path)
    allowed: dict[tuple[str, str], type] = {}
    for cls in types:
        if not isinstance(cls, type):
            raise TypeError(f"types: expected classes, got {type(cls).__name__}")
        allowed[(cls.__module__, cls.__qualname__)] = cls
    if state_like is not None:
        _collect_types(state_like, allowed)
    target = _check_device(device)
    where = str(path)
    header, stored = _read(path, where)
    try:
        params, state, stop_state = _decode(header, stored, allowed, target, where)
    except CheckpointError:
        raise
    except Exception as exc:  # whatever else a crafted header provokes is the file's fault
        raise CheckpointError(f"{where}: corrupt checkpoint ({_show(exc, 200)})") from None
    if params_like is not None:
        _check_like(params, params_like, "params", where)
    if state_like is not None:
        why = _state_mismatch(state, state_like, "")
        if why is not None:
            raise CheckpointError(f"{where}: the saved state does not match state_like: {why}")
    return Checkpoint(params, state, header["iteration"], header["metadata"], stop_state)


def _decode(header: dict[str, Any], stored: list[np.ndarray],
            allowed: dict[tuple[str, str], type], target: Any, where: str,
            ) -> tuple[Any, Any, Any]:
    """The params, state and stop-criterion state (``None`` when the file has none) the
    checked ``header`` describes, built from ``stored``."""
    arrays = [_restore_array(a, rec, i, where, target)
              for i, (a, rec) in enumerate(zip(stored, header["arrays"]))]
    stored.clear()
    dec = _Decoder(arrays, allowed, where)
    params = dec.tree(header["params"], "params")
    state = dec.tree(header["state"], "state")
    stop_state = dec.tree(header["stop_state"], "stop_state") if "stop_state" in header else None
    dec.check_all_used()
    return params, state, stop_state


def _check_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` (None stays None); ValueError if torch does not
    know it, CheckpointError (a ValueError) if it cannot put a tensor there (``"hpu"``
    without its module, ``"xla:0"`` without torch_xla, ``"cuda"`` without a GPU)."""
    if device is None:
        return None
    try:
        import torch
    except ImportError:
        raise ValueError("device: needs torch, which is not installed") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda:0', got "
                         f"{_show(device)} ({exc})") from None
    if dev.type == "meta":
        raise ValueError("device: 'meta' tensors hold no data; pass a real device")
    try:
        torch.empty(0, device=dev)
    except Exception as exc:  # ModuleNotFoundError (hpu), NotImplementedError (xla), ...
        # a CheckpointError (a ValueError): no checkpoint loads onto this device here
        raise CheckpointError(f"device: cannot put tensors on {_show(str(dev))} on this "
                              f"machine ({_show(exc, 160)})") from None
    return dev


# -- the memory a load may take -------------------------------------------------------
# load estimates, before allocating, what reading a file costs and refuses a file whose
# estimate exceeds _BUDGET_FACTOR times its size plus _BUDGET_SLACK; save refuses to
# write a file load would refuse. The per-item costs are measured upper bounds for
# CPython 3.11 on 64 bits (tests/test_fault_hostile_files.py holds them to tracemalloc).
_BUDGET_FACTOR = 4
_BUDGET_SLACK = 4 << 20
_ZIP_ENTRY_MIN = 46  # bytes of a central directory record without its name
_ZIP_ENTRY_COST = 520  # a ZipInfo (measured ~490 B), its names, zipfile's table slots
_ARRAY_COST = 320  # the array objects of one member, besides the data


def _budget(size: int) -> int:
    """The most bytes :func:`load` allocates for a file of ``size`` bytes."""
    return _BUDGET_FACTOR * size + _BUDGET_SLACK


def _json_cost(text: bytes) -> int:
    """An upper estimate of the memory ``json.loads`` takes to parse ``text`` (the
    bytes, the decoded str and the objects), from its punctuation alone."""
    n = text.count
    keys = n(b":")  # a dict entry: up to ~170 B with a fresh key and the table grown
    strings = max(0, n(b'"') // 2 - keys)  # object keys are shared by the parser
    return (3 * len(text) + 80 * n(b"{") + 64 * n(b"[") + 48 * n(b",") + 112 * keys
            + 56 * strings)


def _members_cost(text: bytes, infos: dict[str, zipfile.ZipInfo]) -> int:
    """The memory estimate of parsing header ``text`` and reading the members."""
    return _json_cost(text) + len(infos) * _ZIP_ENTRY_COST + sum(
        i.file_size + _ARRAY_COST for n, i in infos.items() if n != _HEADER)


def _directory_cost(fh: IO[bytes], size: int) -> int:
    """The memory estimate of :mod:`zipfile` reading the central directory: its bytes
    and an object for every record it can hold (0 without an end record)."""
    cd_size = _central_directory_size(fh, size)
    if cd_size is None:
        return 0
    return cd_size + min(cd_size, size) // _ZIP_ENTRY_MIN * _ZIP_ENTRY_COST


def _over_budget(cost: int, size: int, what: str, where: str) -> None:
    if cost > _budget(size):
        raise CheckpointError(
            f"{where}: {what} would take about {cost} bytes of memory to load, more than "
            f"{_BUDGET_FACTOR}x the file's {size} bytes (+{_BUDGET_SLACK >> 20} MiB); "
            "refused as a hostile or damaged file"
        )


def _open_regular(path: pathlib.Path, where: str) -> IO[bytes]:
    """``path`` opened for reading, if it is a regular file: a FIFO, device, socket
    or directory is refused without opening it (a FIFO would block, ``/dev/zero``
    never ends)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no checkpoint at {str(path)!r}") from None
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot read the file ({_show(exc, 200)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{where}: not a regular file ({_file_kind(st.st_mode)}); a "
                              "checkpoint is a regular file written by fnopt.save")
    try:  # non-blocking: a FIFO swapped in after the stat cannot block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot open the file ({_show(exc, 200)})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"{where}: not a regular file (it changed while opened)")
    return os.fdopen(fd, "rb")


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def _central_directory_size(fh: IO[bytes], size: int) -> int | None:
    """The size the end record declares for the central directory (zip64 included),
    read before :mod:`zipfile` parses it; ``None`` if there is no end record (zipfile
    refuses the file then)."""
    tail_len = min(size, 22 + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return None
    entries, cd_size = struct.unpack("<HI", tail[pos + 10: pos + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: a locator precedes the record
        loc_at = size - tail_len + pos - 20
        if loc_at >= 0:
            fh.seek(loc_at)
            loc = fh.read(20)
            if loc[:4] == b"PK\x06\x07":
                fh.seek(min(struct.unpack("<Q", loc[8:16])[0], size))
                rec = fh.read(56)
                if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                    cd_size = struct.unpack("<Q", rec[40:48])[0]
    return int(cd_size)


def _read(path: pathlib.Path, where: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The checked header and the arrays (as stored) of the checkpoint at ``path``."""
    fh = _open_regular(path, where)
    try:
        with fh:
            size = os.fstat(fh.fileno()).st_size
            _over_budget(_directory_cost(fh, size), size, "its ZIP directory", where)
            fh.seek(0)
            with zipfile.ZipFile(fh, "r") as zf:
                return _read_zip(zf, fh, size, where)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(
            f"{where}: not a readable fnopt checkpoint (truncated or corrupt: {exc})"
        ) from None
    except Exception as exc:  # whatever zipfile, json or the .npy reader raise on a
        # damaged file (OSError, ValueError, struct.error, OverflowError, MemoryError,
        # RecursionError, ...): never the caller's bug, always the file's
        raise CheckpointError(
            f"{where}: corrupt checkpoint ({_show(exc, 200)})"
        ) from None


def _read_zip(zf: zipfile.ZipFile, fh: IO[bytes], size: int,
              where: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    infos = _check_members(zf, size, where)
    _check_no_overlap(zf, fh, infos, where)
    text = zf.read(infos[_HEADER])
    _over_budget(_members_cost(text, infos), size, "its header and arrays", where)
    header = _read_header(text, where)
    del text
    records = header["arrays"]
    names = {_HEADER} | {f"arrays/{i}.npy" for i in range(len(records))}
    for i in range(len(records)):
        if f"arrays/{i}.npy" not in infos:
            raise CheckpointError(f"{where}: array {i} is missing (truncated file?)")
    extra = sorted(set(infos) - names)
    if extra:
        raise CheckpointError(f"{where}: unexpected members {_show(extra)}")
    arrays = [_read_npy(zf, infos[f"arrays/{i}.npy"], rec, i, where)
              for i, rec in enumerate(records)]
    return header, arrays


def _check_no_overlap(zf: zipfile.ZipFile, fh: IO[bytes],
                      infos: dict[str, zipfile.ZipInfo], where: str) -> None:
    """Every member's bytes (local header, name, extra field, data) lie before the
    central directory and apart from every other member's: overlapping members would
    make a small file decode to many times its size."""
    spans = []
    for name, info in infos.items():
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{where}: member {_show(name)} has no local header at "
                                  f"offset {info.header_offset} (corrupt)")
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        end = info.header_offset + 30 + n_name + n_extra + info.compress_size
        spans.append((info.header_offset, end, name))
    spans.sort()
    limit = getattr(zf, "start_dir", None)
    for (s0, e0, a), (s1, _, b) in zip(spans, [*spans[1:], (limit, 0, "")]):
        if s1 is not None and e0 > s1:
            other = f"member {_show(b)}" if b else "the central directory"
            raise CheckpointError(f"{where}: member {_show(a)} (bytes {s0}-{e0}) overlaps "
                                  f"{other}; a checkpoint's members never overlap")


def _check_members(zf: zipfile.ZipFile, size: int, where: str) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name: each stored (uncompressed, as :func:`save` writes
    them), unencrypted, once, and within the file."""
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if name in infos:
            raise CheckpointError(f"{where}: member {_show(name)} appears twice")
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{where}: member {_show(name)} is compressed (method {info.compress_type}); "
                "fnopt writes uncompressed checkpoints and refuses to inflate one"
            )
        if info.flag_bits & 0x1:
            raise CheckpointError(f"{where}: member {_show(name)} is encrypted")
        if info.file_size != info.compress_size or info.header_offset + info.file_size > size:
            raise CheckpointError(
                f"{where}: member {_show(name)} declares {info.file_size} bytes, which the "
                f"{size}-byte file does not hold (truncated or corrupt)"
            )
        infos[name] = info
    if _HEADER not in infos:
        raise CheckpointError(f"{where}: not a fnopt checkpoint (no {_HEADER} inside)")
    return infos


def _read_header(text: bytes, where: str) -> dict[str, Any]:
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{where}: corrupt header ({_show(exc, 200)})") from None
    _check_header(header, where)
    return header


def _check_header(header: Any, where: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not a fnopt checkpoint (wrong format tag)")
    version = header.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        by = header.get("fnopt_version")
        by = by if isinstance(by, str) else "unknown"
        readable = ", ".join(map(str, READABLE_VERSIONS))
        what = "a newer" if type(version) is int and version > VERSION else "an unknown"
        raise CheckpointError(
            f"{where}: written in {what} checkpoint format version {_show(version)} (by "
            f"fnopt {_show(by)}); fnopt {_fnopt_version()} reads format versions {readable}"
            f" (up to {VERSION})"
        )
    for key in ("backend", "iteration", "metadata", "params", "state", "arrays"):
        if key not in header:
            raise CheckpointError(f"{where}: corrupt header (no {key!r})")
    it = header["iteration"]
    if it is not None and (type(it) is not int or not 0 <= it < _MAX_ITERATION):
        raise CheckpointError(f"{where}: corrupt header (iteration {_show(it)} is not an "
                              "int in [0, 2**63))")
    if not isinstance(header["metadata"], dict):
        raise CheckpointError(f"{where}: corrupt header (metadata is not a mapping)")
    backend = header["backend"]
    if backend not in ("numpy", "torch"):
        raise CheckpointError(f"{where}: corrupt header (unknown backend {_show(backend)})")
    if not isinstance(header["arrays"], list):
        raise CheckpointError(f"{where}: corrupt header ('arrays' is not a list)")
    for i, rec in enumerate(header["arrays"]):
        _check_record(rec, i, backend, where)


def _check_record(rec: Any, i: int, backend: str, where: str) -> None:
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{where}: corrupt header (array record {i}: {what})")

    if not isinstance(rec, dict):
        raise bad("not a mapping")
    kind = rec.get("kind")
    kinds = ("torch",) if backend == "torch" else ("numpy", "numpy_scalar")
    if kind not in kinds:
        raise bad(f"kind {_show(kind)} in a {backend} checkpoint")
    if not isinstance(rec.get("dtype"), str):
        raise bad("no dtype")
    shape = rec.get("shape")
    if not (isinstance(shape, list) and len(shape) <= _NPY_MAX_DIMS
            and all(type(d) is int and d >= 0 for d in shape)):
        raise bad(f"shape {_show(shape)}")
    if kind == "numpy_scalar" and shape:
        raise bad(f"a NumPy scalar of shape {shape}")
    if kind == "torch":
        if not isinstance(rec.get("device"), str):
            raise bad(f"device {_show(rec.get('device'))}")
        if not isinstance(rec.get("requires_grad"), bool):
            raise bad(f"requires_grad {_show(rec.get('requires_grad'))}")


def _read_npy(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, rec: dict[str, Any], i: int, where: str
) -> np.ndarray:
    """Array ``i``, read only once its ``.npy`` header agrees with ``rec`` and declares
    exactly the bytes the member holds (so no allocation exceeds the file's size)."""
    with zf.open(info) as f:
        shape, fortran, dtype, offset = _npy_header(f, i, where)
        if list(shape) != rec["shape"]:
            raise CheckpointError(
                f"{where}: array {i} has shape {_show(list(shape))} but the header says "
                f"{_show(rec['shape'])}"
            )
        if rec["kind"] != "torch" and dtype.str != rec["dtype"]:
            raise CheckpointError(
                f"{where}: array {i} has dtype {dtype.str} but the header says "
                f"{_show(rec['dtype'])}"
            )
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise CheckpointError(
                f"{where}: array {i} declares {nbytes} bytes of data but its member holds "
                f"{info.file_size - offset} (truncated or corrupt)"
            )
        flat = np.empty(count, dtype)
        raw = flat.view(np.uint8)
        pos = 0
        while pos < nbytes:  # in chunks: nothing but the array itself is file-sized
            chunk = f.read(min(_CHUNK, nbytes - pos))
            if not chunk:
                raise CheckpointError(f"{where}: array {i} is truncated")
            raw[pos: pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
            pos += len(chunk)
        if f.read(1):  # also completes the CRC check of the member
            raise CheckpointError(f"{where}: array {i} has trailing data")
    if fortran:
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)


def _npy_header(f: IO[bytes], i: int, where: str) -> tuple[tuple[int, ...], bool, Any, int]:
    """(shape, fortran_order, dtype, data offset) from a ``.npy`` header, checked."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{where}: array {i} is not a valid .npy member ({what})")

    pre = f.read(8)
    if len(pre) != 8 or pre[:6] != b"\x93NUMPY":
        raise bad("no .npy magic")
    version = (pre[6], pre[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise bad(f"format version {version}")
    width = 2 if version == (1, 0) else 4
    hlen = int.from_bytes(f.read(width), "little")
    if hlen > _NPY_MAX_HEADER:
        raise bad(f"a {hlen}-byte header")
    text = f.read(hlen)
    if len(text) != hlen:
        raise bad("truncated header")
    try:
        d = ast.literal_eval(text.decode("utf-8" if version == (3, 0) else "latin1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise bad("unreadable header") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise bad("header keys")
    shape, fortran = d["shape"], d["fortran_order"]
    if not (isinstance(shape, tuple) and len(shape) <= _NPY_MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)):
        raise bad(f"shape {_show(shape)}")
    if not isinstance(fortran, bool):
        raise bad(f"fortran_order {_show(fortran)}")
    try:
        dtype = np.lib.format.descr_to_dtype(d["descr"])
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError):
        raise bad(f"dtype {_show(d['descr'])}") from None
    if dtype.hasobject or dtype.itemsize == 0:
        raise bad(f"dtype {dtype} holds no plain data")
    return shape, fortran, dtype, 8 + width + hlen


def _restore_array(arr: np.ndarray, rec: dict[str, Any], i: int, where: str,
                   device: Any) -> Any:
    """The leaf for stored array ``i``: a NumPy array or scalar, or a tensor of the
    recorded dtype on ``device`` (or the recorded device)."""
    kind = rec["kind"]
    if kind == "numpy_scalar":
        return arr[()]
    if kind == "numpy":
        return arr
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{where}: holds torch tensors but torch is not installed") from None
    name = rec["dtype"]
    dtype = getattr(torch, name, None) if name.isidentifier() and name[0] != "_" else None
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{where}: unknown torch dtype {_show(name)} (array {i})")
    if not arr.dtype.isnative:
        raise CheckpointError(f"{where}: array {i} of a tensor is not in native byte order")
    try:
        t = torch.from_numpy(arr)
    except (TypeError, ValueError, RuntimeError):
        raise CheckpointError(f"{where}: array {i} has dtype {arr.dtype}, which no tensor "
                              "has") from None
    if dtype == torch.bfloat16 and t.dtype == torch.int16:
        t = t.view(torch.bfloat16)
    if t.dtype != dtype:
        raise CheckpointError(f"{where}: array {i} holds {t.dtype} data but the header says "
                              f"{dtype}")
    t = _to_device(t, rec, i, where, device)
    if rec["requires_grad"]:
        if not (t.is_floating_point() or t.is_complex()):
            raise CheckpointError(f"{where}: array {i} of dtype {dtype} cannot require "
                                  "gradients")
        t.requires_grad_(True)
    return t


def _to_device(t: Any, rec: dict[str, Any], i: int, where: str, device: Any) -> Any:
    import torch

    if device is None:
        try:
            device = torch.device(rec["device"])
        except Exception:
            raise CheckpointError(f"{where}: array {i} has the invalid device "
                                  f"{_show(rec['device'])}") from None
        if device.type == "meta":
            raise CheckpointError(f"{where}: array {i} is on the 'meta' device, which holds "
                                  "no data")
        given = False
    else:
        given = True
    try:
        return t.to(device)
    except Exception as exc:  # also ModuleNotFoundError ("hpu"), NotImplementedError
        if given:
            raise CheckpointError(f"device: cannot put tensors on {device} "
                                  f"({_show(exc, 160)})") from None
        raise CheckpointError(
            f"{where}: array {i} was saved on {device}, which this machine cannot use "
            f"({_show(exc, 120)}); pass load(..., device='cpu')"
        ) from None


def _describe_leaf(x: Any) -> tuple[Any, ...]:
    be = _backend.of_leaf(x)
    if be is not None:  # a NumPy scalar and a 0-d array are the same kind of leaf here
        return (f"{be.name} {be.noun}", tuple(x.shape), str(x.dtype))
    return (type(x).__name__,)


def _check_like(got: Any, like: Any, what: str, where: str) -> None:
    g_leaves, g_spec = optree.tree_flatten(got)
    l_leaves, l_spec = optree.tree_flatten(like)
    if g_spec != l_spec:
        raise CheckpointError(
            f"{where}: the saved {what} has structure {g_spec}, expected {l_spec} "
            f"(from {what}_like)"
        )
    for p, a, b in zip(optree.tree_paths(like), g_leaves, l_leaves):
        da, db = _describe_leaf(a), _describe_leaf(b)
        if da != db:
            leaf = "".join(f"[{k!r}]" for k in p) or "<root>"
            raise CheckpointError(
                f"{where}: the saved {what} leaf {leaf} is {da}, expected {db} "
                f"(from {what}_like)"
            )


def _state_mismatch(got: Any, like: Any, path: str) -> str | None:
    """Where ``got`` is not a state like ``like``, or ``None``. The structure must match
    exactly (an init state has the structure of later ones: a ``None`` matches only
    ``None``, a tuple only a tuple of its length); lenient only where leaf values
    legitimately change kind as a run goes: numbers match numbers, a 0-d array matches
    any 0-d array of its backend."""
    here = path or "<root>"
    if _is_namedtuple(like) or attrs.has(type(like)):
        if type(got) is not type(like):
            return f"{here} is a {type(got).__name__}, expected a {type(like).__name__}"
        names = like._fields if _is_namedtuple(like) else [a.name for a in attrs.fields(
            type(like))]
        for f in names:
            why = _state_mismatch(getattr(got, f), getattr(like, f), f"{path}.{f}")
            if why:
                return why
        return None
    if type(like) in (tuple, list):
        if type(got) is not type(like) or len(got) != len(like):
            return f"{here} is {_describe_leaf(got)}, expected a {type(like).__name__} of " \
                f"{len(like)}"
        for i, (a, b) in enumerate(zip(got, like)):
            why = _state_mismatch(a, b, f"{path}[{i}]")
            if why:
                return why
        return None
    if type(like) is dict:
        if type(got) is not dict or set(got) != set(like):
            return f"{here} has other keys than expected"
        for k in like:
            why = _state_mismatch(got[k], like[k], f"{path}[{k!r}]")
            if why:
                return why
        return None
    if _backend.is_leaf(like):
        dg, dl = _describe_leaf(got), _describe_leaf(like)
        if not _backend.is_leaf(got) or dg[0] != dl[0] or dg[1] != dl[1] or (
            dl[1] and dg[2] != dl[2]
        ):
            return f"{here} is {dg}, expected {dl}"
        return None
    if isinstance(like, (int, float)) and not isinstance(like, bool):
        ok = isinstance(got, (int, float)) and not isinstance(got, bool)
        return None if ok else f"{here} is {_describe_leaf(got)}, expected a number"
    if type(got) is not type(like):
        return f"{here} is {_describe_leaf(got)}, expected {_describe_leaf(like)}"
    return None


def to_numpy(tree: Any) -> Any:
    """Params or state with every tensor converted to a NumPy array (same dtype, fresh
    memory); NumPy arrays are copied; other leaves (ints, floats, None) are kept.

    NamedTuple and attrs state types are preserved. Tensors are moved to the CPU and
    detached; ``bfloat16`` has no NumPy dtype and is rejected.

    >>> import torch, fnopt
    >>> fnopt.to_numpy({"w": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    {'w': array([1., 2.])}
    """

    def conv(x: Any) -> Any:
        return _backend.to_numpy(x, copy=True, what="tree") if _backend.is_array(x) else x

    return _map(conv, tree, "tree")


def to_torch(tree: Any, *, device: Any = None) -> Any:
    """Params or state with every NumPy array (and NumPy scalar) converted to a torch
    tensor with the same dtype, in fresh memory; tensors are copied (and moved to
    ``device`` if given); other leaves (ints, floats, None) are kept.

    NamedTuple and attrs state types are preserved, so a state converted with
    :func:`to_torch` continues a run on torch exactly where the NumPy run stopped.

    >>> import numpy as np, fnopt
    >>> fnopt.to_torch([np.array([1.0], dtype=np.float32)])
    [tensor([1.])]
    """
    import torch  # noqa: F401  (torch is required, even for a tree without arrays)

    def conv(x: Any) -> Any:
        return _backend.array(x, "torch", device=device) if _backend.is_leaf(x) else x

    return _map(conv, tree, "tree")

