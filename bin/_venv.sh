# Sourced by bin/wamgr and bin/test: make sure .venv exists and holds the project as
# pyproject.toml describes it, reinstalling when pyproject.toml changed.
# Usage: wamgr_venv [EXTRAS]   (EXTRAS like "dev"; empty for the runtime only)
#
# Each step prints one line on stderr; an installer's own output goes to .venv/install.log,
# shown only when the step fails. The install uses uv (much faster) when PyPI has it, and
# falls back to pip. SIGTERM, SIGINT or SIGHUP during a step stops that step's whole process
# group too, so no pip or uv is left running behind an interrupted first start.
set -euo pipefail
WAMGR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAMGR_VENV="${WAMGR_VENV:-$WAMGR_ROOT/.venv}"
_wamgr_child=""

_wamgr_step() {
    echo "wamgr: $*" >&2
}

# Stop the running step (its process group) and exit as the signal would have.
_wamgr_interrupted() {
    local sig="$1"
    if [ -n "$_wamgr_child" ]; then
        kill -TERM -- "-$_wamgr_child" 2>/dev/null || kill -TERM "$_wamgr_child" 2>/dev/null || true
        wait "$_wamgr_child" 2>/dev/null || true
    fi
    _wamgr_step "set-up interrupted by SIG$sig; it starts again on the next run"
    trap - "$sig"
    kill -s "$sig" $$
}

# Run one command of the set-up in its own process group, its output into the install log.
# Returns the command's exit code; a signal to this script stops it (see above).
_wamgr_run() {
    local log="$1"
    shift
    if command -v setsid >/dev/null; then
        setsid "$@" >>"$log" 2>&1 </dev/null &
    else
        "$@" >>"$log" 2>&1 </dev/null &
    fi
    _wamgr_child=$!
    local rc=0
    wait "$_wamgr_child" || rc=$?
    _wamgr_child=""
    return "$rc"
}

_wamgr_fail() {
    local log="$1"
    shift
    _wamgr_step "$* failed; its output ($log):"
    tail -n 40 "$log" >&2 || true
    exit 1
}

wamgr_venv() {
    local extras="${1:-}"
    local spec="$WAMGR_ROOT"
    [ -n "$extras" ] && spec="$WAMGR_ROOT[$extras]"
    local stamp="$WAMGR_VENV/.wamgr-installed${extras:+-$extras}"
    local created="$WAMGR_VENV/.wamgr-created"
    local want
    want="$(sha256sum "$WAMGR_ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$WAMGR_VENV/bin/python" ]; then
        return 0
    fi
    trap '_wamgr_interrupted TERM' TERM
    trap '_wamgr_interrupted INT' INT
    trap '_wamgr_interrupted HUP' HUP
    local started=$SECONDS
    local log
    if [ -x "$WAMGR_VENV/bin/python" ] && compgen -G "$WAMGR_VENV/.wamgr-installed*" >/dev/null; then
        touch "$created" # made by an older bin/_venv.sh, and complete
    fi
    if [ ! -x "$WAMGR_VENV/bin/python" ] || [ ! -f "$created" ]; then
        # A folder without the marker is what an interrupted creation left: start it afresh.
        _wamgr_step "creating $WAMGR_VENV (first use)"
        log="$(mktemp)"
        _wamgr_run "$log" "${PYTHON:-python3}" -m venv --clear "$WAMGR_VENV" \
            || _wamgr_fail "$log" "creating $WAMGR_VENV"
        rm -f "$log"
        touch "$created"
    fi
    log="$WAMGR_VENV/install.log"
    : >"$log"
    local py="$WAMGR_VENV/bin/python"
    if [ ! -x "$WAMGR_VENV/bin/uv" ] && [ -z "${WAMGR_NO_UV:-}" ]; then
        _wamgr_step "installing the installer uv into $WAMGR_VENV"
        _wamgr_run "$log" "$py" -m pip install --quiet uv \
            || _wamgr_step "uv is not available (see $log); installing with pip instead"
    fi
    if [ -x "$WAMGR_VENV/bin/uv" ] && [ -z "${WAMGR_NO_UV:-}" ]; then
        _wamgr_step "installing ${spec} and its dependencies with uv"
        if ! _wamgr_run "$log" "$WAMGR_VENV/bin/uv" pip install --quiet --python "$py" -e "$spec"; then
            _wamgr_step "uv failed (see $log); installing with pip instead"
            _wamgr_run "$log" "$py" -m pip install --quiet -e "$spec" \
                || _wamgr_fail "$log" "installing $spec"
        fi
    else
        _wamgr_step "installing ${spec} and its dependencies with pip"
        _wamgr_run "$log" "$py" -m pip install --quiet -e "$spec" \
            || _wamgr_fail "$log" "installing $spec"
    fi
    echo "$want" >"$stamp"
    _wamgr_step "$WAMGR_VENV ready ($((SECONDS - started)) s)"
    trap - TERM INT HUP
}
