/* Makes a syscall through the 32-bit int 0x80 entry, which skips x86-64 rules. */
#include <stdio.h>
int main(void) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) /* getpid on i386 */ : "memory");
  printf("i386 syscall returned %ld\n", ret);
  return 0;
}
