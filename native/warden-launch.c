/*
 * warden-launch: a small long-lived root process that starts warden-exec on
 * Warden's behalf, so that Warden (a big Node process) never forks itself per
 * run. A fork from Node copies its page tables while the event loop waits:
 * ~1.7 ms at 200 MB of RSS, ~37 ms per GiB. This process is a few hundred KB.
 *
 * Usage: warden-launch --helper PATH --seccomp PATH --socket PATH
 *                      [--keep-warm PROCS_A --keep-warm PROCS_B]
 *
 * Requests arrive on stdin as frames: u32 length, u32 id (little-endian),
 * then `length` bytes of NUL-terminated argv strings, argv[0] being the
 * helper's path. Each request starts one child:
 *   fds 0..4, 6  six Unix stream sockets (slots 0..5), each connected to
 *             Warden's listening socket (--socket) and announced there by an
 *             8-byte hello ("WL", slot, 0, u32 id), so Warden holds the other
 *             ends; slot 5, the run request for the sandbox's init, is fd 6;
 *   fd 5      --seccomp opened read-only (a fresh open file per child: bwrap
 *             reads it from its offset);
 *   env       empty.
 * Replies on stdout, one line each: "READY", "P <id> <pid>", "F <id> <why>"
 * (no child), "X <id> <wait status>", "E <why>" (fatal, then exit).
 *
 * Warden is root too, but its requests are still parsed as if corrupted: a
 * bad frame length ends the launcher (the stream cannot be resynchronised),
 * anything but the configured helper is refused, sizes and counts are bounded.
 *
 * With --keep-warm, it keeps the kernel's cgroup migration fast while Warden
 * is busy: moving a process into a cgroup takes a global lock whose writer
 * side waits for an RCU grace period (~10-20 ms with rcu_expedited=0) unless
 * another move happened within the last grace period. For 2 s after each
 * request, a sleeping child of the launcher is moved between two cgroups of
 * Warden's every 4 ms, so a sandbox's own move never pays that wait (the same
 * trade as cgroup2's favordynmods mount option, held only while Warden works;
 * forks on the host take a slightly slower path meanwhile). A failed move
 * turns it off.
 *
 * End of stdin (or SIGTERM, which PR_SET_PDEATHSIG sends when Warden dies)
 * means Warden is gone: every child gets SIGTERM (warden-exec then kills its
 * sandbox and unmounts), SIGKILL after a grace, and the launcher exits once it
 * has reaped them all. warden-exec's own PR_SET_PDEATHSIG now names this
 * process, so a launcher killed outright still takes its sandboxes down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#define MAX_REQUEST (1u << 20) /* bytes of argv per request; execve's own cap is ~2 MiB */
#define MAX_ARGS 8192
#define MAX_CHILDREN 4096 /* in flight at once; more are refused with F */
#define SLOTS 6
/* The child's fd for each slot: fd 5 is the seccomp filter. */
static const int slot_fd[SLOTS] = {0, 1, 2, 3, 4, 6};
#define GRACE_SECONDS 5
#define KEEP_WARM_EVERY_MS 4
#define KEEP_WARM_FOR_MS 2000

static const char *helper, *seccomp_path, *socket_path;
static const char *keep_warm[2];
static pid_t keeper = -1;
static long long last_request_ms = -KEEP_WARM_FOR_MS, last_move_ms;
static int keeper_side;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Moves the keeper to its other cgroup; a failure ends keeping warm. */
static void keep_warm_move(void) {
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d", keeper);
  keeper_side = !keeper_side;
  int fd = open(keep_warm[keeper_side], O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, pid, (size_t)len) != len) {
    kill(keeper, SIGKILL);
    keeper = -1;
  }
  if (fd >= 0) close(fd);
  last_move_ms = now_ms();
}

