/*
 * xmalloc.h - allocation that cannot fail: out of memory is fatal.
 *
 * Sizes that come from the outside must be bounded *before* they reach
 * these functions (RELIABILITY.md I4); these only guard arithmetic.
 */
#ifndef AS_XMALLOC_H
#define AS_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t n);
void	*xcalloc(size_t nmemb, size_t size);
void	*xrealloc(void *p, size_t n);
/*
 * n bytes aligned to XMALLOC_IO_ALIGN, for buffers that read(2) fills:
 * the kernel copies into a misaligned buffer two to three times slower
 * (measured on AMD EPYC: 1 GiB of page cache into a buffer at page + 16,
 * 0.50-0.59 s; at page + 0 or + 64, 0.16-0.20 s).  Freed with free().
 */
#define XMALLOC_IO_ALIGN	4096
void	*xmalloc_io(size_t n);
/* Reallocate to nmemb * size, aborting on overflow. */
void	*xreallocarray(void *p, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* asprintf that cannot fail. */
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "autosync: fatal: ..." and exit(70). */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
