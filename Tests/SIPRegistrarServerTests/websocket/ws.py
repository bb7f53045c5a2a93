#!/usr/bin/env python3
"""SIP over WebSocket (RFC 7118) against the server, with the `websockets` package.

usage: ws.py SCENARIO WS_PORT WSS_PORT [TLS_PORT [PASSWORD]]

Scenarios print one line per step and end with OK; the first surprise exits 1.
"""
import asyncio, os, socket, sys, uuid

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.dont_write_bytecode = True  # no __pycache__ in the test target's folder
from sipsupport import digest_credentials, expect, fail, tls_context  # noqa: E402

SCENARIO, WS_PORT, WSS_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
TLS_PORT = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def url(secure):
    return f'wss://127.0.0.1:{WSS_PORT}/' if secure else f'ws://127.0.0.1:{WS_PORT}/'


async def connect(secure, subprotocols=('sip',), origin=None, **kw):
    return await websockets.connect(url(secure), subprotocols=list(subprotocols), origin=origin,
                                    ssl=tls_context() if secure else None, open_timeout=5, **kw)


def register(user, transport, scheme='sip', expires=600, contact=None):
    host = f'{uuid.uuid4().hex[:8]}.invalid'
    contact = contact or f'<{scheme}:{user}@{host};transport={transport.lower()}>'
    return '\r\n'.join([
        f'REGISTER {scheme}:example.com SIP/2.0',
        f'Via: SIP/2.0/{transport} {host};branch=z9hG4bK{uuid.uuid4().hex}',
        'Max-Forwards: 70',
        f'From: <{scheme}:{user}@example.com>;tag={uuid.uuid4().hex[:8]}',
        f'To: <{scheme}:{user}@example.com>',
        f'Call-ID: {uuid.uuid4().hex}', 'CSeq: 1 REGISTER',
        f'Contact: {contact};expires={expires}',
        'Content-Length: 0', '', ''])


def status(text):
    first = text.split('\r\n', 1)[0]
    expect(first.startswith('SIP/2.0 '), f'not a response: {first!r}')
    return int(first.split()[1])


async def recv(ws, what, timeout=5):
    try:
        m = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        fail('no message: ' + what)
    return m.decode() if isinstance(m, bytes) else m


async def scenario_register():
    """Register and unregister over WS and WSS; sips: only over WSS."""
    for secure, transport in ((False, 'WS'), (True, 'WSS')):
        ws = await connect(secure)
        expect(ws.subprotocol == 'sip', f'subprotocol {ws.subprotocol}')
        contact = f'<sip:alice@{uuid.uuid4().hex[:8]}.invalid;transport={transport.lower()}>'
        await ws.send(register('alice', transport, contact=contact))
        r = await recv(ws, '200 to REGISTER')
        expect(status(r) == 200, f'REGISTER over {transport}: {r.splitlines()[0]}')
        expect('.invalid' in r and 'Contact:' in r, 'the 200 lists the .invalid contact')
        await ws.send(register('alice', transport, expires=0, contact=contact))
        r = await recv(ws, '200 to unregister')
        expect(status(r) == 200 and 'Contact:' not in r, f'unregister over {transport}: {r.splitlines()[0]}')
        print(f'registered and unregistered over {transport}')
        await ws.close()
    ws = await connect(False)
    await ws.send(register('bob', 'WS', scheme='sips'))
    r = await recv(ws, 'answer to sips: over WS')
    expect(status(r) >= 400, f'a sips: REGISTER over plain WS must be refused: {r.splitlines()[0]}')
    await ws.close()
    ws = await connect(True)
    await ws.send(register('bob', 'WSS', scheme='sips'))
    r = await recv(ws, 'answer to sips: over WSS')
    expect(status(r) == 200, f'a sips: REGISTER over WSS is secure (RFC 7118 5.2): {r.splitlines()[0]}')
    await ws.close()
    print('sips: refused over WS, accepted over WSS')


