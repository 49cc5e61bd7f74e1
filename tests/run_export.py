#!/usr/bin/env python3
"""run_export.py: `znet export` on every model of models/ (tiny widths via --set), each trained one
short epoch so batch-norm statistics and weights are not their initial values. Each ONNX file
must pass onnx.checker.check_model (full check) and, run by onnxruntime on the first 64 test
images of the model's data set (raw 0-255 pixels: the exported graph normalises), give every
head's logits within 1e-4 of znet's relative to that head's largest logit (export_logits.c runs
znet). First, without onnx too: bad input refused, and a gelu model (no ONNX op at opset 17)
refused naming the node and its line.
Exits 77 (skip) with a message when python onnx/onnxruntime/numpy or CIFAR-10 are missing.
Usage: run_export.py ZNET EXPORT_LOGITS SOURCE_DIR"""
import os, subprocess, sys, tempfile

CIFAR = os.environ.get('ZNET_CIFAR10', '/work/shared/data/cifar-10-batches-bin')
# (model, --set values, data dir for run and export_logits; '' = where znet finds it)
CASES = [
    ('davidnet', ['width=8'], CIFAR),
    ('davidnet_multisoft', ['width=8'], CIFAR),
    ('davidnet_se', ['width=16'], CIFAR),
    ('davidnet_zee', ['width=8'], CIFAR),
    ('davidnet_zee', ['width=8', 'pool="channel_axis"', 'roots=true', 'filters=[4, 8]'], CIFAR),
    ('davidnet_zee_single', ['width=8'], CIFAR),
    ('densenet_bc', ['depth=10', 'growth=4'], CIFAR),
    ('fashion_small', ['width=8'], ''),
]
GELU_MODEL = '''model g(width = 8) {
  input image: [3, 32, 32]
  input label: class(10)
  x = gelu(conv2d(image, width))
  head out = xent(linear(flatten(gmp(x)), 10), label)
}
train {
  data = "cifar10"
  batch = 32
}
'''


def skip(why):
    print(f'SKIP: {why}')
    sys.exit(77)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f'FAIL: {" ".join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}')
    return p.stdout


def train(znet, model, sets, data, ckpt):
    cmd = [znet, 'run', model, '--epochs', '1', '--batch', '32', '--limit', '64', '--test-limit', '64',
           '--save', ckpt, '--quiet'] + [a for s in sets for a in ('--set', s)]
    run(cmd + (['--data', data] if data else []))


def check(znet, helper, src, tmp, name, sets, data, np, onnx, ort):
    model = os.path.join(src, 'models', name + '.znet')
    base = os.path.join(tmp, name)
    train(znet, model, sets, data, base + '.ckpt')
    cmd = [znet, 'export', model, '--weights', base + '.ckpt', '-o', base + '.onnx']
    run(cmd + [a for s in sets for a in ('--set', s)] + (['--data', data] if data else []))
    onnx.checker.check_model(onnx.load(base + '.onnx'), full_check=True)
    run([helper, model, base + '.ckpt', data, base + '_'] + sets)
    sess = ort.InferenceSession(base + '.onnx', providers=['CPUExecutionProvider'])
    inp = sess.get_inputs()[0]
    x = np.fromfile(base + '_images.f32', dtype=np.float32).reshape([64] + inp.shape[1:])
    outs = sess.run(None, {inp.name: x})
    ref = np.fromfile(base + '_logits.f32', dtype=np.float32).reshape(len(outs), 64, -1)
    worst = 0.0
    for head, got, want in zip(sess.get_outputs(), outs, ref):
        err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
        worst = max(worst, err)
        if not err <= 1e-4:
            sys.exit(f'FAIL: {name} {sets}: head {head.name}: logits differ by {err:.2e} of the largest')
    print(f'ok {name} {" ".join(sets)}: {len(outs)} output(s), worst relative difference {worst:.1e}')


def check_refusal(znet, tmp):
    model = os.path.join(tmp, 'gelu.znet')
    with open(model, 'w') as f:
        f.write(GELU_MODEL)
    train(znet, model, [], CIFAR, model + '.ckpt')
    p = subprocess.run([znet, 'export', model, '--weights', model + '.ckpt', '-o', model + '.onnx',
                        '--no-normalize'],
                       capture_output=True, text=True)
    want = f"{model}:4: node 'x' (gelu): this op has no ONNX form at opset 17"
    if p.returncode != 1 or want not in p.stderr or os.path.exists(model + '.onnx'):
        sys.exit(f'FAIL: gelu export: exit {p.returncode}, stderr {p.stderr!r}; wanted exit 1 and {want!r}')
    print('ok gelu refused:', p.stderr.strip())


def check_bad_input(znet, src, tmp):
    """Each mistake gets exit 1 or 2 and a message naming it, and no model file."""
    model = os.path.join(src, 'models', 'davidnet.znet')
    ckpt = os.path.join(tmp, 'bad.ckpt')
    train(znet, model, ['width=8'], CIFAR, ckpt)
    out = os.path.join(tmp, 'bad.onnx')
    cases = [
        (['--weights', ckpt], 2, '-o FILE.onnx is required'),
        (['-o', out], 2, '--weights CKPT is required'),
        (['--weights', os.path.join(tmp, 'none.ckpt'), '-o', out, '--set', 'width=8'], 1, 'none.ckpt'),
        (['--weights', ckpt, '-o', out, '--set', 'width=16'], 1, 'saved from another model'),
        (['--weights', ckpt, '-o', os.path.join(tmp, 'no', 'such.onnx'), '--set', 'width=8', '--no-normalize'], 1,
         'cannot write'),
    ]
    for args, code, want in cases:
        p = subprocess.run([znet, 'export', model] + args, capture_output=True, text=True)
        if p.returncode != code or want not in p.stderr or os.path.exists(out):
            sys.exit(f'FAIL: znet export {" ".join(args)}: exit {p.returncode}, stderr {p.stderr!r}; '
                     f'wanted exit {code} and {want!r}')
    print(f'ok {len(cases)} bad inputs refused')


def main():
    znet, helper, src = sys.argv[1:4]
    if not os.path.exists(os.path.join(CIFAR, 'test_batch.bin')):
        skip(f'CIFAR-10 is not at {CIFAR} (set ZNET_CIFAR10)')
    with tempfile.TemporaryDirectory() as tmp:
        check_bad_input(znet, src, tmp)
        check_refusal(znet, tmp)
        try:
            import numpy as np
            import onnx
            import onnxruntime as ort
        except ImportError as e:
            skip(f'python {e.name} is missing (pip install onnx onnxruntime numpy): the models were not exported')
        for name, sets, data in CASES:
            check(znet, helper, src, tmp, name, sets, data, np, onnx, ort)


main()
