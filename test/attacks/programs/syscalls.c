/* Calls each dangerous syscall directly and prints "name errno" for each. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRY(name, call)                                            \
  do {                                                             \
    errno = 0;                                                     \
    long r = (call);                                               \
    printf("%s %s\n", name, r == -1 ? strerrorname_np(errno) : "ALLOWED"); \
  } while (0)

int main(void) {
  char buf[64] = {0};
  /* Each line out at once: a kernel that stops us part-way still shows what it answered. */
  setvbuf(stdout, NULL, _IONBF, 0);
  TRY("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0));
  TRY("umount2", syscall(SYS_umount2, "/proc", 0));
  TRY("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
  TRY("unshare_mount", syscall(SYS_unshare, CLONE_NEWNS));
  TRY("unshare_net", syscall(SYS_unshare, CLONE_NEWNET));
  TRY("setns", syscall(SYS_setns, 0, 0));
  TRY("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  TRY("clone3", syscall(SYS_clone3, buf, sizeof buf));
  TRY("io_uring_setup", syscall(SYS_io_uring_setup, 8, buf));
  TRY("bpf", syscall(SYS_bpf, 0, buf, sizeof buf));
  TRY("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
  TRY("add_key", syscall(SYS_add_key, "user", "k", "v", 1, 0));
  TRY("request_key", syscall(SYS_request_key, "user", "k", 0, 0));
  TRY("userfaultfd", syscall(SYS_userfaultfd, 0));
  TRY("perf_event_open", syscall(SYS_perf_event_open, buf, 0, -1, -1, 0));
  TRY("process_vm_readv", syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0));
  TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, 0, buf, 0));
  TRY("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
  TRY("fsmount", syscall(SYS_fsmount, 0, 0, 0));
  TRY("move_mount", syscall(SYS_move_mount, 0, "", 0, "/tmp", 0));
  TRY("open_tree", syscall(SYS_open_tree, 0, "/", 0));
  TRY("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
  TRY("chroot", syscall(SYS_chroot, "/tmp"));
  TRY("init_module", syscall(SYS_init_module, buf, sizeof buf, ""));
  TRY("finit_module", syscall(SYS_finit_module, 0, "", 0));
  TRY("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
  TRY("reboot", syscall(SYS_reboot, 0, 0, 0, 0));
  TRY("swapon", syscall(SYS_swapon, "/tmp/x", 0));
  TRY("acct", syscall(SYS_acct, "/tmp/x"));
  TRY("settimeofday", syscall(SYS_settimeofday, 0, 0));
  TRY("personality", syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
  TRY("ioctl_tiocsti", syscall(SYS_ioctl, 0, 0x5412, "x"));
  TRY("setuid_root", syscall(SYS_setuid, 0));
  /* Last: where a kernel allows it (gVisor's own), the next signal would stop us for a tracer. */
  TRY("ptrace", syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0));
  return 0;
}
