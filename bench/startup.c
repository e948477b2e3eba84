/*
 * startup.c - what an allocator adds to the cost of a short-lived process.
 *
 *   startup [-n RUNS] NAME=LIBRARY... -- COMMAND [ARGS...]
 *
 * Runs COMMAND RUNS times under each allocator, its standard output discarded (LIBRARY in LD_PRELOAD; an
 * empty LIBRARY means none, i.e. glibc's malloc), round-robin so that drift
 * of a noisy machine hits every allocator alike, starting each round with a
 * different allocator. Each run is timed from posix_spawn to wait4, and the
 * child's minor faults come from wait4's rusage. Prints, per allocator, the
 * median and mean time, the median faults and the ratio of its median to
 * the first allocator's.
 *
 * The per-run times are whole milliseconds of process creation, dynamic
 * loading and exit; an allocator's share is a fraction of that, so RUNS
 * should be in the hundreds on a noisy machine.
 */
#include <stdbool.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ALLOCATORS 8

struct allocator {
	const char *name;
	char **env;		/* environ with LD_PRELOAD set or removed */
	double *us;		/* per-run wall time, microseconds */
	double *faults;		/* per-run minor faults */
};

static void usage(void)
{
	fprintf(stderr, "usage: startup [-n RUNS] NAME=LIBRARY... -- COMMAND [ARGS...]\n");
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		perror("startup");
		exit(1);
	}
	return p;
}

/* environ without LD_PRELOAD, plus LD_PRELOAD=lib when lib is not empty. */
static char **env_with_preload(const char *lib)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = xcalloc(n + 2, sizeof(*env));
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[k++] = environ[i];
	}
	if (*lib) {
		size_t len = strlen(lib) + 12;

		env[k] = xcalloc(len, 1);
		snprintf(env[k], len, "LD_PRELOAD=%s", lib);
	}
	return env;
}

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* One run, its output discarded; false if the command could not run or failed. */
static bool run_once(char **argv, struct allocator *a, int run,
		     const posix_spawn_file_actions_t *quiet)
{
	struct rusage ru;
	int status, err;
	double start;
	pid_t pid;

	start = now_us();
	err = posix_spawnp(&pid, argv[0], quiet, NULL, argv, a->env);
	if (err) {
		fprintf(stderr, "startup: %s: %s\n", argv[0], strerror(err));
		return false;
	}
	if (wait4(pid, &status, 0, &ru) != pid) {
		perror("startup: wait4");
		return false;
	}
	a->us[run] = now_us() - start;
	a->faults[run] = (double)ru.ru_minflt;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "startup: %s failed under %s (status %#x)\n", argv[0], a->name,
			status);
		return false;
	}
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double mean(const double *v, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	return sum / n;
}

int main(int argc, char **argv)
{
	struct allocator allocs[MAX_ALLOCATORS];
	posix_spawn_file_actions_t quiet;
	int nallocs = 0, runs = 300, i = 1;
	double base = 0;

	if (i + 1 < argc && strcmp(argv[i], "-n") == 0) {
		runs = atoi(argv[i + 1]);
		i += 2;
	}
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i] || nallocs == MAX_ALLOCATORS)
			usage();
		*eq = '\0';
		allocs[nallocs].name = argv[i];
		allocs[nallocs].env = env_with_preload(eq + 1);
		allocs[nallocs].us = xcalloc((size_t)runs, sizeof(double));
		allocs[nallocs].faults = xcalloc((size_t)runs, sizeof(double));
		nallocs++;
	}
	if (runs < 1 || nallocs == 0 || i + 1 >= argc)
		usage();
	argv += i + 1;

	posix_spawn_file_actions_init(&quiet);
	posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	for (int r = 0; r < runs; r++) {
		for (int k = 0; k < nallocs; k++) {
			if (!run_once(argv, &allocs[(r + k) % nallocs], r, &quiet))
				return 1;
		}
	}
	posix_spawn_file_actions_destroy(&quiet);

	printf("%-10s %10s %10s %8s %10s\n", "allocator", "median_us", "mean_us", "faults",
	       "time/first");
	for (int k = 0; k < nallocs; k++) {
		double avg = mean(allocs[k].us, runs);
		double med = median(allocs[k].us, runs);

		if (k == 0)
			base = med;
		printf("%-10s %10.1f %10.1f %8.0f %10.3f\n", allocs[k].name, med, avg,
		       median(allocs[k].faults, runs), med / base);
	}
	return 0;
}
