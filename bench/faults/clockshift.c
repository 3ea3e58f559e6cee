/* clockshift: an LD_PRELOAD shim that shifts one process's wall clock while it runs.
 *
 * The offset, in seconds (a decimal number, may be negative), is read from the file named
 * by $VARTA_CLOCKSHIFT_FILE, again at most every 20 ms of monotonic time, so writing the
 * file makes the process's wall clock jump like a stepped system clock. CLOCK_REALTIME
 * (and its coarse variant), gettimeofday() and time() are shifted; CLOCK_MONOTONIC and
 * every other clock are not, as with a real clock step. Nothing else on the machine is
 * touched. Built by bench/faults/clockshift.py:
 *     gcc -shared -fPIC -O2 -o clockshift.so clockshift.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile long long offset_ns;
static double next_read = -1.0;

static clock_gettime_fn real(void) {
    if (!real_clock_gettime)
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return real_clock_gettime;
}

static long long current_offset(void) {
    struct timespec mono;
    const char *path = getenv("VARTA_CLOCKSHIFT_FILE");
    if (!path || real()(CLOCK_MONOTONIC, &mono) != 0)
        return offset_ns;
    double now = mono.tv_sec + mono.tv_nsec / 1e9;
    if (now < next_read || pthread_mutex_trylock(&lock) != 0)
        return offset_ns; /* read recently, or another thread is reading it now */
    if (now >= next_read) {
        next_read = now + 0.02;
        FILE *f = fopen(path, "re");
        double seconds;
        if (f) {
            if (fscanf(f, "%lf", &seconds) == 1)
                offset_ns = (long long)(seconds * 1e9);
            fclose(f);
        }
    }
    pthread_mutex_unlock(&lock);
    return offset_ns;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + current_offset();
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += 1000000000LL;
        ts->tv_sec -= 1;
    }
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = real()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
