#!/usr/bin/env python3
"""REGISTER load over one secure WebSocket (RFC 7118) or one TLS connection, new
connections per second, and memory per idle connection with its binding.

usage: wss_bench.py MODE TRANSPORT PORT SERVER_PID [COUNT]
  MODE       one     REGISTERs over one connection, 64 in flight (COUNT, default 20000)
             new     new connections, each: handshake (+ upgrade), one REGISTER, close (COUNT, default 500)
             idle    COUNT connections (default 1000) each with one binding, kept open
  TRANSPORT  wss | tls
Prints one line: MODE TRANSPORT value unit server_cpu_percent.
The generator is this Python process: where it is the limit, the server's CPU per
REGISTER (or per connection) is the figure to read.
"""
import asyncio, os, ssl, sys, time, uuid

import websockets

MODE, TRANSPORT, PORT, PID = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HZ = os.sysconf('SC_CLK_TCK')


def cpu_ticks():
    with open(f'/proc/{PID}/stat') as f:
        parts = f.read().rsplit(')', 1)[1].split()
    return int(parts[11]) + int(parts[12])


def rss_kb():
    with open(f'/proc/{PID}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def make_context():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


CONTEXT = make_context()


def ctx():
    return CONTEXT


def register(user, host, cseq=1):
    t = 'WSS' if TRANSPORT == 'wss' else 'TLS'
    return ('\r\n'.join([
        'REGISTER sip:example.com SIP/2.0',
        f'Via: SIP/2.0/{t} {host};branch=z9hG4bK{uuid.uuid4().hex}',
        'Max-Forwards: 70',
        f'From: <sip:{user}@example.com>;tag={cseq}', f'To: <sip:{user}@example.com>',
        f'Call-ID: {user}-{host}', f'CSeq: {cseq} REGISTER',
        f'Contact: <sip:{user}@{host};transport={TRANSPORT}>;expires=3600',
        'Content-Length: 0', '', '']))


class Conn:
    async def open(self):
        if TRANSPORT == 'wss':
            self.ws = await websockets.connect(f'wss://127.0.0.1:{PORT}/', subprotocols=['sip'], ssl=ctx(),
                                               open_timeout=20, max_queue=None, ping_interval=None)
        else:
            self.reader, self.writer = await asyncio.open_connection('127.0.0.1', PORT, ssl=ctx())
        return self

    async def send(self, text):
        if TRANSPORT == 'wss':
            await self.ws.send(text)
        else:
            self.writer.write(text.encode())

    async def recv(self):
        if TRANSPORT == 'wss':
            return await self.ws.recv()
        head = await self.reader.readuntil(b'\r\n\r\n')
        return head.decode()

    async def close(self):
        if TRANSPORT == 'wss':
            await self.ws.close()
        else:
            self.writer.close()


async def one(count):
    c = await Conn().open()
    host = uuid.uuid4().hex[:8] + '.invalid'
    window = 64
    sent = got = 0
    t0, c0 = time.monotonic(), cpu_ticks()
    while sent < min(window, count):
        await c.send(register(f'u{sent}', host))
        sent += 1
    while got < count:
        r = await c.recv()
        if not r.startswith('SIP/2.0 200'):
            print('FAIL', r.split('\r\n', 1)[0])
            sys.exit(1)
        got += 1
        if sent < count:
            await c.send(register(f'u{sent}', host))
            sent += 1
    dt, dc = time.monotonic() - t0, cpu_ticks() - c0
    await c.close()
    cpu = dc * 100 / HZ / dt
    print(f'one {TRANSPORT} {count / dt:.0f} REGISTERs/s {cpu:.0f}% {dc / HZ / count * 1e6:.0f}us/REGISTER')


async def new(count):
    t0, c0 = time.monotonic(), cpu_ticks()
    sem = asyncio.Semaphore(8)

    async def single(i):
        async with sem:
            c = await Conn().open()
            await c.send(register(f'n{i}', uuid.uuid4().hex[:8] + '.invalid'))
            r = await c.recv()
            if not r.startswith('SIP/2.0 200'):
                print('FAIL', r.split('\r\n', 1)[0])
                sys.exit(1)
            await c.close()

    await asyncio.gather(*(single(i) for i in range(count)))
    dt, dc = time.monotonic() - t0, cpu_ticks() - c0
    cpu = dc * 100 / HZ / dt
    print(f'new {TRANSPORT} {count / dt:.0f} connections/s {cpu:.0f}% {dc / HZ / count * 1e3:.2f}ms/connection')


async def idle(count):
    await asyncio.sleep(1)
    before = rss_kb()
    conns = []
    for i in range(count):
        c = await Conn().open()
        await c.send(register(f'i{i}', uuid.uuid4().hex[:8] + '.invalid'))
        r = await c.recv()
        if not r.startswith('SIP/2.0 200'):
            print('FAIL', r.split('\r\n', 1)[0])
            sys.exit(1)
        conns.append(c)
    await asyncio.sleep(3)
    after = rss_kb()
    print(f'idle {TRANSPORT} {(after - before) * 1024 / count / 1024:.1f} kB/connection (RSS {before // 1024} -> {after // 1024} MB, {count} connections)')
    for c in conns:
        await c.close()


count = int(sys.argv[5]) if len(sys.argv) > 5 else {'one': 20000, 'new': 500, 'idle': 1000}[MODE]
asyncio.run({'one': one, 'new': new, 'idle': idle}[MODE](count))
