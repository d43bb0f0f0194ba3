"""The ``grammar`` kind: the candidate's ``GrammarSampler`` samples only tokens a grammar allows.

The trusted side compiles each test's grammar (a regex, or a small JSON schema written as one)
into a token automaton over a synthetic vocabulary (``engine/grammar_compile.py``), keeps it,
and draws every input from the secret seed: logits, each row's automaton state, temperature
and uniform. The sandbox receives them and the automaton through the shared memory and
returns the candidate's tokens there, nothing else (``grader/harnesses/remote.py``). The
trusted side judges every mask and token against its own copy of the automaton and its own
oracle (``oracle.py``, float64):

* every ``mask``: equal to the automaton's, token for token;
* validity, always: each token is one the row's state allows (EOS only at accepting states);
* the distribution, on every row no float32 rounding can change: the token is the one the
  row's uniform selects from the unconstrained softmax restricted to the allowed tokens and
  renormalised (greedy rows: the first argmax among them);
* ``chisq`` tests: one row repeated 20,000 times with fresh uniforms; the counts must also pass
  a chi-square test against the exact masked distribution;
* ``decode`` tests: rows decoded from the start state to EOS, one exchange a step, the state
  advanced here by the trusted automaton; every finished output must match the grammar by
  Python's own ``re`` (and, for a schema, parse as JSON that ``jsonschema`` validates).

Whatever the sandbox does to the automaton it was handed changes nothing here: it is written
to the shared memory each exchange and never read back.

The timed call is the logits processor's cost per step: ``calls`` back-to-back ``mask`` calls
per exchange, each on fresh states of 16 rows across a JSON schema's automaton over a
49,152-token vocabulary (SmolLM2's), every mask checked; timed by the trusted clock alone, from
waking the sandbox to its reply.
"""

from __future__ import annotations

import functools
import json
import mmap
import random
import re
from typing import TYPE_CHECKING, Any

from grader.harnesses.base import oracle_load
from grader.harnesses.contract import CallTiming
from grader.harnesses.engine_run import CaseResult, EngineHarness, fail, one_thread
from grader.harnesses.engine_sampler import CHI_SQUARE_P_FLOOR, chi_square
from grader.harnesses.registry import register
from grader.harnesses.remote import (
    POISON_INT64,
    Arena,
    candidate_object,
    diagnostic,
    slot_bytes,
    tensor_view,
    tensor_write,
)

if TYPE_CHECKING:
    import numpy as np

    from engine.grammar import TokenFSM
    from grader.sandbox import SandboxSession

FSM_FIELDS = ("offsets", "token_ids", "next_states", "accepting")
# What the trusted side fills a mask's place with before a call: neither 0 nor 1.
POISON_UINT8 = 0x7F
# The compiled vocabularies' EOS (engine.grammar_compile.grammar_vocab's token 0).
EOS_TOKEN_ID = 0
# Characters of a decoded output shown in a failure message.
TEXT_SHOWN = 80


@functools.lru_cache(maxsize=8)
def _compiled(grammar_json: str, vocab_size: int) -> tuple[str, TokenFSM]:
    from engine.grammar_compile import grammar_vocab, schema_regex, token_fsm

    grammar = json.loads(grammar_json)
    pattern = grammar["regex"] if "regex" in grammar else schema_regex(grammar["schema"])
    return pattern, token_fsm(pattern, list(grammar_vocab(vocab_size)))


def compiled(case: dict[str, Any]) -> tuple[str, TokenFSM]:
    """(regex, token automaton) of a case's grammar over its vocabulary, once per process."""
    return _compiled(json.dumps(case["grammar"], sort_keys=True), int(case["vocab"]))


