"""Reference for `mporec embed`: item-text features with Python `transformers`.

Embeds every item text of a UniSRec dataset (NAME.item2index + NAME.text)
with a BERT-family model, offline: tokenizer truncation at 256 tokens, mean
pooling over the attention mask, L2 normalisation. Writes raw little-endian
f32 rows in item-index order, the layout `mporec embed` writes.

Not part of the Rust build or the test suite; it exists to time the Rust
encoder against PyTorch on the same machine (see docs/benchmarks.md).

    python bench/embed_reference.py --model ../shared/models/all-MiniLM-L6-v2 \
        --data ../shared/data/scientific --out /tmp/reference.f32 --threads 2
"""

import argparse
import glob
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402


def read_item_texts(data_dir):
    """Returns the item texts in item-index order."""
    (index_path,) = glob.glob(os.path.join(data_dir, "*.item2index"))
    text_path = index_path[: -len(".item2index")] + ".text"
    index_of = {}
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            asin, index = line.rstrip("\n").split("\t")
            index_of[asin] = int(index)
    texts = [""] * len(index_of)
    with open(text_path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            asin, text = line.rstrip("\n").split("\t", 1)
            if asin in index_of:
                texts[index_of[asin]] = text
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder in the Hugging Face layout")
    parser.add_argument("--data", required=True, help="UniSRec dataset folder")
    parser.add_argument("--out", required=True, help="output feature file (raw f32)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--max-length", type=int, default=256, help="truncation length in tokens")
    parser.add_argument(
        "--sort",
        action="store_true",
        help="batch texts sorted by length (as sentence-transformers does) instead of in item order",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    model = AutoModel.from_pretrained(args.model, local_files_only=True).eval()
    texts = read_item_texts(args.data)
    loaded = time.perf_counter()

    order = list(range(len(texts)))
    if args.sort:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
        order.sort(key=lambda i: -lengths[i])

    features = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start_row in range(0, len(order), args.batch_size):
            rows = order[start_row : start_row + args.batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            )
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            features[rows] = pooled.numpy()

    features.astype("<f4").tofile(args.out)
    done = time.perf_counter()
    print(
        f"{len(texts)} items: load {loaded - start:.2f} s, embed {done - loaded:.2f} s, "
        f"{len(texts) / (done - loaded):.1f} items/s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
