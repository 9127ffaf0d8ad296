/*
 * warden-init: PID 1 inside every sandbox (bubblewrap --as-pid-1).
 *
 * It comes up before the program is known: it reports "ready" on the status
 * fd, then reads the run request (working directory, rlimits, argv and
 * environment) from the request fd until Warden closes it, starts the program
 * with exactly those, reaps every orphan the program leaves, and when the
 * program ends kills whatever is left in the sandbox's PID namespace and
 * writes the program's exact outcome ("exit N" or "signal N") to the status fd.
 * bubblewrap alone folds a signal death into exit code 128+N, which cannot be
 * told apart from a program that exits with 137 on purpose.
 *
 * So a sandbox can be set up ahead of its program (Warden's warm pool) and a
 * cold run pays nothing more: the request is written as soon as the box is up.
 *
 * With `--warm PROGRAM ARGS...` the program is an interpreter started at once
 * (Warden's warm stub): it gets the request pipe as fd 3 and a ready pipe as
 * fd 4, and init reports "ready" only once the stub has said it is waiting.
 * The request's rlimits are applied to the stub with prlimit() before the
 * request reaches it, so user code never runs above them.
 *
 * The status and request fds are close-on-exec, so the program cannot forge
 * its own outcome.
 *
 * With `--socket PATH` in place of the two fds (the gVisor tier: runsc offers
 * no way to hand fds to the container's init) it connects to the Unix socket
 * PATH, bound in from the host, and uses that one connection for both: "ready"
 * out, the request in until Warden shuts down its write half, the outcome out.
 * The connection is made before any user code exists, and Warden accepts only
 * that first one, so a program cannot connect later and forge an outcome.
 *
 * With `--bridge SOCKET PORT` it first listens on 127.0.0.1:PORT inside the
 * sandbox's own network namespace and relays every connection to SOCKET, a
 * Unix socket bound in from the host's egress proxy: the only way out, and
 * only for programs that use the proxy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

static void say(int fd, const char *line) {
  ssize_t ignored = write(fd, line, strlen(line));
  (void)ignored;
}

/* Copies bytes both ways between two sockets until both directions end. */
static void relay(int a, int b) {
  char buf[16384];
  struct pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  int open_dirs = 2;
  while (open_dirs > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      int peer = fds[1 - i].fd;
      if (n <= 0) {
        shutdown(peer, SHUT_WR);
        fds[i].fd = -1;
        open_dirs--;
        continue;
      }
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(peer, buf + off, (size_t)(n - off));
        if (w <= 0) return;
        off += w;
      }
    }
  }
}

/* Listens on 127.0.0.1:port (CLOEXEC, so the program does not inherit it). */
static int bridge_listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 64) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The bridge: accept, then a child per connection relaying to the Unix socket. */
static void bridge_serve(int listen_fd, const char *socket_path) {
  signal(SIGCHLD, SIG_IGN); /* connection children reap themselves */
  for (;;) {
    int client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == EAGAIN) continue;
      _exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(listen_fd);
      int up = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct sockaddr_un addr = {0};
      addr.sun_family = AF_UNIX;
      strncpy(addr.sun_path, socket_path, sizeof addr.sun_path - 1);
      if (up >= 0 && connect(up, (struct sockaddr *)&addr, sizeof addr) == 0) relay(client, up);
      _exit(0);
    }
    close(client);
  }
}

/* The request, as Warden writes it (src/sandbox/init-request.ts): NUL-terminated
 * strings "W1", cwd, rlimit count, "name=value"..., argc, argv..., envc, env....
 * Read to EOF, bounded: Warden is trusted, but a short or torn write must fail
 * cleanly, never run something half-parsed. */
#define MAX_REQUEST (4u << 20)
#define MAX_ITEMS 8192

struct request {
  char *bytes;
  size_t len;
  const char *cwd;
  int n_rlimits;
  int rlimit_res[16];
  rlim_t rlimit_val[16];
  char **argv;
  char **envp;
};


