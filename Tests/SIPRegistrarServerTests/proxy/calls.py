#!/usr/bin/env python3
"""Hand-built SIP exchanges through the server's proxy, one scenario per run.

usage: calls.py SCENARIO UDP_PORT TCP_PORT TLS_PORT [USERS_PASSWORD]

Each scenario plays the caller (A) and the callee (B) on their own sockets. The
callee registers a contact that cannot be reached (TEST-NET-1, 192.0.2.0/24), so
every request that reaches it came over the flow or the source address of its
REGISTER. Prints one line per step; exits 1 with the reason at the first surprise.
"""
import os, select, socket, sys, uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.dont_write_bytecode = True  # no __pycache__ in the test target's folder
from sipsupport import Msg, digest_credentials, expect, fail, tls_context  # noqa: E402

SCENARIO, PORT, TCP_PORT, TLS_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
SERVER = ('127.0.0.1', PORT)


class UDP:
    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(('127.0.0.1', 0))
        self.s.settimeout(5)
        self.transport = 'UDP'

    def send(self, text):
        self.s.sendto(text.encode(), SERVER)

    def recv(self, what):
        try:
            d, _ = self.s.recvfrom(65535)
        except socket.timeout:
            fail('no message: ' + what)
        return Msg(d.decode())

    def close(self):
        self.s.close()


class Stream:
    def __init__(self, tls):
        s = socket.create_connection(('127.0.0.1', TLS_PORT if tls else TCP_PORT))
        if tls:
            s = tls_context().wrap_socket(s)
        s.settimeout(5)
        self.s, self.buf = s, b''
        self.transport = 'TLS' if tls else 'TCP'

    def send(self, text):
        self.s.sendall(text.encode())

    def recv(self, what):
        try:
            while b'\r\n\r\n' not in self.buf:
                chunk = self.s.recv(65535)
                if not chunk:
                    fail('connection closed waiting for: ' + what)
                self.buf += chunk
            head, rest = self.buf.split(b'\r\n\r\n', 1)
            cl = 0
            for l in head.split(b'\r\n'):
                if l.lower().startswith(b'content-length:') or l.lower().startswith(b'l:'):
                    cl = int(l.split(b':')[1])
            while len(rest) < cl:
                rest += self.s.recv(65535)
        except socket.timeout:
            fail('no message: ' + what)
        self.buf = rest[cl:]
        return Msg((head + b'\r\n\r\n' + rest[:cl]).decode())

    def close(self):
        self.s.close()


def request(method, uri, sock, frm, to, call_id, cseq, via_host, branch=None, extra=(), body='', to_tag=None):
    branch = branch or 'z9hG4bK' + uuid.uuid4().hex
    lines = [f'{method} {uri} SIP/2.0',
             f'Via: SIP/2.0/{sock.transport} {via_host};branch={branch};rport'] + \
            ([] if any(e.startswith('Max-Forwards:') for e in extra) else ['Max-Forwards: 70']) + [
             f'From: <{frm}>;tag={frm.split(":")[1][:3]}tag',
             f'To: <{to}>' + (f';tag={to_tag}' if to_tag else ''),
             f'Call-ID: {call_id}', f'CSeq: {cseq} {method}']
    lines += list(extra)
    lines.append(f'Content-Length: {len(body.encode())}')
    return '\r\n'.join(lines) + '\r\n\r\n' + body


def response(req, code, reason, to_tag=None, extra=()):
    lines = [f'SIP/2.0 {code} {reason}']
    for l in req.lines[1:]:
        n = l.partition(':')[0].strip().lower()
        if n in ('via', 'record-route', 'from', 'call-id', 'cseq'):
            lines.append(l)
        elif n == 'to':
            lines.append(l + (f';tag={to_tag}' if to_tag and ';tag=' not in l else ''))
    lines += list(extra)
    lines.append('Content-Length: 0')
    return '\r\n'.join(lines) + '\r\n\r\n'


