#!/usr/bin/env python3
"""TLS call generator for Benchmarks/calls-tls.sh: a caller (UAC) and a callee (UAS) that
reach each other only through the proxy under test, over TLS connections they open to it.

Debian's sipp has no TLS transport, so this stands in for sipp's uac-call.xml and
uas-call.xml with the same call: INVITE -> 100/180/200 -> ACK -> BYE -> 200, ACK and BYE
along the Record-Route set.

  tls_calls.py uas PROXY_PORT READY_FILE COUNTS_FILE
      Opens one TLS connection to the proxy, registers sip:bob@example.com over it with
      the connection's own address as Contact (transport=tls), writes READY_FILE, then
      answers every INVITE with 180 and 200 and every BYE with 200 until SIGTERM. Writes
      its counts (INVITEs, ACKs, BYEs seen) as JSON to COUNTS_FILE every second.
  tls_calls.py uac PROXY_PORT RATE SECONDS [CONNECTIONS]
      Places RATE calls per second for SECONDS to sip:bob@example.com over CONNECTIONS
      (default 4) TLS connections, then waits up to 10 s for the last calls to end.
      Prints one JSON line: offered, ok, failed, achieved (calls/s over the placing
      window), setup_p50_ms/setup_p99_ms (INVITE sent -> 200 received), cpu_s (this
      process's user+system CPU).
Both sides skip certificate checks: the proxy's certificate is a benchmark one.
"""
import asyncio, json, os, resource, signal, ssl, sys, time

HOST = '127.0.0.1'
CRLF = b'\r\n'


def client_context():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


async def read_message(reader):
    """One SIP message from a stream: (start line, {lowercase name: [values]}, raw head bytes)."""
    while True:
        head = await reader.readuntil(b'\r\n\r\n')
        if head.strip():
            break  # a CRLF keep-alive otherwise
    lines = head[:-4].split(CRLF)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b':')
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get(b'content-length', [b'0'])[0])
    if length:
        await reader.readexactly(length)
    return lines[0], headers


def header_lines(name, values):
    return b''.join(name + b': ' + v + CRLF for v in values)


def tag_of(value):
    i = value.find(b';tag=')
    if i < 0:
        return None
    return value[i + 5:].split(b';', 1)[0]


# ------------------------------------------------------------------ callee
async def uas(port, ready_file, counts_file):
    reader, writer = await asyncio.open_connection(HOST, port, ssl=client_context())
    lport = writer.get_extra_info('sockname')[1]
    me = f'{HOST}:{lport}'.encode()
    contact = b'<sip:bob@' + me + b';transport=tls>'
    writer.write(b'REGISTER sip:example.com SIP/2.0\r\n'
                 b'Via: SIP/2.0/TLS ' + me + b';branch=z9hG4bK-bench-reg;rport\r\n'
                 b'Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=bench-reg\r\n'
                 b'To: <sip:bob@example.com>\r\nCall-ID: bench-reg-bob@' + me + b'\r\n'
                 b'CSeq: 1 REGISTER\r\nContact: ' + contact + b'\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n')
    while True:
        start, _ = await read_message(reader)
        if start.startswith(b'SIP/2.0 1'):
            continue
        if not start.startswith(b'SIP/2.0 200'):
            sys.exit(f'REGISTER answered: {start.decode(errors="replace")}')
        break
    counts = {'invites': 0, 'acks': 0, 'byes': 0, 'other': 0}
    with open(ready_file, 'w') as f:
        f.write('ready\n')

    async def dump():
        while True:
            with open(counts_file + '.tmp', 'w') as f:
                json.dump(counts, f)
            os.replace(counts_file + '.tmp', counts_file)
            await asyncio.sleep(1)

    dumper = asyncio.create_task(dump())
    sdp = (b'v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
           b'm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n')
    try:
        while True:
            start, h = await read_message(reader)
            if start.startswith(b'SIP/2.0'):
                continue
            method = start.split(b' ', 1)[0]
            common = (header_lines(b'Via', h.get(b'via', [])) + b'From: ' + h[b'from'][0] + CRLF)
            ident = b'Call-ID: ' + h[b'call-id'][0] + CRLF + b'CSeq: ' + h[b'cseq'][0] + CRLF
            if method == b'INVITE':
                counts['invites'] += 1
                to = h[b'to'][0] + b';tag=uas' + h[b'call-id'][0][-8:].replace(b'@', b'x')
                rr = header_lines(b'Record-Route', h.get(b'record-route', []))
                base = common + b'To: ' + to + CRLF + ident + rr + b'Contact: ' + contact + CRLF
                writer.write(b'SIP/2.0 180 Ringing\r\n' + base + b'Content-Length: 0\r\n\r\n'
                             + b'SIP/2.0 200 OK\r\n' + base + b'Content-Type: application/sdp\r\n'
                             + b'Content-Length: ' + str(len(sdp)).encode() + b'\r\n\r\n' + sdp)
            elif method == b'ACK':
                counts['acks'] += 1
            elif method == b'BYE':
                counts['byes'] += 1
                writer.write(b'SIP/2.0 200 OK\r\n' + common + b'To: ' + h[b'to'][0] + CRLF + ident
                             + b'Content-Length: 0\r\n\r\n')
            else:
                counts['other'] += 1
                if method != b'CANCEL':
                    writer.write(b'SIP/2.0 200 OK\r\n' + common + b'To: ' + h[b'to'][0] + CRLF + ident
                                 + b'Content-Length: 0\r\n\r\n')
    finally:
        dumper.cancel()
        with open(counts_file, 'w') as f:
            json.dump(counts, f)


