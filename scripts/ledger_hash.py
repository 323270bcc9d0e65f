"""Independent implementation of the gco ledger hashing (docs/ledger-format.md).

Recomputes record leaf hashes, the RFC 6962 Merkle root and the batch hash of every
batch in a ledger directory from the Parquet files alone, with pyarrow and hashlib,
and compares them with each footer seal. It shares no code with the Rust crate: if
both agree, the format document is precise enough for a second implementation.

usage: python scripts/ledger_hash.py LEDGER_DIR   (exit 0 when every batch matches)
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

RECORD_TAG = "gco.record.v1"
BATCH_TAG = "gco.batch.v1"


def enc_str(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def enc_opt_str(s):
    return b"\x00" if s is None else b"\x01" + enc_str(s)


def enc_i64(v):
    return struct.pack(">q", v)


def enc_opt_i64(v):
    return b"\x00" if v is None else b"\x01" + enc_i64(v)


def record_bytes(r):
    out = enc_str(RECORD_TAG) + enc_i64(r["seq"]) + enc_str(r["kind"])
    out += enc_opt_str(r["inference_id"]) + enc_str(r["node_id"])
    out += enc_opt_str(r["model_id"]) + enc_opt_str(r["model_version"])
    out += enc_i64(r["start"]) + enc_i64(r["end"]) + enc_i64(r["energy_mj"])
    out += enc_str(r["measurement"]) + struct.pack(">I", len(r["gpus"]))
    for g in r["gpus"]:
        out += enc_str(g)
    out += enc_opt_i64(r["prompt_tokens"]) + enc_opt_i64(r["completion_tokens"])
    return out


def leaf_hash(r):
    return hashlib.sha256(b"\x00" + record_bytes(r)).digest()


def merkle_root(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def batch_payload(seal):
    out = enc_str(BATCH_TAG) + struct.pack(">I", seal["schema_version"])
    out += enc_str(seal["node_id"]) + enc_str(seal["date"])
    for key in ("seq_first", "seq_last", "record_count", "energy_mj", "start_min_us", "end_max_us"):
        out += enc_i64(seal[key])
    out += bytes.fromhex(seal["merkle_root"]) + bytes.fromhex(seal["prev_batch_hash"])
    out += enc_str(seal["key_id"]) + enc_str(seal["algorithm"])
    return out


def check_file(path):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    seal = json.loads(pf.metadata.metadata[b"gco.seal"])
    table = pf.read()
    micros = {c: table.column(c).cast("int64").to_pylist() for c in ("start", "end")}
    rows = table.to_pylist()
    leaves = []
    for i, r in enumerate(rows):
        r["start"], r["end"] = micros["start"][i], micros["end"][i]
        leaves.append(leaf_hash(r))
    problems = []
    if merkle_root(leaves).hex() != seal["merkle_root"]:
        problems.append("merkle root differs from seal")
    if hashlib.sha256(batch_payload(seal)).hexdigest() != seal["batch_hash"]:
        problems.append("batch hash differs from seal")
    return len(rows), problems


def main():
    root = Path(sys.argv[1])
    files = sorted(root.glob("records/date=*/node=*/*.parquet"))
    bad = 0
    records = 0
    for f in files:
        n, problems = check_file(f)
        records += n
        for p in problems:
            bad += 1
            print(f"{f}: {p}")
    print(f"checked {len(files)} batches, {records} records, {bad} problems")
    sys.exit(1 if bad or not files else 0)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--golden":
    r = dict(seq=7, kind="inference", inference_id="inf-0001", node_id="node-a",
             model_id="llama-3.1-8b", model_version=None, start=1790857800000000,
             end=1790857801250000, energy_mj=437500, measurement="energy_counter",
             gpus=["GPU-0", "GPU-1"], prompt_tokens=512, completion_tokens=None)
    print(record_bytes(r).hex())
    print(leaf_hash(r).hex())
elif __name__ == "__main__":
    main()