def register(sock, user, contact, extra=(), scheme='sip'):
    m = request('REGISTER', f'{scheme}:example.com', sock, f'{scheme}:{user}@example.com', f'{scheme}:{user}@example.com',
                uuid.uuid4().hex, 1, '192.0.2.1:5999', extra=[f'Contact: <{contact}>', 'Expires: 600'] + list(extra))
    sock.send(m)
    r = sock.recv('200 to REGISTER')
    expect(r.status == 200, f'REGISTER of {user}: {r.first}')
    print(f'registered {user} over {sock.transport}')


def invite(a, uri, call_id, branch=None, frm='sip:alice@example.com', extra=(), body='v=0\r\n'):
    a.send(request('INVITE', uri, a, frm, uri, call_id, 1, '192.0.2.2:5998', branch=branch,
                   extra=['Contact: <sip:alice@192.0.2.2:5998>', 'Content-Type: application/sdp'] + list(extra), body=body))


def final(sock, what, call_id=None):
    """The next final response (of the call `call_id` when given: earlier calls' answers are skipped)."""
    while True:
        r = sock.recv(what)
        if r.status and r.status >= 200 and (call_id is None or r.get('Call-ID') == call_id):
            return r


def call(a, b):
    """INVITE A -> B, 180, 200, ACK, BYE from the callee, 200: the whole dialog through the proxy."""
    cid = uuid.uuid4().hex
    invite(a, 'sip:bob@example.com', cid, body='v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\n')
    r = a.recv('100 Trying')
    expect(r.status == 100, f'first answer to INVITE: {r.first}')
    inv = b.recv('INVITE at the callee')
    expect(inv.first.startswith('INVITE sip:bob@192.0.2.1:5999'), f'Request-URI: {inv.first}')
    expect(inv.get('Max-Forwards') == '69', 'Max-Forwards not decremented: %s' % inv.get('Max-Forwards'))
    rr = inv.all('Record-Route')
    expect(len(rr) == 2, f'two Record-Routes expected: {rr}')
    expect(inv.body == 'v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\n', 'body changed: %r' % inv.body)
    expect(len(inv.all('Via')) == 2, 'our Via on top of the caller\'s: %s' % inv.all('Via'))
    print('callee got the INVITE over ' + b.transport + ' with two Record-Routes')
    b.send(response(inv, 180, 'Ringing', 'btag'))
    r = a.recv('180')
    expect(r.status == 180, f'180 expected: {r.first}')
    b.send(response(inv, 200, 'OK', 'btag', extra=['Contact: <sip:bob@192.0.2.1:5999>', 'Content-Type: application/sdp']))
    ok = final(a, '200 to INVITE')
    expect(ok.status == 200, f'200 expected: {ok.first}')
    expect(len(ok.all('Via')) == 1, 'our Via stripped from the 200')
    routes = [v for h in reversed(ok.all('Record-Route')) for v in reversed(h.split(', '))]
    a.send(request('ACK', 'sip:bob@192.0.2.1:5999', a, 'sip:alice@example.com', 'sip:bob@example.com', cid, 1,
                   '192.0.2.2:5998', to_tag='btag', extra=['Route: ' + ', '.join(routes)]))
    ack = b.recv('ACK at the callee')
    expect(ack.first.startswith('ACK '), f'ACK expected: {ack.first}')
    print('ACK reached the callee through the caller\'s Route set')
    b.send(request('BYE', 'sip:alice@192.0.2.2:5998', b, 'sip:bob@example.com', 'sip:alice@example.com', cid, 2,
                   '192.0.2.1:5999', to_tag='alitag', extra=['Route: ' + ', '.join(inv.all('Record-Route'))]))
    bye = a.recv('BYE at the caller')
    expect(bye.first.startswith('BYE sip:alice@192.0.2.2:5998'), f'BYE expected: {bye.first}')
    expect(not bye.all('Record-Route'), 'no Record-Route inside a dialog')
    a.send(response(bye, 200, 'OK'))
    r = b.recv('200 to BYE')
    expect(r.status == 200, f'200 to BYE: {r.first}')
    print('BYE from the callee reached the caller; 200 back')


def scenario_udp():
    a, b = UDP(), UDP()
    register(b, 'bob', 'sip:bob@192.0.2.1:5999')
    call(a, b)


