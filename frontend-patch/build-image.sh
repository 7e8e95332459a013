#!/usr/bin/env bash
# Builds DataHub's frontend image with the "Run ingestion" button.
#
#   frontend-patch/build-image.sh [--dry-run] [--skip-patch] [--push] [--platform P] \
#       <datahub-checkout> <image-tag>
#
#   --dry-run     print the commands, run nothing (the checkout is still checked)
#   --skip-patch  the checkout is already patched another way: do not run apply.sh
#   --push        docker push <image-tag> after the build (for a cluster's registry)
#   --platform P  build for another platform, e.g. linux/amd64 from an arm64 laptop
#
# Steps, all DataHub's own: apply.sh (idempotent), `./gradlew :datahub-frontend:dist` in the
# checkout (the Play app with the React UI inside, as a zip), then `docker build` with DataHub's
# docker/datahub-frontend/Dockerfile on a small context holding exactly what that Dockerfile
# COPYs (the zip as ./datahub-frontend.zip, plus the files it names from the checkout), so the
# whole checkout (node_modules, Gradle caches: several GB) is not sent to the Docker daemon.
#
# Needs: JDK 17, docker with BuildKit, about 8 GB of free memory and 15 GB of free disk; a cold
# build takes 15-40 minutes (details: frontend-patch/README.md and compose/README.md).
#
# Exit codes: 0 built (or printed), 1 a step failed, 2 usage error or not a DataHub checkout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dockerfile_rel="docker/datahub-frontend/Dockerfile"
gradle_task=":datahub-frontend:dist"
# The UI's unit tests and lint are DataHub's, not ours, and double the build time.
read -r -a gradle_args <<< "${GRADLE_ARGS:--x test -x yarnTest -x yarnLint}"
min_disk_gb=15
min_mem_gb=8

usage() {
    echo "usage: $(basename "$0") [--dry-run] [--skip-patch] [--push] [--platform P] <datahub-checkout> <image-tag>" >&2
}

