# Sourced by bin/wamgr and bin/test: make sure .venv exists and holds the project as
# pyproject.toml describes it, reinstalling when pyproject.toml changed.
# Usage: wamgr_venv [EXTRAS]   (EXTRAS like "dev"; empty for the runtime only)
set -euo pipefail
WAMGR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAMGR_VENV="${WAMGR_VENV:-$WAMGR_ROOT/.venv}"

wamgr_venv() {
    local extras="${1:-}"
    local spec="$WAMGR_ROOT"
    [ -n "$extras" ] && spec="$WAMGR_ROOT[$extras]"
    local stamp="$WAMGR_VENV/.wamgr-installed${extras:+-$extras}"
    local want
    want="$(sha256sum "$WAMGR_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -x "$WAMGR_VENV/bin/python" ]; then
        echo "wamgr: creating $WAMGR_VENV (first use)" >&2
        "${PYTHON:-python3}" -m venv "$WAMGR_VENV"
        "$WAMGR_VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "wamgr: installing ${spec} into $WAMGR_VENV" >&2
        "$WAMGR_VENV/bin/python" -m pip install --quiet -e "$spec" >&2
        echo "$want" > "$stamp"
    fi
}
