#!/usr/bin/env bash
# The main job on the built-in reference checkout: a sandbox git repo of the AFASA example in
# its "before" state, a config written by `afasa-ops init`, then doctor and plan.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=.demo
repo=$demo/Afasa-main
if [ ! -d "$repo/.git" ]; then
  echo "creating the sandbox repo $repo (the AFASA example as found)" >&2
  rm -rf "$repo"
  mkdir -p "$demo"
  cp -r examples/afasa "$repo"
  git -C "$repo" init -q -b main
  git -C "$repo" -c user.email=ops@example.org -c user.name="AFASA Ops" add -A
  git -C "$repo" -c user.email=ops@example.org -c user.name="AFASA Ops" commit -q -m "AFASA as found"
fi
ops() { .venv/bin/afasa-ops --config "$demo/afasa-ops.toml" "$@"; }
.venv/bin/afasa-ops init "$repo" --output "$demo/afasa-ops.toml" --force
status=0
ops doctor config repo tools || status=$?
ops plan || status=$?
# plan exits 3 when it finds changes to make: that is the expected answer on a "before" repo.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
  exit "$status"
fi
