# Shared by the bench scripts (sourced): a temporary directory and the
# background processes started in it, all stopped and removed on exit.

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background, output in $tmp/NAME.log;
# its pid is in $last_pid.
start() {
  local name=$1; shift
  "$@" >"$tmp/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}
