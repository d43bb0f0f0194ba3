"""Safe arithmetic over named values: a whitelist over Python's AST, no eval.

One evaluator serves both of its callers: the bank's numeric and parametric questions
(``formula_evaluate``: always a float) and the design rounds' ``$expr`` arguments
(``expression_evaluate``: the value as it is, so ``$model`` stays the string ``"llama-3-8b"``
and ``$batch * 2`` stays an integer).

Allowed: numbers, strings, variable names, ``name.field`` (key ``field`` of the mapping
``name``), + - * / // % ** on numbers, one comparison (1 if true else 0), and min, max, ceil,
floor, exp, log2, sqrt, abs. Everything else, attribute access on values, names starting with
``_``, calls of anything else, lambdas, comprehensions, subscripts, is refused with a
``FormulaError`` that says what was refused.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

Number = int | float
# What an expression evaluates to: a number, or a string a name or a literal stands for.
Value = int | float | str

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "exp": math.exp,
    "min": min,
    "max": max,
    "ceil": math.ceil,
    "floor": math.floor,
    "log2": math.log2,
    "sqrt": math.sqrt,
    "abs": abs,
}
# Exponents above this are refused so an authoring slip cannot hang the process on 10**10**10.
MAX_EXPONENT = 64
# An integer power's result above this many bits is refused too: (10**64)**64 nested a few
# times would otherwise take minutes and gigabytes with every exponent under MAX_EXPONENT.
MAX_INTEGER_BITS = 4096
# Longer than any formula the bank holds by far; bounds the parser's and evaluator's recursion.
MAX_EXPRESSION_CHARS = 1000


class FormulaError(ValueError):
    """An expression that uses something outside the whitelist or names an unknown variable."""


def expression_evaluate(expression: str, variables: Mapping[str, Any]) -> Value:
    """The value of ``expression`` over ``variables``, of the type it computes to: an ``int``
    for integer arithmetic, a ``float`` after ``/`` or a float function, the ``str`` a name
    stands for (``expression_evaluate("model", {"model": "llama-3-8b"}) == "llama-3-8b"``).
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise FormulaError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"expression {expression!r} does not parse: {error.msg}") from error
    try:
        return _evaluate(tree.body, variables)
    except OverflowError as error:
        raise FormulaError(f"expression {expression!r} overflows: {error}") from error
    except RecursionError as error:
        raise FormulaError(f"expression {expression!r} is nested too deeply") from error


def formula_evaluate(formula: str, variables: Mapping[str, Any]) -> float:
    """A numeric question's answer: ``formula`` over ``variables`` as a float (a formula that
    computes a string is refused); ``model.layers`` reads key ``layers`` of ``model``."""
    return float(_number(expression_evaluate(formula, variables), f"formula {formula!r}"))


def _number(value: Any, name: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormulaError(f"{name} is {value!r}, not a number")
    return value


def _value(value: Any, name: str) -> Value:
    if isinstance(value, str):
        return value
    return _number(value, name)


def _name(name: str) -> str:
    if name.startswith("_"):
        raise FormulaError(f"name {name!r} is not allowed: names starting with _ are private")
    return name


def _evaluate(node: ast.AST, variables: Mapping[str, Any]) -> Value:
    if isinstance(node, ast.Constant):
        return _value(node.value, f"literal {ast.unparse(node)}")
    if isinstance(node, ast.Name):
        if _name(node.id) not in variables:
            raise FormulaError(f"unknown variable {node.id!r}")
        return _value(variables[node.id], node.id)
    if isinstance(node, ast.Attribute):
        if not isinstance(node.value, ast.Name):
            raise FormulaError(f"attribute access {ast.unparse(node)!r} is not allowed")
        field = _name(node.attr)
        group = variables.get(_name(node.value.id))
        if not isinstance(group, Mapping) or field not in group:
            raise FormulaError(f"unknown field {node.value.id}.{node.attr}")
        return _value(group[node.attr], f"{node.value.id}.{node.attr}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _number(_evaluate(node.left, variables), ast.unparse(node.left))
        right = _number(_evaluate(node.right, variables), ast.unparse(node.right))
        if isinstance(node.op, ast.Pow):
            _pow_check(left, right)
        return _real(_BINARY[type(node.op)](left, right), node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(_evaluate(node.operand, variables), ast.unparse(node.operand))
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left = _number(_evaluate(node.left, variables), ast.unparse(node.left))
        right = _number(_evaluate(node.comparators[0], variables), ast.unparse(node.comparators[0]))
        return int(_COMPARE[type(node.ops[0])](left, right))
    if isinstance(node, ast.Call):
        name = _name(node.func.id) if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if name not in _FUNCTIONS or node.keywords:
            raise FormulaError(f"call of {name!r} is not allowed: only {', '.join(_FUNCTIONS)}")
        args = [_number(_evaluate(arg, variables), ast.unparse(arg)) for arg in node.args]
        return _real(_FUNCTIONS[name](*args), node)
    raise FormulaError(f"{type(node).__name__} ({ast.unparse(node)!r}) is not allowed")


def _pow_check(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise FormulaError(f"exponent {exponent} is above {MAX_EXPONENT}")
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and base.bit_length() * exponent > MAX_INTEGER_BITS:
        raise FormulaError(f"{base} ** {exponent} is above {MAX_INTEGER_BITS} bits")


def _real(value: Any, node: ast.AST) -> Number:
    # (-8) ** 0.5 is a complex number in Python: no answer a question or a design round wants.
    if isinstance(value, complex):
        raise FormulaError(f"{ast.unparse(node)!r} is not a real number")
    return value
