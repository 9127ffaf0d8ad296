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
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: warden-init STATUS_FD [--bridge SOCKET PORT] PROGRAM ARGS...\n");
    return 127;
  }
  int status_fd = atoi(argv[1]);
  if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0) return 127;
  int program = 2;
  if (argc >= 6 && strcmp(argv[2], "--bridge") == 0) {
    int listen_fd = bridge_listen(atoi(argv[4]));
    if (listen_fd < 0) {
      say(status_fd, "error bridge\n");
      return 127;
    }
    pid_t bridge = fork();
    if (bridge == 0) {
      close(status_fd);
      bridge_serve(listen_fd, argv[3]);
    }
    close(listen_fd);
    program = 5;
  }

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
    execv(argv[program], argv + program);
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
