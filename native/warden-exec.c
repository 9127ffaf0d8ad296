/*
 * warden-exec: the privileged step between Warden (root) and bubblewrap.
 *
 * Node.js cannot run code between fork and exec, yet a sandbox must enter its
 * cgroups, take its rlimits and drop to its own uid *before* it executes
 * anything, or a fast fork would escape the limits. This helper does exactly
 * that and nothing else:
 *
 *   1. with --mount, mounts a size-limited tmpfs on --workspace DIR,
 *      reports "R" on the control fd and waits for "G" (Warden fills the
 *      workspace in between);
 *   2. forks a child that writes its pid into each cgroup file, applies the
 *      rlimits, clears supplementary groups, switches to the sandbox uid/gid,
 *      sets no_new_privs and execs the program (bubblewrap);
 *   3. waits for the child, reports the workspace's usage ("U <used> <free>"
 *      bytes, then free inodes), unmounts it with --umount (unless --keep-if
 *      names a non-empty directory: "K"), then reports "S <wait status>" on the
 *      control fd.
 *
 * Errors go to the control fd as "E <message>", never to the sandbox's stderr.
 * If Warden dies, PR_SET_PDEATHSIG delivers SIGTERM here and the child is
 * killed; whatever still remains is the start-up janitor's job.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 16
#define MAX_FD 64

static int control_fd = -1;
static volatile sig_atomic_t terminate_requested = 0;

static void report(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
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

static const struct {
  const char *name;
  int resource;
} rlimit_names[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},
    {"fsize", RLIMIT_FSIZE},   {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},
    {"stack", RLIMIT_STACK},   {"memlock", RLIMIT_MEMLOCK},
};

struct options {
  const char *workspace;
  const char *keep_if;
  int mount, umount;
  unsigned long long mount_bytes, mount_inodes;
  const char *cgroups[MAX_LIST];
  int n_cgroups;
  int rlimit_res[MAX_LIST];
  rlim_t rlimit_val[MAX_LIST];
  int n_rlimits;
  int keep_fds[MAX_LIST];
  int n_keep_fds;
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
    if (!strcmp(a, "--umount")) {
      o->umount = 1;
      continue;
    }
    if (!v) break;
    i++;
    if (!strcmp(a, "--keep-if")) {
      o->keep_if = v;
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
      int found = -1;
      for (size_t k = 0; eq && k < sizeof rlimit_names / sizeof *rlimit_names; k++)
        if (strlen(rlimit_names[k].name) == len && !strncmp(v, rlimit_names[k].name, len))
          found = rlimit_names[k].resource;
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
  if ((o->mount || o->umount) && !o->workspace) {
    report("E --mount and --umount need --workspace");
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

/* Runs in the forked child: enter limits, drop privileges, exec. */
static void become_sandbox(const struct options *o) {
  close_other_fds(o);
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

/* 1 when `path` is a directory (not a symlink to one) with at least one entry. */
static int dir_has_entries(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return 0;
  }
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) found = 1;
  closedir(d);
  return found;
}

static void on_term(int sig) {
  (void)sig;
  terminate_requested = 1;
}

int main(int argc, char **argv) {
  struct options o;
  parse(argc, argv, &o);
  if (control_fd >= 0) fcntl(control_fd, F_SETFD, FD_CLOEXEC);

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
    char data[128];
    snprintf(data, sizeof data, "size=%llu,nr_inodes=%llu,mode=0700,uid=%ld,gid=%ld",
             o.mount_bytes, o.mount_inodes, o.uid, o.gid);
    if (mount("tmpfs", o.workspace, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0)
      fail("mount workspace");
    report("R");
    char go = 0;
    ssize_t n;
    do n = read(control_fd, &go, 1);
    while (n < 0 && errno == EINTR && !terminate_requested);
    if (n != 1 || go != 'G') {
      umount2(o.workspace, MNT_DETACH);
      return 125;
    }
  }

  pid_t child = fork();
  if (child < 0) fail("fork");
  if (child == 0) become_sandbox(&o);

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
  if (o.workspace) {
    /* Usage is read before the workspace may go, to tell "disk full" apart. */
    struct statvfs st;
    if (statvfs(o.workspace, &st) == 0)
      report("U %llu %llu %llu", (unsigned long long)(st.f_blocks - st.f_bfree) * st.f_frsize,
             (unsigned long long)st.f_bavail * st.f_frsize, (unsigned long long)st.f_favail);
    /* --keep-if: a non-empty directory there (artifacts to collect) keeps the
     * workspace mounted for Warden to read. Warden creates output/ in every
     * workspace, so mere existence would keep every one: only entries count, and a
     * run without artifacts costs nothing more. Every process of the sandbox is
     * dead by now (we are its subreaper and waited for all), so nothing can change
     * it any more; O_NOFOLLOW still refuses a symlink left in its place. */
    int keep = 0;
    if (o.umount && o.keep_if) {
      char path[4096];
      if (snprintf(path, sizeof path, "%s/%s", o.workspace, o.keep_if) < (int)sizeof path)
        keep = dir_has_entries(path);
    }
    if (keep)
      report("K");
    else if (o.umount && umount2(o.workspace, MNT_DETACH) < 0)
      report("E umount: %s", strerror(errno));
  }
  report("S %d", status);
  return 0;
}
