#!/bin/sh
# Reserves 2 MiB hugepages and mounts hugetlbfs at /mnt/huge for ixy's DMA memory.
# Usage: sudo ./setup-hugetlbfs.sh [number of pages, default 512] [owner for non-root use]
set -e
PAGES=${1:-512}
OWNER=${2:-}
mkdir -p /mnt/huge
if ! mountpoint -q /mnt/huge; then
	mount -t hugetlbfs hugetlbfs /mnt/huge
fi
if [ -n "$OWNER" ]; then
	# Lets that user create hugepage files (for running through VFIO without root).
	chown "$OWNER" /mnt/huge
	chmod 0755 /mnt/huge
fi
# Reserve the pages on every NUMA node that exists, else system-wide.
found=0
for node in /sys/devices/system/node/node[0-9]*; do
	if [ -e "$node/hugepages/hugepages-2048kB/nr_hugepages" ]; then
		echo "$PAGES" > "$node/hugepages/hugepages-2048kB/nr_hugepages"
		found=1
	fi
done
if [ "$found" = 0 ]; then
	echo "$PAGES" > /proc/sys/vm/nr_hugepages
fi
grep -E 'HugePages_(Total|Free)' /proc/meminfo
