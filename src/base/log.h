/*
 * log.h - the one place that writes diagnostics.
 *
 * Library code logs only at debug/trace level (what it ran, what it
 * decided); errors travel in struct as_err and the CLI reports them.
 * Text from the outside (paths, peer messages) is escaped so that a name
 * holding "\n" or an ANSI escape can never forge a log line.
 */
#ifndef AS_LOG_H
#define AS_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_TRACE,
};

void	log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Name printed before every line, "autosync" by default. */
void	log_set_progname(const char *name);

void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Escape bytes < 0x20, 0x7f and 0x80-0x9f as \xNN (and backslash as \\)
 * into out (size outsz, always terminated).  Returns out, for use as a
 * printf argument.
 */
const char *log_escape(const char *in, char *out, unsigned outsz);

#endif
