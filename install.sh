#!/usr/bin/env bash
# Creates .venv with Python 3.13 and installs plato-sedna with its dev extras.
set -euo pipefail
cd "$(dirname "$0")"

find_python313() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 "$HOME/.pyenv/versions/3.13"*/bin/python3.13; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        candidate="$(pyenv root)/versions/$(pyenv versions --bare | grep -E '^3\.13' | tail -n1)/bin/python3.13"
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    fi
    return 1
}

if ! PYTHON313="$(find_python313)"; then
    cat >&2 <<'MSG'
plato-sedna needs Python 3.13 (plato-learn 1.41 requires it), and none was found:
not as $PYTHON, not as python3.13 on PATH, not under pyenv.
Install it, then run ./install.sh again, for example:
  pyenv install 3.13            # with pyenv
  sudo apt install python3.13   # Debian/Ubuntu with a 3.13 package
or point PYTHON at an interpreter:  PYTHON=/path/to/python3.13 ./install.sh
MSG
    exit 1
fi

echo "Using $PYTHON313"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then
    rm -rf .venv
    "$PYTHON313" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install -c constraints.txt -e '.[dev]'  # the versions tested together
.venv/bin/python demos/quickstart/prepare_data.py  # the quickstart's digits images and indexes
echo
echo "Installed. Run the tests with:  .venv/bin/pytest"
