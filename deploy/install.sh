#!/usr/bin/env bash
# Install (or remove) the edgewatch runtime as a service on Raspberry Pi OS Bookworm (Python 3.11)
# or Trixie (Python 3.13); any Debian-like system with systemd works the same way.
#
#   sudo deploy/install.sh                 install or upgrade; safe to run again
#   sudo deploy/install.sh --dry-run       print every action, change nothing
#   sudo deploy/install.sh --uninstall     remove what it added; keep the event log and snapshots
#   sudo deploy/install.sh --uninstall --purge    ...and the event log, config and user too
#   deploy/install.sh --root DIR ...       act on a root filesystem in DIR (an image, a test folder):
#                                          no apt, no running systemd; units enabled offline
#
# What it does: apt packages (python3-venv, python3-pip; python3-picamera2 where the archive has
# it), a venv in /opt/edgewatch/venv with --system-site-packages (apt's picamera2 and pip seen), the
# runtime alone (no TensorFlow), a system user, /var/lib/edgewatch (models/current -> the bundled
# person model; readable by group edgewatch, to which the installing sudo user is added, so that
# `edgewatch events/status/monitor` over ssh read what the service writes),
# /etc/edgewatch/config.toml (never overwritten), the units, the service enabled.
set -euo pipefail

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

options:
  --root DIR       install into the root filesystem in DIR
  --dry-run        print the actions, do nothing
  --uninstall      remove; with --purge also the event log, config and the user
  --source DIR     the edgewatch source to install (default: the checkout this script is in)
  --python PATH    interpreter for the venv (default: /usr/bin/python3, must be >= 3.11)
  --offline        pip: no index, no dependencies (they must come from the system site packages)
  --converter      a build host, not a board: also the converter (TensorFlow, the [convert] extra)
                   and edgewatch-convert@.service for conversions started over ssh
  --no-apt         skip apt-get
  --no-start       enable the service but do not (re)start it
  --operator NAME  the user added to group edgewatch, who may read the event log and status
                   (default: the user who ran sudo, $SUDO_USER)
EOF
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(dirname "$SCRIPT_DIR")
ROOT=""
DRY=0
MODE=install
PURGE=0
APT=1
START=1
OFFLINE=0
PYTHON=/usr/bin/python3

PREFIX=/opt/edgewatch
VENV=$PREFIX/venv
STATE=/var/lib/edgewatch
CONF=/etc/edgewatch
UNITDIR=/etc/systemd/system
LINK=/usr/local/bin/edgewatch
SVC_USER=edgewatch
UNITS=(edgewatch.service)
ALL_UNITS=(edgewatch.service "edgewatch-convert@.service")
CONVERTER=0
OPERATOR=${SUDO_USER:-}

die() { echo "install.sh: error: $*" >&2; exit 2; }
note() { echo "install.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --root) [[ $# -ge 2 ]] || die "--root needs a folder"; ROOT=$(realpath -m "$2"); shift ;;
        --dry-run) DRY=1 ;;
        --uninstall) MODE=uninstall ;;
        --purge) PURGE=1 ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a folder"; SOURCE=$(realpath -m "$2"); shift ;;
        --python) [[ $# -ge 2 ]] || die "--python needs a path"; PYTHON=$2; shift ;;
        --offline) OFFLINE=1 ;;
        --converter) CONVERTER=1; UNITS+=("edgewatch-convert@.service") ;;
        --no-apt) APT=0 ;;
        --no-start) START=0 ;;
        --operator) [[ $# -ge 2 ]] || die "--operator needs a user name"; OPERATOR=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[[ $PURGE == 1 && $MODE != uninstall ]] && die "--purge goes with --uninstall"
if [[ -n $ROOT ]]; then
    [[ -d $ROOT ]] || die "--root $ROOT: no such folder"
    APT=0  # apt cannot act on a plain folder; an image gets its packages from its own build
fi
[[ $DRY == 1 || $(id -u) == 0 ]] || die "run as root (sudo), or with --dry-run"

# Every change goes through run: printed always, executed unless --dry-run.
run() {
    printf '+' >&2; printf ' %q' "$@" >&2; printf '\n' >&2
    [[ $DRY == 1 ]] || "$@"
}

# systemd is PID 1 on the target (not in a --root folder, a container or a chroot).
live_systemd() { [[ -z $ROOT && -d /run/systemd/system ]]; }

user_field() {  # user_field NAME FIELD: from the target's passwd, empty if no such user
    awk -F: -v u="$1" -v f="$2" '$1 == u { print $f }' "$ROOT/etc/passwd" 2>/dev/null || true
}

os_release() {
    local id="" codename=""
    if [[ -r $ROOT/etc/os-release ]]; then
        id=$(. "$ROOT/etc/os-release" && echo "${ID:-}")
        codename=$(. "$ROOT/etc/os-release" && echo "${VERSION_CODENAME:-}")
    fi
    case $codename in
        bookworm|trixie) note "target: $id $codename" ;;
        *) note "target: ${id:-unknown} ${codename:-unknown}: not Raspberry Pi OS Bookworm/Trixie; continuing" ;;
    esac
}