def scenario_tls():
    a, b = Stream(False), Stream(True)
    register(b, 'bob', 'sip:bob@192.0.2.1:5999;transport=tls')
    call(a, b)


def scenario_sips():
    """A sips: request never leaves over a non-TLS hop, and reaches a sips: contact over TLS."""
    a, u, t = UDP(), UDP(), Stream(True)
    register(u, 'carol', 'sip:carol@192.0.2.1:5999')
    invite(a, 'sips:carol@example.com', uuid.uuid4().hex)
    r = final(a, 'answer to sips: INVITE for a UDP-only user')
    expect(r.status == 480 and any(w.startswith('380 ') for w in r.all('Warning')), f'480 + Warning 380: {r.first} {r.all("Warning")}')
    print('sips: call to a user with only a UDP contact: 480 with Warning 380')
    register(t, 'dave', 'sips:dave@192.0.2.1:5999', scheme='sips')
    invite(a, 'sips:dave@example.com', uuid.uuid4().hex)
    inv = t.recv('sips: INVITE over TLS')
    expect(inv.first.startswith('INVITE sips:dave@192.0.2.1:5999'), inv.first)
    expect(all(v.startswith('<sips:') for v in inv.all('Record-Route')), 'sips: Record-Routes: %s' % inv.all('Record-Route'))
    t.send(response(inv, 486, 'Busy Here', 'dtag'))
    r = final(a, 'final response to sips: INVITE')
    expect(r.status == 486, f'486 relayed: {r.first}')
    print('sips: INVITE went over the TLS flow with sips: Record-Routes; 486 relayed')


def scenario_cancel():
    a, b = Stream(False), Stream(True)
    register(b, 'bob', 'sip:bob@192.0.2.1:5999;transport=tls')
    cid, br = uuid.uuid4().hex, 'z9hG4bK' + uuid.uuid4().hex
    invite(a, 'sip:bob@example.com', cid, branch=br)
    expect(a.recv('100').status == 100, '100 Trying')
    inv = b.recv('INVITE')
    b.send(response(inv, 180, 'Ringing', 'btag'))
    expect(a.recv('180').status == 180, '180 relayed')
    a.send(request('CANCEL', 'sip:bob@example.com', a, 'sip:alice@example.com', 'sip:bob@example.com', cid, 1,
                   '192.0.2.2:5998', branch=br))
    r = a.recv('200 to CANCEL')
    expect(r.status == 200 and 'CANCEL' in r.get('CSeq'), f'200 to CANCEL: {r.first} {r.get("CSeq")}')
    c = b.recv('CANCEL at the callee')
    expect(c.first.startswith('CANCEL '), c.first)
    b.send(response(c, 200, 'OK'))
    b.send(response(inv, 487, 'Request Terminated', 'btag'))
    r = final(a, '487')
    expect(r.status == 487, f'487 expected: {r.first}')
    ack = b.recv('ACK for 487')
    expect(ack.first.startswith('ACK '), ack.first)
    print('CANCEL: 200 to the caller, CANCEL to the callee, 487 relayed, ACK sent hop by hop')


