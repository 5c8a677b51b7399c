"""Model files: saving, loading and pickling mixtura's estimators through one portable format.

A model file is the container of ``include/mixtura/io/model_file.hpp`` (magic, format version,
named typed sections, CRC-32; see docs/model-format.md), read and written by the C++ core, so
Python and C++ read each other's files. No pickle is ever stored inside a file.

An estimator joins by deriving from :class:`ModelFileMixin`, naming its ``_model_kind`` and
implementing two methods that map it to sections and back::

    def _to_sections(self, prefix="", side=None) -> dict          # name -> ndarray or str
    @classmethod
    def _from_sections(cls, sections, prefix="", side=None)       # -> estimator

``prefix`` lets a composite estimator hold others: it calls ``inner._to_sections(prefix + "model.")``
and ``Inner._from_sections(sections, prefix + "model.")``. ``side`` (a dict, or None when saving to a
file) receives the parameters a file cannot hold (a RandomState instance, an estimator object);
pickling carries it beside the file bytes.
"""
import errno
import json
import numbers
import os
import stat
import warnings

import numpy as np

from . import _core

_REGISTRY = {}

#: Section dtypes a model file holds.
_DTYPES = (np.float32, np.float64, np.int32, np.int64)


def _register(cls):
    """Makes ``load`` return instances of ``cls`` for files of kind ``cls._model_kind``."""
    _REGISTRY[cls._model_kind] = cls
    return cls


def dumps(estimator, side=None):
    """The model-file bytes of ``estimator``.

    Parameters
    ----------
    estimator : KMeans, GaussianMixture or another registered estimator
    side : dict or None
        Receives the parameters the file cannot hold; None (saving) drops them with a warning.

    Returns
    -------
    bytes
    """
    sections = {"mixtura_version": _core.__version__}
    sections.update(estimator._to_sections("", side))
    return _core.model_file_to_bytes(estimator._model_kind, sections)


def loads(data, *, where="mixtura.loads", cls=None, side=None, _allow_unfitted=False):
    """The estimator held by model-file bytes.

    Parameters
    ----------
    data : bytes
    where : str
        Names the source in error messages.
    cls : type or None
        The class to build; None picks it from the file's kind.
    side : dict or None
        Parameters carried beside the bytes (pickling).

    Returns
    -------
    estimator
        Fitted as it was saved.

    Raises
    ------
    ValueError
        If the bytes are not a valid model file (wrong magic, unknown version, truncated, checksum
        mismatch, inconsistent contents), with a message that says which check failed.
    """
    kind, sections = _core.model_file_from_bytes(bytes(data), where)
    if cls is None:
        if kind not in _REGISTRY:
            raise ValueError(f"{where}: unknown model kind {kind!r} (this mixtura reads "
                             f"{', '.join(sorted(_REGISTRY))})")
        cls = _REGISTRY[kind]
    elif kind != cls._model_kind:
        raise ValueError(f"{where}: the file holds a {kind!r} model, not a {cls._model_kind!r}")
    try:
        est = cls._from_sections(sections, "", side)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if not _allow_unfitted and not _is_fitted(est):
        # A model file holds a fitted model: missing fitted arrays (or a kind that names another
        # class) are an error, not an unfitted estimator. Pickles of unfitted estimators pass
        # _allow_unfitted. The C++ checks name the missing or foreign section.
        if kind in _CPP_CHECKED:
            try:
                _core.model_file_check(kind, kind, sections, "", f"{cls.__name__} model")
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        raise ValueError(f"{where}: the file holds no fitted {cls.__name__} (its fitted arrays are missing)")
    return est


#: Kinds whose sections the C++ loaders check (include/mixtura/io).
_CPP_CHECKED = ("KMeans", "MiniBatchKMeans", "GaussianMixture", "DensityAnomalyDetector")


def _is_fitted(est):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    return True


