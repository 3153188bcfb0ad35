#!/usr/bin/env bash
# wgrad against its peers in one sitting: `wgrad bench` and burn's wgpu backend (the benchmark in
# ../shared/peers/burnbench), run alternately for a few rounds on the same adapter, then one table
# of medians and ratios. The gemm crate's GFLOP/s is measured by `wgrad bench` itself, in the same
# process, as the matmul ceiling.
#
#   bash benches/compare.sh PEERS_DIR [ROUNDS] [OUTDIR]
#
# PEERS_DIR is a built copy of ../shared/peers (see its README: `cargo build --release -p
# burnbench` there first; it takes ~30 minutes on 2 cores). Nothing else should run meanwhile.
# Needs python3 for the table.
set -euo pipefail
peers=$(cd "${1:?usage: compare.sh PEERS_DIR [ROUNDS] [OUTDIR]}" && pwd)
rounds=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${3:-$here/runs/compare}
mkdir -p "$out"
burn=${PEERS_TARGET:-$peers/target}/release/burnbench
[ -x "$burn" ] || { echo "no $burn: build the peers first (see $peers/README.md)" >&2; exit 2; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"

(cd "$here" && cargo build --release -p wgrad-cli --features ceiling >&2)
wgrad=$here/target/release/wgrad
sizes=256,512,1024,2048

date -u +"%F %T UTC" > "$out/when.txt"
"$wgrad" info > "$out/adapter.txt" 2>&1 || true
# Cold start first: no Mesa shader cache and no burn autotune cache, one process each, the time
# from building the model to the end of its first training step.
rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/mesa_shader_cache" "${PEERS_TARGET:-$peers/target}/environment"
echo "cold start: wgrad, then burn" >&2
"$wgrad" bench --json --only mlp --reps 1 > "$out/wgrad_cold.jsonl"
(cd "$peers" && "$burn" wgpu mlp 1) > "$out/burn_cold.txt" 2>&1
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds: wgrad" >&2
    "$wgrad" bench --json --only matmul,mlp,add --sizes $sizes --reps 5 > "$out/wgrad_$r.jsonl"
    echo "round $r/$rounds: burn (matmul, add, mlp)" >&2
    # burn autotunes each new shape in an untimed first call (reported, not counted) and caches
    # the choice on disk, so only round 1 pays for it.
    (cd "$peers" && "$burn" wgpu matmul 3 && "$burn" wgpu add 5 && "$burn" wgpu mlp 3) \
        > "$out/burn_$r.txt" 2>&1
done

python3 - "$out" "$rounds" <<'EOF'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours, theirs, ceil, first, theirs_first = {}, {}, {}, {}, {}
def put(d, k, v): d.setdefault(k, []).append(v)
for r in range(1, rounds + 1):
    for line in open(f"{out}/wgrad_{r}.jsonl"):
        f = json.loads(line)
        name = f["name"]
        m = re.match(r"matmul (\d+)x\d+x\d+$", name)
        if m:
            key = f"matmul {m.group(1)}³ (GFLOP/s)"
            if "ceiling" in f: put(ceil, key, f["ceiling"])
        elif name.startswith("mlp step") and "sgd" in name:
            key = "mlp step sgd, loss read " + ("every step" if "every" in name else "at the end") + " (steps/s)"
        elif name.startswith("mlp step") and "adam" in name:
            key = "mlp step adam, loss read at the end (steps/s)"
        elif name.startswith("add"):
            key = "add 16M, sync each (GB/s)"
        else:
            continue
        put(ours, key, f["value"])
    text = open(f"{out}/burn_{r}.txt").read()
    for n, g in re.findall(r"burn matmul n=(\d+): batched k=\d+ median [\d.]+ ms -> ([\d.]+) GFLOP/s", text):
        put(theirs, f"matmul {n}³ (GFLOP/s)", float(g))
    for opt, end, every in re.findall(r"burn mlp \S+ b=128 (sgd|adam): ([\d.]+) steps/s \(loss read only at end[^;]*; ([\d.]+) steps/s \(loss read every", text):
        if opt == "sgd":
            put(theirs, "mlp step sgd, loss read at the end (steps/s)", float(end))
            put(theirs, "mlp step sgd, loss read every step (steps/s)", float(every))
        else:
            put(theirs, "mlp step adam, loss read at the end (steps/s)", float(end))
    for g in re.findall(r"burn add 16M f32, sync after each add: median [\d.]+ ms -> ([\d.]+) GB/s", text):
        put(theirs, "add 16M, sync each (GB/s)", float(g))
for line in open(f"{out}/wgrad_cold.jsonl"):
    f = json.loads(line)
    m = re.search(r"first step done (\d+) ms", f.get("note", ""))
    if m and "sgd" in f["name"] and "every" not in f["name"]:
        put(first, "first MLP step, cold caches (ms)", float(m.group(1)))
for fs in re.findall(r"b=128 sgd: .*?first step ([\d.]+) ms", open(f"{out}/burn_cold.txt").read()):
    put(theirs_first, "first MLP step, cold caches (ms)", float(fs))
med = lambda v: statistics.median(v) if v else float("nan")
print(f"{'figure':46} {'wgrad':>10} {'burn-wgpu':>10} {'ratio':>7} {'gemm crate':>11} {'of gemm':>8}")
for key in ours:
    a, b = med(ours[key]), med(theirs.get(key, []))
    c = med(ceil.get(key, []))
    extra = f" {c:11.2f} {a / c:8.1%}" if key in ceil else ""
    print(f"{key:46} {a:10.2f} {b:10.2f} {a / b:6.2f}×{extra}")
for key in first:
    a, b = med(first[key]), med(theirs_first.get(key, []))
    print(f"{key:46} {a:10.0f} {b:10.0f} {b / a:6.0f}×   (time: the ratio is burn's over wgrad's)")
print(f"\n{rounds} rounds, medians over rounds of each figure's own median; raw logs in {out}")
EOF