def scenario_refusals():
    a = UDP()
    invite(a, 'sip:nobody@example.com', uuid.uuid4().hex)
    r = final(a, 'unknown user')
    expect(r.status == 404, f'404 for an unknown user: {r.first}')
    invite(a, 'sip:bob@elsewhere.example.net', uuid.uuid4().hex)
    r = final(a, 'foreign domain')
    expect(r.status == 403, f'403 for a domain we do not serve: {r.first}')
    invite(a, 'sip:bob@example.com', uuid.uuid4().hex, extra=['Max-Forwards: 0'])
    r = final(a, 'Max-Forwards 0')
    expect(r.status == 483, f'483 at Max-Forwards 0: {r.first}')
    a.send(request('CANCEL', 'sip:bob@example.com', a, 'sip:alice@example.com', 'sip:bob@example.com', uuid.uuid4().hex,
                   1, '192.0.2.2:5998'))
    r = final(a, 'CANCEL of nothing')
    expect(r.status == 481, f'481 for a CANCEL that matches nothing: {r.first}')
    a.send(request('BYE', 'sip:bob@example.com', a, 'sip:alice@example.com', 'sip:bob@example.com', uuid.uuid4().hex,
                   2, '192.0.2.2:5998', to_tag='forged'))
    r = final(a, 'BYE outside our dialogs')
    expect(r.status == 481, f'481 for an in-dialog request we did not Record-Route: {r.first}')
    forged = '<sip:AQEAAAAAAAAAAQOjIAkxMjcuMC4wLjHKAzy5SUVOS8caH7UD0lei@127.0.0.1:%d;lr>' % PORT
    a.send(request('BYE', 'sip:bob@192.0.2.9', a, 'sip:alice@example.com', 'sip:bob@example.com', uuid.uuid4().hex,
                   2, '192.0.2.2:5998', to_tag='forged', extra=['Route: ' + forged]))
    r = final(a, 'BYE with a forged flow token')
    expect(r.status == 481, f'481 for a forged flow token: {r.first}')
    # A flow that is gone: the contact registered over TCP, the connection closed.
    t = Stream(False)
    register(t, 'erin', 'sip:erin@192.0.2.1:5999;transport=tcp')
    t.close()
    invite(a, 'sip:erin@example.com', uuid.uuid4().hex)
    r = final(a, 'closed flow')
    expect(r.status == 480, f'480 when the only flow is gone: {r.first}')
    o = Stream(False)
    register(o, 'fred', 'sip:fred@192.0.2.1:5999;transport=tcp', extra=[])
    o.send(request('REGISTER', 'sip:example.com', o, 'sip:fred@example.com', 'sip:fred@example.com', uuid.uuid4().hex, 1,
                   '192.0.2.1:5999', extra=['Contact: <sip:fred@192.0.2.1:5998;transport=tcp>;reg-id=1;'
                                            '+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"',
                                            'Supported: outbound', 'Expires: 600']))
    expect(o.recv('200').status == 200, 'outbound REGISTER')
    o.close()
    invite(a, 'sip:fred@example.com', uuid.uuid4().hex)
    r = final(a, 'closed outbound flow')
    expect(r.status in (430, 480), f'430/480 when the flows are gone: {r.first}')
    print('404 unknown user, 403 foreign domain, 483, 481 (CANCEL, dialog, forged token), 480 and %d for closed flows' % r.status)


def scenario_auth():
    """With users, a local caller is challenged with 407; a call from another domain is let through."""
    password = sys.argv[5]
    a, b = UDP(), UDP()
    b.send(request('REGISTER', 'sip:example.com', b, 'sip:bob@example.com', 'sip:bob@example.com', uuid.uuid4().hex, 1,
                   '192.0.2.1:5999', extra=['Contact: <sip:bob@192.0.2.1:5999>', 'Expires: 600']))
    expect(b.recv('401').status == 401, 'REGISTER challenged')
    invite(a, 'sip:bob@example.com', uuid.uuid4().hex)
    r = final(a, '407')
    expect(r.status == 407 and r.get('Proxy-Authenticate', ) is not None, f'407 + Proxy-Authenticate: {r.first}')
    print('INVITE from a local user without credentials: 407 with Proxy-Authenticate')
    chal = next(c for c in r.all('Proxy-Authenticate') if 'SHA-256' in c)
    uri = 'sip:bob@example.com'
    creds = digest_credentials('Proxy-Authorization', chal, 'alice', password, 'INVITE', uri)
    invite(a, uri, uuid.uuid4().hex, extra=[creds])
    r = final(a, 'answer to the authenticated INVITE')
    expect(r.status == 404, f'authenticated, then looked up (bob is not registered): {r.first}')
    print('INVITE with Proxy-Authorization: accepted and looked up')
    invite(a, 'sip:bob@example.com', uuid.uuid4().hex, frm='sip:zoe@other.example.org')
    r = final(a, 'incoming call from another domain')
    expect(r.status == 404, f'not challenged, looked up (bob is not registered): {r.first}')
    print('INVITE from another domain: not challenged (404: the callee is not registered)')


