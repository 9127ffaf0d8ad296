/*
 * seccomp-gen: writes Warden's seccomp filter, compiled by libseccomp, as raw
 * BPF to the file named on the command line. bubblewrap loads it with
 * `--seccomp FD` just before the sandboxed program starts.
 *
 * The policy is "allow by default, deny a fixed list": the list covers every
 * syscall Docker's default profile leaves out, plus the newer kernel attack
 * surface (io_uring, bpf, userfaultfd, the new mount API...). Syscalls this
 * libseccomp does not know are skipped, so the filter builds on older hosts.
 * Any non-native ABI (i386 via int 0x80, x32) kills the process outright.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Denied with EPERM, as Docker does. */
static const char *const denied[] = {
    /* kernel and system administration */
    "acct", "bpf", "clock_adjtime", "clock_settime", "settimeofday", "stime",
    "create_module", "delete_module", "finit_module", "init_module",
    "get_kernel_syms", "query_module", "kexec_file_load", "kexec_load",
    "reboot", "swapon", "swapoff", "syslog", "sysfs", "_sysctl", "uselib",
    "ustat", "nfsservctl", "lookup_dcookie", "vhangup", "quotactl",
    "quotactl_fd", "iopl", "ioperm", "vm86", "vm86old",
    /* keyrings */
    "add_key", "keyctl", "request_key",
    /* inspecting or writing other processes */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_getfd", "perf_event_open",
    /* memory-policy and page migration */
    "get_mempolicy", "set_mempolicy", "mbind", "move_pages", "migrate_pages",
    "userfaultfd",
    /* namespaces and mounts: the sandbox must not rebuild its own walls */
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    /* io_uring bypasses per-syscall filtering entirely */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* fanotify can watch mounts; personality can re-enable legacy layouts */
    "fanotify_init", "personality",
};

static int deny(scmp_filter_ctx ctx, const char *name, int err) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return 0; /* unknown here: nothing to deny */
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0);
  /* -EDOM/-EEXIST: a pseudo-syscall not present on this arch */
  if (rc < 0 && rc != -EDOM && rc != -EEXIST) {
    fprintf(stderr, "seccomp-gen: rule for %s: %s\n", name, strerror(-rc));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: seccomp-gen OUTPUT.bpf\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return 1;
  /* A syscall made through another ABI skips every rule below: kill it. */
  if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
    return 1;
  for (size_t i = 0; i < sizeof denied / sizeof *denied; i++)
    if (deny(ctx, denied[i], EPERM) < 0) return 1;

  /* clone3 passes its flags in memory a filter cannot read: answer ENOSYS
   * so libc falls back to clone(2), whose flags we can check. */
  if (deny(ctx, "clone3", ENOSYS) < 0) return 1;
  const unsigned long ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                 CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                 CLONE_NEWCGROUP | 0x00000080UL /* CLONE_NEWTIME */;
  /* One rule per namespace flag: any of them set means EPERM. */
  for (unsigned long bit = 1; bit; bit <<= 1) {
    if (!(ns_flags & bit)) continue;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit)) < 0) {
      fprintf(stderr, "seccomp-gen: clone rule failed\n");
      return 1;
    }
  }
  /* TIOCSTI pushes keystrokes into a terminal the sandbox shares. */
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, 0x5412UL)) < 0)
    return 1;

  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror("seccomp-gen: open");
    return 1;
  }
  int rc = seccomp_export_bpf(ctx, fd);
  close(fd);
  seccomp_release(ctx);
  if (rc < 0) {
    fprintf(stderr, "seccomp-gen: export: %s\n", strerror(-rc));
    return 1;
  }
  return 0;
}
