"""Peer for timing the Z-convolution models: davidnet, davidnet_multisoft and davidnet_zee written
in PyTorch as znet's models/ and stdlib/zconv.znet define them (same layers, same parameter
count), timed like ../shared/bench/davidnet_torch.py: training steps on random data (forward,
backward, Nesterov SGD), 2 threads unless THREADS says otherwise; on a GPU with --device cuda
(cuDNN autotuning on; fp32 without TF32, as znet's fp32; tf32 is PyTorch's default for
convolutions; fp16|bf16 through autocast, fp16 with a GradScaler as AMP training does;
--channels-last puts the model and the batch in NHWC, PyTorch's fast layout for tensor cores).
docs/performance.md and
docs/cuda.md compare it with `znet bench` on the same machine in the same sitting. Not part of
the build or tests.
Usage: /usr/bin/python3 tests/bench_zee_torch.py MODEL [--batch 512] [--steps 3] [--width 16]
       [--filters 8] [--pool x_axis|channel_axis] [--roots] [--device cpu|cuda]
       [--precision fp32|tf32|fp16|bf16] [--channels-last] [--inference]
                                                              MODEL: davidnet | multisoft | zee
--inference times forward passes in eval mode without gradients instead (tests/bench_vs_torch.py's
inference rows: the shared davidnet_torch.py times only one such batch)."""
import argparse, os, time
import torch, torch.nn as nn, torch.nn.functional as F

a = argparse.ArgumentParser()
a.add_argument("model", choices=["davidnet", "multisoft", "zee"])
a.add_argument("--batch", type=int, default=512)
a.add_argument("--steps", type=int, default=3)
a.add_argument("--width", type=int, default=16)
a.add_argument("--filters", type=int, nargs="+", default=[8])
a.add_argument("--pool", choices=["x_axis", "channel_axis"], default="x_axis")
a.add_argument("--roots", action="store_true")
a.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
a.add_argument("--precision", choices=["fp32", "tf32", "fp16", "bf16"], default="fp32")
a.add_argument("--channels-last", action="store_true")
a.add_argument("--inference", action="store_true")
args = a.parse_args()
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
SIZE = 8  # the stitch's side


def cbr(ci, co, **conv):
    return nn.Sequential(nn.Conv2d(ci, co, 3, padding=conv.pop("padding", 1), bias=False, **conv),
                         nn.BatchNorm2d(co), nn.ReLU())


class Layer(nn.Module):  # stdlib/resnet.znet's layer(): cbr, 2x2 max pool, + cbr(cbr(h))
    def __init__(s, ci, co, residual=True):
        super().__init__()
        s.h = cbr(ci, co)
        s.res = nn.Sequential(cbr(co, co), cbr(co, co)) if residual else None

    def forward(s, x):
        h = F.max_pool2d(s.h(x), 2)
        return h + s.res(h) if s.res is not None else h


def stitch(blocks):  # each block to SIZE x SIZE (max down, nearest up), [N, C, H, W] -> [N, H, C, W]
    parts = []
    for b in blocks:
        if b.shape[2] > SIZE: b = F.max_pool2d(b, b.shape[2] // SIZE)
        if b.shape[2] < SIZE: b = F.interpolate(b, scale_factor=SIZE // b.shape[2], mode="nearest")
        parts.append(b.permute(0, 2, 1, 3))
    return torch.cat(parts, dim=2)


class Net(nn.Module):
    def __init__(s, w, zee, davidnet):
        super().__init__()
        # DavidNet's middle layer has no residual branch and only the last block has a head
        s.prep, s.l1, s.l2, s.l3 = cbr(3, w), Layer(w, 2 * w), Layer(2 * w, 4 * w, not davidnet), Layer(4 * w, 8 * w)
        s.zee, s.first_head = zee, 2 if davidnet else 0
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
        s.heads = nn.ModuleList(nn.Linear(c + e, 10, bias=False)
                                for c, e in list(zip([2 * w, 4 * w, 8 * w], extra))[s.first_head:])

    def forward(s, x):
        b1 = s.l1(s.prep(x)); b2 = s.l2(b1); b3 = s.l3(b2)
        blocks, logits = [b1, b2, b3], []
        for k, (b, head) in enumerate(zip(blocks[s.first_head:], s.heads), s.first_head):
            feat = torch.amax(b, dim=(2, 3))
            if s.zee:
                y = s.tower(stitch(blocks[:k + 1]))  # [N, F, sum C, SIZE]
                z = torch.amax(y, dim=(2, 3)) if args.pool == "x_axis" else torch.amax(y, dim=(1, 3))
                feat = torch.cat([feat, z], dim=1)
            logits.append(head(feat) * 0.125)
        return logits


dev = torch.device(args.device)
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
net = Net(args.width, args.model == "zee", args.model == "davidnet").to(dev)
params = sum(p.numel() for p in net.parameters())
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
x = torch.randn(args.batch, 3, 32, 32, device=dev)
if args.channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (args.batch,), device=dev)
half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.precision)
scaler = torch.cuda.amp.GradScaler(enabled=args.precision == "fp16" and args.device == "cuda")


def step():
    opt.zero_grad()
    with torch.autocast(args.device, dtype=half, enabled=half is not None):
        out = net(x)
        loss = sum(wt * F.cross_entropy(o.float(), y, reduction="sum")
                   for wt, o in zip([0.3, 0.3, 1.0][-len(out):], out))
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def sync():
    if args.device == "cuda": torch.cuda.synchronize()


def infer():
    with torch.no_grad(), torch.autocast(args.device, dtype=half, enabled=half is not None):
        net(x)


if args.inference: net.eval()
run = infer if args.inference else step
for _ in range(3 if args.device == "cuda" else 1): run()  # cuDNN autotuning happens here
sync()
t = time.perf_counter()
for _ in range(args.steps): run()
sync()
dt = (time.perf_counter() - t) / args.steps
where = torch.cuda.get_device_name() if args.device == "cuda" else f"threads={torch.get_num_threads()}"
layout = " channels_last" if args.channels_last else ""
print(f"torch {torch.__version__} {where} {args.precision}{layout} {args.model} params={params} "
      f"batch={args.batch} width={args.width}: {'eval' if args.inference else 'train'} {dt * 1000:.1f} ms/step = {args.batch / dt:.1f} img/s")
