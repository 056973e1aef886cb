"""One UniSRec training step in PyTorch eager, the reference for
`cargo bench -p recmodel --bench train_step`.

The model follows UniSRec's fine-tuning code (RecBole 1.2 SASRec layers,
MoE adapter with parametric whitening, transductive setting): the adapter
on the text features of every position of 2048 rows padded to 50 and on all
items, a 2-layer post-LN Transformer, cosine / 0.07 logits over all items,
cross-entropy, backward and an Adam update.

Usage (outside the repository's Rust build; needs torch and numpy):
    python bench/unisrec_step.py --data ../shared/data/scientific --threads 2
Prints the median step time in seconds for the `full` batch (every row 50
items) and the `scientific` batch (2048 random training rows of Scientific,
padded to 50), and the peak resident memory.
"""

import argparse
import math
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN, INNER, LAYERS, HEADS, EXPERTS = 300, 256, 2, 2, 8
MAX_LEN, ROWS = 50, 2048


class PWLayer(nn.Module):
    def __init__(self, d_in, d_out, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.bias = nn.Parameter(torch.zeros(d_in))
        self.lin = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):
        return self.lin(self.dropout(x) - self.bias)


class MoEAdaptor(nn.Module):
    def __init__(self, d_in, d_out, dropout=0.2):
        super().__init__()
        self.experts = nn.ModuleList([PWLayer(d_in, d_out, dropout) for _ in range(EXPERTS)])
        self.w_gate = nn.Parameter(torch.zeros(d_in, EXPERTS))
        self.w_noise = nn.Parameter(torch.zeros(d_in, EXPERTS))

    def forward(self, x):
        logits = x @ self.w_gate
        if self.training:
            std = F.softplus(x @ self.w_noise) + 1e-2
            logits = logits + torch.randn_like(logits) * std
        gates = F.softmax(logits, dim=-1)
        outs = torch.stack([e(x) for e in self.experts], dim=-2)
        return (gates.unsqueeze(-1) * outs).sum(dim=-2)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.dense = nn.Linear(HIDDEN, HIDDEN)
        self.ln1 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(HIDDEN, INNER), nn.Linear(INNER, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.attn_drop, self.drop = nn.Dropout(0.5), nn.Dropout(0.5)

    def forward(self, x, mask):
        b, l, _ = x.shape
        dh = HIDDEN // HEADS
        split = lambda t: t.view(b, l, HEADS, dh).permute(0, 2, 1, 3)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh) + mask
        probs = self.attn_drop(F.softmax(scores, dim=-1))
        ctx = (probs @ v).permute(0, 2, 1, 3).reshape(b, l, HIDDEN)
        h = self.ln1(self.drop(self.dense(ctx)) + x)
        f = self.drop(self.ff2(F.gelu(self.ff1(h))))
        return self.ln2(f + h)


class UniSRec(nn.Module):
    def __init__(self, features):
        super().__init__()
        n_items, d = features.shape
        # Row 0 is padding, as in RecBole; items are shifted by one.
        plm = torch.zeros(n_items + 1, d)
        plm[1:] = features
        self.plm = nn.Embedding.from_pretrained(plm, freeze=True)
        self.item_embedding = nn.Embedding(n_items + 1, HIDDEN, padding_idx=0)
        self.position_embedding = nn.Embedding(MAX_LEN, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.drop = nn.Dropout(0.5)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.adaptor = MoEAdaptor(d, HIDDEN)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)) and m.weight.requires_grad:
            m.weight.data.normal_(0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()

    def loss(self, seq, lengths, targets):
        b, l = seq.shape
        x = self.adaptor(self.plm(seq))
        x = x + self.position_embedding(torch.arange(l).unsqueeze(0).expand(b, l)) + self.item_embedding(seq)
        x = self.drop(self.ln(x))
        pad = (seq > 0).unsqueeze(1).unsqueeze(2)
        causal = torch.tril(torch.ones(l, l, dtype=torch.bool)).view(1, 1, l, l)
        mask = torch.where(pad & causal, 0.0, -10000.0)
        for layer in self.layers:
            x = layer(x, mask)
        out = x[torch.arange(b), lengths - 1]
        items = self.adaptor(self.plm.weight) + self.item_embedding.weight
        logits = F.normalize(out, dim=1) @ F.normalize(items, dim=1).T / 0.07
        return F.cross_entropy(logits, targets)


def read_train_rows(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            _, hist, target = line.rstrip("\n").split("\t")
            rows.append(([int(i) for i in hist.split()], int(target)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2020)
    rng = np.random.default_rng(11)

    n_items = sum(1 for _ in open(f"{args.data}/Scientific.item2index"))
    feats = np.fromfile(f"{args.data}/Scientific.minilm-l6.f32", dtype="<f4").reshape(n_items, -1)
    model = UniSRec(torch.from_numpy(feats))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    rows = read_train_rows(f"{args.data}/Scientific.train.inter")
    picks = rng.choice(len(rows), ROWS, replace=False)
    sci = torch.zeros(ROWS, MAX_LEN, dtype=torch.long)
    sci_len = torch.zeros(ROWS, dtype=torch.long)
    sci_tgt = torch.zeros(ROWS, dtype=torch.long)
    for r, i in enumerate(picks):
        hist, tgt = rows[i]
        sci[r, : len(hist)] = torch.tensor(hist) + 1
        sci_len[r] = len(hist)
        sci_tgt[r] = tgt + 1
    full = torch.from_numpy(rng.integers(1, n_items + 1, (ROWS, MAX_LEN)))
    full_len = torch.full((ROWS,), MAX_LEN, dtype=torch.long)
    full_tgt = torch.from_numpy(rng.integers(1, n_items + 1, ROWS))

    for name, (seq, lens, tgt) in {"full": (full, full_len, full_tgt), "scientific": (sci, sci_len, sci_tgt)}.items():
        times = []
        for _ in range(args.steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = model.loss(seq, lens, tgt)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        med = float(np.median(times[1:]))
        print(f"{name}: median step {med:.3f} s over {args.steps} steps (first step {times[0]:.3f} s), loss {loss.item():.4f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak resident memory {peak:.2f} GiB, torch {torch.__version__}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
