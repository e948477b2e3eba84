/*
 * report.c - error and warning output that is safe anywhere: inside the
 * allocator with its locks held, inside malloc, after a corruption.
 *
 * No stdio, no malloc: a line is formatted into a stack buffer by a small
 * printf subset and written to stderr with one write(2).
 */
#include "internal.h"
#include "os.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread int kmm_init_depth __attribute__((tls_model("initial-exec")));

struct line {
	char buf[512];
	size_t len;
};

static void put_char(struct line *l, char c)
{
	if (l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = c;
}

static void put_str(struct line *l, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put_char(l, *s++);
}

/* Right-aligns the digits in width columns; prefix is "0x" or "". */
static void put_unsigned(struct line *l, unsigned long long v, unsigned base,
			 const char *prefix, int width)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	for (int pad = width - n - (int)strlen(prefix); pad > 0; pad--)
		put_char(l, ' ');
	put_str(l, prefix);
	while (n)
		put_char(l, digits[--n]);
}

static void put_signed(struct line *l, long long v, int width)
{
	if (v < 0) {
		put_unsigned(l, -(unsigned long long)v, 10, "-", width);
		return;
	}
	put_unsigned(l, (unsigned long long)v, 10, "", width);
}

/* Reads one integer argument of the given length modifier ('l', 'z' or 0). */
static unsigned long long arg_unsigned(va_list *ap, char len)
{
	if (len == 'l')
		return va_arg(*ap, unsigned long);
	if (len == 'z')
		return va_arg(*ap, size_t);
	return va_arg(*ap, unsigned int);
}

static long long arg_signed(va_list *ap, char len)
{
	if (len == 'l')
		return va_arg(*ap, long);
	if (len == 'z')
		return va_arg(*ap, ptrdiff_t);
	return va_arg(*ap, int);
}

static void format(struct line *l, const char *fmt, va_list ap)
{
	va_list aq;

	va_copy(aq, ap);
	for (; *fmt; fmt++) {
		bool alt = false;
		int width = 0;
		char len = 0;

		if (*fmt != '%') {
			put_char(l, *fmt);
			continue;
		}
		if (fmt[1] == '#') {
			alt = true;
			fmt++;
		}
		while (fmt[1] >= '0' && fmt[1] <= '9')
			width = width * 10 + (*++fmt - '0');
		if (fmt[1] == '.' && fmt[2] == '*' && fmt[3] == 's') {
			int prec = va_arg(aq, int);
			const char *str = va_arg(aq, const char *);

			for (int i = 0; i < prec && str && str[i]; i++)
				put_char(l, str[i]);
			fmt += 3;
			continue;
		}
		if (fmt[1] == 'l' || fmt[1] == 'z')
			len = *++fmt;
		switch (*++fmt) {
		case 's':
			put_str(l, va_arg(aq, const char *));
			break;
		case 'c':
			put_char(l, (char)va_arg(aq, int));
			break;
		case 'd':
			put_signed(l, arg_signed(&aq, len), width);
			break;
		case 'u':
			put_unsigned(l, arg_unsigned(&aq, len), 10, "", width);
			break;
		case 'x':
			put_unsigned(l, arg_unsigned(&aq, len), 16, alt ? "0x" : "", width);
			break;
		case 'p':
			put_unsigned(l, (uintptr_t)va_arg(aq, void *), 16, "0x", width);
			break;
		case '%':
			put_char(l, '%');
			break;
		default:
			put_char(l, '?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	va_end(aq);
}

void kmm_write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = os_write(fd, buf + off, len - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

size_t kmm_snprint(char *buf, size_t size, const char *fmt, ...)
{
	struct line l = { .len = 0 };
	va_list ap;

	va_start(ap, fmt);
	format(&l, fmt, ap);
	va_end(ap);
	if (size == 0)
		return l.len;
	if (l.len >= size)
		l.len = size - 1;
	memcpy(buf, l.buf, l.len);
	buf[l.len] = 0;
	return l.len;
}

void kmm_dprint(int fd, const char *fmt, ...)
{
	struct line l = { .len = 0 };
	va_list ap;

	va_start(ap, fmt);
	format(&l, fmt, ap);
	va_end(ap);
	kmm_write_all(fd, l.buf, l.len);
}

void kmm_vreport(const char *fmt, va_list ap)
{
	struct line l = { .len = 0 };

	put_str(&l, "kmm: ");
	format(&l, fmt, ap);
	put_char(&l, '\n');
	kmm_write_all(STDERR_FILENO, l.buf, l.len);
}

void kmm_report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kmm_vreport(fmt, ap);
	va_end(ap);
}

_Noreturn void kmm_bug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kmm_vreport(fmt, ap);
	va_end(ap);
	abort();
}

KMM_HOT_TEXT unsigned long kmm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (unsigned long)ts.tv_sec * 1000UL + (unsigned long)ts.tv_nsec / 1000000UL;
}
