"""What the judge's own measure does on the readers' held-back pairs: MiniLM's cosine between
the two texts, and the chance that a held-back point's statement outscores each kind of pair
that does not state it (the column readers are compared on: cross_encoder_held_back.json).

    python benchmarks/claim_model/cosine_held_back.py var/claim_pairs.jsonl.gz \
        --json benchmarks/claim_model/cosine_held_back.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from held_back import split  # noqa: E402

from interview.rubric import embed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    opener = gzip.open if args.pairs.suffix == ".gz" else open
    with opener(args.pairs, "rt") as f:
        _, val = split([json.loads(line) for line in f])
    texts = sorted({r["premise"] for r in val} | {r["hypothesis"] for r in val})
    vectors = dict(zip(texts, embed(texts), strict=True))
    by_source: dict[tuple[int, str], list[float]] = defaultdict(list)
    for r in val:
        cosine = float(vectors[r["premise"]] @ vectors[r["hypothesis"]])
        by_source[(r["label"], r["source"])].append(cosine)
    statements = np.array(by_source[(1, "statement")])
    report = {}
    for (label, source), values in sorted(by_source.items()):
        row = {
            "label": label,
            "pairs": len(values),
            "median_cosine": round(float(np.median(values)), 4),
        }
        if label == 0:
            row["statement_outscores"] = round(
                float((statements[:, None] > np.array(values)[None, :]).mean()), 4
            )
        report[f"{label}:{source}"] = row
        print(source, row)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