apt_packages() {
    [[ $APT == 1 ]] || { note "apt: skipped"; return; }
    local pkgs=(python3 python3-venv python3-pip ca-certificates) missing=()
    # Empty package lists (a fresh image) would make picamera2 look absent from the archive.
    if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then run apt-get update -q; fi
    # picamera2 (and libcamera under it) cannot be built by pip: apt's, seen through the venv.
    if apt-cache policy python3-picamera2 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        pkgs+=(python3-picamera2)
    else
        note "apt: python3-picamera2 is not in this archive (not Raspberry Pi OS?): USB/RTSP/file sources only"
    fi
    local p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        note "apt: ${pkgs[*]} already installed"
        return
    fi
    run apt-get update -q
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

check_python() {
    [[ -x $PYTHON ]] || { [[ $DRY == 1 ]] && { note "python: $PYTHON missing (apt would install it)"; return; }; die "$PYTHON: not found"; }
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1): edgewatch needs Python >= 3.11"
    note "python: $("$PYTHON" -V 2>&1)"
}

make_user() {
    local prefix=()
    [[ -n $ROOT ]] && prefix=(--prefix "$ROOT")
    if ! grep -q '^video:' "$ROOT/etc/group" 2>/dev/null; then
        run groupadd "${prefix[@]}" --system video
    fi
    if [[ -n $(user_field "$SVC_USER" 1) ]]; then
        note "user: $SVC_USER exists"
        return
    fi
    local group=(--user-group)
    if grep -q "^$SVC_USER:" "$ROOT/etc/group" 2>/dev/null; then
        group=(--gid "$SVC_USER")  # left behind by an earlier purge or by hand
    fi
    run useradd "${prefix[@]}" --system "${group[@]}" --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "edgewatch daemon" "$SVC_USER"
}

group_members() {  # group_members GROUP: its listed members in the target, comma-separated
    awk -F: -v g="$1" '$1 == g { print $4 }' "$ROOT/etc/group" 2>/dev/null || true
}

add_operator() {
    # The service's state is 0750/0640 (StateDirectoryMode=, UMask=), group edgewatch: the board's
    # own user reads the event log and status through that group, never as root.
    if [[ -z $OPERATOR || $OPERATOR == root ]]; then
        note "group: nobody added to $SVC_USER (not run through sudo): sudo usermod -aG $SVC_USER NAME lets NAME read $STATE"
        return
    fi
    [[ -n $(user_field "$OPERATOR" 1) ]] || die "--operator $OPERATOR: no such user"
    if [[ ,$(group_members "$SVC_USER"), == *,"$OPERATOR",* ]]; then
        note "group: $OPERATOR is in group $SVC_USER (may read $STATE)"
        return
    fi
    local prefix=()
    [[ -n $ROOT ]] && prefix=(--prefix "$ROOT")
    run usermod "${prefix[@]}" --append --groups "$SVC_USER" "$OPERATOR"
    note "group: $OPERATOR added to group $SVC_USER, which may read $STATE (events, status); it applies at $OPERATOR's next login"
}

