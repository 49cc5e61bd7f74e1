#!/usr/bin/env python3
# translate.py (tests/cuda_host/): copies CUDA sources of backends/cuda/ into OUT_DIR for the host
# build of run_cuda_host.sh: every launch `kernel<<<grid, block, shared, stream>>>(args);` becomes
# `zn_host::launch(grid, block, [=] { kernel(args); });` (cuda_runtime.h), and an include of
# "backends/cuda/X" becomes "X" (the copies sit together). Exits 1, naming the file, when a
# launch it cannot read is left.
# usage: translate.py OUT_DIR FILE...
import os
import re
import sys

LAUNCH = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;]*>)?)<<<(.*?)>>>\((.*?)\);', re.S)


def top_level_split(text):
    """text split at the commas outside parentheses."""
    parts, depth, cur = [], 0, ''
    for ch in text:
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
            continue
        depth += ch == '('
        depth -= ch == ')'
        cur += ch
    return parts + [cur.strip()]


def launch(m):
    grid, block = top_level_split(m.group(2))[:2]
    return 'zn_host::launch(%s, %s, [=] { %s(%s); });' % (grid, block, m.group(1), m.group(3))


def main():
    if len(sys.argv) < 3:
        sys.exit('usage: translate.py OUT_DIR FILE...')
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for path in sys.argv[2:]:
        text = LAUNCH.sub(launch, open(path).read())
        if '<<<' in text:
            sys.exit('%s: a kernel launch translate.py cannot read' % path)
        text = text.replace('#include "backends/cuda/', '#include "')
        open(os.path.join(out, os.path.basename(path)), 'w').write(text)


main()
