#!/usr/bin/env bash
# Applies datahub-v1.7.0.patch (the "Run ingestion" button) to a DataHub checkout.
#
#   frontend-patch/apply.sh [--check] <datahub-checkout>
#
#   --check   only report whether the patch applies (or is already applied); change nothing.
#
# Exit codes: 0 applied (or already applied / would apply with --check), 1 the patch does not apply,
#             2 usage error or not a DataHub checkout.
# The patch is self-contained (the component sources are in it); nothing else is copied.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
patch_file="$here/datahub-v1.7.0.patch"
header_rel="datahub-web-react/src/app/entityV2/shared/containers/profile/header/DefaultEntityHeader.tsx"
button_dir_rel="datahub-web-react/src/app/entityV2/shared/containers/profile/header/RunIngestionButton"

usage() {
    echo "usage: $(basename "$0") [--check] <datahub-checkout>" >&2
}

check_only=0
target=""
for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "error: unknown option: $arg" >&2
            usage
            exit 2
            ;;
        *)
            if [[ -n "$target" ]]; then
                echo "error: more than one checkout given" >&2
                usage
                exit 2
            fi
            target="$arg"
            ;;
    esac
done

if [[ -z "$target" ]]; then
    usage
    exit 2
fi
if [[ ! -f "$patch_file" ]]; then
    echo "error: $patch_file is missing" >&2
    exit 2
fi
if [[ ! -d "$target" ]]; then
    echo "error: $target is not a directory" >&2
    exit 2
fi
target="$(cd "$target" && pwd)"

# --- is it a DataHub checkout? -------------------------------------------------------------------------------
missing=()
[[ -f "$target/datahub-web-react/package.json" ]] || missing+=("datahub-web-react/package.json")
[[ -f "$target/datahub-frontend/conf/routes" ]] || missing+=("datahub-frontend/conf/routes")
[[ -f "$target/$header_rel" ]] || missing+=("$header_rel")
if ((${#missing[@]})); then
    echo "error: $target is not a DataHub checkout (expected the datahub-project/datahub repository root)." >&2
    printf '  missing: %s\n' "${missing[@]}" >&2
    exit 2
fi
if ! grep -q '"name": *"datahub-react-web"' "$target/datahub-web-react/package.json"; then
    echo "error: $target/datahub-web-react/package.json is not DataHub's web app (name is not datahub-react-web)." >&2
    exit 2
fi

# --- which tool applies it -----------------------------------------------------------------------------------
# git apply is exact (no fuzz) and atomic. GIT_CEILING_DIRECTORIES stops git from finding a repository *above* the
# checkout (a checkout inside some other work tree would otherwise get paths resolved against that tree's root).
# Without git, patch(1) is used with fuzz disabled.
use_git=0
if command -v git > /dev/null 2>&1; then
    use_git=1
    GIT_CEILING_DIRECTORIES="$(dirname "$target")"
    export GIT_CEILING_DIRECTORIES
elif ! command -v patch > /dev/null 2>&1; then
    echo "error: neither git nor patch(1) is available" >&2
    exit 2
fi

run_check() { # $1: forward|reverse; prints the tool's complaint on failure
    if ((use_git)); then
        if [[ "$1" == reverse ]]; then
            (cd "$target" && git apply --check --reverse "$patch_file" 2>&1)
        else
            (cd "$target" && git apply --check "$patch_file" 2>&1)
        fi
    else
        # --force: never guess that a patch is reversed or already applied; just report failing hunks.
        if [[ "$1" == reverse ]]; then
            (cd "$target" && patch -p1 -R -F0 --force --dry-run --silent < "$patch_file" 2>&1)
        else
            (cd "$target" && patch -p1 -F0 --force --dry-run --silent < "$patch_file" 2>&1)
        fi
    fi
}

tool="patch(1)"
((use_git)) && tool="git apply"

if run_check reverse > /dev/null 2>&1; then
    echo "already applied: $target has the Run ingestion patch; nothing to do."
    exit 0
fi

if ! complaint="$(run_check forward)"; then
    echo "error: the patch does NOT apply to $target; nothing was changed." >&2
    echo "  It targets DataHub v1.7.0 (datahub-web-react); this checkout's files differ where the patch edits them," >&2
    echo "  or some of the files it adds already exist ($button_dir_rel/)." >&2
    echo "  $tool said:" >&2
    printf '%s\n' "$complaint" | sed 's/^/    /' >&2
    exit 1
fi

if ((check_only)); then
    echo "ok: the patch applies cleanly to $target (checked with $tool; nothing changed)."
    exit 0
fi

if ((use_git)); then
    (cd "$target" && git apply "$patch_file")
else
    (cd "$target" && patch -p1 -F0 --force --no-backup-if-mismatch --silent < "$patch_file")
fi

echo "applied: Run ingestion button added to $target"
echo "  new:     $button_dir_rel/"
echo "  changed: $header_rel"
echo "next: build the frontend (see frontend-patch/README.md), e.g.  ./gradlew :datahub-frontend:dist"
