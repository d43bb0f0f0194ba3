"""The calculator's form: choices from the capacity catalogs, limits that keep answers sane."""

from __future__ import annotations

from django import forms

from engine import capacity
from interview.design.calculator import Calculation, calculate

# Beyond these the model's assumptions (one host's interconnect, vLLM-sized batches) stop holding.
MAX_GPUS = 4096
MAX_TP = 64
MAX_BATCH = 4096
MAX_CONTEXT_TOKENS = 1_048_576

DEFAULTS = {
    "model": "llama-3-8b",
    "gpu": "h100-sxm",
    "gpus": 1,
    "tp": 1,
    "dtype": "bf16",
    "kv_dtype": "bf16",
    "batch": 32,
    "context": 4096,
}


class CalculatorForm(forms.Form):
    model = forms.ChoiceField(
        choices=[(m.name, m.title) for m in capacity.MODELS.values()], label="Model"
    )
    gpu = forms.ChoiceField(
        choices=[(g.name, g.title) for g in capacity.GPUS.values()], label="GPU"
    )
    gpus = forms.IntegerField(min_value=1, max_value=MAX_GPUS, label="GPUs")
    tp = forms.IntegerField(
        min_value=1, max_value=MAX_TP, label="Tensor parallel (TP)",
        help_text="GPUs per replica; must divide the GPU count and the model's attention heads",
    )  # fmt: skip
    dtype = forms.ChoiceField(
        choices=[(d, d) for d in capacity.WEIGHT_DTYPES], label="Weight dtype"
    )
    kv_dtype = forms.ChoiceField(choices=[(d, d) for d in capacity.KV_DTYPES], label="KV dtype")
    batch = forms.IntegerField(
        min_value=1, max_value=MAX_BATCH, label="Batch (sequences decoding together)"
    )
    context = forms.IntegerField(
        min_value=1, max_value=MAX_CONTEXT_TOKENS, label="Context (tokens per sequence)"
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.calculation = calculate(
                data["model"], data["gpu"], data["gpus"], data["tp"], data["dtype"],
                data["kv_dtype"], data["batch"], data["context"],
            )  # fmt: skip
        except ValueError as error:
            field = "tp" if "tp=" in str(error) else None
            self.add_error(field, str(error))
        return data

    def result(self) -> Calculation:
        """The calculation of a valid form."""
        return self.calculation
