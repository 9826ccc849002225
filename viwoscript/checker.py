"""The static pass: every problem found without running anything, all at once.

It walks the tree the way the evaluator would, knowing from the OpSpecs which arguments are code,
which are names and which are raw data, and reports unknown opcodes (with did-you-mean), argument
counts, malformed name slots, literal arguments of the wrong type, and variables that are read but
never declared anywhere. Messages match the evaluator's, so a script fails the same way in both.
"""

from __future__ import annotations

from .errors import Diagnostic
from .nodes import Array, Atom, Node, Object
from .opcodes import OpSpec, Registry

#: Parameter kinds whose argument is data, not code.
DATA_KINDS = ("raw", "names", "data")


def check_tree(tree: Node, registry: Registry, *, known_names: set[str] | None = None) -> list[Diagnostic]:
    c = _Checker(registry)
    c.code(tree)
    declared = c.declared | set(known_names or ())
    for name, span in c.reads:
        if name not in declared:
            c.add("warning", "NameError", f"variable '{name}' is never declared, so it reads as null", span,
                  "declare it with std.let, or check the spelling")
    for i, d in enumerate(c.out):  # (f 3) where f is a variable: it holds a lambda to apply
        name = d.message.removeprefix("Unknown opcode: ") if d.message.startswith("Unknown opcode: ") else None
        if name in declared:
            c.out[i] = Diagnostic(d.severity, d.kind, d.message, d.span,
                                  f"{name} is a variable: call the lambda it holds with (std.apply {name} ...)")
    return sorted(c.out, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


class _Checker:
    def __init__(self, registry: Registry):
        self.reg = registry
        self.out: list[Diagnostic] = []
        self.declared: set[str] = set()
        self.reads: list[tuple[str, object]] = []

    def add(self, severity, kind, message, span, hint=None):
        self.out.append(Diagnostic(severity, kind, message, span if span else None, hint))

    def code(self, node: Node) -> None:
        stack = [node]
        while stack:
            n = stack.pop()
            if not isinstance(n, Array):
                continue  # atoms and raw objects are literals
            pending = self.call(n)
            stack.extend(reversed(pending))

    def call(self, node: Array) -> list[Node]:
        """Check one call; return the argument nodes that are code, to be checked next."""
        items = node.items
        if not items:
            self.add("error", "NameError", "Unknown opcode: ", node.span,
                     "an empty list is not a call; write (list.new) for an empty list")
            return []
        head = items[0]
        name = head.value if isinstance(head, Atom) and isinstance(head.value, str) else None
        spec = self.reg.get(name)
        if spec is None:
            err = self.reg.unknown(name if name is not None else _data(head))
            self.add("error", "NameError", err.message, head.span or node.span, err.hint)
            return []
        args = items[1:]
        self.arity(spec, args, node)
        return self.args(spec, args)

    def arity(self, spec: OpSpec, args, node: Array) -> None:
        n = len(args)
        lo, hi = spec.min_args, spec.max_args
        if n < lo:
            if hi is None:
                msg = f"{spec.name}: expected at least {lo} argument{'s' if lo != 1 else ''}, got {n}"
            else:
                msg = f"{spec.name}: expected {lo if lo == hi else f'{lo} to {hi}'} argument{'s' if hi != 1 else ''}, got {n}"
            self.add("error", "ArgumentError", msg, node.span, f"usage: {spec.signature()}")
        elif hi is not None and n > hi:
            self.add("warning", "ArgumentError",
                     f"{spec.name}: takes at most {hi} argument{'s' if hi != 1 else ''}, got {n} (the rest are ignored)",
                     args[hi].span or node.span, f"usage: {spec.signature()}")

    def args(self, spec: OpSpec, args) -> list[Node]:
        code: list[Node] = []
        for i, arg in enumerate(args):
            p = spec.param_at(i)
            if p is None:
                code.append(arg)
                continue
            kind = p.kind
            if kind == "name":
                self.name_slot(spec, p, arg, code)
            elif kind == "names":
                self.names_slot(spec, arg)
            elif kind == "pairs" or (kind == "value" and spec.name == "obj.new"):
                self.pair(spec, i, arg, code)
            elif kind in DATA_KINDS:
                continue
            else:
                self.literal_type(spec, p, arg)
                if isinstance(arg, Array) and spec.name == "std.var":
                    pass
                code.append(arg)
        if spec.name == "std.var" and args and isinstance(args[0], Atom) and isinstance(args[0].value, str):
            self.reads.append((args[0].value, args[0].span))
        return code

    def name_slot(self, spec, p, arg, code) -> None:
        if isinstance(arg, Atom):
            if isinstance(arg.value, str):
                if spec.name != "std.var":
                    self.declared.add(arg.value)
            else:
                self.add("error", "ArgumentError", f"{spec.name}: expected string for {p.name}", arg.span,
                         "a name is a bare symbol in the text form, a string in the JSON form")
        elif isinstance(arg, Object):
            self.add("error", "ArgumentError", f"{spec.name}: expected string for {p.name}", arg.span)
        else:
            code.append(arg)  # a computed name

    def names_slot(self, spec, arg) -> None:
        if isinstance(arg, Array):
            for item in arg.items:
                if isinstance(item, Atom) and isinstance(item.value, str):
                    self.declared.add(item.value)
                else:
                    self.add("error", "ArgumentError", f"{spec.name}: parameter names must be strings", item.span,
                             "write the parameters as (std.lambda (x y) body)")
        else:
            self.add("error", "ArgumentError", f"{spec.name}: expected array for params", arg.span,
                     "write the parameters as (std.lambda (x y) body)")

    def pair(self, spec, index, arg, code) -> None:
        if isinstance(arg, Array) and len(arg.items) == 2:
            key, value = arg.items
            if isinstance(key, Atom) and not isinstance(key.value, str):
                self.add("error", "ArgumentError",
                         f"{spec.name}: expected string key at index {index}, got {_data(key)}", key.span)
            elif isinstance(key, Array):
                code.append(key)
            code.append(value)
        else:
            self.add("error", "ArgumentError", f"{spec.name}: expected pair at index {index}, got {_data(arg)}",
                     arg.span, "each entry is (key value)")

    def literal_type(self, spec, p, arg) -> None:
        t = p.type
        if t in ("any", "block", "name", "names"):
            return
        actual = _literal_type(arg)
        if actual is None or actual == t:
            return
        if actual == "null" and p.optional:
            return
        if t == "number" and actual == "number":
            return
        if t == "lambda":
            self.add("error", "ArgumentError", f"{spec.name}: expected lambda", arg.span)
        else:
            self.add("error", "ArgumentError", f"{spec.name}: expected {t} for {p.name}", arg.span)


def _literal_type(node: Node) -> str | None:
    """The type of a literal argument, or None when it is computed at run time."""
    if isinstance(node, Object):
        return "object"
    if isinstance(node, Atom):
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int | float):
            return "number"
        return "string"
    head = node.head
    if head == "list.new":
        return "array"
    if head == "obj.new":
        return "object"
    if head == "std.lambda":
        return "lambda"
    return None


def _data(node: Node):
    from .nodes import to_data

    return to_data(node)
