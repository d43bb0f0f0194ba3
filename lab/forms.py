"""The engine lab's settings form: each field says what it changes in the engine."""

from __future__ import annotations

from django import forms

from lab.experiment import (
    BLOCK_SIZES,
    MAX_BATCH,
    MAX_KV_BLOCKS,
    MAX_RATE_PER_S,
    MAX_REQUESTS,
    LabSettings,
)


class LabForm(forms.Form):
    batching = forms.ChoiceField(
        choices=[
            ("both", "Continuous and static, side by side"),
            ("continuous", "Continuous batching only"),
            ("static", "Static batching only"),
        ],
        initial="both",
        help_text="Static: a batch starts when the last one has finished, and every member is "
        "padded to the longest output in it.",
    )
    policy = forms.ChoiceField(
        choices=[("fcfs", "First come, first served"), ("priority", "Priority with preemption")],
        initial="fcfs",
        label="Scheduler policy",
        help_text="For continuous batching. Priority: requests of priority 0 preempt those of 1.",
    )
    block_size = forms.TypedChoiceField(
        choices=[(size, f"{size} tokens") for size in BLOCK_SIZES],
        coerce=int,
        initial=8,
        label="KV block size",
    )
    num_kv_blocks = forms.IntegerField(
        min_value=4,
        max_value=MAX_KV_BLOCKS,
        initial=48,
        label="KV blocks",
        help_text="Fewer blocks: more preemptions (continuous) or smaller batches (static).",
    )
    max_num_seqs = forms.IntegerField(
        min_value=1, max_value=MAX_BATCH, initial=8, label="Max batch (sequences)"
    )
    arrival_rate_per_s = forms.FloatField(
        min_value=0,
        max_value=MAX_RATE_PER_S,
        initial=40,
        label="Arrival rate (requests/s)",
        help_text="Poisson arrivals; 0 sends every request at once.",
    )
    requests = forms.IntegerField(min_value=1, max_value=MAX_REQUESTS, initial=16)
    seed = forms.IntegerField(min_value=0, max_value=2**31, initial=0, label="Workload seed")

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        modes = ("continuous", "static") if data["batching"] == "both" else (data["batching"],)
        try:
            data["settings"] = LabSettings(
                modes=modes,
                policy=data["policy"],
                block_size=data["block_size"],
                num_kv_blocks=data["num_kv_blocks"],
                max_num_seqs=data["max_num_seqs"],
                arrival_rate_per_s=data["arrival_rate_per_s"],
                requests=data["requests"],
                seed=data["seed"],
            )
        except ValueError as error:
            field = next((name for name in self.fields if str(error).startswith(name)), None)
            self.add_error(field, str(error))
        return data