def load(path):
    """Load an estimator saved by ``save`` (in Python) or ``mixtura::save_model`` (in C++).

    Parameters
    ----------
    path : str, os.PathLike or binary file object

    Returns
    -------
    KMeans, GaussianMixture or another registered estimator
        Fitted as it was saved: it predicts and scores exactly like the saved one.

    Raises
    ------
    ValueError
        If the file is not a valid mixtura model file (see ``loads``).
    """
    if hasattr(path, "read"):
        return loads(_read_stream(path, "mixtura.load(<file>)"), where="mixtura.load(<file>)")
    where = f"mixtura.load({os.fspath(path)!r})"
    return loads(_read_path(path, where), where=where)


_HEADER_SIZE = 32
_CHUNK = 1 << 20


def _read_up_to(f, n):
    """Up to n bytes of f, read in chunks: a header that declares more than is there allocates only
    what is there."""
    parts, left = [], n
    while left > 0:
        b = f.read(min(left, _CHUNK))
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def _read_path(path, where):
    """The bytes of the model file at path. Only a regular file is read (a FIFO would block, a device
    or a directory has no end), and its header is checked against its size before the rest is read."""
    # O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then refuses it.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"{where}: not a regular file (a directory)", os.fspath(path))
        raise OSError(errno.EINVAL, f"{where}: not a regular file (a device, FIFO or socket)", os.fspath(path))
    with open(fd, "rb", buffering=0) as f:
        head = _read_up_to(f, _HEADER_SIZE)
        _core.model_file_check_header(head, st.st_size, where)
        data = head + _read_up_to(f, st.st_size - len(head))
    if len(data) != st.st_size:
        raise OSError(errno.EIO, f"{where}: the file shrank while it was read ({len(data)} of {st.st_size} bytes)",
                      os.fspath(path))
    return data


def _read_stream(f, where):
    """The bytes of a model file from a binary file object: the header first, then as many bytes as
    it declares, then a check that nothing follows."""
    head = _read_up_to(f, _HEADER_SIZE)
    if len(head) < _HEADER_SIZE:
        return head  # loads says what is wrong with it
    total = _core.model_file_check_header(head, max(len(head), int.from_bytes(head[16:24], "little")), where)
    data = head + _read_up_to(f, total - len(head))
    if len(data) == total and f.read(1):
        raise ValueError(f"{where}: trailing data after the {total} bytes the header declares")
    return data


