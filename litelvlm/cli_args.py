"""Dataclass-declared command-line arguments: one typed dataclass per subcommand, turned into argparse."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from .budget import Budget
from .errors import LiteLVLMError
from .methods import method_option_list

T = TypeVar("T")


def arg(default: Any = dataclasses.MISSING, *, help: str = "", flag: str | None = None,
        choices: list | None = None, nargs: str | None = None, metavar: str | None = None,
        required: bool = False, minimum: float | None = None, nonempty: bool = False,
        deprecated: tuple[str, ...] = (), each: type | None = None, shared: str | None = None) -> Any:
    """Declare a dataclass field as a command-line option, with help text and argparse extras;
    ``minimum`` makes a smaller number a usage error (exit 2) at parse time, before any work;
    ``nonempty``: a list option given no item (``--budgets ''``) is a usage error too;
    ``deprecated``: old flags still accepted (hidden from --help, a warning once per run);
    ``each`` (a type): for a list of strings such as ``--budgets 576,192 64``, every comma-separated
    item must convert with it (and be >= ``minimum``) at parse time; the values stay as typed;
    ``shared``: the option group of :mod:`litelvlm.shared_options` that declared it. What the declaration
    refuses, the parser refuses, and :func:`check_declared` for options built in code (:func:`refusal`)."""
    meta = {"help": help, "flag": flag, "choices": choices, "nargs": nargs, "metavar": metavar,
            "required": required, "minimum": minimum, "nonempty": nonempty, "deprecated": tuple(deprecated),
            "each": each, "shared": shared}
    if default is dataclasses.MISSING:  # required on the command line; None when built in code
        default, meta["required"] = None, True
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


#: the one refusal of a list option declared ``nonempty`` that is given no item
EMPTY = "an empty list; give at least one value"


def below(minimum: float, value: Any) -> str:
    """The one refusal of a number under an option's declared ``minimum``."""
    return f"must be >= {minimum:g}, got {value}"


def _items(value: Any, each: type | None = None) -> list:
    """The items of an option's value: a list's (its strings split on commas; converted with ``each`` where it
    declares one), or the value itself."""
    if not isinstance(value, (list, tuple)):
        return [value]
    if not any(isinstance(v, str) for v in value):
        return list(value)
    return split_list(value, _convert(each) if each is not None else str)


def refusal(meta: Mapping[str, Any], value: Any) -> str | None:
    """What an option's declaration (``arg``'s metadata) refuses in ``value``, None when nothing: an empty
    list declared ``nonempty`` (:data:`EMPTY`), an item below ``minimum`` (:func:`below`), an item outside
    ``choices``. None (a default rule: "not given") is refused by nothing."""
    if value is None:
        return None
    try:
        items = _items(value, meta.get("each"))
    except ValueError as e:
        return str(e)
    if meta.get("nonempty") and not items:
        return EMPTY
    least, choices = meta.get("minimum"), meta.get("choices")
    for item in items:
        number = isinstance(item, (int, float)) and not isinstance(item, bool)
        if least is not None and number and item < least:
            return below(least, item)
        if choices and item not in choices:
            return f"invalid choice: {item!r} (choose from {', '.join(map(repr, choices))})"
    return None


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of an options field (``field_name`` is ``--field-name`` unless it declares
    another)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def check_declared(options: Any) -> None:
    """Refuse options built in code as the parser refuses the command line's (:func:`refusal` of every
    field's declaration): a :class:`~litelvlm.errors.LiteLVLMError` naming the flag, one line."""
    for f in dataclasses.fields(options):
        why = refusal(f.metadata, getattr(options, f.name))
        if why is not None:
            raise LiteLVLMError(f"{flag_of(f)}: {why}")


def declaration(action: argparse.Action) -> Mapping[str, Any]:
    """The declaration (``arg``'s metadata) an argparse action was made from; empty for an option added
    by hand."""
    return getattr(action, "declaration", {})


def read_declared(options: Any) -> None:
    """Read the values a Python caller gave ``options`` (a dataclass being made) as the parser reads the
    command line's: a list of budgets written ``"64,16"`` or ints becomes Budgets
    (:meth:`~litelvlm.budget.Budget.list_of`); a value already read (the command line's list of Budgets)
    passes as it is, the same object."""
    for name in _budget_lists(type(options)):
        value = getattr(options, name)
        if value is not None and not (isinstance(value, list) and all(isinstance(b, Budget) and not b.is_all
                                                                      for b in value)):
            setattr(options, name, Budget.list_of(value))


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(element type, is_list) for annotations such as ``int``, ``str | None`` and ``list[int]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple):
        return typing.get_args(tp)[0], True
    return tp, False


def _at_least(tp: type, minimum: float):
    """An argparse type: ``tp(text)``, refused below ``minimum``."""
    def convert(text: str):
        value = tp(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(below(minimum, text))
        return value

    convert.__name__ = tp.__name__
    return convert


def _convert(tp: type):
    """The argparse ``type`` of a field of type ``tp``: its ``argument`` classmethod where it has one (a
    :class:`~litelvlm.budget.Budget`: a bad value is a usage error naming it), else ``tp`` itself."""
    return getattr(tp, "argument", tp)


def _items_of(tp: type, minimum: float | None):
    """An argparse type for one token of a comma-separated list: each item must convert with ``tp``
    (and be >= ``minimum``); the token itself is kept as typed (the command splits it)."""
    def check(text: str) -> str:
        for item in (x for x in text.split(",") if x != ""):
            try:
                value = _convert(tp)(item)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"invalid {tp.__name__.replace('_', ' ')} value: {item!r}") from None
            if minimum is not None and value < minimum:
                raise argparse.ArgumentTypeError(below(minimum, item))
        return text

    check.__name__ = f"{tp.__name__} list"
    return check


