#!/usr/bin/env python3
"""PyTorch twin of Unveil's G1 and G2 training step, for the side-by-side speed bench.

Not part of CI. From a venv with torch installed:

    python3 -m venv .venv && .venv/bin/pip install torch
    UNVEIL_TORCH=.venv/bin/python cargo bench -p unveil-host --bench train

The bench runs this script between its own measurements (interleaved), so both sides see
the same machine state. Run by hand it prints one JSON line per measurement:

    python3 host/benches/torch/train_step.py --net g1 --batch 8 --steps 10 --threads 2

The layers are exactly those of `host/src/nets/stage1.rs` and `host/src/nets/stage2.rs` at the
`default` preset (128x128, width 8, depth 4), hole-aware as trained now: G1 reads 4
planes (RGB + hole), G2 4 + 6 (with the texture map): 3x3 convs
with bias + LeakyReLU(0.2), stride-2 downs, nearest x2 ups followed by a 3x3 conv, concat
skips, 1x1 heads. The loss is the Rust bench's: G1's weighted part cross-entropy plus the
masked UV and albedo MSE; for G2, the L2 reconstruction of the composite. One step is
forward, backward and an Adam update, on a fixed random batch (no data loading on either
side, so only the arithmetic is compared).
"""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv_block(cin, cout)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Encoder(nn.Module):
    """The shared encoder: stem, then per level a stride-2 down and a conv block; returns
    the bottleneck and the skips (shallowest first)."""

    def __init__(self, cin, width, depth):
        super().__init__()
        w = lambda l: width << l
        self.stem = conv_block(cin, w(0))
        self.down = nn.ModuleList([conv_block(w(l), w(l + 1), 2) for l in range(depth)])
        self.down_conv = nn.ModuleList([conv_block(w(l + 1), w(l + 1)) for l in range(depth)])

    def forward(self, x):
        h = self.stem(x)
        skips = []
        for d, c in zip(self.down, self.down_conv):
            skips.append(h)
            h = c(d(h))
        return h, skips


class G1(nn.Module):
    """Stage1Net: U-Net with concat skips, heads 25 part logits, 2 UV, 3 albedo."""

    def __init__(self, cin=4, width=8, depth=4):
        super().__init__()
        w = lambda l: width << l
        self.encoder = Encoder(cin, width, depth)
        levels = list(reversed(range(depth)))
        self.up = nn.ModuleList([Up(w(l + 1), w(l)) for l in levels])
        self.up_conv = nn.ModuleList([conv_block(2 * w(l), w(l)) for l in levels])
        self.part = nn.Conv2d(w(0), 25, 1)
        self.uv = nn.Conv2d(w(0), 2, 1)
        self.albedo = nn.Conv2d(w(0), 3, 1)

    def forward(self, x):
        h, skips = self.encoder(x)
        for u, c, s in zip(self.up, self.up_conv, reversed(skips)):
            h = c(torch.cat([u(h), s], 1))
        return self.part(h), torch.sigmoid(self.uv(h)), torch.sigmoid(self.albedo(h))


class G2(nn.Module):
    """Stage2Net: encoder, latent split in halves, fg decoder (no skips, RGB + alpha),
    bg decoder (concat skips), composite."""

    def __init__(self, cin=10, width=8, depth=4):
        super().__init__()
        w = lambda l: width << l
        half = w(depth) // 2
        self.encoder = Encoder(cin, width, depth)
        levels = list(reversed(range(depth)))
        src = lambda l: half if l + 1 == depth else w(l + 1)
        self.fg_up = nn.ModuleList([Up(src(l), w(l)) for l in levels])
        self.fg_conv = nn.ModuleList([conv_block(w(l), w(l)) for l in levels])
        self.bg_up = nn.ModuleList([Up(src(l), w(l)) for l in levels])
        self.bg_conv = nn.ModuleList([conv_block(2 * w(l), w(l)) for l in levels])
        self.fg_head = nn.Conv2d(w(0), 4, 1)
        self.bg_head = nn.Conv2d(w(0), 3, 1)

    def forward(self, x):
        h, skips = self.encoder(x)
        n = h.shape[1]
        z1, z2 = h[:, : n // 2], h[:, n // 2 :]
        f = z1
        for u, c in zip(self.fg_up, self.fg_conv):
            f = c(u(f))
        f = self.fg_head(f)
        fg, alpha = torch.tanh(f[:, :3]), torch.sigmoid(f[:, 3:4])
        b = z2
        for u, c, s in zip(self.bg_up, self.bg_conv, reversed(skips)):
            b = c(torch.cat([u(b), s], 1))
        bg = torch.tanh(self.bg_head(b))
        return alpha * fg + (1 - alpha) * bg


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", choices=["g1", "g2"], required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b, s = a.batch, a.size
    if a.net == "g1":
        model = G1()
        x = torch.rand(b, 4, s, s) * 2 - 1
        target = torch.randint(0, 25, (b, s, s))
        weight = torch.where(target > 0, 4.0, 1.0)
        uv_t, alb_t = torch.rand(b, 2, s, s), torch.rand(b, 3, s, s)
        mask = (target > 0).float().unsqueeze(1)

        def loss_fn():
            logits, uv, alb = model(x)
            ce = (F.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.sum()
            n = mask.sum().clamp_min(1)
            return ce + ((uv - uv_t) ** 2 * mask).sum() / (2 * n) + ((alb - alb_t) ** 2 * mask).sum() / (3 * n)

    else:
        model = G2()
        x = torch.rand(b, 10, s, s) * 2 - 1
        clean = torch.rand(b, 3, s, s) * 2 - 1

        def loss_fn():
            return ((model(x) - clean) ** 2).mean()

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    step()  # warm-up, not timed
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - start
    print(json.dumps({"net": a.net, "batch": b, "threads": a.threads, "steps": a.steps,
                      "samples_per_s": a.steps * b / secs, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
