#!/usr/bin/env bash
# ansible-test sanity, offline.
# ansible-test wants the collection at ansible_collections/<ns>/<name> and
# downloads a pip bootstrap script on start; we stage a copy of the tracked
# files and give it a local stand-in for that script (see TESTBED.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
venv="$root/.venv"
stage="$root/.tmp/sanity/ansible_collections/circleci_server/aws"
cache="$HOME/.ansible/test/cache"
pip_version=24.2

mkdir -p "$cache" "$root/.tmp/wheels"
if ! ls "$root/.tmp/wheels"/pip-$pip_version-*.whl >/dev/null 2>&1; then
  "$venv/bin/pip" download -q --no-deps -d "$root/.tmp/wheels" "pip==$pip_version"
fi
wheel=$(ls "$root/.tmp/wheels"/pip-$pip_version-*.whl | head -n1)
cat > "$cache/get_pip_${pip_version//./_}.py" <<PY
# Offline stand-in for bootstrap.pypa.io/get-pip.py, written by tests/sandbox/bin/sanity.sh:
# runs pip from the local wheel with the arguments ansible-test passes.
import sys
sys.path.insert(0, "$wheel")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install"] + args))
PY

rm -rf "$stage"
mkdir -p "$stage"
# Tracked and new (not ignored) files only, as a clean clone would have them.
(cd "$root" && git ls-files -co --exclude-standard -z | grep -zv '^tests/sandbox/\|^tests/integration/\|^tests/standins/' \
  | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' | tar -cf - -T -) | tar -C "$stage" -xf -
# Collections ours builds on (amazon.aws: AnsibleAWSModule, AWSRetry, doc fragments) beside it,
# from the ansible package in the venv: ansible-test resolves them in the same ansible_collections.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for dep in amazon/aws community/general; do
  mkdir -p "$(dirname "$stage")/../${dep%/*}"
  ln -sfn "$site/ansible_collections/$dep" "$(dirname "$stage")/../$dep"
done
cd "$stage"
git init -q . && git add -A >/dev/null && git -c user.email=s@x -c user.name=sanity commit -qm stage
export PATH="$venv/bin:$PATH"
exec ansible-test sanity --color no --python 3.11 --requirements "$@"
