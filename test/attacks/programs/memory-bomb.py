# Grabs memory 8 MiB at a time and touches every page.
hoard = []
while True:
    hoard.append(bytearray(8 * 1024 * 1024))
