"""Plain data: the only form in which values cross from student code to the checks.

What student code returns is turned into JSON by :func:`to_plain` on the student's side.
:func:`from_plain` rebuilds it on the checks' side from nothing but JSON types. So no
object of the student's (a float subclass, a tensor subclass, an object whose ``__eq__``
always returns True) ever reaches a comparison. Grading runs the same round trip when
checks and student code share a process (``pytest grading/`` on a laptop, the nbgrader
notebook), so both ways give the same points.

JSON has no tuples, tensors or images, so those are written as one-key dicts:

* ``{"$tuple": [...]}``, and ``{"$dict": [[key, value], ...]}`` for every dict;
* ``{"$tensor": {"dtype", "shape", "data"}}`` for a torch tensor (base64 of its bytes), and
  ``$ndarray`` and ``$numpy`` for a NumPy array and a NumPy scalar;
* ``{"$image": {"mode", "size", "data"}}`` for a PIL image, ``{"$path": "..."}`` for a path;
* ``{"$object": {"type", "classes", "fields", "items"}}`` for a dataclass, a tuple subclass
  (a named tuple, ``torch.return_types.max``) or a ``torch.nn.Module``, read back as a
  :class:`Record`; ``{"$opaque": {"type", "classes"}}``
  for any other object, read back as an :class:`Opaque` that only names its type.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from PIL import Image

MAX_DEPTH = 40
"""Nesting depth of lists, dicts and objects beyond which a value is not converted."""
MAX_MESSAGE_BYTES = 256 * 2**20
"""Size of one JSON message beyond which it is rejected. The largest one the checks send
or receive, a trained MnistNet state_dict (114,460 floats), takes about 0.6 MB."""


class PlainDataError(ValueError):
    """A value cannot be written as plain data, or a message is not plain data."""


def class_names(value: Any) -> list[str]:
    """Return the qualified names of the classes of ``value``, its own class first."""
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__]


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tensor_to_plain(value: torch.Tensor) -> dict:
    # A tensor subclass's __torch_function__ could return any object from detach() or
    # clone(), so the copy is made with that dispatch switched off.
    with torch._C.DisableTorchFunctionSubclass():
        tensor = torch.Tensor.detach(value).cpu().contiguous().clone()
        tensor = torch.Tensor.as_subclass(tensor, torch.Tensor)
    if tensor.is_complex() or tensor.dtype not in TENSOR_DTYPES:
        return {"$opaque": {"type": f"tensor of dtype {tensor.dtype}", "classes": []}}
    return {
        "$tensor": {
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
            "data": encode_bytes(tensor.numpy().tobytes()),
        }
    }


TENSOR_DTYPES = {
    getattr(torch, name): name
    for name in (
        "float64",
        "float32",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
    )
}


def to_plain(value: Any, depth: int = 0) -> Any:
    """Write ``value`` as JSON-ready plain data. Objects without a plain form become opaque.

    Runs on the student's side. Only exact built-in types keep their value, so an ``int``
    subclass comes back as an opaque object that names its class.
    """
    if depth > MAX_DEPTH:
        raise PlainDataError(f"invalid value: nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, torch.Tensor):
        return tensor_to_plain(value)
    if kind is list:
        return [to_plain(item, depth + 1) for item in value]
    if kind is tuple:
        return {"$tuple": [to_plain(item, depth + 1) for item in value]}
    if kind is dict:
        return {
            "$dict": [
                [to_plain(key, depth + 1), to_plain(item, depth + 1)]
                for key, item in list(value.items())
            ]
        }
    if kind is np.ndarray and value.dtype.kind in "biuf":
        return {"$ndarray": array_to_plain(value)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"$numpy": array_to_plain(np.asarray(value))}
    if isinstance(value, PurePath) and type(value).__module__.startswith("pathlib"):
        return {"$path": str(value)}
    if isinstance(value, Image.Image):
        image = value.copy()
        return {
            "$image": {
                "mode": image.mode,
                "size": list(image.size),
                "data": encode_bytes(image.tobytes()),
            }
        }
    fields = object_fields(value)
    if fields is None:
        return {"$opaque": {"type": kind.__name__, "classes": class_names(value)}}
    items = (
        [to_plain(item, depth + 1) for item in tuple.__iter__(value)]
        if isinstance(value, tuple)
        else None
    )
    return {
        "$object": {
            "type": kind.__name__,
            "classes": class_names(value),
            "fields": {
                name: to_plain(item, depth + 1) for name, item in fields.items()
            },
            "items": items,
        }
    }


def object_fields(value: Any) -> dict[str, Any] | None:
    """Return the fields of a dataclass, tuple subclass or module, else None."""
    if isinstance(value, torch.nn.Module):
        return {
            "training": bool(value.training),
            "state_dict": dict(value.state_dict()),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: getattr(value, field.name)
            for field in dataclasses.fields(value)
        }
    if isinstance(value, tuple):
        # A named tuple has its field names; torch.return_types (from torch.max and
        # others) and other tuple subclasses keep only their items.
        names = getattr(type(value), "_fields", ())
        if isinstance(names, tuple) and all(type(name) is str for name in names):
            return dict(zip(names, tuple.__iter__(value), strict=False))
        return {}
    return None


def array_to_plain(array: np.ndarray) -> dict:
    array = np.array(array, order="C")
    return {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "data": encode_bytes(array.tobytes()),
    }


class Record:
    """A dataclass, named tuple or module of student code, read back as plain fields.

    Fields are attributes (``record.f1``). A named tuple's items also support ``len``,
    indexing and unpacking. ``type_name`` is the class name of the original object.
    """

    def __init__(
        self, type_name: str, classes: list[str], fields: dict, items: list | None
    ):
        self.type_name = type_name
        self.classes = classes
        self.fields = fields
        self.items = items

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(
            f"{self.__dict__.get('type_name', 'object')} has no {name}"
        )

    def is_a(self, cls: type) -> bool:
        """Tell whether the original object was an instance of ``cls``."""
        return f"{cls.__module__}.{cls.__qualname__}" in self.classes

    def __len__(self) -> int:
        if self.items is None:
            raise TypeError(f"{self.type_name} has no len()")
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        if self.items is None:
            raise TypeError(f"{self.type_name} is not subscriptable")
        return self.items[index]

    def __iter__(self):
        if self.items is None:
            raise TypeError(f"{self.type_name} is not iterable")
        return iter(self.items)

    def __repr__(self) -> str:
        return f"{self.type_name}({self.fields!r})"


@dataclasses.dataclass(frozen=True)
class Opaque:
    """An object of student code without a plain form: only its type is known."""

    type_name: str
    classes: tuple[str, ...] = ()

    def is_a(self, cls: type) -> bool:
        return f"{cls.__module__}.{cls.__qualname__}" in self.classes

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def is_tuple(value: Any) -> bool:
    """Tell whether ``value`` was a tuple: a tuple subclass comes back as a Record with items."""
    return isinstance(value, tuple) or (
        isinstance(value, Record) and value.items is not None
    )


def type_name(value: Any) -> str:
    """Return the class name of ``value``, or of the student's object it was read from."""
    if isinstance(value, Record | Opaque):
        return value.type_name
    return type(value).__name__


