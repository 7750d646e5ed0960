#!/bin/busybox sh
# /init of the power-cut test's guest (busybox, run as PID 1 from the initramfs). Mounts the disk
# /dev/vda (ext4, made on the host) at /data and runs hydrantd on it, data in /data/hydrant-data.
# Kernel command line parameters (set by tests/powercut/run.sh):
#   hydrant.mode=load   hydrantd + the producer, until the host cuts the power
#   hydrant.mode=soak   the same, and hydrantd is killed with SIGKILL and restarted: 1-4 s after
#                       it is ready again, or (one kill in four) 0-2 s into its recovery
#   hydrant.mode=final  hydrantd alone until its delivery backlog is 0, then SIGTERM, unmount,
#                       power off (the host then reads the disk)
#   hydrant.tag=c7      names this boot's records (unique per boot)
#   hydrant.args="..."  extra hydrantd flags, e.g. --durability=none (words joined by commas)
#   hydrant.pg=H:P      PostgreSQL on the host (10.0.2.2 through qemu's user-mode network): the
#                       producer also writes to stream `pg`, a Redshift-style stream into the
#                       database `powercut` there, created through the API if missing
# Everything the host reads comes on the serial console: READY, the producer's ACK lines, DONE.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  insmod /modules/$m.ko || echo "POWERCUT-ERROR insmod $m"
done
ip link set lo up

mode=load tag=x args="" pg=""
for w in $(cat /proc/cmdline); do
  case "$w" in
    hydrant.pg=*) pg=${w#hydrant.pg=} ;;
    hydrant.mode=*) mode=${w#hydrant.mode=} ;;
    hydrant.tag=*) tag=${w#hydrant.tag=} ;;
    hydrant.args=*) args=$(echo "${w#hydrant.args=}" | tr , ' ') ;;
  esac
done

if [ -n "$pg" ]; then
  # virtio-net on qemu's user-mode network: the guest is 10.0.2.15, the host's loopback 10.0.2.2.
  for m in failover net_failover virtio_net; do
    insmod /modules/$m.ko || echo "POWERCUT-ERROR insmod $m"
  done
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 ||
    echo "POWERCUT-ERROR network"
fi

i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /data
if ! mount -t ext4 /dev/vda /data; then
  echo "POWERCUT-ERROR mount"
  poweroff -f
fi

start_hydrantd() {
  # hydrantd's own log goes to the console too (one write per line, so no line is torn by the
  # producer's), prefixed by the kernel's nothing: the host only parses ACK lines.
  /bin/hydrantd --data-dir /data/hydrant-data $args </dev/null >/dev/console 2>&1 &
  hpid=$!
}

wait_ready() {
  i=0
  until wget -q -O /dev/null http://127.0.0.1:4573/health/ready 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 1200 ]; then echo "POWERCUT-ERROR hydrantd not ready"; poweroff -f; fi
    sleep 0.1
  done
}

# A random number in [lo, hi] from the kernel's generator.
rand() {
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  echo $(($1 + r % ($2 - $1 + 1)))
}

start_hydrantd
wait_ready
echo "READY $tag"

case "$mode" in
  load|soak)
    streams="default:4"
    [ -z "$pg" ] || streams="$streams pg:2:jdbc:postgresql://$pg/powercut"
    /bin/hydrant-powercut-load 127.0.0.1:4573 "$tag" $streams </dev/null >/dev/console 2>&1 &
    if [ "$mode" = soak ]; then
      while true; do
        # Most kills strike a serving daemon; some strike its recovery. Waiting for readiness
        # before the next kill keeps the soak making progress: under emulation on a loaded host,
        # opening two streams' logs can take longer than 4 s, and a daemon always killed before
        # it is ready would acknowledge nothing.
        if [ "$(rand 1 4)" = 1 ]; then
          sleep "$(rand 0 1).$(rand 0 9)"
        else
          wait_ready
          sleep "$(rand 1 4)"
        fi
        kill -9 $hpid
        wait $hpid 2>/dev/null
        echo "KILLED hydrantd"
        start_hydrantd
      done
    fi
    while true; do sleep 60; done
    ;;
  final)
    i=0
    while true; do
      m=$(wget -q -O - http://127.0.0.1:4573/metrics 2>/dev/null)
      backlog=$(echo "$m" | grep '^hydrant_delivery_backlog_records{' | awk '{s += $2} END {print s + 0}')
      lines=$(echo "$m" | grep -c '^hydrant_delivery_backlog_records{')
      if [ "$lines" -gt 0 ] && [ "$backlog" = 0 ]; then break; fi
      i=$((i + 1))
      if [ $i -gt 600 ]; then echo "POWERCUT-ERROR backlog still $backlog"; break; fi
      sleep 1
    done
    kill -TERM $hpid
    wait $hpid
    echo "HYDRANTD-EXIT $?"
    sync
    umount /data
    echo "DONE $tag"
    poweroff -f
    ;;
esac
