"""Statement rules checked on the candidate's source, in the trusted process, before it runs.

A kernel problem says "write it as a Triton kernel". Asking the candidate's process whether it
did is asking the suspect; so the worker reads the source (an AST pass) and rejects, with a
``policy`` verdict naming the line, a solution whose timed call path does work outside its own
``@triton.jit`` kernels. The call path is the entry function (or, for a class entry, its
``__call__`` and ``forward``) and every function or method of the module it calls by name; there
host code may only allocate tensors, take views of them, do integer arithmetic on their shapes
and strides, and launch kernels. Set-up code outside the call path (a layer's ``__init__``
quantising its weight, say) is not restricted. Imports are limited to torch, triton and a few
pure-Python modules, and the dynamic escapes (``eval``, ``exec``, ``getattr`` of a computed name,
``__import__``, ``globals``) are refused anywhere, so the rule cannot be stepped round by
naming a torch function indirectly.

What it cannot see: a torch operation reached through an object the candidate built in set-up
code (a closure stored on the layer that calls ``torch.matmul``, say) is only caught where the
call path touches it with a name this pass knows computes. The trusted checks that do not depend
on reading the source (every output checked, the chained timing of ``kernel.py``) still hold.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

#: Modules a kernel solution may import (and their submodules).
ALLOWED_IMPORTS = frozenset(
    {"torch", "triton", "math", "functools", "typing", "dataclasses", "itertools", "__future__"}
)
#: ``torch.<name>`` a call path may use: allocation, dtypes, metadata. No arithmetic.
ALLOWED_TORCH = frozenset(
    {
        "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "full", "full_like",
        "ones", "ones_like", "arange", "tensor", "as_tensor",
        "float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32",
        "int64", "bool", "float8_e4m3fn", "float8_e5m2", "dtype", "device", "Tensor", "Size",
        "finfo", "iinfo", "is_tensor", "no_grad", "inference_mode", "cuda",
    }
)  # fmt: skip
#: ``torch.cuda.<name>`` a call path may use.
ALLOWED_TORCH_CUDA = frozenset({"current_device", "get_device_properties", "device_count"})
#: Tensor methods and attributes that give back plain Python values (no tensor work).
INT_METHODS = frozenset(
    {"size", "stride", "numel", "nelement", "dim", "element_size", "data_ptr", "is_contiguous",
     "item", "get_device", "tolist"}
)  # fmt: skip
INT_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "is_cuda", "itemsize", "nbytes"})
#: Tensor methods a call path may use: views, allocation, fills and copies. No arithmetic.
ALLOWED_METHODS = INT_METHODS | frozenset(
    {"view", "reshape", "contiguous", "unsqueeze", "squeeze", "flatten", "transpose",
     "permute", "t", "expand", "narrow", "select", "split", "chunk", "unbind", "new_empty",
     "new_zeros", "new_full", "zero_", "fill_", "copy_", "clone", "tolist", "data"}
)  # fmt: skip
#: Names refused anywhere in the module: each reaches code by a name the pass cannot read.
DYNAMIC_ESCAPES = frozenset(
    {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr",
     "setattr", "delattr", "__builtins__", "__dict__", "breakpoint", "open"}
)  # fmt: skip
BUILTIN_REDUCTIONS = frozenset({"sum", "max", "min", "abs", "pow", "round", "sorted"})
SCALAR_TYPES = frozenset({"int", "float", "bool", "str"})


@dataclass(frozen=True)
class RuleBreak:
    """One place where the source breaks the rule."""

    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def triton_only_breaks(source: str, entry_point: str) -> list[RuleBreak]:
    """Where ``source`` breaks "all of the timed call's work in your own @triton.jit kernels".

    An empty list means it keeps the rule; a source that does not parse is left to the sandbox
    (a compile error with its line).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    checker = _Checker(tree, entry_point)
    checker.check()
    return checker.breaks


