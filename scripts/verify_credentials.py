"""Independent verification of gco credentials with ordinary tools and public keys.

Shares no code with gco: PyJWT and jwcrypto check the VC-JOSE (vc+jwt) and legacy RS256
tokens, a short RFC 8785 canonicaliser plus `cryptography`'s Ed25519 checks the
eddsa-jcs-2022 Data Integrity proofs (first on the W3C vc-di-eddsa test vector),
`jsonschema` checks docs/credentials/schema-v1.json, the Bitstring Status List is
decoded with gzip/base64, inclusion proofs and aggregate member roots are recomputed
with hashlib (and scripts/ledger_hash.py for record leaf hashes).

Then the negative cases: a changed claim, a wrong key, a broken inclusion proof must
each fail; with --expect-revoked ID that credential's status bit must be set (and no
other's).

usage: python scripts/verify_credentials.py STORE_DIR DID_JSON PERIOD VERSION [--expect-revoked ID] [--sample N]
(--sample N: every aggregate credential, and the first N per-inference rows of each day
file; default all)
prints a JSON summary; exit 0 only when every check passed.
"""

import base64
import copy
import gzip
import hashlib
import json
import sys
from pathlib import Path

import jsonschema
import jwt
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jws as jwc_jws

sys.path.insert(0, str(Path(__file__).parent))
import ledger_hash  # noqa: E402  (the independent ledger hashing)

ROOT = Path(__file__).resolve().parent.parent
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def b58decode(s):
    n = 0
    for c in s:
        n = n * 58 + B58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(s) - len(s.lstrip("1"))) + raw


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# --- RFC 8785 (JCS), written from the RFC -------------------------------------------
def jcs_number(x):
    # gco credentials hold integers only (figures are decimal strings); RFC 8785 writes
    # an integer below 2^53 as its decimal digits.
    if isinstance(x, bool) or not isinstance(x, int) or abs(x) >= 2**53:
        raise ValueError(f"number {x!r} is outside what this checker canonicalises")
    return str(x)


