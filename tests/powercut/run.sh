#!/usr/bin/env bash
# Power cuts of the whole daemon: hydrantd runs in a QEMU guest (software emulation, Debian's
# cloud kernel, a busybox initramfs) on an ext4 disk image, a producer in the same guest prints
# every acknowledged record on the serial console, and this script cuts the power (kill -9 of
# qemu) at random moments, runs e2fsck on the image, and boots again on the same disk. At the end
# a last boot lets hydrantd deliver everything and stop; the data directory is read out of the
# image (debugfs rdump, no mount), `hydrant wal verify` must be clean and every acknowledged
# record must be in the local object store exactly once (hydrant-powercut-check).
#
# PostgreSQL (unless --no-pg): a throwaway cluster runs on the host (a remote database: it does
# not lose power), reached from the guest through qemu's user-mode network (virtio-net; the
# host's 127.0.0.1 is 10.0.2.2 in the guest). The producer also writes to a second stream `pg`,
# a Redshift-style stream (RedshiftDestinationConfiguration, JDBC URL) into the table `t` of the
# database `powercut`, which it creates through the API at the first boot. At the end every
# acknowledged record of `pg` must be a row of `t` exactly once.
#
# What it models: the guest's page cache and whatever the kernel had not written vanish, as in
# an OS crash or a power cut with a disk that honours flushes (qemu's writes reach the host file
# when the guest's flush completes: cache=none).
#
# Usage: tests/powercut/run.sh [--cycles N] [--durability sync|none] [--expect-loss]
#                              [--soak DURATION] [--no-pg]
#   --cycles N        power cuts (default $HYDRANT_POWERCUT_CYCLES, else 20)
#   --durability M    the daemon's --durability (default sync); `none` acknowledges before
#                     fdatasync: a broken build, run with --expect-loss
#   --expect-loss     pass only if acknowledged records were lost (shows that the harness catches
#                     a daemon that acknowledges too early)
#   --soak DURATION   instead of --cycles: cut the power for DURATION (90s, 10m, 8h); in each
#                     boot hydrantd is also killed with SIGKILL and restarted, 1 to 4 s after it
#                     is ready again or (one kill in four) 0 to 2 s into its recovery
#   --no-pg           only the local-store stream (no PostgreSQL, no network in the guest)
#
# Needs: qemu-system-x86_64, busybox (static), e2fsprogs (mkfs.ext4, e2fsck, debugfs), apt-get
# (downloads Debian's cloud kernel once), cargo, strip (binutils), ldd; PostgreSQL's server
# binaries ($HYDRANT_PG_BIN, else the newest /usr/lib/postgresql/*/bin) and psql. Cached in $HYDRANT_POWERCUT_CACHE (default
# ~/.cache/hydrant-powercut): the kernel and its modules, keyed by package version. The
# binaries are the workspace's debug build (target/debug), with their shared libraries.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

CYCLES="${HYDRANT_POWERCUT_CYCLES:-20}"
DURABILITY=sync
EXPECT_LOSS=0
SOAK=""
PG=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) CYCLES=$2; shift 2 ;;
    --durability) DURABILITY=$2; shift 2 ;;
    --expect-loss) EXPECT_LOSS=1; shift ;;
    --soak) SOAK=$2; shift 2 ;;
    --no-pg) PG=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

CACHE="${HYDRANT_POWERCUT_CACHE:-$HOME/.cache/hydrant-powercut}"
WORK="$ROOT/target/powercut/$DURABILITY${SOAK:+-soak}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
log() { printf '[powercut %s] %s\n' "$(date +%T)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }

for tool in qemu-system-x86_64 busybox mkfs.ext4 e2fsck debugfs strip ldd; do
  command -v "$tool" >/dev/null 2>&1 || { [ -x "/sbin/$tool" ] || [ -x "/usr/sbin/$tool" ]; } ||
    fail "$tool not found: apt-get install qemu-system-x86 busybox-static e2fsprogs"
done
export PATH="$PATH:/sbin:/usr/sbin"
# busybox is PID 1 of the guest and its only shell: it must be the static one.
if ldd "$(command -v busybox)" >/dev/null 2>&1; then
  fail "$(command -v busybox) is dynamically linked: apt-get install busybox-static"
fi

# --- the guest kernel: Debian's cloud kernel, unpacked (not installed), cached by version ---
cloud_kernel() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'
}
pkg=$(cloud_kernel)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null
  pkg=$(cloud_kernel)