def scenario_cross():
    """Two nodes on one store: the callee's TLS flow is on node B, the caller calls through node A.
    Extra arguments: B's TLS port, then the TLS port of a node C that publishes no node_address."""
    global TLS_PORT
    b_tls, c_tls = int(sys.argv[5]), int(sys.argv[6])
    a_tls = TLS_PORT
    TLS_PORT = b_tls
    b = Stream(True)
    register(b, 'bob', 'sip:bob@192.0.2.1:5999;transport=tls')
    TLS_PORT = c_tls
    c = Stream(True)
    register(c, 'carl', 'sip:carl@192.0.2.1:5999;transport=tls')
    TLS_PORT = a_tls
    import time
    a = UDP()
    # Wait (bounded) until node A has read bob's binding and node B's address (a heartbeat).
    inv = None
    for _ in range(60):
        cid = uuid.uuid4().hex
        invite(a, 'sip:bob@example.com', cid)
        if b.buf or b.s.pending() or select.select([b.s], [], [], 0.5)[0]:
            inv = b.recv('INVITE over the flow on node B')
            break
        r = final(a, 'answer at node A before it knows node B')
        expect(r.status in (404, 480), f'before replication: {r.first}')
        time.sleep(0.2)
    expect(inv is not None, 'node A never forwarded to node B')
    expect(inv.first.startswith('INVITE sip:bob@192.0.2.1:5999'), inv.first)
    vias = inv.all('Via')
    expect(len(vias) == 3, 'Vias of A, B and the caller: %s' % vias)
    expect(vias[1].startswith('SIP/2.0/TLS '), 'node A reached node B over TLS: %s' % vias[1])
    expect(len(inv.all('Record-Route')) == 4, 'both nodes Record-Route: %s' % inv.all('Record-Route'))
    print('INVITE at node A reached the callee over its flow on node B')
    b.send(response(inv, 200, 'OK', 'btag', extra=['Contact: <sip:bob@192.0.2.1:5999;transport=tls>']))
    ok = final(a, '200 through both nodes', call_id=cid)
    expect(ok.status == 200 and len(ok.all('Via')) == 1, f'200 with only the caller\'s Via: {ok.first} {ok.all("Via")} {ok.get("Call-ID")} expected {cid}')
    routes = [v for h in reversed(ok.all('Record-Route')) for v in reversed(h.split(', '))]
    a.send(request('ACK', 'sip:bob@192.0.2.1:5999;transport=tls', a, 'sip:alice@example.com', 'sip:bob@example.com', cid, 1,
                   '192.0.2.2:5998', to_tag='btag', extra=['Route: ' + ', '.join(routes)]))
    expect(b.recv('ACK through both nodes').first.startswith('ACK '), 'ACK')
    b.send(request('BYE', 'sip:alice@192.0.2.2:5998', b, 'sip:bob@example.com', 'sip:alice@example.com', cid, 2,
                   '192.0.2.1:5999', to_tag='alitag', extra=['Route: ' + ', '.join(inv.all('Record-Route'))]))
    bye = a.recv('BYE back through both nodes')
    while bye.status is not None:
        bye = a.recv('BYE back through both nodes')
    expect(bye.first.startswith('BYE sip:alice@192.0.2.2:5998'), bye.first)
    a.send(response(bye, 200, 'OK'))
    expect(b.recv('200 to BYE').status == 200, '200 to BYE')
    print('ACK and BYE took the Record-Route through both nodes')
    for _ in range(100):
        ccid = uuid.uuid4().hex
        invite(a, 'sip:carl@example.com', ccid)
        r = final(a, 'call to a flow on a node without an address', call_id=ccid)
        if r.status != 404:
            break
        time.sleep(0.1)
    c.close()
    expect(r.status == 480, f'480 when the node holding the flow cannot be reached: {r.first}')
    print('a flow on a node that publishes no address: 480, not a black hole')


{'cross': scenario_cross, 'udp': scenario_udp, 'tls': scenario_tls, 'sips': scenario_sips, 'cancel': scenario_cancel,
 'refusals': scenario_refusals, 'auth': scenario_auth}[SCENARIO]()
print('OK')
