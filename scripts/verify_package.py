#!/usr/bin/env python3
"""Independent check of a gco auditor package (zip or directory), as its README tells
an auditor: verify manifest.jwt (VC-JOSE, typ vc+jwt) with PyJWT and the issuer's key
from the published DID document, then compare every file's size and SHA-256 with the
signed list, and check that no file is missing or extra.

usage: verify_package.py PACKAGE DID_JSON [--expect-files N]
"""

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import jwt


def read(package):
    p = Path(package)
    if p.is_dir():
        return {str(f.relative_to(p)).replace("\\", "/"): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
    with zipfile.ZipFile(p) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def main():
    package, did_json = sys.argv[1], sys.argv[2]
    files = read(package)
    did = json.loads(Path(did_json).read_text())
    token = files["manifest.jwt"].decode().strip()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "vc+jwt" and header["alg"] != "none", header
    vm = next(v for v in did["verificationMethod"] if v["id"] == header["kid"])
    key = jwt.PyJWK(vm["publicKeyJwk"], algorithm=header["alg"])
    claims = jwt.decode(token, key.key, algorithms=[header["alg"]], options={"verify_aud": False})
    assert "AuditPackageManifest" in claims["type"], claims["type"]
    assert json.loads(files["manifest.json"]) == claims, "manifest.json is not the signed payload"
    listed = {e["path"]: e for e in claims["credentialSubject"]["files"]}
    problems = []
    for path, e in listed.items():
        b = files.get(path)
        if b is None:
            problems.append(f"missing: {path}")
        elif len(b) != e["size"] or hashlib.sha256(b).hexdigest() != e["sha256"]:
            problems.append(f"changed: {path}")
    for path in files:
        if path not in listed and path not in ("manifest.jwt", "manifest.json"):
            problems.append(f"extra: {path}")
    if "--expect-files" in sys.argv:
        n = int(sys.argv[sys.argv.index("--expect-files") + 1])
        if len(listed) != n:
            problems.append(f"{len(listed)} files listed, expected {n}")
    print(json.dumps({"ok": not problems, "files": len(listed), "kid": header["kid"], "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
