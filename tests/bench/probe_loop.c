/* Target of tests/bench/probe_kinds.py: each iteration of its loop calls a
 * noinline function, passes an SDT marker and calls a libc function through
 * the PLT, so each uprobe kind has one site hit once per iteration.
 *
 *   probe_loop N   prints "ready", then for every line read on stdin runs
 *                  N iterations and prints how many nanoseconds they took
 *                  (CLOCK_MONOTONIC); exits at end of input.
 *
 * Built with `cc -g -O0|-O2 -fno-builtin-labs` (labs stays a call through
 * the PLT). The line marked STATEMENT is the one statement probes name. */
#include <sys/sdt.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile long sink;

__attribute__((noinline)) long work(long n)
{
    long r = n * 2 + 1;
    sink += r; /* STATEMENT */
    return r;
}

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    char line[64];
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        long t0 = now_ns();
        for (long i = 0; i < n; i++) {
            sink += work(i);
            STAP_PROBE1(bench, tick, i);
            sink += labs(-i);
        }
        printf("%ld\n", now_ns() - t0);
        fflush(stdout);
    }
    return 0;
}
