# warden bash context: the rc file of an interactive bash the session agent
# keeps per session (native/kernel-bash.cjs). The agent writes one line per
# cell on stdin, `__warden_cell MARKER FILE`; the cell runs in this shell (so
# cd, variables and exports persist) with stdin from /dev/null and without
# fd 3; then, before the next prompt, PROMPT_COMMAND writes `MARKER STATUS`
# on fd 3. An interrupt (SIGINT to the process group) abandons the cell as
# in a terminal, and the prompt still reports it (status 130).
PS1= PS2= PS4='+ '
HISTFILE=
set +o history +H
__warden_marker=
__warden_done() {
  local status=$?
  if [[ -n $__warden_marker ]]; then
    printf '%s %d\n' "$__warden_marker" "$status" >&3
    __warden_marker=
  fi
}
__warden_cell() {
  __warden_marker=$1
  local file=$2
  set --
  source "$file" </dev/null 3>&-
}
PROMPT_COMMAND=__warden_done
