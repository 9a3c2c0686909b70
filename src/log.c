/*
 * log.c: one line per event, to stderr in the foreground or to syslog.
 * libevent's own messages are routed here too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"

static int	 log_level;	/* 0 warnings, 1 info, 2 debug */
static int	 log_syslog;
static const char *log_name = "sandd";

static void	 log_vwrite(int, const char *, va_list)
		     __attribute__((format(printf, 2, 0)));

static void
log_event_cb(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/* Start logging as name; level counts -v; to syslog if asked. */
void
log_init(const char *name, int level, int use_syslog)
{
	log_name = name;
	log_level = level;
	log_syslog = use_syslog;
	if (log_syslog)
		openlog(name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	event_set_log_callback(log_event_cb);
}

static void
log_vwrite(int pri, const char *fmt, va_list ap)
{
	char		 line[2048], stamp[32];
	struct timespec	 ts;
	struct tm	 tm;
	int		 saved = errno;

	vsnprintf(line, sizeof line, fmt, ap);
	if (log_syslog) {
		syslog(pri, "%s", line);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s[%ld]: %s\n", stamp, ts.tv_nsec / 1000000,
	    log_name, (long)getpid(), line);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < 1)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < 2)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

/* Who ran what where: always logged, whatever the level. */
void
log_audit(const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_warnx("audit: %s", buf);
}

__dead void
fatal(const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

__dead void
fatalx(const char *fmt, ...)
{
	va_list	ap;
	char	buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s", buf);
	exit(1);
}

/*
 * Escape untrusted text for a log line: printable ASCII stays, the rest
 * becomes \xNN, and the result is cut at 200 bytes. Caller frees.
 */
char *
log_escape(const char *s, size_t len)
{
	char	*out, *p;
	size_t	 i, max = len > 200 ? 200 : len;

	out = p = xmalloc(max * 4 + 4);
	for (i = 0; i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			*p++ = (char)c;
		else
			p += sprintf(p, "\\x%02x", c);
	}
	if (max < len) {
		memcpy(p, "...", 3);
		p += 3;
	}
	*p = '\0';
	return (out);
}
