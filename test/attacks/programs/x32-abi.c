/* Makes a syscall through the x32 ABI (number | 0x40000000), which has its own table. */
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
  long ret = syscall(39 | 0x40000000L); /* getpid, x32 */
  printf("x32 syscall returned %ld\n", ret);
  return 0;
}
