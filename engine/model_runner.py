"""Runs the model on one scheduled step: builds inputs, owns the KV cache and CUDA graphs."""

from __future__ import annotations

import numpy as np
import torch

from engine.attention import AttentionBackend, AttentionMetadata
from engine.config import EngineConfig, ModelConfig
from engine.model import LlamaModel
from engine.sequence import Sequence

CPU_KV_BYTES = 256 << 20  # CPU tests and benchmarks need a few thousand tokens; zeroing GBs is slow
CPU_MAX_BLOCKS = 4096


class ModelRunner:
    """Holds the model and the paged KV cache `[layers, 2, blocks + 1, block_size, kv_heads,
    head_dim]`; the extra last block is scratch that padded CUDA-graph rows write into."""

    def __init__(
        self,
        model_config: ModelConfig,
        config: EngineConfig,
        state_dict: dict[str, torch.Tensor],
        attention: AttentionBackend,
    ):
        self.config, self.model_config, self.attention = config, model_config, attention
        self.device = torch.device(config.device)
        self.dtype = getattr(torch, config.dtype)
        model = LlamaModel(model_config)
        model.load_hf_state_dict(state_dict)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        if config.fused_ops:
            self.model.use_fused_ops()
        self.model.rope.to(dtype=torch.float32)
        self.num_blocks = config.num_kv_blocks or self._default_num_blocks()
        self.max_blocks_per_seq = -(-config.max_model_len // config.block_size)
        mc = model_config
        self.kv_cache = torch.zeros(
            mc.num_layers, 2, self.num_blocks + 1, config.block_size, mc.num_kv_heads, mc.head_dim,
            dtype=self.dtype, device=self.device,
        )  # fmt: skip
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        if config.cuda_graphs and self.device.type == "cuda":
            self._capture_graphs()

    def _default_num_blocks(self) -> int:
        block_bytes = (
            self.model_config.kv_bytes_per_token(self.dtype.itemsize) * self.config.block_size
        )
        if self.device.type != "cuda":
            return min(CPU_MAX_BLOCKS, CPU_KV_BYTES // block_bytes)
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(free * self.config.gpu_memory_fraction) // block_bytes

    def _upload(self, arrays: list[np.ndarray], dtype: np.dtype) -> list[torch.Tensor]:
        """Copy host arrays of one dtype to the device in one transfer; views of the result.

        Each view starts 16-byte aligned: Triton specialises kernels on pointer alignment, and
        a view whose alignment changed with the batch size would recompile mid-run. Each call
        pins a fresh buffer: the caching host allocator does not reuse it until the copy has
        run, which async scheduling relies on.
        """
        itemsize = np.dtype(dtype).itemsize
        align = 16 // itemsize
        sizes = [array.size for array in arrays]
        starts = np.cumsum([0] + [-(-size // align) * align for size in sizes])
        host = np.zeros(starts[-1], dtype=dtype)
        for array, start in zip(arrays, starts, strict=False):
            host[start : start + array.size] = array.ravel()
        packed = torch.from_numpy(host)
        if self.device.type == "cuda":
            packed = packed.pin_memory().to(self.device, non_blocking=True)
        return [
            packed[start : start + array.size].view(array.shape)
            for array, start in zip(arrays, starts, strict=False)
        ]

    def prepare(
        self, scheduled: list[tuple[Sequence, int]], placeholders: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata, list[int], list[Sequence]]:
        """Flatten the step into token ids, positions, metadata; pick the rows that need logits.

        A sequence needs logits when this step reaches its last known token: at that token,
        and, when it verifies draft tokens, at each of them and the token before them.
        A negative token id `-1 - i` (async scheduling) is row `i` of `placeholders`, the
        previous step's sampled tokens, still on the device.
        """
        bs = self.config.block_size
        seqs = [seq for seq, _ in scheduled]
        widths = [len(seq.block_table) for seq in seqs]
        tables = np.zeros((len(seqs), max(widths)), dtype=np.int32)
        for row, seq in enumerate(seqs):
            tables[row, : widths[row]] = seq.block_table
        if self._decodes_last_tokens(scheduled):
            return self._prepare_decode(seqs, tables, placeholders)
        ids, positions, slots, query_start, seq_lens, query_lens = [], [], [], [0], [], []
        logits_rows, sample_seqs = [], []
        for seq, num_new in scheduled:
            start, end = seq.num_computed_tokens, seq.num_computed_tokens + num_new
            tokens = seq.all_token_ids if seq.spec_token_ids else seq.token_ids
            table = seq.block_table
            ids.extend(tokens[start:end])
            positions.extend(range(start, end))
            slots.extend(table[p // bs] * bs + p % bs for p in range(start, end))
            query_start.append(query_start[-1] + num_new)
            seq_lens.append(end)
            query_lens.append(num_new)
            if end == seq.num_tokens:
                rows = min(num_new, 1 + len(seq.spec_token_ids))
                logits_rows.extend(range(query_start[-1] - rows, query_start[-1]))
                sample_seqs.append(seq)
        return self._finish_prepare(
            np.array(ids, dtype=np.int64), np.array(positions), np.array(slots),
            np.array(query_start), np.array(seq_lens), tables, query_lens, placeholders,
        ) + (logits_rows, sample_seqs)  # fmt: skip

    @staticmethod
    def _decodes_last_tokens(scheduled: list[tuple[Sequence, int]]) -> bool:
        return all(
            num_new == 1
            and not seq.spec_token_ids
            and seq.num_computed_tokens == len(seq.token_ids) - 1
            for seq, num_new in scheduled
        )

    def _prepare_decode(self, seqs, tables, placeholders):
        """`prepare` when every sequence decodes its last token: numpy instead of a loop."""
        bs, count = self.config.block_size, len(seqs)
        positions = np.array([seq.num_computed_tokens for seq in seqs], dtype=np.int64)
        ids = np.array([seq.token_ids[-1] for seq in seqs], dtype=np.int64)
        slots = tables[np.arange(count), positions // bs].astype(np.int64) * bs + positions % bs
        query_start = np.arange(count + 1)
        return self._finish_prepare(
            ids, positions, slots, query_start, positions + 1, tables, [1] * count, placeholders
        ) + (list(range(count)), seqs)

    def _finish_prepare(
        self, ids, positions, slots, query_start, seq_lens, tables, query_lens, placeholders
    ) -> tuple[torch.Tensor, torch.Tensor, AttentionMetadata]:
        input_ids, positions_t, slots_t = self._upload([ids, positions, slots], np.int64)
        query_start_t, seq_lens_t, tables_t = self._upload(
            [query_start, seq_lens, tables], np.int32
        )
        if placeholders is not None and (ids < 0).any():
            taken = placeholders[(-1 - input_ids).clamp(min=0)]
            input_ids = torch.where(input_ids < 0, taken, input_ids)
        meta = AttentionMetadata(
            slot_mapping=slots_t,
            query_start_loc=query_start_t,
            seq_lens=seq_lens_t,
            block_tables=tables_t,
            max_query_len=max(query_lens),
            max_seq_len=int(seq_lens.max()),
            block_size=self.config.block_size,
            query_lens_cpu=query_lens,
            seq_lens_cpu=seq_lens.tolist(),
        )
        return input_ids, positions_t, meta

    @torch.inference_mode()
    def run(
        self,
        scheduled: list[tuple[Sequence, int]],
        num_layers: int | None = None,
        placeholders: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[Sequence]]:
        """Logits `[rows, vocab]` (the model's dtype) for the rows that need them, and their
        sequences. A step where every sequence decodes its last token replays a CUDA graph;
        its logits are a view of the graph's output, valid until the next replay is queued.

        Nothing here waits for the GPU: the logits are queued work until something reads them.
        """
        if num_layers is None and self.graphs and self._decodes_last_tokens(scheduled):
            seqs = [seq for seq, _ in scheduled]
            size = next((size for size in self.graphs if size >= len(seqs)), None)
            if size is not None:
                return self._replay(size, seqs, placeholders), seqs
        input_ids, positions, meta, logits_rows, sample_seqs = self.prepare(scheduled, placeholders)
        hidden = self.model(input_ids, positions, self.kv_cache, meta, self.attention, num_layers)
        if not logits_rows:
            return hidden.new_empty(0, self.model_config.vocab_size), []
        if len(logits_rows) < hidden.shape[0]:
            hidden = hidden[self._upload([np.array(logits_rows)], np.int64)[0]]
        return self.model.compute_logits(hidden), sample_seqs

    def copy_blocks(self, copies: list[tuple[int, int]]) -> None:
        """Copy-on-write: duplicate whole blocks (every layer, keys and values)."""
        for src, dst in copies:
            self.kv_cache[:, :, dst] = self.kv_cache[:, :, src]

    def _capture_graphs(self) -> None:
        """Capture one decode graph per padded batch size (1, 2, 4, 8, 16, 32, ... max_num_seqs).

        The graphs read their inputs from one device buffer (`_graph_inputs`) that each step
        fills with a single host-to-device copy, and take a placeholder token id `-1 - i` from
        row `i` of the previous step's sampled tokens (`prev_tokens`) inside the graph.
        """
        max_bs = self.config.max_num_seqs
        self._allocate_graph_inputs(max_bs)
        pool = None
        for size in sorted({1, 2, 4, 8, *range(16, max_bs + 1, 16), max_bs}, reverse=True):
            graph = torch.cuda.CUDAGraph()
            meta = self._static_meta(size)
            with torch.inference_mode():
                self._graph_body(size, meta)
                torch.cuda.synchronize()
                with torch.cuda.graph(graph, pool):
                    self._graph_body(size, meta)
            pool = graph.pool()
            self.graphs[size] = graph
        self.graphs = dict(sorted(self.graphs.items()))
        torch.cuda.synchronize()

    def _allocate_graph_inputs(self, max_bs: int) -> None:
        dev = self.device
        self.input_layout = self._graph_input_layout(max_bs)
        size_bytes = max(end for _, _, _, end in self.input_layout.values())
        self.graph_inputs = torch.zeros(size_bytes, dtype=torch.uint8, device=dev)
        self.static = self._typed_views(self.graph_inputs, torch)
        self.static["slot_mapping"].fill_(self.num_blocks * self.config.block_size)
        self.static["seq_lens"].fill_(1)
        self.static |= {
            "query_start_loc": torch.arange(max_bs + 1, dtype=torch.int32, device=dev),
            "prev_tokens": torch.zeros(max_bs, dtype=torch.int64, device=dev),
            "logits": torch.zeros(
                max_bs, self.model_config.vocab_size, dtype=self.dtype, device=dev
            ),
        }
        # Each sequence's block table, kept by slot between steps: a decode step rewrites only
        # the rows whose table changed (one sequence in 16 at block size 16).
        self.table_slots: dict[int, int] = {}
        self.slot_tables = np.zeros((2 * max_bs, self.max_blocks_per_seq), dtype=np.int32)
        self.slot_lists: list[list[int] | None] = [None] * (2 * max_bs)

    def _graph_input_layout(self, max_bs: int) -> dict[str, tuple]:
        """Name -> (dtype name, shape, start byte, end byte), each start 16-byte aligned; the
        block tables last, so a step copies only the rows its graph reads."""
        shapes = {
            "input_ids": ("int64", (max_bs,)),
            "positions": ("int64", (max_bs,)),
            "slot_mapping": ("int64", (max_bs,)),
            "seq_lens": ("int32", (max_bs,)),
            "block_tables": ("int32", (max_bs, self.max_blocks_per_seq)),
        }
        layout, start = {}, 0
        for name, (dtype, shape) in shapes.items():
            end = start + np.dtype(dtype).itemsize * int(np.prod(shape))
            layout[name] = (dtype, shape, start, end)
            start = -(-end // 16) * 16
        return layout

    def _typed_views(self, buffer, lib) -> dict:
        """The layout's named views of a byte buffer (a torch or a numpy one, per `lib`)."""
        return {
            name: buffer[start:end].view(getattr(lib, dtype)).reshape(shape)
            for name, (dtype, shape, start, end) in self.input_layout.items()
        }

    def _table_rows(self, seqs: list[Sequence]) -> list[int]:
        """Each sequence's row in `slot_tables`, refreshed where its block table changed."""
        slots, lists, rows = self.table_slots, self.slot_lists, []
        for seq in seqs:
            slot = slots.get(seq.seq_id)
            if slot is None:
                if len(slots) == len(lists):  # full of finished sequences: start over
                    slots.clear()
                    rows.clear()
                    return self._table_rows(seqs)
                slot = slots[seq.seq_id] = len(slots)
                lists[slot] = None
            table = seq.block_table
            if lists[slot] != table:
                lists[slot] = list(table)
                self.slot_tables[slot, : len(table)] = table
                self.slot_tables[slot, len(table) :] = 0
            rows.append(slot)
        return rows

    def _graph_body(self, size: int, meta: AttentionMetadata) -> None:
        s = self.static
        raw = s["input_ids"][:size]
        input_ids = torch.where(raw < 0, s["prev_tokens"][(-1 - raw).clamp(min=0)], raw)
        hidden = self.model(input_ids, s["positions"][:size], self.kv_cache, meta, self.attention)
        s["logits"][:size].copy_(self.model.compute_logits(hidden))

    def _static_meta(self, size: int) -> AttentionMetadata:
        s = self.static
        return AttentionMetadata(
            slot_mapping=s["slot_mapping"][:size],
            query_start_loc=s["query_start_loc"][: size + 1],
            seq_lens=s["seq_lens"][:size],
            block_tables=s["block_tables"][:size],
            max_query_len=1,
            max_seq_len=self.config.max_model_len,
            block_size=self.config.block_size,
            query_lens_cpu=[1] * size,
            seq_lens_cpu=[1] * size,
        )

    def _replay(
        self, size: int, seqs: list[Sequence], placeholders: torch.Tensor | None
    ) -> torch.Tensor:
        """Fill the graph's inputs for `seqs` (rows past them are padding that writes to the
        scratch block) in one pinned buffer, copy it over, replay; the logits of `seqs`."""
        n, bs = len(seqs), self.config.block_size
        host = torch.empty(
            self.graph_inputs.shape[0], dtype=torch.uint8, pin_memory=self.device.type == "cuda"
        )
        views = self._typed_views(host.numpy(), np)
        ids, positions, tables = views["input_ids"], views["positions"], views["block_tables"]
        ids[:n] = [seq.token_ids[-1] for seq in seqs]
        positions[:n] = [seq.num_computed_tokens for seq in seqs]
        ids[n:size] = positions[n:size] = 0
        tables[:n] = self.slot_tables[self._table_rows(seqs)]
        tables[n:size] = 0
        decoding = positions[:n]
        views["slot_mapping"][:n] = tables[np.arange(n), decoding // bs] * bs + decoding % bs
        views["slot_mapping"][n:size] = self.num_blocks * bs
        views["seq_lens"][:n] = decoding + 1
        views["seq_lens"][n:size] = 1
        _, _, start, _ = self.input_layout["block_tables"]
        used = start + tables[:size].nbytes  # the table rows past `size` are not read
        self.graph_inputs[:used].copy_(host[:used], non_blocking=True)
        if placeholders is not None:
            self.static["prev_tokens"][: placeholders.shape[0]].copy_(placeholders)
        self.graphs[size].replay()
        return self.static["logits"][:n]
