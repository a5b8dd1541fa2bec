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

Safety: loading never unpickles and never runs code from the file. NamedTuple and
attrs state classes are re-imported by name only if ``fnopt`` defines them (a module
``fnopt.*`` without dunder names, and the class's own ``__module__``/``__qualname__``
must be the recorded ones); other classes must be passed in ``types=`` (or be found in
``state_like=``), and their field names must match the file.

Writes are atomic: the archive is written to a temporary file in the same directory,
flushed to disk and renamed over ``path``, so a crash mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import attrs
import numpy as np
import optree

from fnopt import backend as _backend
from fnopt._base import Params, State, check_params

__all__ = ["save", "load", "Checkpoint", "CheckpointError", "to_numpy", "to_torch"]

FORMAT = "fnopt-checkpoint"
VERSION = 1
_HEADER = "fnopt-checkpoint.json"
_TRUSTED_PREFIX = "fnopt"

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
    """

    params: Params
    state: State
    iteration: int | None
    metadata: dict[str, Any]


# -- tree walking ------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) or _backend.is_tensor(x)


def _is_namedtuple(x: Any) -> bool:
    return optree.is_namedtuple_instance(x)


def _map(fn: Callable[[Any], Any], tree: Any, what: str, path: str = "") -> Any:
    """Rebuild ``tree`` with ``fn`` applied to each array leaf (other leaves kept)."""
    if _is_array(tree):
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
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.records: list[dict[str, Any]] = []

    def array(self, x: Any) -> dict[str, Any]:
        rec: dict[str, Any]
        if _backend.is_tensor(x):
            import torch

            if x.layout != torch.strided:
                raise TypeError(f"cannot save a tensor with layout {x.layout}")
            t = x.detach().cpu().resolve_conj().resolve_neg().contiguous()
            rec = {
                "kind": "torch",
                "dtype": str(t.dtype).replace("torch.", ""),
                "device": str(x.device),
                "requires_grad": bool(x.requires_grad),
            }
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            arr = t.numpy()
        else:
            kind = "numpy_scalar" if isinstance(x, np.generic) else "numpy"
            arr = np.asarray(x)
            if arr.dtype.hasobject:
                raise TypeError("cannot save an array of dtype object")
            rec = {"kind": kind, "dtype": arr.dtype.str}
        rec["shape"] = list(arr.shape)
        self.records.append(rec)
        self.arrays.append(arr)
        return {"t": "array", "i": len(self.arrays) - 1}

    def node(self, x: Any, what: str, path: str) -> dict[str, Any]:
        where = path or "<root>"
        if _is_array(x):
            try:
                return self.array(x)
            except TypeError as exc:
                raise TypeError(f"{what}: {exc} (at {where})") from None
        if x is None:
            return {"t": "none"}
        if isinstance(x, bool):
            return {"t": "bool", "v": x}
        if isinstance(x, int):
            return {"t": "int", "v": int(x)}
        if isinstance(x, float):
            return {"t": "float", "v": float(x).hex()}
        if isinstance(x, str):
            return {"t": "str", "v": x}
        if _is_namedtuple(x):
            cls = type(x)
            return {
                "t": "namedtuple",
                **_type_name(cls),
                "fields": list(cls._fields),
                "c": [self.node(v, what, f"{path}.{f}") for f, v in zip(cls._fields, x)],
            }
        if type(x) in (tuple, list):
            return {
                "t": type(x).__name__,
                "c": [self.node(v, what, f"{path}[{i}]") for i, v in enumerate(x)],
            }
        if type(x) is dict:
            keys = []
            for k in x:
                if k is not None and not isinstance(k, (bool, int, float, str)):
                    raise TypeError(
                        f"{what}: dict key {k!r} at {where} is a {type(k).__name__}; "
                        "only str, int, float, bool or None keys can be saved"
                    )
                keys.append(self.node(k, what, where))
            return {
                "t": "dict",
                "k": keys,
                "c": [self.node(v, what, f"{path}[{k!r}]") for k, v in x.items()],
            }
        if attrs.has(type(x)):
            fields = _attrs_fields(type(x), what, path)
            return {
                "t": "attrs",
                **_type_name(type(x)),
                "fields": [a.name for a in fields],
                "c": [self.node(getattr(x, a.name), what, f"{path}.{a.name}") for a in fields],
            }
        raise TypeError(
            f"{what}: cannot save a value of type {type(x).__name__} at {where}; a "
            "checkpoint holds arrays/tensors, None, bool, int, float, str, and tuples, lists, "
            "dicts, NamedTuples and attrs classes of them"
        )


def _type_name(cls: type) -> dict[str, str]:
    return {"module": cls.__module__, "name": cls.__qualname__}


# -- decoding ----------------------------------------------------------------------


class _Decoder:
    def __init__(
        self,
        arrays: list[Any],
        types: dict[tuple[str, str], type],
        path: str,
    ) -> None:
        self.arrays = arrays
        self.types = types
        self.path = path

    def fail(self, msg: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {msg}")

    def node(self, n: Any, where: str) -> Any:
        if not isinstance(n, dict) or "t" not in n:
            raise self.fail(f"malformed header node at {where or '<root>'}")
        t = n["t"]
        try:
            if t == "array":
                return self.arrays[n["i"]]
            if t == "none":
                return None
            if t == "bool":
                return bool(n["v"])
            if t == "int":
                return int(n["v"])
            if t == "float":
                return float.fromhex(n["v"])
            if t == "str":
                return str(n["v"])
            if t in ("tuple", "list"):
                items = [self.node(c, f"{where}[{i}]") for i, c in enumerate(n["c"])]
                return tuple(items) if t == "tuple" else items
            if t == "dict":
                keys = [self.node(k, where) for k in n["k"]]
                return {k: self.node(c, f"{where}[{k!r}]") for k, c in zip(keys, n["c"])}
            if t in ("namedtuple", "attrs"):
                cls = self.resolve(n, where)
                vals = [self.node(c, f"{where}.{f}") for f, c in zip(n["fields"], n["c"])]
                if t == "namedtuple":
                    return cls(*vals)
                names = {a.name: a.alias for a in attrs.fields(cls)}
                return cls(**{names[f]: v for f, v in zip(n["fields"], vals)})
        except CheckpointError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self.fail(f"malformed header node at {where or '<root>'}: {exc!r}") from None
        raise self.fail(f"unknown node type {t!r} at {where or '<root>'}")

    def resolve(self, n: dict[str, Any], where: str) -> type:
        module, name, kind = n["module"], n["name"], n["t"]
        full = f"{module}.{name}"
        cls = self.types.get((module, name))
        if cls is None:
            trusted = module == _TRUSTED_PREFIX or module.startswith(_TRUSTED_PREFIX + ".")
            dunder = any(p.startswith("__") for p in (*module.split("."), *name.split(".")))
            if not trusted or dunder or "<" in name:
                raise self.fail(
                    f"state type {full} (at {where or '<root>'}) is not importable from fnopt; "
                    f"pass the class in load(..., types=[...]) or state_like=..."
                )
            try:
                obj: Any = importlib.import_module(module)
                for part in name.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError):
                raise self.fail(
                    f"state type {full} (at {where or '<root>'}) no longer exists in this "
                    "version of fnopt"
                ) from None
            if not (isinstance(obj, type) and obj.__module__ == module
                    and obj.__qualname__ == name):
                # only a class defined where the file says, not one reachable through
                # another module's attributes
                raise self.fail(f"{full} (at {where or '<root>'}) is not a class of fnopt")
            cls = obj
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
                f"{list(n['fields'])}; it was saved by a different version of that class"
            )
        return cls


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


# -- public API --------------------------------------------------------------------


def save(
    path: PathLike,
    params: Params,
    state: State = None,
    *,
    iteration: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Write ``params`` and ``state`` to ``path`` atomically (format: module docstring).

    The file appears complete or not at all: it is written to a temporary file in the
    same directory, flushed to disk and renamed over ``path``, so a crash or Ctrl-C
    mid-write leaves an earlier checkpoint at ``path`` intact.

    Args:
      path: the file to write (``.npz`` is a good suffix; it is used as given).
      params: a pytree of NumPy arrays or of torch tensors.
      state: an optimizer state (NamedTuples, attrs classes, tuples, lists, dicts of
        arrays of the same backend, ``None``, bool, int, float, str).
      iteration: the iteration number of ``params`` (returned by :func:`load`).
      metadata: a JSON-serialisable dict stored alongside.

    Returns:
      The path written, as a :class:`pathlib.Path`.

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
    be = check_params(params)
    state_arrays = [x for x in optree.tree_leaves(state) if _is_array(x)]
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
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int)):
        raise TypeError(f"iteration: expected an int or None, got {type(iteration).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata: must be JSON-serialisable ({exc})") from None

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
    path = pathlib.Path(path)
    _atomic_write(path, header, enc.arrays)
    return path


def _fnopt_version() -> str:
    import fnopt

    return str(getattr(fnopt, "__version__", "unknown"))


def _atomic_write(path: pathlib.Path, header: dict[str, Any], arrays: list[np.ndarray]) -> None:
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"path: directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(_zipinfo(_HEADER), json.dumps(header, sort_keys=True).encode())
                for i, arr in enumerate(arrays):
                    with zf.open(_zipinfo(f"arrays/{i}.npy"), "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


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


def load(
    path: PathLike,
    *,
    types: Iterable[type] = (),
    params_like: Params | None = None,
    state_like: State | None = None,
    device: Any = None,
) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

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
        device each was saved from).

    Returns:
      A :class:`Checkpoint` ``(params, state, iteration, metadata)``.

    Raises:
      FileNotFoundError: no file at ``path``.
      CheckpointError: (a ``ValueError``) the file is not a checkpoint, is truncated
        or corrupt (CRC mismatch), comes from a newer format version, names a class
        that is not allowed or whose fields changed, or does not match ``params_like``
        / ``state_like``.
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
    if not path.exists():
        raise FileNotFoundError(f"path: no checkpoint at {str(path)!r}")
    where = str(path)
    try:
        with zipfile.ZipFile(path, "r") as zf:
            names = set(zf.namelist())
            if _HEADER not in names:
                raise CheckpointError(f"{where}: not a fnopt checkpoint (no {_HEADER} inside)")
            try:
                header = json.loads(zf.read(_HEADER).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{where}: corrupt header ({exc})") from None
            _check_header(header, where)
            arrays = []
            for i, rec in enumerate(header["arrays"]):
                member = f"arrays/{i}.npy"
                if member not in names:
                    raise CheckpointError(f"{where}: array {i} is missing (truncated file?)")
                with zf.open(member) as f:
                    arr = np.lib.format.read_array(f, allow_pickle=False)
                arrays.append(_restore_array(arr, rec, i, where, device))
    except CheckpointError:
        raise
    except zipfile.BadZipFile as exc:
        raise CheckpointError(
            f"{where}: not a readable fnopt checkpoint (truncated or corrupt: {exc})"
        ) from None
    except (ValueError, OSError, EOFError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{where}: corrupt checkpoint ({type(exc).__name__}: {exc})"
        ) from None

    dec = _Decoder(arrays, allowed, where)
    params = dec.node(header["params"], "params")
    state = dec.node(header["state"], "state")
    if params_like is not None:
        _check_like(params, params_like, "params", where)
    if state_like is not None:
        why = _state_mismatch(state, state_like, "")
        if why is not None:
            raise CheckpointError(f"{where}: the saved state does not match state_like: {why}")
    return Checkpoint(params, state, header.get("iteration"), header.get("metadata") or {})


def _check_header(header: Any, where: str) -> None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not a fnopt checkpoint (wrong format tag)")
    version = header.get("version")
    if not isinstance(version, int):
        raise CheckpointError(f"{where}: corrupt header (no format version)")
    if version > VERSION:
        raise CheckpointError(
            f"{where}: written in checkpoint format version {version} by fnopt "
            f"{header.get('fnopt_version')}; this fnopt reads versions up to {VERSION}"
        )
    for key in ("params", "state", "arrays"):
        if key not in header:
            raise CheckpointError(f"{where}: corrupt header (no {key!r})")
    if not isinstance(header["arrays"], list):
        raise CheckpointError(f"{where}: corrupt header ('arrays' is not a list)")


def _restore_array(arr: np.ndarray, rec: Any, i: int, where: str, device: Any) -> Any:
    if not isinstance(rec, dict) or "kind" not in rec:
        raise CheckpointError(f"{where}: corrupt header (array record {i})")
    if list(arr.shape) != list(rec.get("shape", [])):
        raise CheckpointError(
            f"{where}: array {i} has shape {list(arr.shape)} but the header says "
            f"{rec.get('shape')}"
        )
    kind = rec["kind"]
    if kind in ("numpy", "numpy_scalar"):
        if arr.dtype.str != rec.get("dtype"):
            raise CheckpointError(
                f"{where}: array {i} has dtype {arr.dtype.str} but the header says "
                f"{rec.get('dtype')}"
            )
        return arr[()] if kind == "numpy_scalar" else arr
    if kind != "torch":
        raise CheckpointError(f"{where}: unknown array kind {kind!r} (array {i})")
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{where}: holds torch tensors but torch is not installed") from None
    dtype = getattr(torch, str(rec.get("dtype")), None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{where}: unknown torch dtype {rec.get('dtype')!r} (array {i})")
    t = torch.from_numpy(np.array(arr, copy=True))
    if dtype == torch.bfloat16:
        t = t.view(torch.bfloat16)
    if t.dtype != dtype:
        raise CheckpointError(
            f"{where}: array {i} has dtype {t.dtype} but the header says {dtype}"
        )
    t = t.to(device if device is not None else rec.get("device", "cpu"))
    if rec.get("requires_grad"):
        t.requires_grad_(True)
    return t


def _describe_leaf(x: Any) -> tuple[Any, ...]:
    if _is_array(x):
        # a NumPy scalar and a 0-d array are the same kind of leaf here
        kind = "tensor" if _backend.is_tensor(x) else "numpy array"
        return (kind, tuple(x.shape), str(x.dtype))
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
    if _is_array(like):
        dg, dl = _describe_leaf(got), _describe_leaf(like)
        if not _is_array(got) or dg[0] != dl[0] or dg[1] != dl[1] or (
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
        if _backend.is_tensor(x):
            import torch

            if x.dtype == torch.bfloat16:
                raise TypeError("tree: bfloat16 tensors have no NumPy dtype")
            return np.array(x.detach().cpu().resolve_conj().resolve_neg().numpy(), copy=True)
        return np.array(x, copy=True) if isinstance(x, np.ndarray) else x

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
    import torch

    def conv(x: Any) -> Any:
        if _backend.is_tensor(x):
            return x.detach().clone() if device is None else x.detach().to(device, copy=True)
        if isinstance(x, (np.ndarray, np.generic)):
            t = torch.from_numpy(np.array(x, copy=True))
            return t if device is None else t.to(device)
        return x

    return _map(conv, tree, "tree")