static int read_all(int fd, struct request *r) {
  size_t cap = 65536;
  r->bytes = malloc(cap);
  r->len = 0;
  if (!r->bytes) return -1;
  for (;;) {
    if (r->len == cap) {
      if (cap >= MAX_REQUEST) return -1;
      cap *= 2;
      char *grown = realloc(r->bytes, cap);
      if (!grown) return -1;
      r->bytes = grown;
    }
    ssize_t n = read(fd, r->bytes + r->len, cap - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    r->len += (size_t)n;
  }
}

/* Next NUL-terminated string at *pos, or NULL past the end. */
static const char *next(const struct request *r, size_t *pos) {
  if (*pos >= r->len) return NULL;
  const char *s = r->bytes + *pos;
  const char *end = memchr(s, '\0', r->len - *pos);
  if (!end) return NULL;
  *pos += (size_t)(end - s) + 1;
  return s;
}

static int count(const struct request *r, size_t *pos) {
  const char *s = next(r, pos);
  if (!s || !*s) return -1;
  char *end;
  long v = strtol(s, &end, 10);
  return (*end || v < 0 || v > MAX_ITEMS) ? -1 : (int)v;
}

static char **strings(const struct request *r, size_t *pos, int n) {
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (!list) return NULL;
  for (int i = 0; i < n; i++)
    if (!(list[i] = (char *)next(r, pos))) return NULL;
  return list;
}

static int parse_request(struct request *r) {
  size_t pos = 0;
  const char *magic = next(r, &pos);
  if (!magic || strcmp(magic, "W1") != 0) return -1;
  if (!(r->cwd = next(r, &pos))) return -1;
  int n = count(r, &pos);
  if (n < 0 || n > 16) return -1;
  for (int i = 0; i < n; i++) {
    const char *item = next(r, &pos);
    const char *eq = item ? strchr(item, '=') : NULL;
    if (!eq) return -1;
    int found = rlimit_by_name(item, (size_t)(eq - item));
    char *end;
    unsigned long long v = strtoull(eq + 1, &end, 10);
    if (found < 0 || *end || end == eq + 1) return -1;
    r->rlimit_res[r->n_rlimits] = found;
    r->rlimit_val[r->n_rlimits++] = (rlim_t)v;
  }
  int argc = count(r, &pos);
  if (argc < 1 || !(r->argv = strings(r, &pos, argc))) return -1;
  int envc = count(r, &pos);
  if (envc < 0 || !(r->envp = strings(r, &pos, envc))) return -1;
  return pos == r->len ? 0 : -1;
}

/* Lowers the limits of `pid` (0: this process). Raising a hard limit fails, as it should. */
static int apply_rlimits(const struct request *r, pid_t pid) {
  for (int i = 0; i < r->n_rlimits; i++) {
    struct rlimit rl = {r->rlimit_val[i], r->rlimit_val[i]};
    if (prlimit(pid, r->rlimit_res[i], &rl, NULL) < 0) return -1;
  }
  return 0;
}

static void report_error(int status_fd, const char *what) {
  char line[96];
  snprintf(line, sizeof line, "error %s %d\n", what, errno);
  say(status_fd, line);
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Starts the warm stub: request pipe as fd 3, ready pipe as fd 4, nothing else. */
static pid_t start_warm(char **argv, int *request_w, int *ready_r) {
  int req[2], ready[2];
  if (pipe2(req, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Out of the way first: either end may already sit on fd 3 or 4. */
    int r = fcntl(req[0], F_DUPFD_CLOEXEC, 10), w = fcntl(ready[1], F_DUPFD_CLOEXEC, 10);
    if (r < 0 || w < 0 || dup2(r, 3) < 0 || dup2(w, 4) < 0) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  close(req[0]);
  close(ready[1]);
  *request_w = req[1];
  *ready_r = ready[0];
  return pid;
}

/* The control connection of --socket mode (CLOEXEC: the program never holds it). */
static int connect_control(const char *path) {
  struct sockaddr_un addr = {0};
  if (strlen(path) >= sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: warden-init {STATUS_FD REQUEST_FD | --socket PATH} "
                    "[--bridge SOCKET PORT] [--warm PROGRAM ARGS...]\n");
    return 127;
  }
  int status_fd, request_fd;
  if (strcmp(argv[1], "--socket") == 0) {
    status_fd = request_fd = connect_control(argv[2]);
    if (status_fd < 0) {
      fprintf(stderr, "warden-init: cannot connect to %s: %s\n", argv[2], strerror(errno));
      return 127;
    }
  } else {
    status_fd = atoi(argv[1]);
    request_fd = atoi(argv[2]);
    if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(request_fd, F_SETFD, FD_CLOEXEC) < 0)
      return 127;
  }
  int arg = 3;
  if (argc >= arg + 3 && strcmp(argv[arg], "--bridge") == 0) {
    int listen_fd = bridge_listen(atoi(argv[arg + 2]));
    if (listen_fd < 0) {
      say(status_fd, "error bridge\n");
      return 127;
    }
    pid_t bridge = fork();
    if (bridge == 0) {
      close(status_fd);
      if (request_fd != status_fd) close(request_fd);
      bridge_serve(listen_fd, argv[arg + 1]);
    }
    close(listen_fd);
    arg += 3;
  }

  pid_t child = -1;
  int stub_request = -1;
  if (arg < argc && strcmp(argv[arg], "--warm") == 0 && arg + 1 < argc) {
    int ready = -1;
    child = start_warm(argv + arg + 1, &stub_request, &ready);
    if (child < 0) {
      report_error(status_fd, "warm-start");
      return 127;
    }
    char byte;
    ssize_t n;
    do n = read(ready, &byte, 1);
    while (n < 0 && errno == EINTR);
    close(ready);
    if (n != 1) {
      say(status_fd, "error warm-start\n");
      return 127;
    }
  }
  say(status_fd, "ready\n");

  struct request req = {0};
  if (read_all(request_fd, &req) < 0 || parse_request(&req) < 0) {
    say(status_fd, "error request\n");
    return 127;
  }
  if (request_fd != status_fd) close(request_fd);
  if (stub_request >= 0) {
    /* The stub parses the same request; the limits are set from here first. */
    if (apply_rlimits(&req, child) < 0 || write_all(stub_request, req.bytes, req.len) < 0) {
      report_error(status_fd, "warm-request");
      return 127;
    }
    close(stub_request);
  } else {
    child = fork();
    if (child < 0) {
      say(status_fd, "error fork\n");
      return 127;
    }
    if (child == 0) {
      /* The program gets default signal dispositions, not PID 1's. */
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (chdir(req.cwd) < 0) {
        report_error(status_fd, "chdir");
        _exit(127);
      }
      if (apply_rlimits(&req, 0) < 0) {
        report_error(status_fd, "rlimit");
        _exit(127);
      }
      execve(req.argv[0], req.argv, req.envp);
      report_error(status_fd, "exec");
      _exit(127);
    }
  }

  int status = 0;
  for (;;) {
    int s;
    pid_t r = wait(&s);
    if (r == child) {
      status = s;
      break;
    }
    if (r < 0 && errno != EINTR) break;
  }
  /* Nothing outlives the program: background daemons go with it. */
  kill(-1, SIGKILL);
  while (wait(NULL) > 0 || errno == EINTR) {
  }

  char line[64];
  if (WIFSIGNALED(status))
    snprintf(line, sizeof line, "signal %d\n", WTERMSIG(status));
  else
    snprintf(line, sizeof line, "exit %d\n", WEXITSTATUS(status));
  say(status_fd, line);
  return 0;
}
