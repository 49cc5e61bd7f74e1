"""Peer for timing the Z-convolution models: davidnet_multisoft and davidnet_zee written in
PyTorch as znet's models/ and stdlib/zconv.znet define them (same layers, same parameter
count), timed like ../shared/bench/davidnet_torch.py: training steps on random data (forward,
backward, Nesterov SGD), 2 threads unless THREADS says otherwise. docs/performance.md compares
it with `znet bench` on the same machine in the same sitting. Not part of the build or tests.
Usage: /usr/bin/python3 tests/bench_zee_torch.py MODEL [--batch 512] [--steps 3] [--width 16]
       [--filters 8] [--pool x_axis|channel_axis] [--roots]      MODEL: multisoft | zee"""
import argparse, os, time
import torch, torch.nn as nn, torch.nn.functional as F

a = argparse.ArgumentParser()
a.add_argument("model", choices=["multisoft", "zee"])
a.add_argument("--batch", type=int, default=512)
a.add_argument("--steps", type=int, default=3)
a.add_argument("--width", type=int, default=16)
a.add_argument("--filters", type=int, nargs="+", default=[8])
a.add_argument("--pool", choices=["x_axis", "channel_axis"], default="x_axis")
a.add_argument("--roots", action="store_true")
args = a.parse_args()
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
SIZE = 8  # the stitch's side


def cbr(ci, co, **conv):
    return nn.Sequential(nn.Conv2d(ci, co, 3, padding=conv.pop("padding", 1), bias=False, **conv),
                         nn.BatchNorm2d(co), nn.ReLU())


class Layer(nn.Module):  # stdlib/resnet.znet's layer(): cbr, 2x2 max pool, + cbr(cbr(h))
    def __init__(s, ci, co):
        super().__init__()
        s.h, s.a, s.b = cbr(ci, co), cbr(co, co), cbr(co, co)

    def forward(s, x):
        h = F.max_pool2d(s.h(x), 2)
        return h + s.b(s.a(h))


def stitch(blocks):  # each block to SIZE x SIZE (max down, nearest up), [N, C, H, W] -> [N, H, C, W]
    parts = []
    for b in blocks:
        if b.shape[2] > SIZE: b = F.max_pool2d(b, b.shape[2] // SIZE)
        if b.shape[2] < SIZE: b = F.interpolate(b, scale_factor=SIZE // b.shape[2], mode="nearest")
        parts.append(b.permute(0, 2, 1, 3))
    return torch.cat(parts, dim=2)


class Net(nn.Module):
    def __init__(s, w, zee):
        super().__init__()
        s.prep, s.l1, s.l2, s.l3 = cbr(3, w), Layer(w, 2 * w), Layer(2 * w, 4 * w), Layer(4 * w, 8 * w)
        s.zee = zee
        extra = [0, 0, 0]
        if zee:
            tower, ci = [], SIZE
            for f in args.filters:
                co, g = (8 * f, 8) if args.roots else (f, 1)
                tower.append(cbr(ci, co, dilation=2, padding=2, groups=g))
                ci = co
            s.tower = nn.Sequential(*tower)
            sums = [2 * w, 6 * w, 14 * w]  # the stacked channels of z1, z2, z3
            extra = [ci] * 3 if args.pool == "x_axis" else sums
        s.heads = nn.ModuleList(nn.Linear(c + e, 10, bias=False) for c, e in zip([2 * w, 4 * w, 8 * w], extra))

    def forward(s, x):
        b1 = s.l1(s.prep(x)); b2 = s.l2(b1); b3 = s.l3(b2)
        blocks, logits = [b1, b2, b3], []
        for k, (b, head) in enumerate(zip(blocks, s.heads)):
            feat = torch.amax(b, dim=(2, 3))
            if s.zee:
                y = s.tower(stitch(blocks[:k + 1]))  # [N, F, sum C, SIZE]
                z = torch.amax(y, dim=(2, 3)) if args.pool == "x_axis" else torch.amax(y, dim=(1, 3))
                feat = torch.cat([feat, z], dim=1)
            logits.append(head(feat) * 0.125)
        return logits


net = Net(args.width, args.model == "zee")
params = sum(p.numel() for p in net.parameters())
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
x = torch.randn(args.batch, 3, 32, 32)
y = torch.randint(0, 10, (args.batch,))


def step():
    opt.zero_grad()
    out = net(x)
    loss = sum(wt * F.cross_entropy(o, y, reduction="sum") for wt, o in zip([0.3, 0.3, 1.0], out))
    loss.backward()
    opt.step()


step()
t = time.perf_counter()
for _ in range(args.steps): step()
dt = (time.perf_counter() - t) / args.steps
print(f"torch {torch.__version__} threads={torch.get_num_threads()} {args.model} params={params} "
      f"batch={args.batch} width={args.width}: train {dt * 1000:.0f} ms/step = {args.batch / dt:.1f} img/s")
