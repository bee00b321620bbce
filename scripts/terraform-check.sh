#!/usr/bin/env bash
# Offline checks of the Terraform under infra/:
#   1. terraform fmt -check -recursive infra
#   2. terraform init -backend=false + terraform validate in every module
#      (the AWS provider comes from a filesystem mirror; nothing is downloaded,
#      and the runs happen in a temporary copy so no .terraform/ or lock file
#      lands in the tree)
#   3. terraform test in every module with a tests/ folder: plans against
#      the mocked AWS provider (tests/mocks), asserting the module's contract;
#      needs Terraform 1.11+ (mock providers with override_during) and the
#      same provider mirror
#   4. tflint with only its bundled terraform ruleset (infra/.tflint.hcl),
#      built once from the Go module proxy into .cache/bin (git-ignored).
#
# A part whose tool is missing prints "skipping: ..." and does not fail the
# run; a real finding (unformatted file, invalid configuration, lint issue)
# does, and the script exits 1 after running every part.
#
# Environment:
#   TF_PLUGIN_MIRROR  folder containing registry.terraform.io/ (found if unset)
#   TFLINT_VERSION    tflint module version to build (default below)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

# Newest tflint on the module proxy that builds with Go 1.26 (GOTOOLCHAIN=local).
TFLINT_VERSION="${TFLINT_VERSION:-v0.64.0}"
BIN_DIR="$ROOT/.cache/bin"
# Every Terraform root or child module to init and validate.
MODULE_DIRS=(
  infra/services/usage-event-service
  infra/examples/usage-event-service
)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/terraform-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

failures=()
skipped=()
initialised=() # the module dirs whose init succeeded (in $WORK)
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }
section() { printf '\n== %s\n' "$*"; }
skip() {
  printf 'skipping: %s\n' "$*"
  skipped+=("$*")
}
fail() {
  printf 'FAILED: %s\n' "$*"
  failures+=("$*")
}

# The folder that contains registry.terraform.io/hashicorp/aws, or nothing.
find_mirror() {
  if [[ -n "${TF_PLUGIN_MIRROR:-}" ]]; then
    [[ -d "$TF_PLUGIN_MIRROR/registry.terraform.io/hashicorp/aws" ]] && echo "$TF_PLUGIN_MIRROR"
    return
  fi
  local d hit
  for d in /opt/tf-plugins "$HOME/.terraform.d/plugins" /usr/share/terraform/plugins /usr/local/share/terraform/plugins; do
    if [[ -d "$d/registry.terraform.io/hashicorp/aws" ]]; then
      echo "$d"
      return
    fi
  done
  hit="$(find / -maxdepth 5 -type d -path '*/registry.terraform.io/hashicorp/aws' -not -path '/proc/*' 2>/dev/null | head -n 1)"
  [[ -n "$hit" ]] && dirname "$(dirname "$(dirname "$hit")")"
}

# --- terraform ---------------------------------------------------------------

total_start="$(now)"
have_terraform=false
if command -v terraform >/dev/null 2>&1; then
  have_terraform=true
  export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
  # Never read the user's CLI configuration; an empty one until a mirror is found.
  export TF_CLI_CONFIG_FILE="$WORK/terraformrc"
  : >"$TF_CLI_CONFIG_FILE"
fi

section "1/4 terraform fmt -check -recursive infra"
if ! $have_terraform; then
  skip "terraform is not installed (fmt, init and validate)"
else
  start="$(now)"
  if terraform fmt -check -recursive -diff infra; then
    echo "ok ($(since "$start"))"
  else
    fail "terraform fmt: run 'terraform fmt -recursive infra' ($(since "$start"))"
  fi
fi

section "2/4 terraform init -backend=false && terraform validate"
mirror=""
if $have_terraform; then
  mirror="$(find_mirror)"