async def scenario_edges():
    # No sip subprotocol, and a second one beside it.
    try:
        ws = await connect(False, subprotocols=('chat',))
        fail(f'accepted without the sip subprotocol: {ws.subprotocol}')
    except websockets.InvalidStatusCode as e:
        expect(e.status_code == 400, f'400 without the sip subprotocol, got {e.status_code}')
    ws = await connect(False, subprotocols=('chat', 'sip'))
    expect(ws.subprotocol == 'sip', f'sip chosen among several: {ws.subprotocol}')
    # A fragmented message: one SIP message in three frames.
    text = register('carol', 'WS')
    third = len(text) // 3
    await ws.send(iter([text[:third], text[third:2 * third], text[2 * third:]]))
    r = await recv(ws, '200 to a fragmented REGISTER')
    expect(status(r) == 200, f'fragmented REGISTER: {r.splitlines()[0]}')
    print('a message in three fragments is one SIP message')
    # Ping / pong.
    pong = await ws.ping(b'hello')
    await asyncio.wait_for(pong, 5)
    print('ping answered with pong')
    # A 70 KB message: over the message limit, the connection is closed with 1009.
    big = register('dave', 'WS').replace('Content-Length: 0', 'X-Pad: ' + 'a' * 70_000 + '\r\nContent-Length: 0')
    await ws.send(big)
    try:
        await asyncio.wait_for(ws.recv(), 5)
        fail('a 70 KB message was answered')
    except websockets.ConnectionClosed as e:
        expect(e.code == 1009, f'closed with 1009 (message too big), got {e.code}')
    print('a 70 KB message closes the connection with 1009')
    # An abrupt close (no close frame) loses nothing and the server keeps serving.
    raw = socket.create_connection(('127.0.0.1', WS_PORT))
    raw.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n')
    head = raw.recv(4096).decode()
    expect(head.startswith('HTTP/1.1 101'), f'raw upgrade: {head.splitlines()[0] if head else "nothing"}')
    raw.close()
    ws = await connect(False)
    await ws.send(register('erin', 'WS'))
    expect(status(await recv(ws, '200 after an abrupt close')) == 200, 'still serving')
    await ws.close()
    print('an abrupt close leaves the server serving')
    # A plain HTTP request is told what this is.
    raw = socket.create_connection(('127.0.0.1', WS_PORT))
    raw.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    head = raw.recv(4096).decode()
    expect(head.startswith('HTTP/1.1 426'), f'426 for plain HTTP: {head.splitlines()[0] if head else "nothing"}')
    raw.close()
    print('plain HTTP gets 426 Upgrade Required')


async def scenario_origin():
    try:
        await connect(False, origin='https://evil.example.net')
        fail('a foreign Origin was accepted')
    except websockets.InvalidStatusCode as e:
        expect(e.status_code == 403, f'403 for a foreign Origin, got {e.status_code}')
    ws = await connect(False, origin='https://phone.example.com')
    await ws.send(register('frank', 'WS'))
    expect(status(await recv(ws, '200 from an allowed Origin')) == 200, 'allowed Origin registers')
    await ws.close()
    print('Origin allow-list: foreign 403, listed accepted')


