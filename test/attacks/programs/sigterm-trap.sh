# Ignores SIGTERM and spins, in the script and in a child.
trap '' TERM
( trap '' TERM; while :; do :; done ) &
while :; do :; done
