#!/bin/bash
# bench/fullcopy-ab.sh - alternate full copies of SRC by several commands, best of N
# (branch fullperf, bench/README.md): N=6 SRC=/mnt/fp/g/tree M=/mnt/fp \
#   bench/fullcopy-ab.sh "base=OLD/autosync sync" "new=build-rel/autosync sync" \
#   "rsync=rsync -aHAX --numeric-ids"
# Each NAME=CMD gets SRC and M/d-NAME appended, a fresh destination and
# state directory (AUTOSYNC_STATE_DIR=M/st-NAME) and a sync before it;
# wall times go to M/times.

SRC=${SRC:-/mnt/fp/g/tree}; M=${M:-/mnt/fp}; N=${N:-3}
: > $M/times
run() { local name=$1 cmd=$2
	rm -rf $M/d-$name $M/st-$name; mkdir -p $M/st-$name; sync
	local t0=$(date +%s.%N)
	AUTOSYNC_STATE_DIR=$M/st-$name eval "$cmd $SRC $M/d-$name" >/dev/null 2>$M/err-$name || { echo "$name FAILED"; cat $M/err-$name; }
	local t1=$(date +%s.%N)
	printf "%s %.3f\n" $name $(echo "$t1 - $t0" | bc) >> $M/times
	rm -rf $M/d-$name $M/st-$name
}
names=(); cmds=()
for a in "$@"; do names+=("${a%%=*}"); cmds+=("${a#*=}"); done
k=${#names[@]}
for r in $(seq $N); do
	for j in $(seq 0 $((k-1))); do i=$(( (j + r) % k )); run "${names[$i]}" "${cmds[$i]}"; done
done
for n in "${names[@]}"; do printf "%-8s best %s  all:" $n $(grep "^$n " $M/times | awk '{print $2}' | sort -n | head -1); grep "^$n " $M/times | awk '{printf " %s",$2}'; echo; done
