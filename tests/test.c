/*
 * test.c - the harness behind test.h.
 */
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void test_fail(const char *file, int line, const char *expr, const char *detail)
{
	fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr,
		detail ? ": " : "", detail ? detail : "");
	fflush(NULL);
	_exit(1);
}

void test_fail_eq(const char *file, int line, const char *a_expr, const char *b_expr,
		  long long a, long long b)
{
	fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", file, line, a_expr,
		b_expr, a, b);
	fflush(NULL);
	_exit(1);
}

void test_run(const char *name, void (*fn)(void))
{
	printf("-- %s\n", name);
	fflush(stdout);
	fn();
	printf("ok %s\n", name);
	fflush(stdout);
}

void run_in_child(void (*fn)(void *), void *arg, struct child_result *res)
{
	int fds[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	fflush(NULL);
	if (pipe(fds) != 0)
		test_fail(__FILE__, __LINE__, "pipe", NULL);
	pid = fork();
	if (pid < 0)
		test_fail(__FILE__, __LINE__, "fork", NULL);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		/* No core files from the crashes these tests provoke. */
		signal(SIGABRT, SIG_DFL);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], res->err + len, sizeof(res->err) - 1 - len)) > 0)
		len += (size_t)n;
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid)
		test_fail(__FILE__, __LINE__, "waitpid", NULL);
	res->signaled = WIFSIGNALED(status);
	res->signal = res->signaled ? WTERMSIG(status) : 0;
	res->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void check_abort_report(const char *name, void (*provoke)(void *addr), const char *expect)
{
	static char *addr;
	struct child_result res;

	if (!addr) {
		addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (addr == MAP_FAILED)
			test_fail(__FILE__, __LINE__, "mmap", NULL);
	}
	memset(addr, 0, 4096);
	run_in_child(provoke, addr, &res);
	if (!res.signaled || res.signal != SIGABRT || !strstr(res.err, "kmm: BUG") ||
	    !strstr(res.err, expect) || !addr[0] || !strstr(res.err, addr)) {
		fprintf(stderr, "case '%s': signal %d, status %d, address '%s', expected '%s', stderr:\n%s\n",
			name, res.signal, res.status, addr, expect, res.err);
		test_fail(__FILE__, __LINE__, "report as expected", name);
	}
	printf("ok %s\n", name);
}

size_t test_rss(void)
{
	/* VmRSS is in kB whatever the page size (statm counts host pages under qemu). */
	char buf[4096];
	const char *line;
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY);

	if (fd < 0)
		test_fail(__FILE__, __LINE__, "open /proc/self/status", NULL);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		test_fail(__FILE__, __LINE__, "read /proc/self/status", NULL);
	buf[n] = 0;
	line = strstr(buf, "VmRSS:");
	if (!line)
		test_fail(__FILE__, __LINE__, "VmRSS in /proc/self/status", NULL);
	return strtoul(line + 6, NULL, 10) * 1024;
}

bool test_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return true;
#else
	return false;
#endif
}

bool test_thp_always(void)
{
	char thp[64] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f) {
		if (!fgets(thp, sizeof(thp), f))
			thp[0] = 0;
		fclose(f);
	}
	return strstr(thp, "[always]") != NULL;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}