/* A child that only sleeps, to be moved; it dies with the launcher. */
static void start_keeper(void) {
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "warden-keeper");
    close_range(0, ~0U, 0);
    for (;;) pause();
  }
  keeper = pid;
  if (keeper > 0) keep_warm_move();
}
static struct {
  pid_t pid;
  uint32_t id;
} children[MAX_CHILDREN];
static int n_children;
static unsigned char frame[8 + MAX_REQUEST];
static size_t have;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = format_line(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  for (int off = 0; off < n;) {
    ssize_t w = write(1, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* Warden is gone: EOF on stdin will follow */
    off += (int)w;
  }
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One stream socket to Warden, announced with its request id and slot. */
static int connect_slot(uint32_t id, int slot) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, socket_path); /* length checked in main */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unsigned char hello[8] = {'W', 'L', (unsigned char)slot, 0, (unsigned char)id,
                            (unsigned char)(id >> 8), (unsigned char)(id >> 16),
                            (unsigned char)(id >> 24)};
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (r < 0 && errno == EINTR);
  /* stdin and the request carry nothing from the child to Warden: shut that direction. */
  int inbound = slot == 0 || slot == 5;
  if (r < 0 || write_all(fd, hello, sizeof hello) < 0 || (inbound && shutdown(fd, SHUT_WR) < 0)) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* In the child: the slots become fds 0..4 and 6, the seccomp file fd 5,
 * err_fd stays (close-on-exec) as 7, nothing else survives. */
static void become_helper(int fds[SLOTS + 1], int err_fd, char **argv) {
  int high[SLOTS + 1], err_high;
  for (int i = 0; i <= SLOTS; i++) high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 8);
  err_high = fcntl(err_fd, F_DUPFD_CLOEXEC, 8);
  for (int i = 0; i <= SLOTS; i++)
    if (high[i] < 0 || dup2(high[i], i < SLOTS ? slot_fd[i] : 5) < 0) goto out;
  if (err_high < 0 || dup3(err_high, 7, O_CLOEXEC) < 0) goto out;
  close_range(8, ~0U, 0);
  signal(SIGPIPE, SIG_DFL); /* an ignored signal would stay ignored across exec */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char *envp[] = {NULL};
  execve(helper, argv, envp);
out:;
  int e = errno;
  ssize_t ignored = write(err_high >= 0 ? 7 : err_fd, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

static void spawn_request(uint32_t id, unsigned char *args, uint32_t len) {
  last_request_ms = now_ms();
  if (keeper > 0 && last_request_ms - last_move_ms >= KEEP_WARM_EVERY_MS) keep_warm_move();
  char *argv[MAX_ARGS + 1];
  int argc = 0;
  if (len == 0 || args[len - 1] != 0) { say("F %u request: argv must end with NUL", id); return; }
  for (uint32_t i = 0; i < len; i += (uint32_t)strlen((char *)args + i) + 1) {
    if (argc == MAX_ARGS) { say("F %u request: more than %d arguments", id, MAX_ARGS); return; }
    argv[argc++] = (char *)args + i;
  }
  argv[argc] = NULL;
  /* Root runs whatever this names: only the helper given at start-up, ever. */
  if (strcmp(argv[0], helper) != 0) { say("F %u request: program is not the helper", id); return; }
  if (n_children == MAX_CHILDREN)
    { say("F %u launcher: %d children in flight already", id, MAX_CHILDREN); return; }
  for (int i = 0; i < n_children; i++)
    if (children[i].id == id) { say("F %u request: id already in flight", id); return; }

  int fds[SLOTS + 1], err[2] = {-1, -1}, n = 0;
  const char *step = "connect";
  for (; n < SLOTS; n++)
    if ((fds[n] = connect_slot(id, n)) < 0) goto fail;
  step = "seccomp";
  if ((fds[n] = open(seccomp_path, O_RDONLY | O_CLOEXEC)) < 0) goto fail;
  n++;
  step = "pipe";
  if (pipe2(err, O_CLOEXEC) < 0) goto fail;
  step = "fork";
  pid_t pid = fork();
  if (pid < 0) goto fail;
  if (pid == 0) become_helper(fds, err[1], argv);
  /* Warden holds the other ends; no copy of the child's may linger here. */
  for (int i = 0; i < n; i++) close(fds[i]);
  close(err[1]);
  int e = 0;
  ssize_t r;
  do r = read(err[0], &e, sizeof e);
  while (r < 0 && errno == EINTR);
  close(err[0]);
  if (r > 0) {
    waitpid(pid, NULL, 0);
    { say("F %u exec %s: %s", id, helper, strerror(e)); return; }
  }
  children[n_children].pid = pid;
  children[n_children++].id = id;
  say("P %u %d", id, pid);
  return;
fail:;
  int saved = errno;
  for (int i = 0; i < n; i++) close(fds[i]);
  if (err[0] >= 0) close(err[0]), close(err[1]);
  say("F %u %s: %s", id, step, strerror(saved));
}

/* Parses every complete frame in the buffer; 0 on a broken stream. */
static int take_frames(void) {
  size_t off = 0;
  while (have - off >= 8) {
    uint32_t len = le32(frame + off), id = le32(frame + off + 4);
    if (len > MAX_REQUEST) {
      say("E request of %u bytes exceeds the %u-byte limit", len, MAX_REQUEST);
      return 0;
    }
    if (have - off - 8 < len) break;
    spawn_request(id, frame + off + 8, len);
    off += 8 + len;
  }
  memmove(frame, frame + off, have - off);
  have -= off;
  return 1;
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    for (int i = 0; i < n_children; i++)
      if (children[i].pid == pid) {
        say("X %u %d", children[i].id, status);
        children[i] = children[--n_children];
        break;
      }
}

static volatile sig_atomic_t grace_over;
static void on_alarm(int sig) {
  (void)sig;
  grace_over = 1;
}

/* Warden is gone: SIGTERM every child, SIGKILL after the grace, reap all. */
static int shut_down(void) {
  if (keeper > 0) kill(keeper, SIGKILL);
  for (int i = 0; i < n_children; i++) kill(children[i].pid, SIGTERM);
  struct sigaction sa = {.sa_handler = on_alarm};
  sigaction(SIGALRM, &sa, NULL);
  alarm(GRACE_SECONDS);
  for (;;) {
    int status;
    pid_t r = waitpid(-1, &status, 0);
    if (r < 0 && errno == ECHILD) return 0;
    for (int i = 0; r > 0 && i < n_children; i++)
      if (children[i].pid == r) {
        say("X %u %d", children[i].id, status);
        children[i] = children[--n_children];
        break;
      }
    if (grace_over) {
      grace_over = 0;
      for (int i = 0; i < n_children; i++) kill(children[i].pid, SIGKILL);
    }
  }
}

int main(int argc, char **argv) {
  int n_keep = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--helper")) helper = argv[i + 1];
    else if (!strcmp(argv[i], "--seccomp")) seccomp_path = argv[i + 1];
    else if (!strcmp(argv[i], "--socket")) socket_path = argv[i + 1];
    else if (!strcmp(argv[i], "--keep-warm") && n_keep < 2) keep_warm[n_keep++] = argv[i + 1];
  }
  if (!helper || !seccomp_path || !socket_path || (argc != 7 && argc != 11) ||
      (argc == 11 && n_keep != 2)) {
    fprintf(stderr, "usage: warden-launch --helper PATH --seccomp PATH --socket PATH "
                    "[--keep-warm PROCS --keep-warm PROCS]\n");
    return 2;
  }
  if (strlen(socket_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
    say("E socket path too long");
    return 2;
  }
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) return 2;
  signal(SIGPIPE, SIG_IGN);
  /* A terminal's ^C reaches the whole process group: Warden decides, not us. */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) {
    say("E signalfd: %s", strerror(errno));
    return 2;
  }
  if (n_keep == 2) start_keeper();
  say("READY");
  for (;;) {
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    long long now = now_ms();
    int warm = keeper > 0 && now - last_request_ms < KEEP_WARM_FOR_MS;
    if (warm && now - last_move_ms >= KEEP_WARM_EVERY_MS) keep_warm_move();
    if (poll(p, 2, warm ? KEEP_WARM_EVERY_MS : -1) < 0) {
      if (errno == EINTR) continue;
      say("E poll: %s", strerror(errno));
      return shut_down();
    }
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGTERM) return shut_down();
      reap();
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(0, frame + have, sizeof frame - have);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) return shut_down();
      have += (size_t)r;
      if (!take_frames()) return shut_down();
    }
  }
}
