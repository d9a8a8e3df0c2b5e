# Shared helpers for scripts/*. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HA_VERSION="2025.4.4"
CHROMIUM="${SECMON_CHROMIUM:-/usr/bin/chromium}"

# find_python MAJOR.MINOR: prints an interpreter of that version (PATH first, then pyenv).
find_python() {
    local want="$1" cand
    for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/$want"*/bin/"python$want")" \
                /root/.pyenv/versions/"$want"*/bin/"python$want" /usr/bin/"python$want" /usr/local/bin/"python$want"; do
        [ -n "$cand" ] || continue
        for c in $cand; do
            if "$c" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$want' else 1)" >/dev/null 2>&1; then
                command -v "$c" || echo "$c"
                return 0
            fi
        done
    done
    return 1
}

# extra_requirements EXTRA: the requirement strings of one optional-dependency group of pyproject.toml.
extra_requirements() {
    "$(find_python 3.11 || find_python 3.13)" - "$1" <<'PY'
import sys, tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
group = sys.argv[1]
reqs = project["dependencies"] if group == "main" else project["optional-dependencies"][group]
print("\n".join(reqs))
PY
}
