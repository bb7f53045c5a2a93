"""Helpers the SIP test scripts share (proxy/calls.py, websocket/ws.py, websocket/browser.py).

A script finds this module from its own folder:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    sys.dont_write_bytecode = True  # no __pycache__ in the test target's folder
    from sipsupport import ...
"""
import hashlib, re, ssl, sys


def fail(why):
    """Prints the reason and exits 1: the Swift test shows the output."""
    print('FAIL: ' + why)
    sys.exit(1)


def expect(cond, why):
    if not cond:
        fail(why)


def tls_context():
    """A client context that does not verify the server (its certificate is a test one)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Msg:
    """A received SIP message: start line, header lines and body."""

    def __init__(self, text):
        self.text = text
        head = text.split('\r\n\r\n', 1)[0]
        self.lines = head.split('\r\n')
        self.first = self.lines[0]
        self.body = text.split('\r\n\r\n', 1)[1] if '\r\n\r\n' in text else ''

    @property
    def status(self):
        return int(self.first.split()[1]) if self.first.startswith('SIP/2.0') else None

    def all(self, name):
        out = []
        for l in self.lines[1:]:
            n, _, v = l.partition(':')
            if n.strip().lower() == name.lower():
                out.append(v.strip())
        return out

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None


def digest_credentials(header, challenge, user, password, method, uri):
    """The `header` line (Authorization or Proxy-Authorization) answering a SHA-256 digest
    `challenge` (RFC 7616, qop=auth, nc 1, a fixed cnonce) for `method` on `uri`."""
    realm = re.search(r'realm="([^"]*)"', challenge).group(1)
    nonce = re.search(r'nonce="([^"]*)"', challenge).group(1)
    h = lambda t: hashlib.sha256(t.encode()).hexdigest()
    digest = h(f"{h(f'{user}:{realm}:{password}')}:{nonce}:00000001:c0ffee:auth:{h(f'{method}:{uri}')}")
    return (f'{header}: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{digest}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c0ffee"')
