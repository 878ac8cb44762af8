// Reproduces the glibc 2.36 crash behind toolgym's env worker pool
// (crates/grpo/src/rollout/workers.rs). Threads are started and detached at
// once, from three threads, each ending within microseconds: pthread_detach
// marks the thread detached and then reads its descriptor, which the thread,
// exiting at that moment and seeing itself detached, may already have freed
// with its stack. Dropping a Rust JoinHandle is this pthread_detach.
//
//   gcc -O2 -pthread -o /tmp/detach_race scripts/stress/pthread_detach_race.c
//   while /tmp/detach_race 60 3; do :; done   # until it segfaults
//
// On the 2-core Xeon of 2026-12-07 (Debian glibc 2.36-9+deb12u14) it
// segfaulted after ~2.7M threads, at `testb $0x10,0x308(%rdi)` in
// pthread_detach (the descriptor's cancelhandling & EXITING_BITMASK).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_long started;

static void *child(void *arg) {
    (void)arg;
    return NULL;
}

static void *starter(void *arg) {
    time_t end = time(NULL) + (long)arg;
    while (time(NULL) < end) {
        for (int i = 0; i < 1000; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, child, NULL) != 0) {
                perror("pthread_create");
                exit(2);
            }
            pthread_detach(t);
            atomic_fetch_add(&started, 1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long secs = argc > 1 ? atol(argv[1]) : 60;
    int n = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || n > 64) {
        fprintf(stderr, "usage: %s [seconds] [starting threads, 1-64]\n", argv[0]);
        return 2;
    }
    pthread_t starters[64];
    for (int i = 0; i < n; i++)
        pthread_create(&starters[i], NULL, starter, (void *)secs);
    for (int i = 0; i < n; i++)
        pthread_join(starters[i], NULL);
    printf("%ld threads started and detached in %ld s, no crash\n", atomic_load(&started), secs);
    return 0;
}