owner() {  # numeric uid:gid in the target (chown must not resolve names through the host's passwd)
    local uid gid
    uid=$(user_field "$SVC_USER" 3); gid=$(user_field "$SVC_USER" 4)
    if [[ -n $uid ]]; then echo "$uid:$gid"; else echo "$SVC_USER:$SVC_USER"; fi
}

make_folders() {
    run install -d -m 0755 "$ROOT$PREFIX" "$ROOT$CONF" "$ROOT$CONF/convert" "$ROOT$UNITDIR" "$ROOT$(dirname "$LINK")"
    run install -d -m 0750 -o "$(owner | cut -d: -f1)" -g "$(owner | cut -d: -f2)" \
        "$ROOT$STATE" "$ROOT$STATE/models" "$ROOT$STATE/staging"
}

make_venv() {
    if [[ -x $ROOT$VENV/bin/python ]]; then
        note "venv: $VENV exists"
    else
        # Without a pip of its own (16 MB, plus setuptools' 9 MB on Python 3.11): apt's python3-pip,
        # seen through --system-site-packages, installs into the venv all the same.
        local own_pip=(--without-pip)
        if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
            own_pip=()
            note "venv: $PYTHON has no pip (apt install python3-pip); the venv gets its own"
        fi
        run "$PYTHON" -m venv --system-site-packages "${own_pip[@]}" "$ROOT$VENV"
    fi
    # The runtime alone: the project without its [convert] extra, so never TensorFlow on a board
    # (a build host asks for the converter with --converter).
    local pip=("$ROOT$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    local what=$SOURCE
    if [[ $CONVERTER == 1 ]]; then what="$SOURCE[convert]"; fi
    if [[ $OFFLINE == 1 ]]; then
        pip+=(--no-index --no-deps --no-build-isolation)
    else
        pip+=(--upgrade)
    fi
    run "${pip[@]}" "$what"
    if [[ -n $ROOT ]]; then
        # pip wrote the scripts' #! lines and the activate scripts with the folder it installed
        # into; on the board the venv is at $VENV.
        local f
        for f in "$ROOT$VENV"/bin/*; do
            if [[ -f $f && ! -L $f ]] && grep -qF "$ROOT$VENV" "$f"; then
                run sed -i "s|$ROOT$VENV|$VENV|g" "$f"
            fi
        done
    fi
    run ln -sfn "$VENV/bin/edgewatch" "$ROOT$LINK"
}

# The example config, with the model taken from models/current: where rollouts put bundles.
render_config() {
    sed "s|^# path = \"$STATE/models/current\"|path = \"$STATE/models/current\"|" "$SOURCE/deploy/config.example.toml"
}

default_config() {
    local example=$SOURCE/deploy/config.example.toml
    if [[ -e $ROOT$CONF/config.toml ]]; then
        note "config: $CONF/config.toml exists, kept"
    elif [[ -f $example ]]; then
        grep -q "^# path = \"$STATE/models/current\"" "$example" \
            || die "$example: no '# path = \"$STATE/models/current\"' line to enable"
        if [[ $DRY == 1 ]]; then
            note "config: would write $CONF/config.toml: $example with model.path = $STATE/models/current"
        else
            note "config: $CONF/config.toml from $example, model.path = $STATE/models/current"
            render_config > "$ROOT$CONF/config.toml"
            chmod 0644 "$ROOT$CONF/config.toml"
        fi
    else
        note "config: no $example; the daemon runs on its embedded default"
    fi
}

first_model() {
    # models/current -> the bundled person model, so the daemon starts and a rollout has a way back.
    local bundle=$SOURCE/runtime/assets/person-ssdlite
    if [[ -L $ROOT$STATE/models/current ]]; then
        note "model: models/current -> $(readlink "$ROOT$STATE/models/current"), kept"
        return
    fi
    [[ -d $bundle ]] || { note "model: no bundled model at $bundle; deploy one with edgewatch deploy"; return; }
    if [[ $DRY == 1 ]]; then
        run "$ROOT$VENV/bin/python" -m runtime.cli activate --stage-only --state-dir "$ROOT$STATE" "$bundle"
        run ln -sfn DIGEST "$ROOT$STATE/models/current"
        return
    fi
    local digest
    digest=$("$ROOT$VENV/bin/python" -m runtime.cli activate --stage-only --state-dir "$ROOT$STATE" "$bundle" \
        | "$ROOT$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["bundle"])')
    run ln -sfn "$digest" "$ROOT$STATE/models/current"
    run chown -R "$(owner)" "$ROOT$STATE/models"
}

install_units() {
    local unit
    for unit in "${UNITS[@]}"; do
        run install -m 0644 "$SOURCE/systemd/$unit" "$ROOT$UNITDIR/$unit"
    done
    if [[ -n $ROOT ]]; then
        run systemctl --root="$ROOT" enable edgewatch.service
    elif live_systemd; then
        run systemctl daemon-reload
        run systemctl enable edgewatch.service
        if [[ $START == 1 ]]; then run systemctl restart edgewatch.service; fi
    else
        note "systemd is not running here: units installed; enable with systemctl enable edgewatch.service"
    fi
}

uninstall() {
    local unit
    if [[ -n $ROOT ]]; then
        if [[ -e $ROOT$UNITDIR/edgewatch.service ]]; then run systemctl --root="$ROOT" disable edgewatch.service; fi
    elif live_systemd; then
        run systemctl disable --now edgewatch.service || true
    fi
    for unit in "${ALL_UNITS[@]}"; do
        if [[ -e $ROOT$UNITDIR/$unit ]]; then run rm -f "$ROOT$UNITDIR/$unit"; fi
    done
    if live_systemd; then run systemctl daemon-reload; fi
    if [[ -L $ROOT$LINK ]]; then run rm -f "$ROOT$LINK"; fi
    if [[ -e $ROOT$PREFIX ]]; then run rm -rf "$ROOT$PREFIX"; fi
    # The event log, snapshots and the rolled-out models are the user's (a reinstall to repair must
    # not put the board back on the bundled model); --purge removes them too.
    local path
    for path in staging status.json; do
        if [[ -e $ROOT$STATE/$path ]]; then run rm -rf "$ROOT$STATE/$path"; fi
    done
    if [[ $PURGE == 1 ]]; then
        if [[ -e $ROOT$STATE ]]; then run rm -rf "$ROOT$STATE"; fi
        if [[ -e $ROOT$CONF ]]; then run rm -rf "$ROOT$CONF"; fi
        if [[ -n $(user_field "$SVC_USER" 1) ]]; then
            local prefix=()
            [[ -n $ROOT ]] && prefix=(--prefix "$ROOT")
            run userdel "${prefix[@]}" "$SVC_USER"
        fi
        return
    fi
    # A config the admin edited stays (like a dpkg conffile); the untouched default goes.
    if [[ -f $ROOT$CONF/config.toml && -f $SOURCE/deploy/config.example.toml ]] \
        && cmp -s "$ROOT$CONF/config.toml" <(render_config); then
        run rm -f "$ROOT$CONF/config.toml"
    fi
    if [[ -d $ROOT$CONF/convert ]] && [[ -z $(ls -A "$ROOT$CONF/convert") ]]; then run rmdir "$ROOT$CONF/convert"; fi
    if [[ -d $ROOT$CONF ]] && [[ -z $(ls -A "$ROOT$CONF") ]]; then run rmdir "$ROOT$CONF"; fi
    note "kept: $STATE (event log, snapshots) and user $SVC_USER; --purge removes them"
}

if [[ $MODE == uninstall ]]; then
    uninstall
    exit 0
fi
[[ -f $SOURCE/pyproject.toml && -d $SOURCE/runtime ]] || die "--source $SOURCE: not an edgewatch checkout"
os_release
apt_packages
check_python
make_user
add_operator
make_folders
make_venv
default_config
first_model
install_units
if [[ $DRY == 1 ]]; then note "dry run: nothing changed"; else note "installed"; fi
