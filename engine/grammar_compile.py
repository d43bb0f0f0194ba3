"""Compile a grammar into a `TokenFSM`: a small regular expression (or a JSON schema written
as one) -> a character DFA -> a token automaton over a vocabulary.

The regular expressions are the subset structured outputs need: literals, `\\` escapes,
`\\d`, classes `[a-z0-9 ]`, groups, `|`, and the quantifiers `* + ? {m} {m,n}`, over ASCII.
The DFA is the subset construction of a Thompson NFA, with the states that cannot reach a
match removed, so every state of the token automaton allows at least one token (the
vocabulary holds every printable character). Token edges are found for every state and token
at once with NumPy (one table lookup per character position), as outlines builds its index.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.grammar import TokenFSM

ASCII = 128
PRINTABLE = [chr(c) for c in range(32, 127)]
DIGITS = frozenset("0123456789")


@dataclass
class _Nfa:
    """Thompson NFA: per state, its character edges and its empty edges."""

    chars: list[list[tuple[frozenset[str], int]]] = field(default_factory=list)
    empty: list[list[int]] = field(default_factory=list)

    def state(self) -> int:
        self.chars.append([])
        self.empty.append([])
        return len(self.chars) - 1


class _Parser:
    """Recursive descent over the pattern; each rule returns an NFA fragment (start, end)."""

    def __init__(self, pattern: str) -> None:
        self.pattern, self.at, self.nfa = pattern, 0, _Nfa()

    def peek(self) -> str | None:
        return self.pattern[self.at] if self.at < len(self.pattern) else None

    def take(self) -> str:
        char = self.pattern[self.at]
        self.at += 1
        return char

    def parse(self) -> tuple[int, int]:
        fragment = self.alternation()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} at {self.at} in {self.pattern!r}")
        return fragment

    def alternation(self) -> tuple[int, int]:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        if len(branches) == 1:
            return branches[0]
        start, end = self.nfa.state(), self.nfa.state()
        for first, last in branches:
            self.nfa.empty[start].append(first)
            self.nfa.empty[last].append(end)
        return start, end

    def sequence(self) -> tuple[int, int]:
        start = end = self.nfa.state()
        while self.peek() not in (None, "|", ")"):
            first, last = self.quantified()
            self.nfa.empty[end].append(first)
            end = last
        return start, end

    def quantified(self) -> tuple[int, int]:
        begin = self.at
        fragment = self.atom()
        atom_text = self.pattern[begin : self.at]
        char = self.peek()
        if char not in ("*", "+", "?", "{"):
            return fragment
        self.take()
        if char == "{":
            close = self.pattern.index("}", self.at)
            low, _, high = self.pattern[self.at : close].partition(",")
            self.at = close + 1
            low_n = int(low)
            high_n = int(high) if high else low_n
        else:
            low_n, high_n = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[char]
        return self.repeat(fragment, atom_text, low_n, high_n)

    def repeat(self, fragment, atom_text: str, low: int, high: int) -> tuple[int, int]:
        """`low` required copies of the atom, then `high - low` optional ones (``high`` -1: a
        loop). Each copy is the atom's text parsed again into the same NFA."""
        copies = iter([fragment])

        def copy() -> tuple[int, int]:
            again = next(copies, None)
            if again is None:
                parser = _Parser(atom_text)
                parser.nfa = self.nfa
                again = parser.atom()
            return again

        start = end = self.nfa.state()
        for _ in range(low):
            first, last = copy()
            self.nfa.empty[end].append(first)
            end = last
        if high < 0:
            first, last = copy()
            self.nfa.empty[end].append(first)
            self.nfa.empty[last].append(end)
            return start, end
        for _ in range(high - low):
            first, last = copy()
            after = self.nfa.state()
            self.nfa.empty[end] += [first, after]
            self.nfa.empty[last].append(after)
            end = after
        return start, end

    def atom(self) -> tuple[int, int]:
        char = self.take()
        if char == "(":
            fragment = self.alternation()
            if self.peek() != ")":
                raise ValueError(f"unclosed group in {self.pattern!r}")
            self.take()
            return fragment
        if char == "[":
            chars = self.char_class()
        elif char == "\\":
            chars = self.escape()
        elif char == ".":
            chars = frozenset(PRINTABLE)
        else:
            chars = frozenset(char)
        start, end = self.nfa.state(), self.nfa.state()
        self.nfa.chars[start].append((chars, end))
        return start, end

    def escape(self) -> frozenset[str]:
        char = self.take()
        return DIGITS if char == "d" else frozenset(char)

    def char_class(self) -> frozenset[str]:
        chars: set[str] = set()
        while self.peek() != "]":
            char = self.take()
            if char == "\\":
                chars |= self.escape()
            elif self.peek() == "-" and self.pattern[self.at + 1] != "]":
                self.take()
                chars |= {chr(c) for c in range(ord(char), ord(self.take()) + 1)}
            else:
                chars.add(char)
        self.take()
        return frozenset(chars)


