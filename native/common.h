/*
 * Shared by Warden's native helpers. Header-only: each helper is its own
 * small binary (warden-init is linked statically), so nothing is linked in
 * that a helper does not use.
 */
#ifndef WARDEN_COMMON_H
#define WARDEN_COMMON_H
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* The RLIMIT_* named by the `len` bytes at `name` ("nofile", ...), or -1. */
static inline int rlimit_by_name(const char *name, size_t len) {
  static const struct {
    const char *name;
    int resource;
  } names[] = {
      {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
      {"fsize", RLIMIT_FSIZE},   {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
      {"stack", RLIMIT_STACK},   {"memlock", RLIMIT_MEMLOCK},
  };
  for (size_t k = 0; k < sizeof names / sizeof *names; k++)
    if (strlen(names[k].name) == len && !strncmp(name, names[k].name, len))
      return names[k].resource;
  return -1;
}

/* One report line in `buf`, cut to fit and ending in '\n': its length, or -1. */
static inline int format_line(char *buf, size_t size, const char *fmt, va_list ap) {
  int n = vsnprintf(buf, size - 1, fmt, ap);
  if (n < 0) return -1;
  if (n > (int)size - 2) n = (int)size - 2;
  buf[n++] = '\n';
  return n;
}
#endif
