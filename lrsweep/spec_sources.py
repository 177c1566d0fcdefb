"""Where a sweep spec comes from besides Python: a TOML file (:func:`load_toml`) and the flags of
``lrsweep run`` (:func:`add_flags`, :func:`from_flags`), both derived from the one list of settings
in :mod:`lrsweep.spec`.

A spec file is input from anywhere (a download, a colleague's repository): reading one is bounded
in size and nesting, and every key and type is checked against the settings before anything runs.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import grid
from .spec import defaults, settings

#: A spec file is a few lines of settings; these bound what reading one may cost.
MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_DEPTH = 8

#: Where and how a sweep runs, never what it computes: a spec file is data from anywhere, so these
#: come from the command line or the Python call (a scheduler's replies are unpickled, ``out`` is
#: written and may be emptied), unless the file is trusted (``--trust-spec``).
PLACE_KEYS = ("scheduler", "workers", "client", "out", "memory", "devices")


def _check_depth(value: Any, where: str, path: str = "", depth: int = 0) -> None:
    """Refuse tables and arrays nested deeper than ``MAX_SPEC_DEPTH`` (naming the key path)."""
    if depth > MAX_SPEC_DEPTH:
        raise ValueError(f"{where}: {path or 'the file'} nests deeper than {MAX_SPEC_DEPTH} levels")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_depth(item, where, f"{path}.{key}" if path else str(key), depth + 1)


def _read_bounded(path: Path, where: str) -> bytes:
    """At most ``MAX_SPEC_BYTES`` of the file, a pipe or a device (``/dev/zero`` ends too)."""
    with open(path, "rb") as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise ValueError(
            f"{where} is longer than {MAX_SPEC_BYTES:,} bytes; a spec file holds at most {MAX_SPEC_BYTES:,}"
        )
    return data


def load_toml(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """Read a sweep spec from a TOML file; unknown keys and wrong types are errors naming the key.

    A file says what to compute; where to run it (:data:`PLACE_KEYS`) is refused unless ``trust``
    (``--trust-spec``). The file is read up to ``MAX_SPEC_BYTES`` whatever it is.
    """
    path = Path(path)
    where = f"spec file {str(path)!r}"
    try:
        text = _read_bounded(path, where).decode("utf-8")
        data = tomllib.loads(text)
    except OSError as err:
        raise ValueError(f"{where} cannot be read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{where} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{where} is not valid TOML: {err}") from None
    except RecursionError:
        raise ValueError(f"{where} nests too deeply to read; a spec nests at most {MAX_SPEC_DEPTH} levels") from None
    _check_depth(data, where)
    keys = {name: meta for name, meta in settings().items() if meta.toml}
    for key, value in data.items():
        if key not in keys:
            close = [k for k in keys if k.startswith(key[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{path.name}: unknown key {key!r}{hint}; known keys: {', '.join(keys)}")
        if key in PLACE_KEYS and not trust:
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"{path.name}: {key} is where to run, which a spec file may not set; give {flag} on the command "
                "line (or --trust-spec to take it from this file)"
            )
        meta = keys[key]
        if (isinstance(value, bool) and bool not in meta.toml) or not isinstance(value, meta.toml):
            raise ValueError(f"{path.name}: {key} = {value!r} has the wrong type: expected {meta.what}")
    if isinstance(data.get("init"), dict):
        init = data["init"]
        if set(init) != {"grid"} or not isinstance(init["grid"], dict):
            raise ValueError(
                f"{path.name}: init = {init!r} is invalid: expected a count or {{grid = {{name = values}}}}"
            )
        data["init"] = grid.init_grid(**init["grid"])
    return data


# -- the command line ---------------------------------------------------------------------------
_FLAG_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--name`` flag per setting that has one (``lrsweep run``); defaults stay None (unset)."""
    for name, meta in settings().items():
        if meta.flag is None:
            continue
        default = meta.cli_default if meta.cli_default is not None else defaults()[name]
        text = meta.help + (f" (default {default})" if default is not None else "")
        flag = "--" + name.replace("_", "-")
        if meta.flag in _FLAG_TYPES:
            parser.add_argument(flag, dest=name, type=_FLAG_TYPES[meta.flag], help=text)
        elif meta.flag == "bool":
            parser.add_argument(flag, dest=name, action="store_const", const=True, help=meta.help)
        elif meta.flag == "list":
            parser.add_argument(flag, dest=name, help=text)
        else:  # lr, pairs, keyed: repeatable
            parser.add_argument(
                flag, dest=name, action="append", metavar="SPEC" if meta.flag == "lr" else "KEY=VALUE", help=text
            )


def _scalar(text: str) -> Any:
    """A flag value as the number or boolean it spells, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _split_key(name: str, item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--{name.replace('_', '-')}={item!r} is invalid: expected KEY=VALUE")
    return key.strip(), value.strip()


def from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (those left unset are absent), parsed as :func:`add_flags` declared."""
    out: dict[str, Any] = {}
    for name, meta in settings().items():
        value = getattr(args, name, None)
        if meta.flag is None or value is None:
            continue
        if meta.flag == "list":
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif meta.flag == "lr":
            if len(value) == 1 and "=" not in value[0]:
                value = value[0]
            else:
                value = dict(_split_key(name, item) for item in value)
        elif meta.flag == "pairs":
            value = {
                k: _scalar(v) for item in value for k, v in [_split_key(name, p) for p in item.split(",") if p.strip()]
            }
        elif meta.flag == "keyed":
            value = dict(_split_key(name, item) for item in value)
        out[name] = value
    return out


def cli_defaults() -> dict[str, Any]:
    """The settings whose CLI default differs from Python's."""
    return {name: meta.cli_default for name, meta in settings().items() if meta.cli_default is not None}