class ListOption(argparse.Action):
    """A list option's store: with ``join``, its words each parse to a list (``--budgets 576,192 64``: a
    type's ``list_argument``) and the lists are joined in order; with ``nonempty``, no item at all
    (``--budgets ''``) is a usage error (:data:`EMPTY`). A repeated flag replaces the earlier value, as
    argparse's plain store."""

    def __init__(self, option_strings, dest, join: bool = False, nonempty: bool = False, **kw):
        self.join, self.nonempty = join, nonempty
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        value = [item for word in values for item in word] if self.join else values
        if self.nonempty and not (value if self.join else _items(value)):
            raise argparse.ArgumentError(self, EMPTY)
        setattr(namespace, self.dest, value)


class DeprecatedFlag(argparse.Action):
    """A hidden old name of an option: stores into the option's field and warns once on stderr."""

    def __init__(self, option_strings, dest, canonical: str = "", **kw):
        self.canonical = canonical
        self.warned = False
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        if not self.warned:
            self.warned = True
            print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.canonical} "
                  "(same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _value_type(tp: type, is_list: bool, meta: dict) -> dict[str, Any]:
    """argparse's ``type`` (and ``action``) of a non-flag field: a Budget list's words each parse to Budgets
    and are joined (:class:`ListOption`); ``each`` checks a list's comma-separated items; else the type, with
    ``minimum``; a list declared ``nonempty`` refuses no item (:class:`ListOption`)."""
    if is_list and hasattr(tp, "list_argument"):
        return {"type": tp.list_argument, "action": ListOption, "join": True,
                "nonempty": bool(meta.get("nonempty"))}
    out: dict[str, Any] = {"action": ListOption, "nonempty": True} if is_list and meta.get("nonempty") else {}
    if meta.get("each") is not None:
        return {**out, "type": _items_of(meta["each"], meta.get("minimum"))}
    return {**out, "type": _convert(tp) if meta.get("minimum") is None else _at_least(tp, meta["minimum"])}


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of ``cls`` (``field_name`` becomes ``--field-name``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        flag = flag_of(f)
        tp, is_list = _base_type(hints[f.name])
        kw: dict[str, Any] = {"dest": f.name, "help": meta.get("help", "")}
        if f.default is not dataclasses.MISSING:
            kw["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kw["default"] = f.default_factory()
        else:
            kw["required"] = True
        if meta.get("required"):
            kw["required"] = True
        if tp is bool and not is_list:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw.update(_value_type(tp, is_list, meta))
            if is_list and meta.get("nargs") == "append" and "action" not in kw:
                kw["action"] = "append"
            elif is_list:
                kw["nargs"] = meta.get("nargs") or "+"
            elif meta.get("nargs"):
                kw["nargs"] = meta["nargs"]
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
            if meta.get("metavar"):
                kw["metavar"] = meta["metavar"]
        if kw.get("required"):
            kw.pop("default", None)
        if kw.get("default") is not None and kw["help"] and not is_list:
            kw["help"] += " (default: %(default)s)"
        parser.add_argument(flag, **kw).declaration = f.metadata
        for old in meta.get("deprecated", ()):
            extra = {k: v for k, v in kw.items() if k in ("type", "nargs", "choices", "metavar")}
            parser.add_argument(old, dest=f.name, action=DeprecatedFlag, canonical=flag,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS, **extra)


def method_flags() -> type:
    """A dataclass of one field per method option of the registry (each method module's ``OPTIONS``:
    ``--fastv-layer``,
    ...), keyword-only, built without importing a method: a command's options class inherits it
    (``class MyArgs(MethodFlags, ...)``), and ``Method.options_from(args)`` /
    ``litelvlm.methods.method_options`` read the values back, so no command names a method's option."""
    fields = []
    for opt in method_option_list():
        kw = {"help": opt.help, "choices": list(opt.choices) or None}
        fields.append((opt.dest, opt.value_type | None, dataclasses.field(
            default=opt.default, kw_only=True, metadata=arg(opt.default, **kw).metadata)))
    return dataclasses.make_dataclass("MethodFlags", fields, kw_only=True)


@cache
def _budget_lists(cls: type) -> tuple[str, ...]:
    """The fields of the options class ``cls`` that hold a list of budgets."""
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if _base_type(hints[f.name]) == (Budget, True))


def from_namespace(cls: type[T], ns: argparse.Namespace) -> T:
    """Build the dataclass ``cls`` from a parsed namespace."""
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


def split_list(values: list[str] | str | None, typ: type = str) -> list:
    """Accept ``a,b c`` style lists: split every element on commas and convert to ``typ``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        out.extend(typ(x) for x in str(v).split(",") if x != "")
    return out


#: the registry's method options as a dataclass of flags (:func:`method_flags`)
MethodFlags = method_flags()
