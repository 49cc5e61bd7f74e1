/* cpu_features.c: the active kernel path. Detection uses the compiler's CPUID builtins, so the
 * build needs no -march flag and a binary built here runs on any x86-64 (and, elsewhere, on the
 * portable path). The active path is one word read by every dispatching kernel; it is set
 * before the worker pool runs a kernel (backend creation, the command line, or tests). */
#include "backends/cpu/cpu_features.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[ZN_CPU_PATH_COUNT] = {"portable", "avx2", "avx512"};

/* -1 until first asked; atomic because the first to ask may be several pool threads at once
 * (a kernel called without a backend), each storing the same answer */
static atomic_int active = -1;

const char *zn_cpu_path_name(zn_cpu_path path)
{
    return (unsigned)path < ZN_CPU_PATH_COUNT ? NAMES[path] : "?";
}

bool zn_cpu_path_has(zn_cpu_path path)
{
#if defined(__x86_64__) && defined(__GNUC__)
    switch (path) {
    case ZN_CPU_PORTABLE: return true;
    case ZN_CPU_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ZN_CPU_AVX512:
        return zn_cpu_path_has(ZN_CPU_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl");
    default: return false;
    }
#else
    return path == ZN_CPU_PORTABLE;
#endif
}

static zn_cpu_path widest(void)
{
    zn_cpu_path p = ZN_CPU_PORTABLE;
    for (int i = 0; i < ZN_CPU_PATH_COUNT; i++)
        if (zn_cpu_path_has((zn_cpu_path)i)) p = (zn_cpu_path)i;
    return p;
}

/* ZNET_CPU_PATH's path; false with why filled when it names none or one this CPU lacks. */
static bool env_path(zn_cpu_path *out, char *why, size_t len)
{
    const char *env = getenv("ZNET_CPU_PATH");
    if (!env || !*env) {
        *out = widest();
        return true;
    }
    for (int i = 0; i < ZN_CPU_PATH_COUNT; i++) {
        if (strcmp(env, NAMES[i]) != 0) continue;
        if (!zn_cpu_path_has((zn_cpu_path)i)) {
            snprintf(why, len, "ZNET_CPU_PATH=%s: this CPU lacks the %s instructions (it runs %s)",
                     env, NAMES[i], NAMES[widest()]);
            return false;
        }
        *out = (zn_cpu_path)i;
        return true;
    }
    snprintf(why, len, "ZNET_CPU_PATH=%s: no such kernel path (portable, avx2 or avx512)", env);
    return false;
}

zn_cpu_path zn_cpu_path_active(void)
{
    int a = atomic_load_explicit(&active, memory_order_relaxed);
    if (a < 0) {
        zn_cpu_path p;
        char why[160];
        a = env_path(&p, why, sizeof why) ? (int)p : (int)widest();
        atomic_store_explicit(&active, a, memory_order_relaxed);
    }
    return (zn_cpu_path)a;
}

bool zn_cpu_path_choose(char *why, size_t len)
{
    zn_cpu_path p;
    if (!env_path(&p, why, len)) return false;
    atomic_store_explicit(&active, (int)p, memory_order_relaxed);
    return true;
}

bool zn_cpu_path_force(zn_cpu_path path)
{
    if (!zn_cpu_path_has(path)) return false;
    atomic_store_explicit(&active, (int)path, memory_order_relaxed);
    return true;
}
