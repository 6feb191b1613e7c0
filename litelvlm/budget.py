"""A token budget: K visual tokens to keep, or :data:`Budget.ALL` (every token, the unpruned baseline's).

One value from the command line to the selector: :meth:`Budget.parse` reads it where the command line is read
(its form: a whole number >= 1 or ``all``), :meth:`Budget.count` turns it into K for an input of N tokens and
is the one place its range (1 <= K <= N, + a method's extra tokens) is checked. Code that still holds an int
or None converts once, at its edge, with :meth:`Budget.of`. Result tables write :attr:`Budget.column` (K, or 0
for ``all``: the baseline's row when N depends on the image) and read it back with :meth:`Budget.from_column`.

This module imports nothing heavy: the command-line layer reads it before torch loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import LiteLVLMError

#: how ``all`` is written on the command line
ALL_TEXT = "all"
#: The paper's budgets of LLaVA-1.5's 576 visual tokens: all of them (the unpruned model), then 192, 128 and
#: 64.
PAPER_BUDGETS: tuple[int, ...] = (576, 192, 128, 64)
#: The paper's per-frame video budgets (of each frame's 576 CLIP patches; 576: all).
PAPER_VIDEO_BUDGETS: tuple[int, ...] = (576, 196, 81)
#: The paper's pruned per-frame video budgets (196 = 14 x 14, 81 = 9 x 9): ``eval-video``'s default and the
#: video cost table's.
VIDEO_BUDGETS: tuple[int, ...] = PAPER_VIDEO_BUDGETS[1:]


class BudgetError(LiteLVLMError, ValueError):
    """A budget that is no budget (its form) or that an input cannot keep (its range)."""


class Count(int):
    """K, a budget counted against an input (:meth:`Budget.count`): an int that remembers ``limit``, the most
    tokens it was checked against (N + a method's extra tokens), so that code handed it (a selection kernel's
    ``check_budget``) does not check it again. Arithmetic on it gives plain ints."""

    limit: int

    def __new__(cls, k: int, limit: int) -> Count:
        out = super().__new__(cls, k)
        out.limit = int(limit)
        return out

    def __reduce__(self):  # pickles (a DataLoader worker, a spawned process) as the Count it is
        return Count, (int(self), self.limit)


def in_range(k: int, num_tokens: int, extra_tokens: int = 0) -> bool:
    """The one range rule of a budget: 1 <= K <= N (+ a method's extra tokens)."""
    return 1 <= k <= int(num_tokens) + extra_tokens


@dataclass(frozen=True)
class Budget:
    """K visual tokens to keep (``tokens``), or every token (``tokens`` None: :data:`Budget.ALL`)."""

    tokens: int | None = None
    #: the most tokens this budget was checked against (:meth:`checked`; None: not yet): counting it against
    #: an input at least that large does not check it again. Not part of its value (equality, hash, repr).
    within: int | None = field(default=None, compare=False, repr=False)

    #: keep every token (the unpruned baseline's budget)
    ALL: ClassVar[Budget]

    def __post_init__(self) -> None:
        k = self.tokens
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise BudgetError(form_error(k))
        if type(k) is not int and k is not None:  # a Count: its plain value
            object.__setattr__(self, "tokens", int(k))

    # -- making one ------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Budget:
        """The budget written ``text``: ``all`` or a whole number >= 1 (``"64"``); anything else is a
        :class:`BudgetError`."""
        word = str(text).strip()
        if word.lower() == ALL_TEXT:
            return cls.ALL
        try:
            k = int(word)
        except ValueError:
            raise BudgetError(form_error(text)) from None
        return cls(k)

    @classmethod
    def parse_list(cls, values: Iterable[str | int | Budget] | str | int | Budget | None) -> list[Budget]:
        """A study's budgets, K >= 1 each, in the order given: ``values`` as the command line or a Python
        caller writes them (``"576,192"``, ``["64", 16]``, Budgets); ``all`` is refused
        (:func:`all_in_list_error`: the baseline already runs at every token); anything else that is no budget
        is a :class:`BudgetError`."""
        if values is None:
            return []
        if isinstance(values, (str, int, Budget)):
            values = [values]
        out: list[Budget] = []
        for value in values:
            items = [x for x in value.split(",") if x.strip() != ""] if isinstance(value, str) else [value]
            for item in items:
                try:
                    budget = item if isinstance(item, Budget) else cls.parse(item) if isinstance(
                        item, str) else cls(item)
                except BudgetError:
                    raise BudgetError(
                        f"budget must be a whole number K >= 1 of visual tokens; got {item!r}") from None
                if budget.is_all:
                    raise BudgetError(all_in_list_error())
                out.append(budget)
        return out

    @classmethod
    def list_of(cls, values: Iterable[str | int | Budget] | str | int | Budget | None) -> list[Budget]:
        """A study's budgets at the edge of its options: a list of Budgets (the command line's, read by
        :meth:`list_argument`) as it is, anything else read by :meth:`parse_list`; ``all`` is refused either
        way."""
        if isinstance(values, list) and all(isinstance(b, Budget) for b in values):
            if any(b.is_all for b in values):
                raise BudgetError(all_in_list_error())
            return values
        return cls.parse_list(values)

    @classmethod
    def list_argument(cls, text: str) -> list[Budget]:
        """:meth:`parse_list` of one command-line word (``576,192``) as an argparse ``type``: a bad budget is
        a usage error (exit 2) naming the value."""
        try:
            return cls.parse_list(text)
        except BudgetError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    @classmethod
    def argument(cls, text: str) -> Budget:
        """:meth:`parse` as an argparse ``type``: a bad budget is a usage error (exit 2) naming the value."""
        try:
            return cls.parse(text)
        except BudgetError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    @classmethod
    def of(cls, value: Budget | int | None) -> Budget:
        """``value`` as a Budget, at the edge of code that still holds an int (K) or None (every token); a
        :class:`Count` stays known to fit the input it was counted against."""
        if isinstance(value, Budget):
            return value
        if value is None:
            return cls.ALL
        return cls(int(value), value.limit) if isinstance(value, Count) else cls(value)

    @classmethod
    def from_column(cls, value: int) -> Budget:
        """The budget a result table's ``budget`` column holds (:attr:`column`: 0 is ``all``)."""
        return cls.ALL if int(value) == 0 else cls(int(value))

    # -- reading one -----------------------------------------------------------------------------------------
    @property
    def is_all(self) -> bool:
        """Whether this budget keeps every token."""
        return self.tokens is None

    @property
    def column(self) -> int:
        """The value a result table's ``budget`` column holds: K, or 0 for ``all``."""
        return 0 if self.tokens is None else self.tokens

    def at_most(self, num_tokens: int) -> Budget:
        """This budget, or ``num_tokens`` where it keeps more (a study that clips its budgets to N, as
        ``retention`` on a CLIP does, rather than refusing them)."""
        return self.checked(num_tokens) or Budget(int(num_tokens)).checked(num_tokens)

    def fits(self, num_tokens: int) -> bool:
        """Whether an input of ``num_tokens`` tokens can keep this budget (``all`` always can)."""
        return self.tokens is None or in_range(self.tokens, num_tokens)

    def count(self, num_tokens: int, extra_tokens: int = 0) -> Count:
        """K for an input of N = ``num_tokens`` tokens (a :class:`Count`): N for ``all``, else this budget,
        which must satisfy 1 <= K <= N (+ ``extra_tokens``, a method's tokens added to the N, e.g. PruMerge's
        merged one). The one range check of a budget; not repeated for a budget already :meth:`checked`
        against at most that many."""
        limit = int(num_tokens) + extra_tokens
        if self.tokens is None:
            return Count(int(num_tokens), limit)
        if not self._known_within(limit) and not in_range(self.tokens, num_tokens, extra_tokens):
            raise BudgetError(range_error(self.tokens, num_tokens, extra_tokens))
        return Count(self.tokens, limit)

    def checked(self, num_tokens: int) -> Budget | None:
        """This budget checked once against an input of N = ``num_tokens`` tokens: itself, marked so that a
        later
        :meth:`count` against it does not check again, or None when the input cannot keep it (a planner skips
        or refuses it). ``all`` always fits."""
        if self.tokens is None or self._known_within(int(num_tokens)):
            return self
        return Budget(self.tokens, int(num_tokens)) if in_range(self.tokens, num_tokens) else None

    def _known_within(self, limit: int) -> bool:
        return self.within is not None and self.within <= limit

    def __str__(self) -> str:
        return ALL_TEXT if self.tokens is None else str(self.tokens)


Budget.ALL = Budget(None)


def form_error(value: object) -> str:
    """The one message of a value that is no budget (neither a whole number K >= 1 nor ``all``)."""
    return f"budget must satisfy 1 <= K (a whole number of visual tokens) or be {ALL_TEXT!r}; got {value!r}"


def all_in_list_error() -> str:
    """The one message of ``all`` in a study's budgets: the baseline's budget, not one to prune at."""
    return (f"{ALL_TEXT!r} is the unpruned baseline's budget (the method none runs once at every token); "
            "list the budgets K >= 1 to prune at")


def range_error(value: object, num_tokens: int, extra_tokens: int = 0) -> str:
    """The one message of a budget outside 1..N (+ ``extra_tokens``) for an input of N = ``num_tokens``
    tokens."""
    what = "the number of patches" if not extra_tokens else f"{num_tokens} patches + {extra_tokens} extra"
    return f"budget must satisfy 1 <= K <= {int(num_tokens) + extra_tokens} ({what}); got {value}"