def _is_jit(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in ("jit", "autotune", "heuristics"):
            return True
        if isinstance(target, ast.Name) and target.id == "jit":
            return True
    return False


class _Checker:
    def __init__(self, tree: ast.Module, entry_point: str) -> None:
        self.tree = tree
        self.entry_point = entry_point
        self.breaks: list[RuleBreak] = []
        self.torch_names: set[str] = set()  # names bound to the torch module
        self.functional_names: set[str] = set()  # torch.nn.functional and friends
        self.functions: dict[str, ast.FunctionDef] = {}
        self.jit: set[str] = set()
        self.classes: dict[str, ast.ClassDef] = {}
        self.imported: set[str] = set()  # every name an import statement bound

    def report(self, node: ast.AST, what: str) -> None:
        self.breaks.append(RuleBreak(getattr(node, "lineno", 0), what))

    def check(self) -> None:
        self._imports_and_escapes()
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
                if _is_jit(node):
                    self.jit.add(node.name)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
        path = self._call_path()
        if path is None:
            self.report(self.tree, f"defines no {self.entry_point}")
            return
        launches = 0
        for function, self_tensors in path:
            launches += self._host_function(function, self_tensors)
        if not self.jit:
            self.report(self.tree, "defines no @triton.jit kernel: the work must be one")
        elif not launches:
            self.report(self.tree, "the timed call launches none of its @triton.jit kernels")

    # -- the whole module ------------------------------------------------------------------

    def _imports_and_escapes(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._import(node, alias.name)
                    self.imported.add(alias.asname or alias.name.split(".")[0])
                    bound = alias.asname or alias.name.split(".")[0]
                    if alias.name == "torch" or (alias.asname is None and "torch" in alias.name):
                        self.torch_names.add(bound)
                    if alias.name.startswith("torch.nn") and alias.asname:
                        self.functional_names.add(alias.asname)
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                self._import(node, module)
                for alias in node.names:
                    self.imported.add(alias.asname or alias.name)
                    if module.startswith("torch"):
                        if module.startswith("torch.nn") or alias.name in ("nn", "functional"):
                            self.functional_names.add(alias.asname or alias.name)
                        elif alias.name not in ALLOWED_TORCH:
                            self.report(node, f"imports torch's {alias.name} by name")
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                targets = (
                    node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                )
                for target in targets:
                    if isinstance(target, ast.Attribute) and self._rooted_in_module(target):
                        self.report(
                            node, f"patches {_text(target)}: a module is not yours to change"
                        )
            elif isinstance(node, ast.Name) and node.id in DYNAMIC_ESCAPES:
                self.report(node, f"uses {node.id}(), which the rule cannot follow")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("__")
                and node.attr not in ("__init__", "__call__", "__name__")
            ):
                self.report(node, f"reaches {node.attr}, which the rule cannot follow")

    def _rooted_in_module(self, node: ast.AST) -> bool:
        """Whether an attribute chain starts at a name an import bound (``torch.cuda.Event``)."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.imported

    def _import(self, node: ast.AST, module: str) -> None:
        if module.split(".")[0] not in ALLOWED_IMPORTS:
            allowed = ", ".join(sorted(ALLOWED_IMPORTS - {"__future__"}))
            self.report(node, f"imports {module}: a kernel solution may import {allowed}")

    # -- the call path ---------------------------------------------------------------------

    def _call_path(self) -> list[tuple[ast.FunctionDef, set[str]]] | None:
        """The host functions of the timed call, each with the ``self`` attributes that hold
        tensors (for a class entry): the entry and everything it calls by name."""
        if self.entry_point in self.functions:
            roots, methods, self_tensors = [self.functions[self.entry_point]], {}, set()
        elif self.entry_point in self.classes:
            cls = self.classes[self.entry_point]
            methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
            roots = [methods[name] for name in ("__call__", "forward") if name in methods]
            self_tensors = self._self_tensors(methods.values())
        else:
            return None
        path, seen, frontier = [], set(), list(roots)
        while frontier:
            function = frontier.pop()
            if id(function) in seen or function.name in self.jit:
                continue
            seen.add(id(function))
            path.append((function, self_tensors))
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                name = _called_name(call.func)
                if name in self.functions:
                    frontier.append(self.functions[name])
                elif name in methods:
                    frontier.append(methods[name])
        return path

    def _self_tensors(self, methods) -> set[str]:
        """``self`` attributes assigned a tensor anywhere in the class (its set-up included)."""
        tensors: set[str] = set()
        for method in methods:
            taint = _Taint(self, _tensor_parameters(method))
            for node in ast.walk(method):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                            and taint.tensorish(node.value)
                        ):
                            tensors.add(target.attr)
                    taint.assign(node.targets, node.value)
        return tensors

    def _host_function(self, function: ast.FunctionDef, self_tensors: set[str]) -> int:
        """Check one host function of the call path; returns how many kernel launches it has."""
        taint = _Taint(self, _tensor_parameters(function), self_tensors)
        launches = 0
        for node in _walk_in_order(function):
            if isinstance(node, ast.Assign):
                taint.assign(node.targets, node.value)
            elif isinstance(node, ast.AugAssign) and taint.tensorish(node.target):
                self.report(node, "tensor arithmetic outside a Triton kernel")
            elif isinstance(node, ast.BinOp | ast.UnaryOp | ast.Compare):
                operands = (
                    [node.left, *node.comparators]
                    if isinstance(node, ast.Compare)
                    else [node.left, node.right]
                    if isinstance(node, ast.BinOp)
                    else [node.operand]
                )
                if any(taint.tensorish(operand) for operand in operands):
                    self.report(node, f"tensor arithmetic outside a Triton kernel ({_text(node)})")
            elif (
                isinstance(node, ast.Subscript)
                and _called_name(node.value) not in self.jit  # kernel[grid] is a launch
                and taint.tensorish(node.slice)
            ):
                self.report(node, f"indexes a tensor with a tensor ({_text(node)}): a gather")
            elif isinstance(node, ast.Call):
                launches += self._call(node, taint)
        return launches

    def _call(self, node: ast.Call, taint: _Taint) -> int:
        func = node.func
        if isinstance(func, ast.Subscript) and _called_name(func.value) in self.jit:
            return 1
        if isinstance(func, ast.Name) and func.id in BUILTIN_REDUCTIONS:
            if any(taint.tensorish(arg) for arg in node.args):
                self.report(node, f"{func.id}() over a tensor outside a Triton kernel")
            return 0
        if not isinstance(func, ast.Attribute):
            return 0
        owner = func.value
        if self._is_torch(owner):
            if func.attr not in ALLOWED_TORCH:
                self.report(node, f"torch.{func.attr} does work outside your Triton kernels")
        elif (
            isinstance(owner, ast.Attribute)
            and self._is_torch(owner.value)
            and owner.attr == "cuda"
        ):
            if func.attr not in ALLOWED_TORCH_CUDA:
                self.report(node, f"torch.cuda.{func.attr} is not for a kernel's call path")
        elif self._is_functional(owner):
            self.report(node, f"{_text(func)} does work outside your Triton kernels")
        elif taint.tensorish(owner) and func.attr not in ALLOWED_METHODS:
            self.report(node, f"the tensor method .{func.attr}() does work outside a Triton kernel")
        return 0

    def _is_torch(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in self.torch_names

    def _is_functional(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.functional_names
        return isinstance(node, ast.Attribute) and (
            node.attr in ("nn", "functional", "linalg", "fft", "special", "ops", "_C")
            or self._is_functional(node.value)
        )


class _Taint:
    """Which names of one host function hold tensors, followed through assignments."""

    def __init__(self, checker: _Checker, tensors: set[str], self_tensors=frozenset()) -> None:
        self.checker = checker
        self.tensors = set(tensors)
        self.self_tensors = self_tensors

    def assign(self, targets: list[ast.expr], value: ast.expr) -> None:
        tensorish = self.tensorish(value)
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    (self.tensors.add if tensorish else self.tensors.discard)(name.id)

    def tensorish(self, node: ast.AST) -> bool:
        """Whether ``node`` may evaluate to a tensor (conservative: yes when in doubt)."""
        if isinstance(node, ast.Name):
            return node.id in self.tensors
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr in self.self_tensors
            if node.attr in INT_ATTRIBUTES:
                return False
            return self.tensorish(node.value)
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Attribute) and node.value.attr in INT_ATTRIBUTES:
                return False
            return self.tensorish(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                if func.attr in INT_METHODS:
                    return False
                if self.checker._is_torch(func.value):
                    return func.attr not in ("finfo", "iinfo", "device", "dtype", "is_tensor")
                if self.tensorish(func.value):
                    return True
            return any(self.tensorish(arg) for arg in node.args) or any(
                self.tensorish(keyword.value) for keyword in node.keywords
            )
        if isinstance(node, ast.BinOp):
            return self.tensorish(node.left) or self.tensorish(node.right)
        if isinstance(node, ast.UnaryOp):
            return self.tensorish(node.operand)
        if isinstance(node, ast.IfExp):
            return self.tensorish(node.body) or self.tensorish(node.orelse)
        if isinstance(node, ast.Tuple | ast.List):
            return any(self.tensorish(element) for element in node.elts)
        return False


def _tensor_parameters(function: ast.FunctionDef) -> set[str]:
    """The parameters that may hold tensors: all but ``self`` and those annotated as Python
    scalars (``max_seqlen: int``)."""
    return {
        a.arg
        for a in function.args.args
        if a.arg != "self"
        and not (isinstance(a.annotation, ast.Name) and a.annotation.id in SCALAR_TYPES)
    }


def _walk_in_order(function: ast.FunctionDef):
    """The nodes of ``function`` in source order (assignments before their later uses)."""
    nodes = [node for node in ast.walk(function) if hasattr(node, "lineno")]
    return sorted(nodes, key=lambda node: (node.lineno, node.col_offset))


def _called_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.attr if func.value.id == "self" else None
    return None


def _text(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."
