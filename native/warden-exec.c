/*
 * warden-exec: the privileged step between Warden (root) and bubblewrap.
 *
 * Node.js cannot run code between fork and exec, yet a sandbox must enter its
 * cgroups, take its rlimits and drop to its own uid *before* it executes
 * anything, or a fast fork would escape the limits. This helper does exactly
 * that and nothing else:
 *
 *   1. with --mount, enters a mount namespace of its own and mounts a
 *      size-limited tmpfs on --workspace DIR there (so the host's mount table
 *      does not grow with every live sandbox, and nothing is left mounted when
 *      the box ends), then reports "R"; with --join PID it enters the mount
 *      namespace of the box's first helper instead (a box's later runs);
 *      with --ro-bind SRC NAME, binds the host directory SRC read-only at
 *      DIR/NAME in that namespace, as root, so bubblewrap (which opens its
 *      bind sources as the sandbox uid) can bind a directory the sandbox uid
 *      could not reach on the host (an environment in the 0700 data dir);
 *   2. forks a child that writes its pid into each cgroup file, applies the
 *      rlimits, clears supplementary groups, switches to the sandbox uid/gid,
 *      sets no_new_privs and execs the program (bubblewrap); the sandbox's
 *      init then waits for its run request from Warden, so Warden can fill the
 *      workspace (through /proc/PID/root) and send the request whenever it likes;
 *   3. waits for the child and every orphan, reports the workspace's usage
 *      ("U <used> <free> <free inodes>"), then "S <wait status>". A helper
 *      that mounted first lets go of the sandbox's stdio and reports "H": it
 *      holds the namespace (the workspace, for later runs and for artifacts
 *      to be read) until Warden closes the control fd, then exits, and the
 *      workspace goes with the namespace. Nothing is ever left mounted.
 *
 * With --runsc (the gVisor tier) step 2 differs: the child joins the cgroups
 * and execs runsc (`runsc ... run --bundle DIR ID`) as root, with an empty
 * environment, and keeps only its stdio. It does not switch uid, set
 * no_new_privs or load Warden's seccomp filter: runsc needs root to build the
 * sandbox, and its gofer and Sentry drop to their own uid, capabilities and
 * seccomp filters themselves; the program runs as the OCI spec's user inside
 * gVisor's kernel, never as a host process. Joining the cgroups before exec
 * puts runsc, its gofer, the Sentry and every stub in them from the start.
 * The workspace tmpfs is mounted (or joined) as above, so the gofer, which
 * runs in this mount namespace, binds DIR/workspace and DIR/tmp into the
 * container; --uid/--gid then only name the owner of those directories (the
 * container's user, through the gofer).
 *
 * Errors go to the control fd as "E <message>", never to the sandbox's stderr.
 * If Warden dies, PR_SET_PDEATHSIG delivers SIGTERM here and the child is
 * killed; whatever still remains is the start-up janitor's job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

#define MAX_LIST 16
#define MAX_FD 64

static int control_fd = -1;
static volatile sig_atomic_t terminate_requested = 0;

static void report(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = format_line(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (control_fd >= 0) {
    ssize_t ignored = write(control_fd, buf, (size_t)n);
    (void)ignored;
  } else {
    ssize_t ignored = write(2, buf, (size_t)n);
    (void)ignored;
  }
}

static void fail(const char *what) {
  report("E %s: %s", what, strerror(errno));
  _exit(125);
}

struct options {
  const char *workspace;
  int mount;
  int runsc;
  long join;
  unsigned long long mount_bytes, mount_inodes;
  const char *cgroups[MAX_LIST];
  int n_cgroups;
  int rlimit_res[MAX_LIST];
  rlim_t rlimit_val[MAX_LIST];
  int n_rlimits;
  int keep_fds[MAX_LIST];
  int n_keep_fds;
  const char *bind_src[MAX_LIST], *bind_name[MAX_LIST];
  int n_binds;
  long uid, gid;
  char **argv;
};

static unsigned long long parse_num(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || end == s) {
    report("E bad number for %s: %s", what, s);
    _exit(125);
  }
  return v;
}

static void parse(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->uid = o->gid = -1;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (!strcmp(a, "--mount")) {
      o->mount = 1;
      continue;
    }
    if (!strcmp(a, "--runsc")) {
      o->runsc = 1;
      continue;
    }
    if (!v) break;
    i++;
    if (!strcmp(a, "--ro-bind")) {
      /* Two values: SRC NAME. NAME is one plain component, never a path. */
      if (i + 1 >= argc || o->n_binds >= MAX_LIST) {
        report("E --ro-bind needs SRC NAME (at most %d)", MAX_LIST);
        _exit(125);
      }
      const char *name = argv[++i];
      if (v[0] != '/' || !*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(name)) {
        report("E --ro-bind needs an absolute SRC and a [a-z0-9] NAME");
        _exit(125);
      }
      o->bind_src[o->n_binds] = v;
      o->bind_name[o->n_binds++] = name;
      continue;
    }
    if (!strcmp(a, "--join")) {
      o->join = (long)parse_num(v, a);
      continue;
    }
    if (!strcmp(a, "--control-fd")) {
      control_fd = (int)parse_num(v, a);
    } else if (!strcmp(a, "--workspace")) {
      o->workspace = v;
    } else if (!strcmp(a, "--mount-bytes")) {
      o->mount_bytes = parse_num(v, a);
    } else if (!strcmp(a, "--mount-inodes")) {
      o->mount_inodes = parse_num(v, a);
    } else if (!strcmp(a, "--cgroup") && o->n_cgroups < MAX_LIST) {
      o->cgroups[o->n_cgroups++] = v;
    } else if (!strcmp(a, "--rlimit") && o->n_rlimits < MAX_LIST) {
      const char *eq = strchr(v, '=');
      size_t len = eq ? (size_t)(eq - v) : 0;
      int found = eq ? rlimit_by_name(v, len) : -1;
      if (found < 0) {
        report("E unknown rlimit: %s", v);
        _exit(125);
      }
      o->rlimit_res[o->n_rlimits] = found;
      o->rlimit_val[o->n_rlimits++] = (rlim_t)parse_num(eq + 1, "rlimit");
    } else if (!strcmp(a, "--keep-fd") && o->n_keep_fds < MAX_LIST) {
      o->keep_fds[o->n_keep_fds++] = (int)parse_num(v, a);
    } else if (!strcmp(a, "--uid")) {
      o->uid = (long)parse_num(v, a);
    } else if (!strcmp(a, "--gid")) {
      o->gid = (long)parse_num(v, a);
    } else {
      report("E unknown option: %s", a);
      _exit(125);
    }
  }
  if (o->n_binds && !o->mount) {
    report("E --ro-bind needs --mount");
    _exit(125);
  }
  if ((o->mount || o->join) && !o->workspace) {
    report("E --mount and --join need --workspace");
    _exit(125);
  }
  /* runsc gets only its stdio: an fd passed on would reach a root process. */
  if (o->runsc && o->n_keep_fds) {
    report("E --runsc passes no fds (--keep-fd)");
    _exit(125);
  }
  if (i >= argc || o->uid <= 0 || o->gid <= 0) {
    report("E usage: warden-exec --uid N --gid N [options] -- PROGRAM ARGS...");
    _exit(125);
  }
  o->argv = argv + i;
}

