#!/usr/bin/env python3
"""check_layers.py: the layering of docs/architecture.md, checked on the tree and the build.
1. Includes: each folder includes only the folders its row of ALLOWED names (a path ending in .h
   allows that one header), so data flows one way and neither backend includes the other.
2. Call circles: file A calls file B when A's object file uses a symbol B's defines (nm); no
   circle of such calls may span files in two folders.
Usage: check_layers.py SOURCE_DIR BUILD_DIR; prints each breach and exits 1 if there is one."""
import collections, glob, os, re, subprocess, sys

ALLOWED = {
    'graph': ['graph'],
    'lang': ['lang', 'graph'],
    'backends': ['backends', 'graph'],
    'backends/cpu': ['backends/cpu', 'backends', 'graph'],
    'backends/cuda': ['backends/cuda', 'backends', 'graph'],
    'data': ['data', 'lang/recipe.h'],
    'report': ['report'],
    'export': ['export', 'graph'],
    'runtime': ['runtime', 'data', 'report', 'backends', 'graph', 'lang'],
    'cli': ['cli', 'export', 'runtime', 'data', 'report', 'backends', 'graph', 'lang',
            'backends/cpu/cpu_features.h'],
}
SOURCES = ('.c', '.h', '.cu', '.cuh', '.l', '.y')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+(?:/[a-z_]+)*/[a-z_0-9]+\.h)"', re.M)


def allowed(folder, header):
    for a in ALLOWED[folder]:
        if header == a if a.endswith('.h') else os.path.dirname(header) == a:
            return True
    return False


def check_includes(src):
    bad = []
    for folder in ALLOWED:
        for path in sorted(glob.glob(os.path.join(src, folder, '*'))):
            if not path.endswith(SOURCES):
                continue
            for header in INCLUDE.findall(open(path, encoding='utf-8').read()):
                if not allowed(folder, header):
                    bad.append(f'{os.path.relpath(path, src)} includes {header}, outside '
                               f'what {folder}/ may read ({", ".join(ALLOWED[folder])})')
    return bad


def source_of(obj, build):
    """build/backends/CMakeFiles/zn_backends.dir/cpu/cpu_call.c.o -> backends/cpu/cpu_call.c"""
    parts = os.path.relpath(obj, build).split('/')
    keep = [p for p in parts[:-1] if p != 'CMakeFiles' and not p.endswith('.dir')]
    return '/'.join(keep + [parts[-1][:-2]])


def call_graph(src, build):
    defs, uses = {}, collections.defaultdict(set)
    for obj in glob.glob(os.path.join(build, '**', '*.o'), recursive=True):
        f = source_of(obj, build)
        if f.split('/')[0] not in ('graph', 'lang', 'backends', 'data', 'report', 'runtime', 'export', 'cli') \
                or not os.path.exists(os.path.join(src, f)):
            continue  # tests, generated parser files, objects of files since removed
        out = subprocess.run(['nm', obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBR':
                defs.setdefault(p[2], f)
            elif len(p) == 2 and p[0] == 'U':
                uses[f].add(p[1])
    graph = collections.defaultdict(set)
    for f, symbols in uses.items():
        graph[f] |= {defs[s] for s in symbols if s in defs and defs[s] != f}
    return graph


def circles(graph):
    """Strongly connected components of more than one file (Tarjan, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def main():
    src, build = sys.argv[1], sys.argv[2]
    bad = check_includes(src)
    graph = call_graph(src, build)
    if not graph:
        bad.append(f'no object files of znet under {build}: build first')
    for comp in circles(graph):
        if len({os.path.dirname(f) for f in comp}) > 1:
            bad.append('call circle across folders: ' + ' -> '.join(comp))
    for line in bad:
        print('layers:', line)
    print(f'layers: {len(bad)} breaches ({len(graph)} files with calls)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
