"""A local RFC 3161 time-stamp authority for the tests: `openssl ts -reply` behind HTTP.

Usage: tsa_server.py DIR PORT. DIR is made here: a throw-away root CA (ca.pem) and a TSA
certificate with extendedKeyUsage critical timeStamping; each POSTed
application/timestamp-query is answered by `openssl ts -reply` as
application/timestamp-reply. Test use only.
"""
import http.server
import os
import subprocess
import sys
import tempfile

CNF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ v3_tsa ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign
[ req ]
distinguished_name = dn
[ dn ]
"""


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_tsa(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tsa.cnf"), "w") as f:
        f.write(CNF.format(dir=d))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
        "-subj", "/CN=gco test TSA root", "-config", "tsa.cnf", "-extensions", "v3_ca", cwd=d)
    run("openssl", "req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=gco test TSA",
        "-config", "tsa.cnf", cwd=d)
    run("openssl", "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.pem", "-days", "3650", "-extfile", "tsa.cnf",
        "-extensions", "v3_tsa", cwd=d)
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("01\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(415, "expected application/timestamp-query")
            return
        query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with tempfile.TemporaryDirectory() as t:
            q, r = os.path.join(t, "q.tsq"), os.path.join(t, "r.tsr")
            with open(q, "wb") as f:
                f.write(query)
            p = subprocess.run(["openssl", "ts", "-reply", "-config", CONFIG, "-section", "tsa_config",
                                "-queryfile", q, "-out", r], capture_output=True)
            if p.returncode != 0 or not os.path.exists(r):
                self.send_error(400, "openssl ts -reply failed")
                return
            body = open(r, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    d, port = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    make_tsa(d)
    CONFIG = os.path.join(d, "tsa.cnf")
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()
