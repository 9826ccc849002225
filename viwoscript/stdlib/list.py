"""``list.*``: lists are mutable and shared by reference (language §8).

Indexes follow JavaScript: ``list.get`` returns null outside the list, ``slice``/``splice`` count
negative indexes from the end. ``reverse`` and ``sort`` return new lists; ``sort`` orders numbers
numerically and strings by code point (deviation 1).
"""

from __future__ import annotations

import math

from ..errors import ArgumentError
from ..limits import BIG_LIST, made_list
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import to_display, truthy, typeof

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "list")
    return _opcode(name, *params, into=OPCODES, **kw)


LIST = P("list", "array")
FUNC = P("lambda", "lambda")


def js_int(x) -> int | float:
    """JavaScript's ToIntegerOrInfinity: truncate toward zero, NaN → 0."""
    if x != x:
        return 0
    if x in (math.inf, -math.inf):
        return x
    return int(x)


def relative_index(x, n: int, default: int) -> int:
    """An index as ``slice``/``splice`` read it: negative counts from the end, clamped to [0, n]."""
    if x is None:
        return default
    i = js_int(x)
    if i < 0:
        return max(n + i, 0) if i != -math.inf else 0
    return min(i, n) if i != math.inf else n


_BIG_MASK = BIG_LIST - 1