def regex_dfa(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """(transitions [states, 128] int64 with -1 for none, accepting [states] bool) of the
    minimal-enough DFA of ``pattern``: only states that can still reach a match; state 0 is
    the start (a pattern that matches nothing is an error)."""
    parser = _Parser(pattern)
    start, final = parser.parse()
    nfa = parser.nfa

    def closure(states: frozenset[int]) -> frozenset[int]:
        seen, stack = set(states), list(states)
        while stack:
            for nxt in nfa.empty[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return frozenset(seen)

    first = closure(frozenset([start]))
    index, order, edges = {first: 0}, [first], []
    while len(edges) < len(order):
        current = order[len(edges)]
        row = [-1] * ASCII
        for code in range(ASCII):
            char = chr(code)
            moved = {end for s in current for chars, end in nfa.chars[s] if char in chars}
            if not moved:
                continue
            target = closure(frozenset(moved))
            if target not in index:
                index[target] = len(order)
                order.append(target)
            row[code] = index[target]
        edges.append(row)
    table = np.array(edges, dtype=np.int64)
    accepting = np.array([final in states for states in order])
    # keep the states from which a match is reachable (co-reachable), renumbered in order
    live = accepting.copy()
    while True:
        reach = live | ((table >= 0) & live[np.maximum(table, 0)]).any(axis=1)
        if (reach == live).all():
            break
        live = reach
    if not live[0]:
        raise ValueError(f"{pattern!r} matches nothing")
    renumber = np.full(len(order) + 1, -1, dtype=np.int64)
    renumber[np.flatnonzero(live)] = np.arange(int(live.sum()))
    table = renumber[table[live]]  # -1 (none) indexes the extra -1 at the end
    return table, accepting[live]


def token_fsm(pattern: str, vocab: list[str], eos_token_id: int = 0) -> TokenFSM:
    """The token automaton of ``pattern`` over ``vocab`` (the EOS token's text is ignored)."""
    import torch

    table, accepting = regex_dfa(pattern)
    num_states = table.shape[0]
    longest = max(len(token) for token in vocab)
    # characters as codes, padded with ASCII (a column that leaves every state where it is)
    codes = np.full((len(vocab), longest), ASCII, dtype=np.int64)
    for token_id, token in enumerate(vocab):
        if token_id != eos_token_id and token:
            codes[token_id, : len(token)] = [ord(c) for c in token]
    codes[eos_token_id, 0] = 0  # NUL: no pattern reads it, so EOS is never an edge
    dead = num_states
    full = np.full((num_states + 1, ASCII + 1), dead, dtype=np.int64)
    full[:num_states, :ASCII] = np.where(table >= 0, table, dead)
    full[:, ASCII] = np.arange(num_states + 1)
    current = np.broadcast_to(np.arange(num_states)[:, None], (num_states, len(vocab)))
    for position in range(longest):
        current = full[current, codes[None, :, position]]
    states, token_ids = np.nonzero(current != dead)
    offsets = np.searchsorted(states, np.arange(num_states + 1))
    digest = hashlib.sha256(json.dumps([pattern, vocab]).encode()).hexdigest()[:16]
    return TokenFSM(
        offsets=torch.from_numpy(offsets.astype(np.int64)),
        token_ids=torch.from_numpy(token_ids.astype(np.int64)),
        next_states=torch.from_numpy(current[states, token_ids].astype(np.int64)),
        accepting=torch.from_numpy(accepting.astype(np.int64)),
        eos_token_id=eos_token_id,
        vocab_size=len(vocab),
        key=digest,
    )


def _json_string(text: str) -> str:
    """A regex matching the JSON text of ``text`` exactly."""
    return "".join("\\" + c if not c.isalnum() and c != " " else c for c in json.dumps(text))


def schema_regex(schema: dict[str, Any]) -> str:
    """A regex for the compact JSON (no spaces) of ``schema``: an object whose ``properties``
    all appear, in order; each a ``string`` (``[a-z ]``, up to ``maxLength``), an ``integer``
    (up to ``maxDigits`` digits, no leading zero), a ``boolean`` or an ``enum`` of strings."""
    parts = []
    for name, prop in schema["properties"].items():
        if "enum" in prop:
            value = "(" + "|".join(_json_string(v) for v in prop["enum"]) + ")"
        elif prop["type"] == "string":
            value = f'"[a-z ]{{{prop.get("minLength", 0)},{prop.get("maxLength", 16)}}}"'
        elif prop["type"] == "integer":
            value = f"(0|-?[1-9][0-9]{{0,{prop.get('maxDigits', 6) - 1}}})"
        elif prop["type"] == "boolean":
            value = "(true|false)"
        else:
            raise ValueError(f"unsupported schema type {prop['type']!r}")
        parts.append(_json_string(name) + ":" + value)
    return "\\{" + ",".join(parts) + "\\}"


# Pieces a synthetic vocabulary is drawn from, like a BPE vocabulary's: words with and
# without a leading space, digit runs, JSON punctuation and literals.
JSON_PIECES = ('{"', '":', '","', '"}', '":"', '",', ", ", "true", "false", "null", '":[', "]}")


@functools.cache
def grammar_vocab(size: int, seed: int = 0) -> tuple[str, ...]:
    """A deterministic vocabulary of ``size`` distinct tokens: token 0 is EOS (""), then every
    printable ASCII character, then multi-character pieces."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["", *PRINTABLE, *JSON_PIECES]
    seen = set(vocab)
    while len(vocab) < size:
        kind = rng.random()
        if kind < 0.55:
            piece = "".join(rng.choice(letters) for _ in range(rng.randint(2, 7)))
            piece = (" " if rng.random() < 0.5 else "") + piece
        elif kind < 0.75:
            piece = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 4)))
        elif kind < 0.9:
            piece = rng.choice(letters).upper() + "".join(
                rng.choice(letters) for _ in range(rng.randint(1, 6))
            )
        else:
            piece = "".join(rng.choice(PRINTABLE) for _ in range(rng.randint(2, 3)))
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
    return tuple(vocab[:size])