fi
platform=""
if $have_terraform; then
  platform="$(terraform version -json 2>/dev/null | sed -n 's/.*"platform": *"\([^"]*\)".*/\1/p')"
fi
if ! $have_terraform; then
  skip "terraform is not installed"
elif [[ -z "$mirror" ]]; then
  skip "no provider mirror (a folder holding registry.terraform.io/hashicorp/aws); set TF_PLUGIN_MIRROR"
elif ! compgen -G "$mirror/registry.terraform.io/hashicorp/aws/5.*/${platform:-*}" >/dev/null; then
  skip "the mirror at $mirror has no hashicorp/aws 5.x for ${platform:-this platform}"
else
  echo "provider mirror: $mirror (${platform:-unknown platform})"
  cat >"$TF_CLI_CONFIG_FILE" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
  # Work on a copy so that init's .terraform.lock.hcl stays out of the tree.
  tar -C "$ROOT" --exclude=.terraform --exclude=.terraform.lock.hcl -cf - infra | tar -C "$WORK" -xf -
  for dir in "${MODULE_DIRS[@]}"; do
    start="$(now)"
    export TF_DATA_DIR="$WORK/data/${dir//\//_}"
    log="$WORK/${dir//\//_}.log"
    if ! terraform -chdir="$WORK/$dir" init -backend=false -input=false -no-color >"$log" 2>&1; then
      cat "$log"
      fail "terraform init in $dir"
      continue
    fi
    initialised+=("$dir")
    init_time="$(since "$start")"
    start="$(now)"
    # validate reads no files: the example's package_path may point nowhere.
    if terraform -chdir="$WORK/$dir" validate -no-color >"$log" 2>&1; then
      echo "$dir: valid (init $init_time, validate $(since "$start"))"
      grep -i -A3 'warning' "$log" || true
    else
      cat "$log"
      fail "terraform validate in $dir"
    fi
  done
  unset TF_DATA_DIR
fi

section "3/4 terraform test (mocked AWS provider, offline)"
# The modules whose tests/ folder holds *.tftest.hcl files, run in the copy
# that step 2 initialised (the provider comes from the mirror).
tested=()
for dir in "${MODULE_DIRS[@]}"; do
  compgen -G "$ROOT/$dir/tests/*.tftest.hcl" >/dev/null && tested+=("$dir")
done
tf_version=""
if $have_terraform; then
  tf_version="$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([^"]*\)".*/\1/p')"
fi
if ! $have_terraform; then
  skip "terraform is not installed, so the module's terraform tests did not run"
elif [[ -z "$mirror" ]]; then
  skip "no provider mirror, so the module's terraform tests did not run (they need hashicorp/aws, mocked, installed from it)"
elif ! printf '%s\n1.11.0\n' "$tf_version" | sort -V -C -r; then
  skip "terraform ${tf_version:-of unknown version} is older than 1.11 (mock providers with override_during), so the module's terraform tests did not run"
elif ((${#tested[@]} == 0)); then
  skip "no module has tests/*.tftest.hcl"
else
  for dir in "${tested[@]}"; do
    if [[ ! " ${initialised[*]} " == *" $dir "* ]]; then
      fail "terraform test in $dir: not run, terraform init failed above"
      continue
    fi
    start="$(now)"
    export TF_DATA_DIR="$WORK/data/${dir//\//_}"
    log="$WORK/${dir//\//_}.test.log"
    if terraform -chdir="$WORK/$dir" test -no-color >"$log" 2>&1; then
      echo "$dir: $(tail -n 1 "$log") ($(since "$start"))"
    else
      cat "$log"
      fail "terraform test in $dir ($(since "$start"))"
    fi
  done
  unset TF_DATA_DIR
fi

# --- tflint ------------------------------------------------------------------

section "4/4 tflint $TFLINT_VERSION (bundled terraform ruleset only)"
tflint="$BIN_DIR/tflint"
cached_version=""
if [[ -x "$tflint" ]]; then
  cached_version="$("$tflint" --version 2>/dev/null | head -n 1)"
fi
if [[ "$cached_version" == "TFLint version ${TFLINT_VERSION#v}" ]]; then
  echo "using cached $tflint"
elif ! command -v go >/dev/null 2>&1; then
  skip "go is not installed, so tflint cannot be built"
  tflint=""
else
  echo "building tflint $TFLINT_VERSION into $BIN_DIR (first run only; a few minutes with a cold module cache)..."
  start="$(now)"
  mkdir -p "$BIN_DIR"
  if GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    go install "github.com/terraform-linters/tflint@$TFLINT_VERSION" >"$WORK/tflint-build.log" 2>&1; then
    echo "built in $(since "$start")"
  else
    tail -n 20 "$WORK/tflint-build.log"
    skip "tflint $TFLINT_VERSION could not be built (see above); not linting"
    tflint=""
  fi
fi
if [[ -n "$tflint" ]]; then
  start="$(now)"
  # An empty plugin dir: only the bundled terraform ruleset can be loaded.
  mkdir -p "$WORK/tflint-plugins"
  if TFLINT_PLUGIN_DIR="$WORK/tflint-plugins" "$tflint" --chdir=infra --recursive \
    --config="$ROOT/infra/.tflint.hcl" --format=compact --no-color; then
    echo "ok ($(since "$start"))"
  else
    fail "tflint ($(since "$start"))"
  fi
fi

section "summary ($(since "$total_start"))"
if ((${#failures[@]} > 0)); then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
if ((${#skipped[@]} > 0)); then
  printf 'skipped: %s\n' "${skipped[@]}"
  echo "every check that ran passed"
else
  echo "all checks passed"
fi
