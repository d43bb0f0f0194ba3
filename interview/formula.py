"""Safe arithmetic for numeric and parametric questions: a whitelist over Python's AST, no eval."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCTIONS = {
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


class FormulaError(ValueError):
    """A formula that uses something outside the whitelist or names an unknown variable."""


def formula_evaluate(formula: str, variables: Mapping[str, Any]) -> float:
    """Evaluate ``formula`` over ``variables``; ``model.layers`` reads key ``layers`` of ``model``.

    Numbers, + - * / // % **, one comparison (1 if true else 0) and min, max, ceil, floor, exp,
    log2, sqrt, abs.
    """
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"formula {formula!r} does not parse: {error.msg}") from error
    return float(_evaluate(tree.body, variables))


def _number(value: Any, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormulaError(f"{name} is {value!r}, not a number")
    return value


def _evaluate(node: ast.AST, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise FormulaError(f"unknown variable {node.id!r}")
        return _number(variables[node.id], node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        group = variables.get(node.value.id)
        if not isinstance(group, Mapping) or node.attr not in group:
            raise FormulaError(f"unknown field {node.value.id}.{node.attr}")
        return _number(group[node.attr], f"{node.value.id}.{node.attr}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, variables), _evaluate(node.right, variables)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise FormulaError(f"exponent {right} is above {MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, variables)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left = _evaluate(node.left, variables)
        right = _evaluate(node.comparators[0], variables)
        return int(_COMPARE[type(node.ops[0])](left, right))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg, variables) for arg in node.args))
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")
