#!/usr/bin/env python3
"""make_cifar_subset.py: a CIFAR-10 subset small enough to travel to a lent GPU machine with the
build (tests/gpu_check.sh, docs/cuda.md): the first TRAIN images of the training batches and the
first TEST of the test batch, as the four .npy files of `data = npy("DIR", layout = "nchw")`
(docs/data.md), uint8 NCHW, labels uint8. Standard library only (no NumPy on the GPU machine).
Usage: make_cifar_subset.py CIFAR_BIN_DIR OUT_DIR [TRAIN [TEST]]   (defaults 5000 and 1000)"""
import os, sys

RECORD = 1 + 3 * 32 * 32
PER_FILE = 10000


def npy(path, shape, data):
    """A version 1.0 .npy of uint8 `data` with `shape`, C order."""
    dims = ', '.join(map(str, shape)) + (',' if len(shape) == 1 else '')
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % dims
    pad = (64 - (10 + len(header) + 1) % 64) % 64  # the data starts 64-byte aligned
    header += ' ' * pad + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header.encode('latin1'))
        f.write(data)


def records(paths, count):
    """The first `count` records of the files in order, as (labels, images) bytes."""
    labels, images = bytearray(), bytearray()
    for path in paths:
        with open(path, 'rb') as f:
            blob = f.read()
        if len(blob) != PER_FILE * RECORD:
            sys.exit(f'{path}: {len(blob)} bytes, a CIFAR-10 batch file has {PER_FILE * RECORD}')
        for i in range(min(count - len(labels), PER_FILE)):
            r = blob[i * RECORD:(i + 1) * RECORD]
            labels.append(r[0])
            images += r[1:]
        if len(labels) == count:
            return labels, images
    sys.exit(f'only {len(labels)} records in {", ".join(paths)}, {count} asked for')


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__.splitlines()[-1])
    src, out = sys.argv[1], sys.argv[2]
    train = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    test = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    os.makedirs(out, exist_ok=True)
    for name, files, n in (('train', [f'data_batch_{i}.bin' for i in range(1, 6)], train),
                           ('test', ['test_batch.bin'], test)):
        labels, images = records([os.path.join(src, f) for f in files], n)
        npy(os.path.join(out, f'{name}_images.npy'), (n, 3, 32, 32), images)
        npy(os.path.join(out, f'{name}_labels.npy'), (n,), labels)
    print(f'{out}: {train} training and {test} test images ({(train + test) * RECORD >> 20} MiB)')


if __name__ == '__main__':
    main()
