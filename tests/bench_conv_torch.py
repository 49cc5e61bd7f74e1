"""Peer timing for tests/bench_conv.c: the same conv layer shapes in PyTorch (oneDNN), 2 threads.
Prints one line per layer and direction in the same format as bench_conv, so the two can be
joined into the ratio table of docs/performance.md, plus bwd_both (data and filter gradients in
one call, as autograd asks for them), which the per-step total uses.
Usage: /usr/bin/python3 tests/bench_conv_torch.py [batch] [reps]"""
import sys, time, torch

torch.set_num_threads(2)
torch.manual_seed(0)
B = int(sys.argv[1]) if len(sys.argv) > 1 else 128
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3

# (name, C, O, H, W, k, stride, pad, dilation, groups, uses per training step): must match the table in bench_conv.c.
LAYERS = []  # the DavidNet ones carry how often a training step runs them
for w in (64, 16):
    c = [w, 2 * w, 4 * w, 8 * w]
    LAYERS += [(f"w{w}.prep", 3, c[0], 32, 32, 3, 1, 1, 1, 1, 1),
               (f"w{w}.layer1", c[0], c[1], 32, 32, 3, 1, 1, 1, 1, 1),
               (f"w{w}.res1", c[1], c[1], 16, 16, 3, 1, 1, 1, 1, 2),
               (f"w{w}.layer2", c[1], c[2], 16, 16, 3, 1, 1, 1, 1, 1),
               (f"w{w}.layer3", c[2], c[3], 8, 8, 3, 1, 1, 1, 1, 1),
               (f"w{w}.res3", c[3], c[3], 4, 4, 3, 1, 1, 1, 1, 2)]
LAYERS += [("zee.dil2", 8, 8, 896, 8, 3, 1, 2, 2, 1, 0),
           ("zee.group8", 64, 64, 112, 8, 3, 1, 1, 1, 8, 0),
           ("zee.1x1", 64, 16, 112, 8, 1, 1, 0, 1, 1, 0)]


def best(fn):
    fn()
    ts = []
    for _ in range(REPS):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)


step = {"w64": 0.0, "w16": 0.0}  # conv seconds per training step
for name, C, O, H, W, k, s, p, d, g, uses in LAYERS:
    x = torch.randn(B, C, H, W)
    wt = torch.randn(O, C // g, k, k) * 0.1
    y = torch.nn.functional.conv2d(x, wt, None, s, p, d, g)
    dy = torch.randn_like(y)
    flop = 2.0 * B * O * y.shape[2] * y.shape[3] * (C // g) * k * k

    def bwd(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, wt, None, [s, s], [p, p], [d, d], False, [0, 0], g, mask)
    with torch.no_grad():
        for direction, fn in (("fwd", lambda: torch.nn.functional.conv2d(x, wt, None, s, p, d, g)),
                              ("bwd_data", bwd([True, False, False])),
                              ("bwd_filter", bwd([False, True, False])),
                              ("bwd_both", bwd([True, True, False]))):
            t = best(fn)
            work = flop * (2 if direction == "bwd_both" else 1)
            print(f"{name:12s} {direction:10s} {t * 1e3:9.2f} ms {work / t * 1e-9:7.1f} GFLOP/s",
                  flush=True)
            # autograd asks for both gradients in one call (prep: the weight's only)
            counted = "bwd_filter" if name.endswith("prep") else "bwd_both"
            if uses and direction in ("fwd", counted):
                step[name[:3]] += uses * t
for w in ("w64", "w16"):
    print(f"{w} conv time per training step: {step[w] * 1e3:.0f} ms")