dry_run=0
skip_patch=0
push=0
platform=""
positional=()
while (($#)); do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --skip-patch) skip_patch=1 ;;
        --push) push=1 ;;
        --platform)
            if (($# < 2)); then
                echo "error: --platform needs a value" >&2
                exit 2
            fi
            platform="$2"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "error: unknown option: $1" >&2
            usage
            exit 2
            ;;
        *) positional+=("$1") ;;
    esac
    shift
done
if ((${#positional[@]} != 2)); then
    usage
    exit 2
fi
checkout="${positional[0]}"
tag="${positional[1]}"

# A docker reference: [registry[:port]/]name[:tag], lower-case name components.
if ! [[ "$tag" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$ ]]; then
    echo "error: '$tag' is not a valid image reference (e.g. my-registry.example.com/datahub-frontend-react:v1.7.0-lambda-trigger)" >&2
    exit 2
fi
if [[ ! -d "$checkout" ]]; then
    echo "error: $checkout is not a directory" >&2
    exit 2
fi
checkout="$(cd "$checkout" && pwd)"

missing=()
[[ -f "$checkout/$dockerfile_rel" ]] || missing+=("$dockerfile_rel")
[[ -f "$checkout/gradlew" ]] || missing+=("gradlew")
[[ -f "$checkout/datahub-frontend/conf/routes" ]] || missing+=("datahub-frontend/conf/routes")
[[ -f "$checkout/datahub-web-react/package.json" ]] || missing+=("datahub-web-react/package.json")
if ((${#missing[@]})); then
    echo "error: $checkout is not a DataHub checkout (expected the datahub-project/datahub repository root)." >&2
    printf '  missing: %s\n' "${missing[@]}" >&2
    exit 2
fi

# --- what DataHub's Dockerfile copies from its context --------------------------------------------
# Every `COPY` without --from: its sources (all words but the last, flags dropped). The zip is
# Gradle's output; everything else comes from the checkout at the same path.
context_files=()
while IFS= read -r line; do
    read -r -a words <<< "$line"
    sources=()
    for word in "${words[@]:1}"; do
        [[ "$word" == --* ]] && continue
        sources+=("$word")
    done
    ((${#sources[@]} >= 2)) || continue
    unset 'sources[${#sources[@]}-1]'
    for source in "${sources[@]}"; do
        context_files+=("${source#./}")
    done
done < <(grep -E '^[[:space:]]*COPY[[:space:]]' "$checkout/$dockerfile_rel" | grep -v -- '--from=' || true)
if ((${#context_files[@]} == 0)); then
    echo "error: $checkout/$dockerfile_rel copies nothing from its context; is it DataHub's frontend Dockerfile?" >&2
    exit 2
fi
zip_found=0
for file in "${context_files[@]}"; do
    if [[ "$file" == "datahub-frontend.zip" ]]; then
        zip_found=1
    elif ((!dry_run)) && [[ ! -e "$checkout/$file" ]]; then
        echo "error: $dockerfile_rel copies $file, which is not in $checkout" >&2
        exit 2
    fi
done
if ((!zip_found)); then
    echo "error: $dockerfile_rel does not copy ./datahub-frontend.zip; this script knows DataHub's v1.x layout only" >&2
    exit 2
fi

# --- resources: warn, do not refuse (a remote builder may do the work) -----------------------------
free_disk_gb="$(df -Pk "$checkout" | awk 'NR==2 {print int($4 / 1048576)}')"
mem_gb="$(awk '/^MemAvailable:/ {print int($2 / 1048576)}' /proc/meminfo 2> /dev/null || echo "")"
if [[ -n "$free_disk_gb" ]] && ((free_disk_gb < min_disk_gb)); then
    echo "warning: ${free_disk_gb} GB free under $checkout; the build needs about ${min_disk_gb} GB" >&2
fi
if [[ -n "$mem_gb" ]] && ((mem_gb < min_mem_gb)); then
    echo "warning: ${mem_gb} GB of memory available; the Gradle + Vite build needs about ${min_mem_gb} GB" >&2
fi
if ((!dry_run)); then
    for tool in docker java; do
        if ! command -v "$tool" > /dev/null 2>&1; then
            echo "error: $tool is not on PATH (the build needs JDK 17 and docker)" >&2
            exit 1
        fi
    done
fi

# --- the steps ------------------------------------------------------------------------------------
run() { # prints the command; runs it unless --dry-run
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if ((!dry_run)); then
        "$@"
    fi
}

run_in() { # like run, in a directory (no `env -C`: macOS's env lacks it)
    local dir="$1"
    shift
    printf '+ (cd %q &&' "$dir"
    printf ' %q' "$@"
    printf ')\n'
    if ((!dry_run)); then
        (cd "$dir" && "$@")
    fi
}

if ((!skip_patch)); then
    run "$here/apply.sh" "$checkout"
fi

run_in "$checkout" ./gradlew "$gradle_task" ${gradle_args[@]+"${gradle_args[@]}"}

if ((dry_run)); then
    # Names only: nothing is built, so neither the zip nor the context exists yet.
    zip="$checkout/datahub-frontend/build/distributions/datahub-frontend-VERSION.zip"
    context="$(mktemp -u "${TMPDIR:-/tmp}/datahub-frontend-context.XXXXXX")"
else
    shopt -s nullglob
    zips=("$checkout"/datahub-frontend/build/distributions/datahub-frontend*.zip)
    shopt -u nullglob
    if ((${#zips[@]} != 1)); then
        echo "error: expected exactly one datahub-frontend*.zip in $checkout/datahub-frontend/build/distributions, found ${#zips[@]}" >&2
        echo "  (remove old ones, or run ./gradlew :datahub-frontend:clean first)" >&2
        exit 1
    fi
    zip="${zips[0]}"
    context="$(mktemp -d "${TMPDIR:-/tmp}/datahub-frontend-context.XXXXXX")"
    trap 'rm -rf "$context"' EXIT
fi

run mkdir -p "$context"
run cp "$zip" "$context/datahub-frontend.zip"
for file in "${context_files[@]}"; do
    [[ "$file" == "datahub-frontend.zip" ]] && continue
    run mkdir -p "$context/$(dirname "$file")"
    run cp -R "$checkout/$file" "$context/$file"
done

# DataHub's Dockerfile uses COPY --chmod, which needs BuildKit.
build=(env DOCKER_BUILDKIT=1 docker build -f "$checkout/$dockerfile_rel" -t "$tag")
[[ -n "$platform" ]] && build+=(--platform "$platform")
build+=("$context")
run "${build[@]}"

if ((push)); then
    run docker push "$tag"
fi

if ((dry_run)); then
    echo "dry run: nothing was run."
else
    echo "built: $tag"
    echo "next: run it in place of DataHub's frontend (compose: DATAHUB_FRONTEND_IMAGE=$tag; Helm: datahub-frontend.image)"
fi
