#!/usr/bin/env bash
# ansible-test sanity on the collection, without containers: ansible-test needs the collection under
# .../ansible_collections/tokenlabs/platform, so a copy of the tracked (and new, unignored) files is
# placed there, and each sanity test gets a virtualenv of its own pinned requirements (--venv).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/tokenlabs/platform"
mkdir -p "$dest"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | grep -z -v -E '^(services|tools|src|benchmarks)/' \
  | xargs -0 -I{} cp --parents {} "$dest/" 2>/dev/null || true
# ansible-test fetches a pip bootstrap script from a host outside the package registries; seed its cache.
pip_version=$(python -c 'from ansible_test._internal.python_requirements import PIP_VERSION as v; print(v)' 2>/dev/null || echo 24.2)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
[[ -f "$cache" ]] || install -D -m 0644 "$repo/tests/sanity/get_pip.py" "$cache"
# Modules extend kubernetes.core's doc fragments and module_utils; validate-modules resolves them
# from a sibling collection in the same tree.
core=$(python -c 'import ansible_collections.kubernetes.core as c; print(c.__path__[0])')
mkdir -p "$work/ansible_collections/kubernetes"
cp -r "$core" "$work/ansible_collections/kubernetes/core"
cd "$dest"
# The copy is not a git work tree; ansible-test then sanity-checks every file in it.
ansible-test sanity --venv --python 3.11 --color no --requirements "${@:-plugins/}"