/* Closes every fd >= 3 except the control fd and the ones bubblewrap needs:
 * a descriptor Warden (or its own parent) leaked must not reach the sandbox. */
static void close_other_fds(const struct options *o) {
  char keep[MAX_FD] = {0};
  for (int i = 0; i < o->n_keep_fds; i++)
    if (o->keep_fds[i] >= 0 && o->keep_fds[i] < MAX_FD) keep[o->keep_fds[i]] = 1;
  if (control_fd >= 0 && control_fd < MAX_FD) keep[control_fd] = 1;
  unsigned int from = 3;
  for (unsigned int fd = 3; fd < MAX_FD; fd++) {
    if (!keep[fd]) continue;
    if (fd > from) close_range(from, fd - 1, 0);
    from = fd + 1;
  }
  close_range(from, ~0U, 0);
}

/* Into every cgroup, then the rlimits: before anything is exec'd. */
static void enter_limits(const struct options *o) {
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d", getpid());
  for (int i = 0; i < o->n_cgroups; i++) {
    int fd = open(o->cgroups[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, (size_t)len) != len) fail(o->cgroups[i]);
    close(fd);
  }
  for (int i = 0; i < o->n_rlimits; i++) {
    struct rlimit rl = {o->rlimit_val[i], o->rlimit_val[i]};
    if (setrlimit(o->rlimit_res[i], &rl) < 0) fail("setrlimit");
  }
}

/* Runs in the forked child: enter limits, drop privileges, exec. */
static void become_sandbox(const struct options *o) {
  close_other_fds(o);
  enter_limits(o);
  if (setgroups(0, NULL) < 0) fail("setgroups");
  if (setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) < 0) fail("setresgid");
  if (setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) < 0) fail("setresuid");
  /* Belt and braces: a failed drop must never run code as root. */
  if (getuid() == 0 || geteuid() == 0 || setuid(0) == 0) {
    report("E privilege drop did not take");
    _exit(125);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("no_new_privs");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("pdeathsig");
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execv(o->argv[0], o->argv);
  fail(o->argv[0]);
}

/* The --runsc child: into the cgroups, then runsc as root with nothing else. */
static void become_runsc(const struct options *o) {
  close_other_fds(o);
  enter_limits(o);
  /* runsc gives its gofer and Sentry the same death signal: the whole
   * container goes when this helper does. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("pdeathsig");
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* Nothing of Warden's environment reaches a root process. */
  char *empty[] = {NULL};
  execve(o->argv[0], o->argv, empty);
  fail(o->argv[0]);
}