def _grown(ev, op: str, n: int, added: int = 1) -> None:
    if n > ev.limits.max_list:
        ev.check_size(n, op)
    if n & _BIG_MASK < added:  # past a multiple of BIG_LIST: those items count against Limits.max_memory
        made_list(ev, n, op, n // BIG_LIST - (n - added) // BIG_LIST)


@opcode("list.new", P("items", variadic=True), label="List", returns="array")
def new(ev, *items):
    """A new list of the given items."""
    return list(items)


@opcode("list.len", LIST, label="List length", returns="number")
def len_(ev, lst):
    """The number of items."""
    return len(lst)


@opcode("list.empty", LIST, label="Is empty", returns="boolean")
def empty(ev, lst):
    """Whether the list has no items."""
    return not lst


@opcode("list.get", LIST, P("index", "number"), label="Get item")
def get(ev, lst, index):
    """The item at an index, or null when the index is out of range, negative or not an integer."""
    if type(index) is float:
        if not index.is_integer():
            return None
        index = int(index)
    if 0 <= index < len(lst):
        return lst[index]
    return None


@opcode("list.set", LIST, P("index", "number"), P("value"), label="Set item")
def set_(ev, lst, index, value=None):
    """Store a value at an index (extending the list with nulls when past the end); returns the value."""
    if type(index) is float:
        if not index.is_integer():
            raise ArgumentError(f"list.set: index must be a whole number, got {to_display(index)}")
        index = int(index)
    if index < 0:
        raise ArgumentError(f"list.set: index must not be negative, got {index}",
                            hint="count from the end with (list.len l) minus an offset")
    n = len(lst)
    if index < n:
        lst[index] = value
    else:
        _grown(ev, "list.set", index + 1, index + 1 - n)
        lst.extend([None] * (index - n))
        lst.append(value)
    return value


@opcode("list.push", LIST, P("value"), label="Push", returns="number")
def push(ev, lst, value=None):
    """Append a value; returns the new length."""
    _grown(ev, "list.push", len(lst) + 1)
    lst.append(value)
    return len(lst)


@opcode("list.pop", LIST, label="Pop")
def pop(ev, lst):
    """Remove and return the last item (null when empty)."""
    return lst.pop() if lst else None


@opcode("list.unshift", LIST, P("value"), label="Unshift", returns="number")
def unshift(ev, lst, value=None):
    """Insert a value at the front; returns the new length."""
    _grown(ev, "list.unshift", len(lst) + 1)
    lst.insert(0, value)
    return len(lst)


@opcode("list.shift", LIST, label="Shift")
def shift(ev, lst):
    """Remove and return the first item (null when empty)."""
    return lst.pop(0) if lst else None


@opcode("list.slice", LIST, P("start", "number"), P("end", "number", None), label="Slice list",
        returns="array")
def slice_(ev, lst, start, end=None):
    """A new list of the items from start up to (not including) end; negative indexes count from the end."""
    n = len(lst)
    return lst[relative_index(start, n, 0):relative_index(end, n, n)]


@opcode("list.splice", LIST, P("start", "number"), P("deleteCount", "number", None),
        P("items", variadic=True), label="Splice list", returns="array")
def splice(ev, lst, start, delete_count=None, *items):
    """Remove `deleteCount` items at `start` and insert `items` there; returns the removed items."""
    n = len(lst)
    i = relative_index(start, n, 0)
    # A missing deleteCount removes nothing: the original passed it on as undefined (→ 0).
    count = 0 if delete_count is None else min(max(js_int(delete_count), 0), n - i)
    _grown(ev, "list.splice", n - count + len(items), max(len(items) - count, 0))
    removed = lst[i:i + count]
    lst[i:i + count] = items
    return removed


@opcode("list.concat", P("lists", "array", variadic=True), label="Concat lists", returns="array")
def concat(ev, *lists):
    """A new list of the items of every list, in order (a null argument is added as one null item)."""
    total = sum(len(x) if type(x) is list else 1 for x in lists)
    _grown(ev, "list.concat", total, total)
    out: list = []
    for x in lists:
        if type(x) is list:
            out.extend(x)
        else:
            out.append(x)
    return out


def same_value_zero(a, b) -> bool:
    """``includes`` equality: strict, except that NaN equals NaN."""
    ta, tb = type(a), type(b)
    if ta in (int, float) and tb in (int, float):
        return a == b or (a != a and b != b)
    if ta is not tb:
        return False
    if ta is str:
        return a == b
    return a is b


@opcode("list.includes", LIST, P("value"), label="List includes", returns="boolean")
def includes(ev, lst, value=None):
    """Whether any item is strictly equal to the value (NaN finds NaN)."""
    return any(same_value_zero(item, value) for item in lst)


@opcode("list.reverse", LIST, label="Reverse list", returns="array")
def reverse(ev, lst):
    """A new list with the items in reverse order."""
    return lst[::-1]


def _sort_key_kind(lst) -> str | None:
    kinds = {typeof(v) for v in lst}
    if not kinds:
        return None
    if kinds == {"number"}:
        return "number"
    if kinds == {"string"}:
        return "string"
    raise ArgumentError("list.sort: can only sort a list of numbers or a list of strings, got "
                        + " and ".join(sorted(kinds)),
                        hint="convert the items first, e.g. with list.map and std.string")


@opcode("list.sort", LIST, label="Sort list", returns="array")
def sort(ev, lst):
    """A new list sorted ascending: numbers numerically (NaN last), strings by code point."""
    kind = _sort_key_kind(lst)
    if kind == "number":
        return sorted(lst, key=lambda v: (v != v, 0 if v != v else v))
    return sorted(lst)


@opcode("list.find", LIST, FUNC, label="Find item")
def find(ev, lst, fn):
    """The first item for which the lambda returns a truthy value, or null."""
    call = ev.call
    for item in lst:
        if truthy(call(fn, (item,), op="list.find")):
            return item
    return None


@opcode("list.map", LIST, FUNC, label="Map list", returns="array")
def map_(ev, lst, fn):
    """A new list of the lambda's results for each item."""
    call = ev.call
    return [call(fn, (item,), op="list.map") for item in lst]


@opcode("list.filter", LIST, FUNC, label="Filter list", returns="array")
def filter_(ev, lst, fn):
    """A new list of the items for which the lambda returns a truthy value."""
    call = ev.call
    return [item for item in lst if truthy(call(fn, (item,), op="list.filter"))]


@opcode("list.reduce", LIST, FUNC, P("init", default=None), label="Reduce list")
def reduce(ev, lst, fn, init=None):
    """Fold the items into one value: `acc = f(acc, item)`, starting from `init`."""
    acc = init
    call = ev.call
    for item in lst:
        acc = call(fn, (acc, item), op="list.reduce")
    return acc


@opcode("list.flatMap", LIST, FUNC, label="FlatMap list", returns="array")
def flat_map(ev, lst, fn):
    """Map each item and flatten one level: a list result adds its items, anything else is added as is."""
    out: list = []
    call = ev.call
    for item in lst:
        r = call(fn, (item,), op="list.flatMap")
        if type(r) is list:
            out.extend(r)
        else:
            out.append(r)
        _grown(ev, "list.flatMap", len(out), len(r) if type(r) is list else 1)
    return out
