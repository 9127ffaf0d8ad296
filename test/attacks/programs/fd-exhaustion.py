# Opens descriptors until the kernel refuses, and reports how many it got.
import errno
fds = []
try:
    while True:
        fds.append(open("/dev/null"))
except OSError as e:
    print(len(fds), errno.errorcode[e.errno])