async def scenario_call():
    """A call from a browser-like WSS client to a TLS softphone-like client and back, through the proxy."""
    ws = await connect(True)
    await ws.send(register('alice', 'WSS'))
    expect(status(await recv(ws, '200 to REGISTER')) == 200, 'alice registered over WSS')
    raw = socket.create_connection(('127.0.0.1', TLS_PORT))
    tls = tls_context().wrap_socket(raw)
    tls.settimeout(5)
    tls.sendall(register('bob', 'TLS', contact='<sip:bob@192.0.2.1:5999;transport=tls>').encode())
    expect(status(tls.recv(65535).decode()) == 200, 'bob registered over TLS')
    cid = uuid.uuid4().hex
    invite = '\r\n'.join([
        'INVITE sip:bob@example.com SIP/2.0',
        f'Via: SIP/2.0/WSS abc.invalid;branch=z9hG4bK{uuid.uuid4().hex}',
        'Max-Forwards: 70', 'From: <sip:alice@example.com>;tag=wsA', 'To: <sip:bob@example.com>',
        f'Call-ID: {cid}', 'CSeq: 1 INVITE', 'Contact: <sip:alice@abc.invalid;transport=wss>',
        'Content-Length: 0', '', ''])
    await ws.send(invite)
    expect(status(await recv(ws, '100 Trying')) == 100, '100 Trying')
    inv = tls.recv(65535).decode()
    expect(inv.startswith('INVITE sip:bob@192.0.2.1:5999'), f'INVITE at bob: {inv.splitlines()[0]}')
    rr = [l.split(':', 1)[1].strip() for l in inv.split('\r\n') if l.lower().startswith('record-route:')]
    expect(any('transport=ws' in r for r in rr), f'a WSS Record-Route toward the browser: {rr}')
    keep = [l for l in inv.split('\r\n') if l.split(':')[0].lower() in ('via', 'record-route', 'from', 'call-id', 'cseq')]
    to = [l for l in inv.split('\r\n') if l.lower().startswith('to:')][0] + ';tag=bobT'
    tls.sendall(('SIP/2.0 200 OK\r\n' + '\r\n'.join(keep) + '\r\n' + to +
                 '\r\nContact: <sip:bob@192.0.2.1:5999;transport=tls>\r\nContent-Length: 0\r\n\r\n').encode())
    ok = await recv(ws, '200 at the browser')
    while status(ok) < 200:
        ok = await recv(ws, '200 at the browser')
    expect(status(ok) == 200, f'200 at the browser: {ok.splitlines()[0]}')
    print('INVITE from WSS reached the TLS callee; 200 back over the WebSocket')
    # The callee hangs up: BYE through the proxy to the browser's WebSocket flow.
    bye = '\r\n'.join([
        'BYE sip:alice@abc.invalid;transport=wss SIP/2.0',
        f'Via: SIP/2.0/TLS 192.0.2.1:5999;branch=z9hG4bK{uuid.uuid4().hex};rport',
        'Max-Forwards: 70', 'From: <sip:bob@example.com>;tag=bobT', 'To: <sip:alice@example.com>;tag=wsA',
        f'Call-ID: {cid}', 'CSeq: 2 BYE', 'Route: ' + ', '.join(rr), 'Content-Length: 0', '', ''])
    tls.sendall(bye.encode())
    got = await recv(ws, 'BYE at the browser')
    expect(got.startswith('BYE sip:alice@abc.invalid'), f'BYE over the WebSocket flow: {got.splitlines()[0]}')
    print('BYE from the TLS side reached the browser over its WebSocket (an .invalid contact)')
    await ws.close()


async def scenario_digest():
    """With users, a REGISTER over WSS is challenged (401) and accepted with digest credentials, as over TLS."""
    password = sys.argv[5]
    ws = await connect(True)
    contact = f'<sip:alice@{uuid.uuid4().hex[:8]}.invalid;transport=wss>'
    await ws.send(register('alice', 'WSS', contact=contact))
    r = await recv(ws, '401 to REGISTER')
    expect(status(r) == 401, f'challenged over WSS: {r.splitlines()[0]}')
    chal = next(l for l in r.split('\r\n') if l.lower().startswith('www-authenticate:') and 'SHA-256' in l)
    creds = digest_credentials('Authorization', chal, 'alice', password, 'REGISTER', 'sip:example.com')
    await ws.send(register('alice', 'WSS', contact=contact).replace('Content-Length: 0', creds + '\r\nContent-Length: 0'))
    r = await recv(ws, '200 to the authenticated REGISTER')
    expect(status(r) == 200, f'digest over WSS: {r.splitlines()[0]}')
    print('digest over WSS: 401, then 200 with credentials')
    await ws.close()


asyncio.run({'digest': scenario_digest, 'register': scenario_register, 'edges': scenario_edges, 'origin': scenario_origin,
             'call': scenario_call}[SCENARIO]())
print('OK')