fi
[ -n "$pkg" ] || fail "apt-cache knows no linux-image-cloud-amd64 (run apt-get update)"
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
KDIR="$CACHE/kernel/$pkg-$ver"
# The block device and the network card (virtio-net needs net_failover and failover).
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
  failover net_failover virtio_net"
have_modules=1
for m in $MODULES; do [ -f "$KDIR/modules/$m.ko" ] || have_modules=0; done
if [ ! -f "$KDIR/vmlinuz" ] || [ "$have_modules" = 0 ]; then
  log "fetching $pkg $ver"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg -x ./*.deb x)
  mkdir -p "$KDIR.tmp/modules"
  for m in $MODULES; do
    cp "$(find "$tmp/x/lib/modules" -name "$m.ko" | head -1)" "$KDIR.tmp/modules/"
  done
  cp "$tmp"/x/boot/vmlinuz-* "$KDIR.tmp/vmlinuz"
  rm -rf "$tmp" "$KDIR"
  mv "$KDIR.tmp" "$KDIR"
fi

# --- the binaries: hydrantd, the producer, hydrant (wal verify) and the checker ---
# The debug build the test suite uses (no second build of the dependencies: a static build for
# the guest would compile all of them again); the guest gets their shared libraries copied from
# the host (the dynamic loader, libc, libm, libgcc_s), as an initramfs generator does.
log "building hydrantd, hydrant and the power-cut programs (debug)"
t0=$(date +%s)
cargo build -q -p hydrant-engine -p hydrant-tools -p hydrant-tests \
  --bin hydrantd --bin hydrant --bin hydrant-powercut-load --bin hydrant-powercut-check
log "built in $(($(date +%s) - t0)) s"

# --- the initramfs: busybox, /init, the virtio modules, hydrantd and the producer ---
rm -rf "$WORK"
mkdir -p "$WORK/root/bin" "$WORK/root/modules" "$WORK/serial"
cp "$(command -v busybox)" "$WORK/root/bin/busybox"
cp "$ROOT/tests/powercut/init.sh" "$WORK/root/init"
chmod +x "$WORK/root/init"
cp "$KDIR"/modules/*.ko "$WORK/root/modules/"
for b in hydrantd hydrant-powercut-load; do
  strip -o "$WORK/root/bin/$b" "$BIN/$b"
  for lib in $(ldd "$BIN/$b" | grep -o '/[^ ]*'); do
    mkdir -p "$WORK/root$(dirname "$lib")"
    cp -L "$lib" "$WORK/root$lib"
  done
done
mkdir -p "$WORK/root/proc" "$WORK/root/sys" "$WORK/root/dev" "$WORK/root/tmp"
(cd "$WORK/root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$WORK/initramfs.cpio"
rm -rf "$WORK/root"

DISK="$WORK/disk.img"
truncate -s 2G "$DISK"
mkfs.ext4 -q -F "$DISK"

# The embedded default stream, with 1 MiB segments instead of 64 MiB (zero-filling a 64 MiB
# spare takes tens of seconds under emulation, and small segments make the cuts strike rotations,
# spares and recycling too) and delivered segments recycled at once (retention and recycling
# under power cuts).
# Streams' budgets of 512 MiB: two streams fit in the 2 GiB disk (the node budget is its size).
ARGS="--segment-bytes=1048576,--retain-delivered-bytes=0,--stream-budget-bytes=536870912"
[ "$DURABILITY" = sync ] || ARGS="$ARGS,--durability=$DURABILITY"
QPID=""
PGDIR=""
cleanup() {
  [ -z "$QPID" ] || kill -9 "$QPID" 2>/dev/null || true
  if [ -n "$PGDIR" ]; then
    pg_server "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  fi
}
trap cleanup EXIT

# --- PostgreSQL on the host: a throwaway cluster (trust authentication, 127.0.0.1 only) ---
# As root the server runs as the postgres user (initdb and postgres refuse root).
pg_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
NET="-net none"
PGCMD=""
if [ "$PG" = 1 ]; then
  PGBIN="${HYDRANT_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
  [ -x "$PGBIN/initdb" ] || fail "no PostgreSQL server binaries (apt-get install postgresql, or HYDRANT_PG_BIN; --no-pg to run without)"
  PGDIR=$(mktemp -d /tmp/hydrant-powercut-pg.XXXXXX)
  [ "$(id -u)" != 0 ] || chown postgres: "$PGDIR"
  pg_server "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    >"$WORK/initdb.log" 2>&1 || fail "initdb: $(cat "$WORK/initdb.log")"
  for try in 1 2 3; do
    PGPORT=$((20000 + RANDOM % 20000))
    if pg_server "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR" start >/dev/null 2>&1; then
      break
    fi
    [ "$try" != 3 ] || fail "PostgreSQL did not start: $(tail -5 "$PGDIR/server.log")"
  done
  psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
  psql -d postgres -c "CREATE DATABASE powercut" >/dev/null
  psql -d powercut -c "CREATE TABLE t (r text NOT NULL)" >/dev/null
  log "PostgreSQL on 127.0.0.1:$PGPORT (10.0.2.2:$PGPORT in the guest), table powercut.t"
  NET="-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile="
  PGCMD=" hydrant.pg=10.0.2.2:$PGPORT"
fi

# boot MODE TAG: starts qemu in the background; its console goes to $WORK/serial/TAG.log.
# no_timer_check: under emulation on a loaded host the kernel's early check of the timer
# interrupt can time out and panic ("IO-APIC + timer doesn't work!", seen in a soak at load 14).
boot() {
  : >"$WORK/serial/$2.log"
  qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot -nodefaults \
    -serial stdio $NET -kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.cpio" \
    -append "console=ttyS0 loglevel=1 panic=-1 no_timer_check hydrant.mode=$1 hydrant.tag=$2 hydrant.args=$ARGS$PGCMD" \
    -drive "file=$DISK,format=raw,if=virtio,cache=none" \
    </dev/null >>"$WORK/serial/$2.log" 2>&1 &
  QPID=$!
}

# wait_for TAG PATTERN SECONDS: until the console shows PATTERN; fails on an error line, an early
# exit of qemu or the timeout.
wait_for() {
  local deadline=$(($(date +%s) + $3))
  until grep -q "$2" "$WORK/serial/$1.log"; do
    if grep -q POWERCUT-ERROR "$WORK/serial/$1.log"; then
      fail "boot $1: $(grep POWERCUT-ERROR "$WORK/serial/$1.log" | head -1)"
    fi
    kill -0 "$QPID" 2>/dev/null || fail "boot $1: qemu exited (see $WORK/serial/$1.log)"
    [ "$(date +%s)" -lt "$deadline" ] || fail "boot $1: no '$2' within $3 s"
    sleep 0.1
  done
}

# cut: power off now (kill -9 of qemu), then repair the file system as a reboot would.
cut() {
  kill -9 "$QPID"
  wait "$QPID" 2>/dev/null || true
  QPID=""
  local rc=0
  e2fsck -fy "$DISK" >"$WORK/e2fsck.log" 2>&1 || rc=$?
  # 0: clean, 1: errors corrected (the journal replayed); anything else is damage.
  [ "$rc" -le 1 ] || fail "e2fsck exit $rc after cut $1: $(cat "$WORK/e2fsck.log")"
}

duration_seconds() {
  case "$1" in
    *h) echo $((${1%h} * 3600)) ;;
    *m) echo $((${1%m} * 60)) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

t_start=$(date +%s)
n=0
kills=0
if [ -n "$SOAK" ]; then
  end=$(($(date +%s) + $(duration_seconds "$SOAK")))
  log "soak for $SOAK: power cuts after 1 to 15 s of load, hydrantd killed with SIGKILL inside"
  while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1))
    boot soak "s$n"
    wait_for "s$n" '^ACK ' 180
    sleep "$((RANDOM % 14 + 1)).$((RANDOM % 10))"
    cut "s$n"
    kills=$((kills + $(grep -c '^KILLED' "$WORK/serial/s$n.log" || true)))
    [ $((n % 10)) -ne 0 ] || log "$n power cuts, $kills kills of hydrantd"
  done
else
  log "$CYCLES power cuts, durability $DURABILITY"
  for n in $(seq 1 "$CYCLES"); do
    boot load "c$n"
    wait_for "c$n" '^ACK ' 180
    # Cut at a random moment: from just after the first acknowledgement to a few seconds in
    # (delivery of what the previous boots left starts as soon as hydrantd is up).
    sleep "$((RANDOM % 4)).$((RANDOM % 10))"
    cut "c$n"
  done
fi
log "$n power cuts done in $(($(date +%s) - t_start)) s; last boot delivers and stops"

boot final final
wait_for final '^DONE ' 600
grep -q '^HYDRANTD-EXIT 0' "$WORK/serial/final.log" || fail "hydrantd did not stop cleanly in the last boot"
wait "$QPID" || true
QPID=""
e2fsck -fn "$DISK" >"$WORK/e2fsck.log" 2>&1 || fail "file system not clean after the last boot: $(cat "$WORK/e2fsck.log")"

rm -rf "$WORK/out"
mkdir -p "$WORK/out"
debugfs -R "rdump /hydrant-data $WORK/out" "$DISK" >"$WORK/debugfs.log" 2>&1
[ -d "$WORK/out/hydrant-data/streams/default/wal" ] || fail "no WAL read out of the image ($WORK/debugfs.log)"

verify=0
: >"$WORK/verify.log"
streams=default
[ "$PG" = 0 ] || streams="default pg"
for s in $streams; do
  [ -d "$WORK/out/hydrant-data/streams/$s/wal" ] || fail "no WAL of stream $s read out of the image"
  "$BIN/hydrant" wal verify "$WORK/out/hydrant-data/streams/$s/wal" >>"$WORK/verify.log" 2>&1 || verify=$?
done
check_args=()
if [ "$PG" = 1 ]; then
  # The rows as PostgreSQL holds them (the host's database did not lose power).
  psql -d powercut -At -c "SELECT r FROM t" >"$WORK/pg-rows.txt"
  check_args+=(--pg pg "$WORK/pg-rows.txt")
fi
[ "$EXPECT_LOSS" = 0 ] || check_args+=(--expect-loss)
check=0
# The local store holds the default stream's objects (bucket hydrant-local) and the pg stream's
# intermediate objects (bucket powercut-pg): only the former are checked there.
summary=$("$BIN/hydrant-powercut-check" "$WORK/serial" "$WORK/out/hydrant-data/objects/hydrant-local" "${check_args[@]}" 2>"$WORK/check.log") || check=$?
log "cuts=$n hydrantd_kills=$kills"
while read -r line; do log "$line"; done <<<"$summary"
log "wall time $(($(date +%s) - t_start)) s (cycles and check)"
if [ "$EXPECT_LOSS" = 1 ]; then
  [ "$check" = 0 ] || fail "durability $DURABILITY lost no acknowledged record: this harness would not catch a daemon that acknowledges before fdatasync ($(head -5 "$WORK/check.log"))"
  log "PASS: durability $DURABILITY lost acknowledged records, as a broken build must"
else
  [ "$verify" = 0 ] || fail "hydrant wal verify: $(cat "$WORK/verify.log")"
  [ "$check" = 0 ] || fail "$(head -20 "$WORK/check.log")"
  log "PASS: every acknowledged record delivered exactly once, wal verify clean"
fi
rm -f "$DISK"
