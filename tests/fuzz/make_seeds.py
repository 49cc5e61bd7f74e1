#!/usr/bin/env python3
"""make_seeds.py: writes the small hand-made seed inputs of the reader targets into corpus/
(checkpoint, cifar, idx, gzip, tar, image, npy). The image target's JPEG seeds were written once with
libjpeg (gray, colour, progressive) and are kept as they are; its PNG seeds are written here. Deterministic; rerun it after a format changes. The front
end's seeds are the project's own .znet files (models/, stdlib/, tests/diag/)."""
import gzip, io, os, random, struct, tarfile, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(1)

def put(target, name, data):
    os.makedirs(os.path.join(HERE, "corpus", target), exist_ok=True)
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(data)

def noise(n):
    return bytes(rng.randrange(256) for _ in range(n))

def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h

def checkpoint(n_params, n_optim, epoch=1, step=10):
    body = b"ZNETCKPT" + struct.pack("<IQiqQQQ", 1, 0x1234abcd, epoch, step, 7, n_params, n_optim)
    body += struct.pack("<%df" % (n_params + n_optim), *[rng.uniform(-1, 1) for _ in range(n_params + n_optim)])
    return body + struct.pack("<Q", fnv1a(body))

def idx_images(n, rows, cols):
    return struct.pack(">IIII", 2051, n, rows, cols) + noise(n * rows * cols)

def idx_labels(n):
    return struct.pack(">II", 2049, n) + bytes(rng.randrange(10) for _ in range(n))

def tar(entries, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()

def png(w, h, color_type, depth=8, plte=b""):
    """A PNG of noise: every row filter 0, one IDAT; color_type as the PNG spec numbers them."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    rows = b"".join(b"\0" + noise(w * channels * depth // 8) for _ in range(h))
    if color_type == 3:
        rows = bytes(b % (len(plte) // 3) if i % (w + 1) else 0 for i, b in enumerate(rows))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
            + (chunk(b"PLTE", plte) if plte else b"") + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

put("checkpoint", "small.ckpt", checkpoint(3, 6))
put("checkpoint", "empty.ckpt", checkpoint(0, 0, epoch=0, step=0))
for n in (1, 2):
    put("cifar", "records_%d.bin" % n, b"".join(bytes([rng.randrange(10)]) + noise(3072) for _ in range(n)))
for n, rows, cols in ((2, 3, 4), (1, 28, 28)):
    img = idx_images(n, rows, cols)
    put("idx", "pair_%dx%dx%d" % (n, rows, cols), struct.pack(">H", len(img)) + img + idx_labels(n))
    put("gzip", "images_%dx%dx%d.gz" % (n, rows, cols), gzip.compress(img, mtime=0))
put("gzip", "stored_2x3x4.gz", gzip.compress(idx_images(2, 3, 4), compresslevel=0, mtime=0))
files = [("cifar-10-batches-bin", None), ("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n"),
         ("cifar-10-batches-bin/test_batch.bin", noise(100))]
put("tar", "small.tar", tar(files, False))
put("tar", "small.tar.gz", tar(files, True))
for name, args in (("gray_8x8", (8, 8, 0)), ("rgb_5x3", (5, 3, 2)), ("rgba_4x4", (4, 4, 6)), ("gray_alpha_3x2", (3, 2, 4)),
                   ("rgb16_2x2", (2, 2, 2, 16)), ("palette_6x4", (6, 4, 3, 8, noise(3 * 4)))):
    put("image", name + ".png", png(*args))

def npy(descr, shape, data, version=1):
    """A .npy file as numpy writes it (header padded to 64 bytes), without needing numpy."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, "".join("%d, " % d for d in shape))
    pre = 10 if version == 1 else 12
    hlen = (pre + len(text) + 1 + 63) // 64 * 64 - pre
    head = struct.pack("<H", hlen) if version == 1 else struct.pack("<I", hlen)
    return b"\x93NUMPY" + bytes([version, 0]) + head + (text.ljust(hlen - 1) + "\n").encode() + data

def npz(members, method):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data, compress_type=method)
    return buf.getvalue()

for n, shape, descr, label in ((2, (2, 4, 4, 3), "|u1", "<i8"), (1, (1, 3, 2, 2), "<f4", "|u1"),
                               (3, (3, 5, 5), "|u1", ">i4")):
    pixels = noise(n * 4 * 4 * 3) if descr == "|u1" and len(shape) == 4 else (
        b"".join(struct.pack("<f", rng.random()) for _ in range(12)) if descr == "<f4" else noise(75))
    size = {"<i8": 8, "|u1": 1, ">i4": 4}[label]
    labels = b"".join(rng.randrange(10).to_bytes(size, "big" if label[0] == ">" else "little") for _ in range(n))
    img = npy(descr, shape, pixels, version=1 + n % 3)
    put("npy", "pair_%s_%s" % ("x".join(map(str, shape)), descr[1:]),
        struct.pack(">H", len(img)) + img + npy(label, (n,), labels))
    if n == 2:
        members = [("test_images.npy", img), ("test_labels.npy", npy(label, (n,), labels))]
        put("npy", "stored.npz", npz(members, zipfile.ZIP_STORED))
        put("npy", "deflated.npz", npz(members, zipfile.ZIP_DEFLATED))