static void on_term(int sig) {
  (void)sig;
  terminate_requested = 1;
}

int main(int argc, char **argv) {
  struct options o;
  parse(argc, argv, &o);
  if (control_fd >= 0) fcntl(control_fd, F_SETFD, FD_CLOEXEC);
  /* runsc keeps no fd but its stdio, so the rest (init's status and request
   * fds of the other mode) close now: Warden sees them end at once. */
  if (o.runsc) close_other_fds(&o);

  pid_t parent = getppid();
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  /* Orphans of the sandbox (its init, once bubblewrap is killed) come back
   * to us to be reaped, not to the host's PID 1, which may never reap them. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail("subreaper");
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
    report("E parent is gone");
    return 125;
  }

  if (o.mount) {
    /* A namespace of our own: the workspace never appears in the host's mount
     * table, so bubblewrap's copy of it stays small however many boxes live. */
    if (unshare(CLONE_NEWNS) < 0) fail("unshare mount namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) fail("make / a slave");
    char data[128];
    snprintf(data, sizeof data, "size=%llu,nr_inodes=%llu,mode=0700,uid=%ld,gid=%ld",
             o.mount_bytes, o.mount_inodes, o.uid, o.gid);
    if (mount("tmpfs", o.workspace, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0)
      fail("mount workspace");
    /* /workspace and /tmp, there before bubblewrap binds them. */
    static const struct {
      const char *name;
      mode_t mode;
    } dirs[] = {{"workspace", 0755}, {"tmp", 0700}};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", o.workspace, dirs[i].name);
      if (mkdir(path, dirs[i].mode) < 0 || chown(path, (uid_t)o.uid, (gid_t)o.gid) < 0 ||
          chmod(path, dirs[i].mode) < 0)
        fail(path);
    }
    /* Read-only binds beside them: a root-owned mount point in the tmpfs, the
     * source bound on it and made read-only, nosuid, nodev. They live in this
     * namespace only and go with it, like the workspace. */
    for (int i = 0; i < o.n_binds; i++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", o.workspace, o.bind_name[i]);
      if (mkdir(path, 0755) < 0) fail(path);
      /* The source is opened without following a single link on its way (an
       * environment's tree holds links its installer made: one named like a
       * directory Warden binds could lead to the host's /), and bound through
       * that descriptor, alone (no MS_REC: nothing mounted below it comes). */
      struct open_how how = {
          .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
          .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
      };
      int src = (int)syscall(SYS_openat2, AT_FDCWD, o.bind_src[i], &how, sizeof how);
      if (src < 0) fail(o.bind_src[i]);
      char via[64];
      snprintf(via, sizeof via, "/proc/self/fd/%d", src);
      if (mount(via, path, NULL, MS_BIND, NULL) < 0) fail(o.bind_src[i]);
      close(src);
      if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        fail("remount bind read-only");
    }
  } else if (o.join) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/mnt", o.join);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNS) < 0) fail("join the box's mount namespace");
    close(ns);
  }

  pid_t child = fork();
  if (child < 0) fail("fork");
  if (child == 0) {
    if (o.runsc) become_runsc(&o);
    become_sandbox(&o);
  }
  /* The sandbox's fds are its own now: their ends must close when it ends. */
  for (int i = 0; i < o.n_keep_fds; i++)
    if (o.keep_fds[i] != control_fd) close(o.keep_fds[i]);
  if (o.mount) report("R");

  /* Reap bubblewrap and every orphan it leaves, until no child is left. */
  int status = 0;
  for (;;) {
    int s;
    pid_t r = waitpid(-1, &s, 0);
    if (r == child) status = s;
    if (r < 0 && errno == ECHILD) break;
    if (r < 0 && errno != EINTR) fail("waitpid");
    if (terminate_requested) kill(child, SIGKILL);
  }
  int hold = 0;
  if (o.workspace) {
    /* Usage is read before the workspace may go, to tell "disk full" apart. */
    struct statvfs st;
    if (statvfs(o.workspace, &st) == 0)
      report("U %llu %llu %llu", (unsigned long long)(st.f_blocks - st.f_bfree) * st.f_frsize,
             (unsigned long long)st.f_bavail * st.f_frsize, (unsigned long long)st.f_favail);
    hold = o.mount;
  }
  if (!hold) {
    report("S %d", status);
    return 0;
  }
  /* The sandbox's output ends here, while the namespace (and the workspace in
   * it) lives on until Warden closes the control fd. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    for (int fd = 0; fd <= 2; fd++) dup2(null, fd);
  report("H");
  report("S %d", status);
  /* Until EOF, an error, or SIGTERM (a read it interrupts fails with EINTR). */
  char byte;
  for (;;) {
    ssize_t n = read(control_fd, &byte, 1);
    if (terminate_requested || n == 0 || (n < 0 && errno != EINTR)) break;
  }
  return 0;
}
