/*
 * warden-init: PID 1 inside every sandbox (bubblewrap --as-pid-1).
 *
 * It starts the program, reaps every orphan the program leaves, and when the
 * program ends it kills whatever is left in the sandbox's PID namespace and
 * writes the program's exact outcome ("exit N" or "signal N") to the status fd.
 * bubblewrap alone folds a signal death into exit code 128+N, which cannot be
 * told apart from a program that exits with 137 on purpose.
 *
 * The status fd is closed before the program runs, so the program cannot
 * forge its own outcome.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(int fd, const char *line) {
  ssize_t ignored = write(fd, line, strlen(line));
  (void)ignored;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: warden-init STATUS_FD PROGRAM ARGS...\n");
    return 127;
  }
  int status_fd = atoi(argv[1]);
  if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0) return 127;

  pid_t child = fork();
  if (child < 0) {
    say(status_fd, "error fork\n");
    return 127;
  }
  if (child == 0) {
    /* The program gets default signal dispositions, not PID 1's. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[2], argv + 2);
    char line[64];
    snprintf(line, sizeof line, "error exec %d\n", errno);
    say(status_fd, line);
    _exit(127);
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
