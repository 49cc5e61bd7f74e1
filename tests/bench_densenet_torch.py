"""Peer for docs/memory.md: DenseNet-BC (models/densenet_bc.znet, stdlib/densenet.znet: stem conv
to 2k channels, dense blocks of BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k) layers whose outputs are
concatenated, transitions BN-ReLU-conv1x1 halving the channels and 2x2 average pooling, then
BN-ReLU-global average pool-linear) in PyTorch, timed like tests/bench_zee_torch.py: training steps
on random data (forward, backward, Nesterov SGD), 2 threads unless THREADS says otherwise. With
--checkpoint each dense layer (its concatenation, both BN-ReLU-convs) runs under
torch.utils.checkpoint, as the memory-efficient DenseNet of Pleiss et al. does by hand: its
activations are recomputed in the backward pass. Peak memory: peak RSS minus the RSS after
importing torch and building the model (Linux ru_maxrss). Not part of the build or tests.
Usage: /usr/bin/python3 tests/bench_densenet_torch.py [--depth 100] [--growth 12] [--batch 256]
       [--steps 2] [--checkpoint]"""
import argparse, os, resource, time
import torch, torch.nn as nn, torch.nn.functional as F
import torch.utils.checkpoint as cp

a = argparse.ArgumentParser()
a.add_argument("--depth", type=int, default=100)
a.add_argument("--growth", type=int, default=12)
a.add_argument("--batch", type=int, default=256)
a.add_argument("--steps", type=int, default=2)
a.add_argument("--checkpoint", action="store_true")
args = a.parse_args()
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", "2")))


def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def bn_relu_conv(ci, co, k):
    return nn.Sequential(nn.BatchNorm2d(ci), nn.ReLU(), nn.Conv2d(ci, co, k, padding=k // 2, bias=False))


class DenseLayer(nn.Module):
    def __init__(s, ci, k):
        super().__init__()
        s.body = nn.Sequential(bn_relu_conv(ci, 4 * k, 1), bn_relu_conv(4 * k, k, 3))

    def forward(s, *features):  # the concatenation of every earlier output, inside the checkpoint
        f = lambda *x: s.body(torch.cat(x, 1))
        return cp.checkpoint(f, *features) if args.checkpoint else f(*features)


class DenseBlock(nn.Module):
    def __init__(s, ci, layers, k):
        super().__init__()
        s.layers = nn.ModuleList(DenseLayer(ci + i * k, k) for i in range(layers))
        s.out = ci + layers * k

    def forward(s, x):
        features = [x]
        for layer in s.layers: features.append(layer(*features))
        return torch.cat(features, 1)


class Net(nn.Module):
    def __init__(s, depth, k):
        super().__init__()
        n = (depth - 4) // 6
        s.stem = nn.Conv2d(3, 2 * k, 3, padding=1, bias=False)
        b1 = DenseBlock(2 * k, n, k)
        t1 = nn.Sequential(bn_relu_conv(b1.out, b1.out // 2, 1), nn.AvgPool2d(2))
        b2 = DenseBlock(b1.out // 2, n, k)
        t2 = nn.Sequential(bn_relu_conv(b2.out, b2.out // 2, 1), nn.AvgPool2d(2))
        b3 = DenseBlock(b2.out // 2, n, k)
        s.body = nn.Sequential(b1, t1, b2, t2, b3, nn.BatchNorm2d(b3.out), nn.ReLU())
        s.fc = nn.Linear(b3.out, 10)

    def forward(s, x):
        return s.fc(torch.mean(s.body(s.stem(x)), dim=(2, 3)))


net = Net(args.depth, args.growth)
params = sum(p.numel() for p in net.parameters())
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
x = torch.randn(args.batch, 3, 32, 32)
y = torch.randint(0, 10, (args.batch,))
base = rss_kib()


def step():
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()


step()  # the first step allocates the momentum buffers and gradients
t = time.perf_counter()
for _ in range(args.steps): step()
dt = (time.perf_counter() - t) / args.steps
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base  # both KiB
print(f"torch {torch.__version__} threads={torch.get_num_threads()} densenet_bc depth={args.depth} "
      f"growth={args.growth} params={params} batch={args.batch} checkpoint={args.checkpoint}: "
      f"train {dt * 1000:.0f} ms/step, peak memory {peak / 1024:.0f} MiB above the built model")