def decode_bytes(text: Any) -> bytes:
    if type(text) is not str:
        raise PlainDataError("invalid binary data: not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise PlainDataError("invalid binary data: not valid base64") from None


def tensor_from_plain(data: dict) -> torch.Tensor:
    dtype_name, shape = data.get("dtype"), data.get("shape")
    dtype = getattr(torch, str(dtype_name), None)
    if dtype not in TENSOR_DTYPES or not valid_shape(shape):
        raise PlainDataError(f"invalid tensor: dtype {dtype_name!r}, shape {shape!r}")
    array = values_from_bytes(data.get("data"), np.dtype(TENSOR_DTYPES[dtype]), shape)
    return torch.from_numpy(array)


def array_from_plain(data: dict) -> np.ndarray:
    shape = data.get("shape")
    try:
        dtype = np.dtype(str(data.get("dtype")))
    except TypeError:
        raise PlainDataError(f"invalid array: dtype {data.get('dtype')!r}") from None
    if dtype.kind not in "biuf" or not valid_shape(shape):
        raise PlainDataError(f"invalid array: dtype {dtype}, shape {shape!r}")
    return values_from_bytes(data.get("data"), dtype, shape)


def values_from_bytes(text: Any, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    """Return the base64 ``text`` as a writable array of ``dtype`` and ``shape``."""
    raw = decode_bytes(text)
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise PlainDataError(
            f"invalid data: {len(raw)} bytes of {dtype} values for shape {shape}"
        )
    return np.frombuffer(raw, dtype=dtype).copy().reshape(shape)


def valid_shape(shape: Any) -> bool:
    return type(shape) is list and all(type(n) is int and n >= 0 for n in shape)


def from_plain(data: Any, depth: int = 0) -> Any:
    """Rebuild a value from the output of :func:`to_plain` after a JSON round trip.

    Runs on the checks' side and creates only built-in types, plain tensors and arrays,
    PIL images, paths, :class:`Record` and :class:`Opaque`.
    """
    if depth > MAX_DEPTH + 2:
        raise PlainDataError(f"invalid data: nested more than {MAX_DEPTH} levels deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [from_plain(item, depth + 1) for item in data]
    if type(data) is not dict or len(data) != 1:
        raise PlainDataError(f"invalid data of type {type(data).__name__}")
    ((tag, body),) = data.items()
    if tag == "$tuple" and type(body) is list:
        return tuple(from_plain(item, depth + 1) for item in body)
    if tag == "$dict" and type(body) is list:
        pairs = [pair for pair in body if type(pair) is list and len(pair) == 2]
        if len(pairs) != len(body):
            raise PlainDataError("invalid dict entry: not a key and a value")
        try:
            return {
                from_plain(key, depth + 1): from_plain(item, depth + 1)
                for key, item in pairs
            }
        except TypeError:
            raise PlainDataError("invalid dict key: not hashable") from None
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$path" and type(body) is str:
        return Path(body)
    if type(body) is not dict:
        raise PlainDataError(f"invalid data tagged {tag!r}")
    if tag == "$tensor":
        return tensor_from_plain(body)
    if tag == "$ndarray":
        return array_from_plain(body)
    if tag == "$numpy":
        return array_from_plain(body)[()]
    if tag == "$image":
        size = body.get("size")
        if not valid_shape(size) or len(size) != 2:
            raise PlainDataError(f"invalid image size {size!r}")
        try:
            return Image.frombytes(
                str(body.get("mode")), tuple(size), decode_bytes(body.get("data"))
            )
        except ValueError as error:
            raise PlainDataError(f"invalid image: {error}") from None
    classes = body.get("classes")
    if type(classes) is not list or not all(type(name) is str for name in classes):
        raise PlainDataError(f"invalid class names in {tag!r}")
    type_name = str(body.get("type"))
    if tag == "$opaque":
        return Opaque(type_name, tuple(classes))
    if tag == "$object":
        fields = body.get("fields")
        items = body.get("items")
        if type(fields) is not dict or not (items is None or type(items) is list):
            raise PlainDataError(f"invalid object of type {type_name}: no fields")
        return Record(
            type_name,
            classes,
            {str(name): from_plain(value, depth + 1) for name, value in fields.items()},
            None if items is None else [from_plain(item, depth + 1) for item in items],
        )
    raise PlainDataError(f"invalid data tagged {tag!r}")


def dumps(value: Any) -> bytes:
    """Return ``value`` as a JSON message of plain data."""
    return json.dumps(to_plain(value), allow_nan=False).encode()


def loads(message: bytes) -> Any:
    """Read a message written by :func:`dumps`; raise :class:`PlainDataError` if it is not one."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise PlainDataError(
            f"message too large: {len(message)} bytes, more than {MAX_MESSAGE_BYTES}"
        )
    try:
        data = json.loads(message)
    except (ValueError, RecursionError) as error:
        raise PlainDataError(f"invalid message, not JSON: {error}") from None
    return from_plain(data)


def round_trip(value: Any) -> Any:
    """Return ``value`` as the checks see it: written as plain data and read back."""
    return loads(dumps(value))