def allowed_rows(fsm: TokenFSM, states: np.ndarray) -> np.ndarray:
    """[rows, vocab] bool: the tokens each row's state allows (EOS where it accepts)."""
    import numpy as np

    offsets, token_ids = fsm.offsets.numpy(), fsm.token_ids.numpy()
    unique, where = np.unique(states, return_inverse=True)
    masks = np.zeros((len(unique), fsm.vocab_size), dtype=bool)
    for index, state in enumerate(unique.tolist()):
        masks[index, token_ids[offsets[state] : offsets[state + 1]]] = True
        masks[index, fsm.eos_token_id] = bool(fsm.accepting[state])
    return masks[where]


def next_states(fsm: TokenFSM, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Each row's state after its (allowed, non-EOS) token."""
    import numpy as np

    offsets, token_ids = fsm.offsets.numpy(), fsm.token_ids.numpy()
    places = [
        offsets[s] + np.searchsorted(token_ids[offsets[s] : offsets[s + 1]], t)
        for s, t in zip(states.tolist(), tokens.tolist(), strict=True)
    ]
    return fsm.next_states.numpy()[np.array(places, dtype=np.int64)]


def draw_states(case: dict[str, Any], fsm: TokenFSM, rng: random.Random, rows: int):
    """[rows] int64 automaton states by the case's ``states`` rule: any state, ``accepting``
    (accepting states that may also go on), or ``widest`` (the one allowing the most tokens)."""
    import numpy as np
    import torch

    pool = list(range(fsm.num_states))
    degree = fsm.offsets[1:] - fsm.offsets[:-1]
    if case.get("states") == "accepting":
        pool = [s for s in pool if fsm.accepting[s] and degree[s] > 0]
    elif case.get("states") == "widest":
        pool = [int(degree.argmax())]
    return torch.from_numpy(np.array([rng.choice(pool) for _ in range(rows)], dtype=np.int64))


def draw_inputs(case: dict[str, Any], fsm: TokenFSM, rng: random.Random, rows: int, states=None):
    """(logits [rows, vocab] float32, states [rows] int64, params [2, rows] float64: the
    temperatures and uniforms) for one call; ``states`` drawn by :func:`draw_states` unless
    given."""
    import torch

    generator = torch.Generator().manual_seed(rng.randrange(2**62))
    vocab = fsm.vocab_size
    logits = torch.randn(rows, vocab, generator=generator).mul_(float(case.get("scale", 2.0)))
    logits[:, fsm.eos_token_id] += float(case.get("eos_bias", 0.0))
    states = draw_states(case, fsm, rng, rows) if states is None else torch.from_numpy(states)
    if case.get("mode") == "chisq":
        logits = logits[:1].expand(rows, vocab).contiguous()
    temperatures = [float(rng.choice(case["temperature"])) for _ in range(rows)]
    uniforms = [rng.random() for _ in range(rows)]
    params = torch.tensor([temperatures, uniforms], dtype=torch.float64)
    return logits, states, params


@register
class GrammarHarness(EngineHarness):
    kind = "grammar"
    version = "1"
    # The interface and its data types; the compiler and the oracle stay on this side.
    sandbox_paths = ("engine/__init__.py", "engine/sampler.py", "engine/config.py",
                     "engine/grammar.py")  # fmt: skip

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.sample_expected = oracle_load(spec.oracle_code, ("sample_expected",))[
            "sample_expected"
        ]

    def shared_bytes(self) -> int:
        sizes = []
        for case in [*self.spec.tests, self.spec.benchmark]:
            _, fsm = compiled(case)
            rows, vocab = int(case["rows"]), fsm.vocab_size
            one = slot_bytes("int64", rows) + slot_bytes("uint8", rows, vocab)
            if case.get("mode") != "mask":  # sampled: logits, settings and tokens too
                one += slot_bytes("float32", rows, vocab) + slot_bytes("int64", rows)
                one += slot_bytes("float64", 2, rows)
            fsm_bytes = sum(slot_bytes("int64", getattr(fsm, f).numel()) for f in FSM_FIELDS)
            sizes.append(int(case.get("calls", 1)) * one + fsm_bytes)
        return max(sizes)

    def run_case(
        self, session: SandboxSession, case: dict[str, Any], rng: random.Random, timed: bool
    ) -> CaseResult:
        with one_thread():
            pattern, fsm = compiled(case)
            mode, rows = case.get("mode"), int(case["rows"])
            if mode == "decode":
                return self._decode(session, case, rng, pattern, fsm)
            if mode == "mask":  # the timed call: masks only, `calls` back to back
                calls = [{"states": draw_states(case, fsm, rng, rows)}
                         for _ in range(int(case.get("calls", 1)))]  # fmt: skip
                _, timing = self._exchange(session, case, fsm, calls)
                return CaseResult(timing, f"{len(calls)} masks of {rows} rows, each exact")
            logits, states, params = draw_inputs(case, fsm, rng, rows)
            call = {"logits": logits, "states": states, "params": params}
            (tokens,), timing = self._exchange(session, case, fsm, [call])
            judged = self._check(tokens, fsm, logits, states, params, "")
            details = {"rows_judged": judged, "rows": len(tokens)}
            if mode == "chisq":
                return self._check_chi_square(timing, tokens, fsm, logits, states, details)
            message = (
                f"every mask exact and every token allowed by the grammar; {judged} of "
                f"{len(tokens)} rows judged, each the token its uniform selects among the "
                "allowed ones"
            )
            return CaseResult(timing, message, details)

    def _exchange(self, session, case, fsm, calls: list[dict[str, Any]]):
        """One exchange: ``mask`` for each call's states (and ``sample`` where the call has
        logits) in the sandbox, back to back; every mask is checked here. Returns (each
        sampled call's tokens, read back; the timing)."""
        arena = Arena(session)
        places = {name: arena.put(getattr(fsm, name)) for name in FSM_FIELDS}
        sent = []
        for call in calls:
            rows = len(call["states"])
            one = {name: arena.put(tensor) for name, tensor in call.items()} | places
            one["mask"] = arena.output("uint8", rows, fsm.vocab_size)
            if "logits" in call:
                one["tokens"] = arena.output("int64", rows)
            sent.append(one)
        fsm_info = {"eos": fsm.eos_token_id, "vocab": fsm.vocab_size, "key": fsm.key}
        reply, timing = arena.exchange("sample", sent, self.timeout_s(case), fsm_info)
        tokens = []
        for index, (call, one) in enumerate(zip(calls, sent, strict=True)):
            note = diagnostic(reply, index)
            where = f"call {index + 1} of {len(calls)}: " * (len(calls) > 1)
            self._check_mask(arena.read(one["mask"]), fsm, call["states"], where, note)
            if "tokens" in one:
                got = arena.read(one["tokens"])
                if bool((got == POISON_INT64).all()):
                    raise fail(f"{where}sample() gave no tokens{': ' + note if note else ''}")
                tokens.append(got)
        return tokens, timing

    @staticmethod
    def _check_mask(got, fsm, states, where: str, note: str) -> None:
        """The mask equals the trusted automaton's, token for token."""
        import numpy as np

        got = got.numpy()
        if (got == POISON_UINT8).all():
            raise fail(f"{where}mask() gave no output{': ' + note if note else ''}")
        allowed = allowed_rows(fsm, states.numpy())
        bad = got != allowed.astype(np.uint8)
        if not bad.any():
            return
        row, token = (int(i) for i in np.argwhere(bad)[0])
        state = int(states[row])
        what = f"token {token}" + " (EOS)" * (token == fsm.eos_token_id)
        accepts = bool(fsm.accepting[state])
        if allowed[row, token]:
            why = " (the state accepts)" * (token == fsm.eos_token_id)
            fault = f"forbids {what}, which the grammar allows there{why}"
        else:
            why = " (the state does not accept)" * (token == fsm.eos_token_id and not accepts)
            fault = f"allows {what}, which the grammar does not allow there{why}"
        raise fail(
            f"{where}mask() row {row} (state {state}): {fault}; {int(bad.any(axis=1).sum())} "
            f"of {len(states)} rows wrong"
        )

    def _check(self, tokens, fsm, logits, states, params, where: str) -> int:
        """Every token allowed, and each judged row's the one its uniform selects; returns the
        rows judged."""
        import numpy as np

        states_np, tokens_np = states.numpy(), tokens.numpy()
        vocab = fsm.vocab_size
        outside = (tokens_np < 0) | (tokens_np >= vocab)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise fail(f"{where}sample() row {row}: token {int(tokens_np[row])} is not a token id")
        allowed = allowed_rows(fsm, states_np)
        rows = np.arange(len(tokens_np))
        forbidden = ~allowed[rows, tokens_np]
        if forbidden.any():
            row = int(np.flatnonzero(forbidden)[0])
            state, token = int(states_np[row]), int(tokens_np[row])
            what = "EOS" if token == fsm.eos_token_id else f"token {token}"
            why = " (it does not accept there)" if token == fsm.eos_token_id else ""
            count = int(allowed[row].sum())
            raise fail(
                f"{where}sample() row {row} (state {state}, which allows {count} "
                f"token{'s' * (count != 1)}): drew {what}, which the grammar does not "
                f"allow{why}; {int(forbidden.sum())} of {len(tokens_np)} rows drew a forbidden "
                "token"
            )
        temperature, uniforms = params[0].numpy(), params[1].numpy()
        want, judged = self.sample_expected(logits.numpy(), allowed, temperature, uniforms)
        wrong = judged & (tokens_np != want)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise fail(self._wrong_token(row, tokens_np, want, logits, allowed, params, where)
                       + f"; {int(wrong.sum())} of {int(judged.sum())} judged rows differ")  # fmt: skip
        return int(judged.sum())

    @staticmethod
    def _wrong_token(row, tokens, want, logits, allowed, params, where: str) -> str:
        """Why a row's allowed token is not the one its uniform selects, in words."""
        import numpy as np

        got, token = int(tokens[row]), int(want[row])

        def name(t: int) -> str:
            return f"token {t}" + " (EOS)" * (t == EOS_TOKEN_ID)

        temperature = float(params[0, row])
        if temperature == 0:
            return (
                f"{where}sample() row {row} (temperature 0, greedy): drew {name(got)}; the "
                f"first argmax of the logits among the {int(allowed[row].sum())} allowed tokens "
                f"is {name(token)}"
            )
        x = np.where(allowed[row], logits[row].numpy().astype(np.float64) / temperature, -np.inf)
        weights = np.exp(x - x.max())
        cdf = weights.cumsum() / weights.sum()

        def bin_of(t: int) -> str:
            return f"[{cdf[t - 1] if t else 0.0:.6f}, {cdf[t]:.6f})"

        return (
            f"{where}sample() row {row} (temperature {temperature:g}): uniform "
            f"{float(params[1, row]):.6f} selects {name(token)}, whose bin of the masked, "
            f"renormalised distribution (in token-id order) is {bin_of(token)}; the sampler "
            f"drew {name(got)}, whose bin is {bin_of(got)}"
            + "; EOS is allowed here (the state accepts)"
            * bool(allowed[row, EOS_TOKEN_ID])
        )

    def _check_chi_square(self, timing, tokens, fsm, logits, states, details) -> CaseResult:
        import numpy as np

        allowed = allowed_rows(fsm, states[:1].numpy())[0]
        x = np.where(allowed, logits[0].numpy().astype(np.float64), -np.inf)
        probs = np.exp(x - x.max())
        probs = (probs / probs.sum()).tolist()
        counts = np.bincount(tokens.numpy(), minlength=len(probs)).tolist()
        statistic, dof, p_value = chi_square(counts, probs)
        details |= {"chi_square": round(statistic, 2), "dof": dof, "p_value": p_value}
        if p_value < CHI_SQUARE_P_FLOOR:
            worst = max(range(len(probs)), key=lambda t: abs(counts[t] - len(tokens) * probs[t]))
            raise fail(
                f"sampled frequencies differ from the masked, renormalised distribution: "
                f"chi-square {statistic:.1f} on {dof} degrees of freedom, p = {p_value:.3g}; "
                f"token {worst} was drawn {counts[worst]} times in {len(tokens)}, expected "
                f"{len(tokens) * probs[worst]:.1f}",
                **details,
            )
        return CaseResult(timing, f"chi-square p = {p_value:.3g} over {len(tokens)} draws", details)

    def _decode(self, session, case, rng, pattern: str, fsm) -> CaseResult:
        """Rows decoded from the start state until EOS, the states advanced here."""
        import numpy as np

        from engine.grammar_compile import grammar_vocab

        vocab = grammar_vocab(fsm.vocab_size)
        rows, max_steps = int(case["rows"]), int(case["max_steps"])
        states = np.zeros(rows, dtype=np.int64)
        texts = [""] * rows
        active = np.ones(rows, dtype=bool)
        elapsed_ns = judged = sampled = steps = 0
        while active.any() and steps < max_steps:
            live = np.flatnonzero(active)
            logits, live_states, params = draw_inputs(case, fsm, rng, len(live), states[live])
            call = {"logits": logits, "states": live_states, "params": params}
            (tokens,), timing = self._exchange(session, case, fsm, [call])
            elapsed_ns += timing.outside_ns
            judged += self._check(tokens, fsm, logits, live_states, params, f"step {steps}: ")
            sampled += len(live)
            tokens_np = tokens.numpy()
            ended = tokens_np == fsm.eos_token_id
            going = live[~ended]
            states[going] = next_states(fsm, states[going], tokens_np[~ended])
            for row, token in zip(going.tolist(), tokens_np[~ended].tolist(), strict=True):
                texts[row] += vocab[token]
            active[live[ended]] = False
            steps += 1
        finished = [text for text, left in zip(texts, active, strict=True) if not left]
        for text in finished:
            self._check_output(case, pattern, text)
        message = (
            f"{len(finished)} of {rows} outputs finished in {steps} steps, each matching the "
            f"grammar; {judged} of {sampled} sampled rows judged"
        )
        details = {"rows_judged": judged, "rows": sampled, "steps": steps,
                   "finished": len(finished)}  # fmt: skip
        return CaseResult(CallTiming(0, elapsed_ns), message, details)

    @staticmethod
    def _check_output(case: dict[str, Any], pattern: str, text: str) -> None:
        """A finished output matches the grammar by Python's ``re`` (and its schema)."""
        shown = text[:TEXT_SHOWN]
        if not re.fullmatch(pattern, text):
            raise fail(f"the output {shown!r} does not match the grammar {pattern!r}")
        schema = case["grammar"].get("schema")
        if schema is not None:
            import jsonschema

            try:
                jsonschema.validate(json.loads(text), schema)
            except (ValueError, jsonschema.ValidationError) as error:
                raise fail(f"the output {shown!r} breaks the schema: {error}") from None

    @staticmethod
    def serve(entry: Any, request: dict[str, Any], shared: mmap.mmap) -> dict[str, Any]:
        from engine.grammar import TokenFSM

        sampler = candidate_object(entry)
        errors = []
        for call in request["calls"]:
            fsm = TokenFSM(
                **{name: tensor_view(shared, call[name]) for name in FSM_FIELDS},
                eos_token_id=int(request["eos"]),
                vocab_size=int(request["vocab"]),
                key=str(request["key"]),
            )
            states = tensor_view(shared, call["states"])
            error = tensor_write(shared, call["mask"], sampler.mask(fsm, states), "mask()")
            if "logits" in call:
                params = tensor_view(shared, call["params"])
                tokens = sampler.sample(
                    tensor_view(shared, call["logits"]),
                    fsm,
                    states,
                    params[0].float(),
                    params[1].clone(),
                )
                error = tensor_write(shared, call["tokens"], tokens, "sample()") or error
            errors.append(error)
        return {"ok": True, "errors": errors}