def save(estimator, path):
    """Write ``estimator`` as a model file (atomically: a temporary file renamed over ``path``)."""
    data = dumps(estimator)
    if hasattr(path, "write"):
        path.write(data)
        return
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class ModelFileMixin:
    """``save(path)`` and pickling through the model-file format (``mixtura.load`` reads both)."""

    _model_kind = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_model_kind"):
            _register(cls)

    def save(self, path):
        """Save the fitted estimator as a portable model file (docs/model-format.md).

        Parameters
        ----------
        path : str, os.PathLike or binary file object

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self)
        save(self, path)

    def __getstate__(self):
        side = {}
        return {"mixtura_model_file": dumps(self, side), "side_params": side}

    def __setstate__(self, state):
        if "mixtura_model_file" not in state:  # a plain __dict__ (never produced by mixtura itself)
            self.__dict__.update(state)
            return
        other = loads(state["mixtura_model_file"], where=f"unpickling {type(self).__name__}", cls=type(self),
                      side=state.get("side_params") or {}, _allow_unfitted=True)
        self.__dict__.update(other.__dict__)


# ---- Helpers for _to_sections / _from_sections ----------------------------------------------------

def _json_value(v):
    """v as a JSON value, or raise TypeError."""
    if v is None or isinstance(v, (bool, np.bool_, str)):
        return bool(v) if isinstance(v, np.bool_) else v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real) and np.isfinite(v):
        return float(v)
    raise TypeError


def params_to_sections(est, prefix, side):
    """The estimator's parameters: JSON in ``prefix + "params"``, arrays in ``prefix + "params.NAME"``.

    Parameters the file cannot hold go to ``side`` (under ``prefix + NAME``); with ``side=None`` they
    are left out with a warning, and a load gives them their default.
    """
    params, arrays = {}, {}
    for name, value in est.get_params(deep=False).items():
        try:
            params[name] = _json_value(value)
            continue
        except TypeError:
            pass
        if isinstance(value, (np.ndarray, list, tuple)):
            a = np.asarray(value)
            if a.dtype.kind in "iu" and a.dtype != np.int32:
                a = a.astype(np.int64)
            elif a.dtype.kind == "f" and a.dtype not in (np.float32, np.float64):
                a = a.astype(np.float64)
            if a.dtype in _DTYPES and a.ndim <= 4:
                arrays[f"{prefix}params.{name}"] = np.ascontiguousarray(a)
                continue
        if side is None:
            warnings.warn(f"{type(est).__name__}.save: parameter {name}={value!r} cannot be stored in a model file; "
                          "loading gives it its default value", UserWarning, stacklevel=4)
        else:
            side[prefix + name] = value
    out = {prefix + "params": json.dumps(params, allow_nan=False)}
    out.update(arrays)
    return out


def _json_text(sections, name):
    """The JSON value of text section ``name``; ValueError if it is not JSON (or nests too deeply
    for the parser: json raises RecursionError there)."""
    text = sections[name]
    if not isinstance(text, str):
        raise ValueError(f"section {name!r} is not a text section")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"section {name!r} is not valid JSON text: {e}") from None
    except RecursionError:
        raise ValueError(f"section {name!r} nests JSON too deeply") from None


#: Integers a parameter may hold: what the C++ core's int takes; random_state is the 64-bit key.
_INT_LIMIT = 2**31 - 1
_INT_RANGES = {"random_state": (0, 2**64 - 1)}


def _check_json_parameter(section, key, value):
    """A parameter in the JSON of ``section``: a number (finite; an integer within int's range, a
    random_state within the 64-bit key's), a string, a boolean or null, as params_to_sections writes
    them (arrays go to their own sections)."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        low, high = _INT_RANGES.get(key, (-_INT_LIMIT, _INT_LIMIT))
        if not low <= value <= high:
            raise ValueError(f"section {section!r}: parameter {key!r} = {value} is outside [{low}, {high}]")
        return
    if isinstance(value, float):
        if not np.isfinite(value) or abs(value) > 1e300:
            raise ValueError(f"section {section!r}: parameter {key!r} = {value} is not a usable number")
        return
    raise ValueError(f"section {section!r}: parameter {key!r} is a JSON {type(value).__name__}; a parameter "
                     "is a number, a string, a boolean or null")


def params_from_sections(cls, sections, prefix, side):
    """Constructor arguments from the sections written by ``params_to_sections`` (and ``side``)."""
    name = prefix + "params"
    try:
        params = _json_text(sections, name)
    except KeyError:
        raise ValueError(f"the model file has no section {name!r}") from None
    if not isinstance(params, dict):
        raise ValueError(f"section {name!r} holds a JSON {type(params).__name__}, expected an object")
    for key, value in params.items():
        _check_json_parameter(name, key, value)
    prefix_len = len(prefix) + len("params.")
    for key, value in sections.items():
        if key.startswith(prefix + "params.") and "." not in key[prefix_len:]:
            params[key[prefix_len:]] = value
    for key, value in (side or {}).items():
        if key.startswith(prefix) and "." not in key[len(prefix):]:
            params[key[len(prefix):]] = value
    accepted = set(cls._get_param_names())
    unknown = sorted(set(params) - accepted)
    if unknown:
        warnings.warn(f"{cls.__name__}: the model file has parameters this version does not know, ignored: "
                      f"{', '.join(unknown)}", UserWarning, stacklevel=4)
    return {k: v for k, v in params.items() if k in accepted}


def check_params_match(est, sections, prefix, **fitted):
    """The hyper-parameters read from ``prefix + "params"`` agree with the fitted arrays (a file whose
    params name another covariance_type would otherwise score its arrays as the wrong type)."""
    for name, value in fitted.items():
        if getattr(est, name) != value:
            raise ValueError(f"section {prefix + 'params'!r} gives {name}={getattr(est, name)!r} but the fitted "
                             f"arrays are for {name}={value!r}")


def scalar(value, dtype):
    """A 0-d array (a scalar section)."""
    return np.asarray(value, dtype=dtype).reshape(())


def features_to_sections(est, prefix):
    """n_features_in_ and, when present, feature_names_in_ (JSON list of str)."""
    out = {prefix + "n_features_in_": scalar(est.n_features_in_, np.int64)}
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        out[prefix + "feature_names_in_"] = json.dumps([str(n) for n in names])
    return out


def features_from_sections(est, sections, prefix):
    est.n_features_in_ = int(sections[prefix + "n_features_in_"])
    text = sections.get(prefix + "feature_names_in_")
    if text is None:
        return
    names = _json_text(sections, prefix + "feature_names_in_")
    if (not isinstance(names, list) or len(names) != est.n_features_in_
            or not all(isinstance(n, str) for n in names)):
        raise ValueError(f"section {prefix + 'feature_names_in_'!r} must be a JSON list of n_features_in_ = "
                         f"{est.n_features_in_} strings")
    est.feature_names_in_ = np.asarray(names, dtype=object)


def traces_to_sections(traces, kept, name, prefix):
    """Every restart's (n_iter, 2) trace, concatenated, with restart_n_iter_ and best_restart_."""
    best = next((i for i, t in enumerate(traces) if t is kept), None)
    if best is None:
        best = next(i for i, t in enumerate(traces) if np.array_equal(t, kept))
    rows = [np.asarray(t, dtype=np.float64).reshape(-1, 2) for t in traces]
    return {prefix + name: np.ascontiguousarray(np.concatenate(rows) if rows else np.zeros((0, 2))),
            prefix + "restart_n_iter_": np.array([len(r) for r in rows], dtype=np.int64),
            prefix + "best_restart_": scalar(best, np.int64)}


def traces_from_sections(sections, name, prefix):
    """(list of per-restart traces, index of the kept one); shapes were checked by the C++ loader."""
    flat = sections[prefix + name]
    ends = np.cumsum(sections[prefix + "restart_n_iter_"])
    traces = [flat[a:b] for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
    return traces, int(sections[prefix + "best_restart_"])


def events_to_sections(events, kinds, who, prefix, with_value=False):
    """events_ (list of dicts) as an int64 table: kind code, restart, iteration, ``who``, row."""
    table = np.array([[kinds.index(e["kind"]), e["restart"], e["iteration"], e[who], e["row"]] for e in events],
                     dtype=np.int64).reshape(-1, 5)
    out = {prefix + "events_": table}
    if with_value:
        out[prefix + "events_value_"] = np.array([e["value"] for e in events], dtype=np.float64)
    return out


def events_from_sections(sections, kinds, who, prefix, with_value=False):
    table = sections[prefix + "events_"]
    values = sections[prefix + "events_value_"] if with_value else None
    events = []
    for i, (kind, restart, iteration, index, row) in enumerate(table.tolist()):
        e = {"kind": kinds[kind], "restart": restart, "iteration": iteration, who: index, "row": row}
        if with_value:
            e["value"] = float(values[i])
        events.append(e)
    return events


def keep_extras(est, sections, prefix, names, anchor):
    """Sections that Python does not turn into attributes (timings, ...) kept for the next save,
    as long as ``anchor`` (a fitted array) is the same object, i.e. the estimator was not refitted."""
    extras = {n: sections[prefix + n] for n in names if prefix + n in sections}
    est._model_file_extras = (anchor, extras)


def extras_to_sections(est, prefix, anchor):
    kept = getattr(est, "_model_file_extras", None)
    if kept is None or kept[0] is not anchor:
        return {}
    return {prefix + n: v for n, v in kept[1].items()}
