"""Throw-away TLS material for the end-to-end tests, made at test time with
the openssl command line tool (no key is ever committed).

    ca()                       the per-run test CA: a CA object (.cert, .key)
    server_cert(dir, ...)      a server certificate signed by the CA, written
                               as dir/NAME.crt and dir/NAME.key (key mode 0600)
    client_context(...)        an ssl.SSLContext that trusts only the test CA
    serial_of(path)            the serial number of a PEM certificate (int)
    smtpd_with_cert(conf, ...) a started daemon whose config names a fresh
                               server certificate as @CERT@ and @KEY@

Keys are EC P-256: fast to make, accepted at every security level. The CA
lives in a temp dir removed when the test process exits.
"""

import atexit
import os
import shutil
import ssl
import subprocess
import tempfile

SERVER_NAME = "mx.test"

_ca = None


class CA:
    def __init__(self, directory, cert, key):
        self.dir = directory
        self.cert = cert
        self.key = key
        self.next_serial = 1000


def _openssl(*args, cwd=None):
    r = subprocess.run(("openssl",) + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def _genkey(path):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o600)


def ca():
    """The test CA of this process (made on first use)."""
    global _ca
    if _ca is None:
        d = tempfile.mkdtemp(prefix="smtpd-e2e-ca-")
        atexit.register(shutil.rmtree, d, True)
        key = os.path.join(d, "ca.key")
        cert = os.path.join(d, "ca.crt")
        _genkey(key)
        _openssl("req", "-x509", "-new", "-key", key, "-out", cert,
                 "-days", "2", "-subj", "/CN=smtpd e2e test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _ca = CA(d, cert, key)
    return _ca


def server_cert(directory, name="server", serial=None, cn=SERVER_NAME,
                key_mode=0o600):
    """Make directory/name.crt and directory/name.key (a fresh key), signed
    by the test CA, for cn and 127.0.0.1. Return (cert, key, serial)."""
    authority = ca()
    if serial is None:
        serial = authority.next_serial
        authority.next_serial += 1
    key = os.path.join(directory, name + ".key")
    cert = os.path.join(directory, name + ".crt")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    _genkey(key)
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:%s,IP:127.0.0.1\n" % cn)
    _openssl("x509", "-req", "-in", csr, "-CA", authority.cert,
             "-CAkey", authority.key, "-set_serial", str(serial),
             "-days", "2", "-extfile", ext, "-out", cert)
    os.unlink(csr)
    os.unlink(ext)
    os.chmod(key, key_mode)
    os.chmod(cert, 0o644)
    return cert, key, serial


def smtpd_with_cert(config, **opts):
    """A started harness.Smtpd (opts are its options) with a fresh server
    certificate in its temp dir, named in config by @CERT@ and @KEY@.
    Return (smtpd, cert, key, serial)."""
    from harness import Smtpd

    d = Smtpd("", start=False, **opts)
    try:
        cert, key, serial = server_cert(d.tmp)
        d.write_config(config.replace("@CERT@", cert).replace("@KEY@", key))
        d.start()
    except BaseException:
        d.cleanup()
        raise
    return d, cert, key, serial


def serial_of(path):
    out = _openssl("x509", "-in", path, "-noout", "-serial").decode()
    return int(out.strip().split("=", 1)[1], 16)


def client_context(check_hostname=True, minimum=None, maximum=None,
                   ciphers=None):
    """A client context that trusts the test CA (and nothing else)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca().cert)
    ctx.check_hostname = check_hostname
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def tls_wrap(client, ctx=None, server_hostname=SERVER_NAME):
    """Run the TLS handshake on a harness Client's socket (after 220 Ready,
    or first thing on an implicit-TLS port); the client then speaks TLS.
    Bytes already buffered in plaintext are an error."""
    if client.buf:
        raise AssertionError("plaintext left over before the handshake: %r"
                             % client.buf)
    if ctx is None:
        ctx = client_context()
    client.sock.settimeout(client.timeout)
    client.sock = ctx.wrap_socket(client.sock,
                                  server_hostname=server_hostname)
    return client


def connect_tls(d, port=None, ctx=None, greeting=True):
    """A harness Client on an implicit-TLS port of Smtpd d, handshake done
    (and the greeting read unless greeting=False)."""
    c = d.connect(greeting=False, port=port)
    tls_wrap(c, ctx)
    if greeting:
        c.expect("220 %s ESMTP smtpd" % d.hostname, msg="greeting")
    return c


def starttls(c, ctx=None):
    """STARTTLS on harness Client c, then the handshake."""
    c.check("STARTTLS", "220 Ready to start TLS")
    return tls_wrap(c, ctx)