# ------------------------------------------------------------------ caller
class Caller:
    def __init__(self, port, rate, seconds, connections):
        self.port, self.rate, self.seconds, self.nconn = port, rate, seconds, connections
        self.pending = {}          # Call-ID -> asyncio.Queue of (start line, headers)
        self.ok = self.failed = self.offered = 0
        self.setups = []

    async def connect(self):
        self.conns = []
        for _ in range(self.nconn):
            r, w = await asyncio.open_connection(HOST, self.port, ssl=client_context())
            lport = w.get_extra_info('sockname')[1]
            self.conns.append((r, w, f'{HOST}:{lport}'.encode()))
            asyncio.create_task(self.read_loop(r))

    async def read_loop(self, reader):
        try:
            while True:
                start, h = await read_message(reader)
                if not start.startswith(b'SIP/2.0'):
                    continue  # no requests expected towards the caller
                q = self.pending.get(h.get(b'call-id', [b''])[0])
                if q:
                    q.put_nowait((start, h))
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def expect(self, q, cseq_method, deadline):
        """The final response to the request with this CSeq method (provisionals skipped)."""
        while True:
            start, h = await asyncio.wait_for(q.get(), max(0.001, deadline - time.monotonic()))
            if not h.get(b'cseq', [b''])[0].endswith(cseq_method):
                continue
            if start.startswith(b'SIP/2.0 1'):
                continue
            return start, h

    async def call(self, n):
        r, w, me = self.conns[n % self.nconn]
        call_id = f'bench-{n}-{os.getpid()}@bench'.encode()
        q = asyncio.Queue()
        self.pending[call_id] = q
        from_ = b'<sip:alice@example.com>;tag=uac' + str(n).encode()
        sdp = (b'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
               b'm=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n')
        via = lambda b: b'Via: SIP/2.0/TLS ' + me + b';branch=z9hG4bK' + call_id[:-6] + b + b';rport\r\n'
        t0 = time.monotonic()
        deadline = t0 + 10
        try:
            w.write(b'INVITE sip:bob@example.com SIP/2.0\r\n' + via(b'i') + b'Max-Forwards: 70\r\n'
                    b'From: ' + from_ + b'\r\nTo: <sip:bob@example.com>\r\nCall-ID: ' + call_id + b'\r\n'
                    b'CSeq: 1 INVITE\r\nContact: <sip:alice@' + me + b';transport=tls>\r\n'
                    b'Content-Type: application/sdp\r\nContent-Length: ' + str(len(sdp)).encode()
                    + b'\r\n\r\n' + sdp)
            start, h = await self.expect(q, b'INVITE', deadline)
            if not start.startswith(b'SIP/2.0 2'):
                raise RuntimeError(start)
            self.setups.append(time.monotonic() - t0)
            to = h[b'to'][0]
            target = h[b'contact'][0].strip(b'<>').split(b'>', 1)[0]
            # the route set: the 200's Record-Route in reverse (RFC 3261 12.1.2)
            rr = []
            for v in h.get(b'record-route', []):
                rr.extend(x.strip() for x in v.split(b','))
            route = b''.join(b'Route: ' + x + CRLF for x in reversed(rr))
            dialog = b'From: ' + from_ + b'\r\nTo: ' + to + b'\r\nCall-ID: ' + call_id + b'\r\n'
            w.write(b'ACK ' + target + b' SIP/2.0\r\n' + via(b'a') + b'Max-Forwards: 70\r\n' + route + dialog
                    + b'CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n'
                    + b'BYE ' + target + b' SIP/2.0\r\n' + via(b'b') + b'Max-Forwards: 70\r\n' + route + dialog
                    + b'CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n')
            start, h = await self.expect(q, b'BYE', deadline)
            if not start.startswith(b'SIP/2.0 2'):
                raise RuntimeError(start)
            self.ok += 1
        except (asyncio.TimeoutError, RuntimeError, KeyError):
            self.failed += 1
        finally:
            del self.pending[call_id]

    async def run(self):
        await self.connect()
        total = int(self.rate * self.seconds)
        tasks = []
        t0 = time.monotonic()
        while self.offered < total:
            due = min(total, int((time.monotonic() - t0) * self.rate) + 1)
            while self.offered < due:
                tasks.append(asyncio.create_task(self.call(self.offered)))
                self.offered += 1
            await asyncio.sleep(0.005)
        placing = time.monotonic() - t0
        await asyncio.gather(*tasks)
        s = sorted(self.setups)
        pct = lambda p: round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1) if s else -1
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({'offered': self.offered, 'ok': self.ok, 'failed': self.failed,
                          'achieved': round(self.ok / max(placing, 1e-9), 1),
                          'setup_p50_ms': pct(0.5), 'setup_p99_ms': pct(0.99),
                          'cpu_s': round(ru.ru_utime + ru.ru_stime, 2)}))


def main():
    mode = sys.argv[1]
    if mode == 'uas':
        loop = asyncio.new_event_loop()
        task = loop.create_task(uas(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass
    elif mode == 'uac':
        conns = int(sys.argv[5]) if len(sys.argv) > 5 else 4
        asyncio.run(Caller(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), conns).run())
    else:
        sys.exit(__doc__)


main()