JCS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jcs_string(s):
    out = ['"']
    for ch in s:
        if ch in JCS_ESCAPES:
            out.append(JCS_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return jcs_number(v)
    if isinstance(v, str):
        return jcs_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    keys = sorted(v.keys(), key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(jcs_string(k) + ":" + jcs(v[k]) for k in keys) + "}"


def di_hash(doc):
    doc = copy.deepcopy(doc)
    proof = doc.pop("proof")
    proof.pop("proofValue")
    return hashlib.sha256(jcs(proof).encode()).digest() + hashlib.sha256(jcs(doc).encode()).digest()


def verify_di(doc, public_key_bytes):
    proof = doc["proof"]
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-jcs-2022", proof
    assert proof["proofValue"][0] == "z"
    Ed25519PublicKey.from_public_bytes(public_key_bytes).verify(b58decode(proof["proofValue"][1:]), di_hash(doc))


def multikey_ed25519(mb):
    raw = b58decode(mb[1:])
    assert raw[:2] == b"\xed\x01", "not an Ed25519 multikey"
    return raw[2:]


# --- RFC 6962 ------------------------------------------------------------------------
def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def verify_inclusion(leaf, index, size, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- keys from the DID document -----------------------------------------------------
def keys_from_did(did_doc):
    out = {}
    for vm in did_doc["verificationMethod"]:
        if "publicKeyJwk" in vm:
            out[vm["id"]] = ("jwk", vm["publicKeyJwk"])
        elif "publicKeyMultibase" in vm:
            out[vm["id"]] = ("multikey", vm["publicKeyMultibase"])
    return out


def pyjwt_verify(token, keys, typ):
    header = jwt.get_unverified_header(token)
    assert header.get("typ") == typ, header
    assert header["alg"] != "none"
    kind, material = keys[header["kid"]]
    assert kind == "jwk"
    key = jwt.PyJWK(material, algorithm=header["alg"])
    return jwt.decode(token, key.key, algorithms=[header["alg"]], options={"verify_aud": False, "verify_iat": False})


def jwcrypto_verify(token, keys):
    header = jwt.get_unverified_header(token)
    k = jwc_jwk.JWK(**keys[header["kid"]][1])
    s = jwc_jws.JWS()
    s.deserialize(token)
    s.verify(k, alg=header["alg"])
    return json.loads(s.payload)


_LISTS = {}


def status_bit(store, list_id, index):
    if list_id not in _LISTS:
        _LISTS[list_id] = load_list(store, list_id)
    raw, path = _LISTS[list_id]
    return (raw[index // 8] >> (7 - index % 8)) & 1, path


def load_list(store, list_id):
    parts = list_id.rsplit("/", 3)
    path = store / f"certificates/period={parts[1]}/version={parts[2]}/status/{parts[3]}.jwt"
    claims = jwt.decode(path.read_text(), options={"verify_signature": False})  # signature checked below
    raw = gzip.decompress(b64u(claims["credentialSubject"]["encodedList"][1:]))
    assert len(raw) * 8 >= 131072
    return raw, path


def main():
    store, did_path, period, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    expect_revoked = sys.argv[sys.argv.index("--expect-revoked") + 1] if "--expect-revoked" in sys.argv else None
    sample = int(sys.argv[sys.argv.index("--sample") + 1]) if "--sample" in sys.argv else None
    did_doc = json.loads(did_path.read_text())
    keys = keys_from_did(did_doc)
    schema = json.loads((ROOT / "docs/credentials/schema-v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    summary = {"vc_jwt": 0, "vc_di": 0, "legacy": 0, "schema": 0, "inclusion_proofs": 0, "member_roots": 0, "negative_cases": 0}

    # 1. The W3C eddsa-jcs-2022 test vector, with this script's own JCS.
    vdir = ROOT / "credentials/tests/data/vc-di-eddsa"
    vec = json.loads((vdir / "signedJCS.json").read_text())
    pair = json.loads((vdir / "keyPair.json").read_text())
    unsigned = {k: v for k, v in vec.items() if k != "proof"}
    if jcs(unsigned) != (vdir / "canonDocJCS.txt").read_text().strip():
        fail("JCS of the W3C vector differs from canonDocJCS.txt")
    verify_di(vec, multikey_ed25519(pair["publicKeyMultibase"]))
    seed = b58decode(pair["privateKeyMultibase"][1:])[2:]
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(di_hash(vec))
    if sig.hex() != (vdir / "sigHexJCS.txt").read_text().strip():
        fail("W3C vector signature not reproduced")

    prefix = store / f"certificates/period={period}/version={version:04d}"
    agg = pq.read_table(prefix / "aggregates.parquet").to_pylist()
    inf_files = sorted(prefix.glob("inferences/date=*/part-*.parquet"))
    inferences = [r for f in inf_files for r in pq.read_table(f).to_pylist()[:sample]]
    checked = []  # (claims, row)

    def check_vc(claims, row):
        validator.validate(claims)
        summary["schema"] += 1
        assert claims["issuer"] == did_doc["id"], claims["issuer"]
        assert claims["@context"][0] == "https://www.w3.org/ns/credentials/v2"
        st = claims["credentialStatus"]
        bit, _ = status_bit(store, st["statusListCredential"], int(st["statusListIndex"]))
        revoked = claims["id"] == expect_revoked
        if bit != (1 if revoked else 0):
            fail(f"{claims['id']}: status bit {bit}, expected {int(revoked)}")
        checked.append((claims, row))

    for row in agg + inferences:
        doc = row["document"]
        if row["format"] == "vc-jwt":
            claims = pyjwt_verify(doc, keys, "vc+jwt")
            if summary["vc_jwt"] < 50:  # a second library on a sample
                assert jwcrypto_verify(doc, keys) == claims
            check_vc(claims, row)
            summary["vc_jwt"] += 1
        elif row["format"] == "vc-di":
            d = json.loads(doc)
            kind, mb = keys[d["proof"]["verificationMethod"]]
            verify_di(d, multikey_ed25519(mb))
            check_vc({k: v for k, v in d.items() if k != "proof"}, row)
            summary["vc_di"] += 1
        elif row["format"] == "legacy":
            claims = pyjwt_verify(doc, keys, "JWT")
            assert jwt.get_unverified_header(doc)["alg"] == "RS256"
            for c in ("certificate_id", "inference_id", "hardware_id", "timestamp", "energy_used_kwh",
                      "carbon_intensity_gco2_kwh", "total_emissions_gco2", "grid_region", "issuer"):
                assert c in claims, c
            assert claims["inference_id"] == row["inference_id"]
            summary["legacy"] += 1

    # Status list credentials are themselves signed vc+jwt.
    for f in prefix.glob("status/*.jwt"):
        pyjwt_verify(f.read_text(), keys, "vc+jwt")

    # 2. Inclusion proofs of per-inference credentials, and the record's leaf hash
    #    recomputed from the ledger batch.
    ledger_cache = {}
    for claims, row in checked:
        for ev in claims["evidence"]:
            if ev["type"][0] != "LedgerRecordEvidence":
                continue
            leaf = bytes.fromhex(ev["leafHash"])
            path = [bytes.fromhex(p) for p in ev["inclusionProof"]]
            if not verify_inclusion(leaf, ev["leafIndex"], ev["treeSize"], path, bytes.fromhex(ev["merkleRoot"])):
                fail(f"{claims['id']}: inclusion proof does not verify")
            if ev["batch"] not in ledger_cache:
                pf = pq.ParquetFile(store / ev["batch"])
                t = pf.read()
                micros = {c: t.column(c).cast("int64").to_pylist() for c in ("start", "end")}
                rows = t.to_pylist()
                for i, r in enumerate(rows):
                    r["start"], r["end"] = micros["start"][i], micros["end"][i]
                ledger_cache[ev["batch"]] = (json.loads(pf.metadata.metadata[b"gco.seal"]), rows)
            seal, rows = ledger_cache[ev["batch"]]
            rec = rows[ev["leafIndex"]]
            if ledger_hash.leaf_hash(rec) != leaf or seal["merkle_root"] != ev["merkleRoot"]:
                fail(f"{claims['id']}: leaf hash or root differs from the ledger batch")
            if rec["inference_id"] != claims["credentialSubject"]["inferenceId"]:
                fail(f"{claims['id']}: the ledger record is another inference")
            summary["inclusion_proofs"] += 1

    # 3. Organisation-month member roots recomputed, a tree of trees: RFC 6962 roots of
    #    each (date, model, scope)'s ledger leaf hashes in stored order; per (model,
    #    scope) the root over its day roots in date order; per scope the root over its
    #    model roots in model-name order.
    leaves_by = {}
    rows_dir = store / f"emissions/period={period}/version={version:04d}/rows"
    batches = {}
    for f in sorted(store.glob(f"records/date={period}-*/node=*/*.parquet")):
        pf = pq.ParquetFile(f)
        seal = json.loads(pf.metadata.metadata[b"gco.seal"])
        t = pf.read()
        micros = {c: t.column(c).cast("int64").to_pylist() for c in ("start", "end")}
        for i, r in enumerate(t.to_pylist()):
            r["start"], r["end"] = micros["start"][i], micros["end"][i]
            batches[(r["node_id"], r["seq"])] = ledger_hash.leaf_hash(r)
    for f in sorted(rows_dir.glob("date=*/part-*.parquet")):
        date = f.parent.name.removeprefix("date=")
        for r in pq.read_table(f, columns=["node_id", "seq", "kind", "model_id", "scope"]).to_pylist():
            if r["kind"] == "inference":
                key = (r["scope"], r["model_id"] or "(idle/overhead)", date)
                leaves_by.setdefault(key, []).append(batches[(r["node_id"], r["seq"])])
    org = {}
    for scope in sorted({k[0] for k in leaves_by}):
        month_roots, count = [], 0
        for model in sorted({k[1] for k in leaves_by if k[0] == scope}):
            days = sorted(k for k in leaves_by if k[0] == scope and k[1] == model)
            month_roots.append(ledger_hash.merkle_root([ledger_hash.merkle_root(leaves_by[d]) for d in days]))
            count += sum(len(leaves_by[d]) for d in days)
        org[scope] = (ledger_hash.merkle_root(month_roots).hex(), count)
    for claims, _ in checked:
        s = claims["credentialSubject"]
        if s["granularity"] == "organisation_month":
            root, count = org.get(s["scope"], (ledger_hash.merkle_root([]).hex(), 0))
            if root != s["members"]["root"] or count != s["members"]["count"]:
                fail(f"{claims['id']}: member root differs from the one recomputed from the ledger")
            summary["member_roots"] += 1

    # 4. Negative cases: each must fail.
    jwt_row = next(r for r in agg if r["format"] == "vc-jwt")
    h, p, sgn = jwt_row["document"].split(".")
    claims = json.loads(b64u(p))
    claims["credentialSubject"]["locationBasedNg"] = "1"
    forged = h + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + sgn
    try:
        pyjwt_verify(forged, keys, "vc+jwt")
        fail("a changed claim verified")
    except jwt.InvalidSignatureError:
        summary["negative_cases"] += 1
    other = Ed25519PrivateKey.generate().public_key()
    try:
        jwt.decode(jwt_row["document"], other, algorithms=["EdDSA"])
        fail("a wrong key verified")
    except jwt.InvalidSignatureError:
        summary["negative_cases"] += 1
    di_rows = [r for r in agg if r["format"] == "vc-di"]
    if di_rows:
        d = json.loads(di_rows[0]["document"])
        d["credentialSubject"]["locationBasedNg"] = "1"
        try:
            verify_di(d, multikey_ed25519(keys[d["proof"]["verificationMethod"]][1]))
            fail("a changed vc-di claim verified")
        except Exception:  # cryptography raises InvalidSignature
            summary["negative_cases"] += 1
    with_proof = [c for c, _ in checked if c["credentialSubject"]["granularity"] == "inference"]
    if with_proof:
        ev = next(e for e in with_proof[0]["evidence"] if e["type"][0] == "LedgerRecordEvidence")
        path = [bytes.fromhex(x) for x in ev["inclusionProof"]]
        path[0] = bytes(32)
        if verify_inclusion(bytes.fromhex(ev["leafHash"]), ev["leafIndex"], ev["treeSize"], path, bytes.fromhex(ev["merkleRoot"])):
            fail("a broken inclusion proof verified")
        summary["negative_cases"] += 1
    if expect_revoked and not any(c["id"] == expect_revoked for c, _ in checked):
        fail(f"revoked credential {expect_revoked} not found")
    summary["ok"] = True
    summary["credentials"] = len(checked) + summary["legacy"]
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
