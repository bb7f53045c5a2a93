#!/usr/bin/env python3
"""A real browser (headless Chromium) registers over WSS and calls a TLS client.

usage: browser.py WSS_PORT TLS_PORT

The page (written to a temporary folder and opened from there) opens
wss://127.0.0.1:WSS_PORT with the subprotocol "sip", sends a REGISTER, and after the
200 an INVITE to bob, who is registered over TLS by this script; the page puts each
answer's status line into document.title, which this script reads back through the
DevTools protocol. Exits 1 with the reason at the first surprise.
"""
import asyncio, json, os, shutil, socket, ssl, subprocess, sys, tempfile, time, urllib.request, uuid

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.dont_write_bytecode = True  # no __pycache__ in the test target's folder
from sipsupport import fail  # noqa: E402

WSS_PORT, TLS_PORT = int(sys.argv[1]), int(sys.argv[2])


PAGE = """<!doctype html><html><head><title>starting</title></head><body><script>
const crlf = "\\r\\n";
function msg(lines) { return lines.join(crlf) + crlf + crlf; }
const host = Math.random().toString(36).slice(2) + ".invalid";
const ws = new WebSocket("wss://127.0.0.1:%(port)d", "sip");
let step = 0;
ws.onopen = () => ws.send(msg([
  "REGISTER sip:example.com SIP/2.0",
  "Via: SIP/2.0/WSS " + host + ";branch=z9hG4bK" + Date.now(),
  "Max-Forwards: 70", "From: <sip:webby@example.com>;tag=w1", "To: <sip:webby@example.com>",
  "Call-ID: reg-" + host, "CSeq: 1 REGISTER",
  "Contact: <sip:webby@" + host + ";transport=ws>;expires=600", "Content-Length: 0"]));
ws.onmessage = (e) => {
  const first = e.data.split(crlf)[0];
  if (step === 0) {
    document.title = "REGISTER " + first;
    step = 1;
    ws.send(msg([
      "INVITE sip:bob@example.com SIP/2.0",
      "Via: SIP/2.0/WSS " + host + ";branch=z9hG4bKinv" + Date.now(),
      "Max-Forwards: 70", "From: <sip:webby@example.com>;tag=w2", "To: <sip:bob@example.com>",
      "Call-ID: call-" + host, "CSeq: 1 INVITE",
      "Contact: <sip:webby@" + host + ";transport=ws>", "Content-Length: 0"]));
  } else if (first.startsWith("SIP/2.0 200")) {
    document.title = "CALL " + first;
  }
};
ws.onerror = () => { document.title = "ERROR"; };
ws.onclose = (e) => { if (!document.title.startsWith("CALL")) document.title = "CLOSED " + e.code; };
</script></body></html>"""


def register_bob():
    raw = socket.create_connection(('127.0.0.1', TLS_PORT))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(raw)
    tls.settimeout(20)
    tls.sendall('\r\n'.join([
        'REGISTER sip:example.com SIP/2.0', f'Via: SIP/2.0/TLS 192.0.2.1:5999;branch=z9hG4bK{uuid.uuid4().hex};rport',
        'Max-Forwards: 70', 'From: <sip:bob@example.com>;tag=b1', 'To: <sip:bob@example.com>',
        f'Call-ID: {uuid.uuid4().hex}', 'CSeq: 1 REGISTER', 'Contact: <sip:bob@192.0.2.1:5999;transport=tls>',
        'Expires: 600', 'Content-Length: 0', '', '']).encode())
    if not tls.recv(65535).startswith(b'SIP/2.0 200'):
        fail('bob could not register over TLS')
    return tls


async def title_of(devtools_url, want, timeout):
    async with websockets.connect(devtools_url, max_size=None) as dt:
        deadline = time.time() + timeout
        n = 0
        last = ''
        while time.time() < deadline:
            n += 1
            await dt.send(json.dumps({'id': n, 'method': 'Runtime.evaluate', 'params': {'expression': 'document.title'}}))
            while True:
                reply = json.loads(await dt.recv())
                if reply.get('id') == n:
                    break
            last = reply.get('result', {}).get('result', {}).get('value', '')
            if last.startswith(want) or last.startswith('ERROR') or last.startswith('CLOSED'):
                return last
            await asyncio.sleep(0.1)
        return last


def main():
    tls = register_bob()
    work = tempfile.mkdtemp(prefix='sipreg-browser-')
    page = os.path.join(work, 'phone.html')
    with open(page, 'w') as f:
        f.write(PAGE % {'port': WSS_PORT})
    chrome = shutil.which('chromium') or shutil.which('chromium-browser')
    proc = subprocess.Popen([chrome, '--headless', '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors',
                             '--no-first-run', '--no-default-browser-check', '--remote-debugging-port=0',
                             '--remote-debugging-address=127.0.0.1', f'--user-data-dir={work}/profile', 'file://' + page],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(work, 'profile', 'DevToolsActivePort')
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        else:
            fail('Chromium did not open its DevTools port')
        port = int(open(port_file).read().split()[0])
        targets = []
        for _ in range(100):
            targets = [t for t in json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json'))
                       if t.get('type') == 'page' and t.get('url', '').startswith('file://')]
            if targets:
                break
            time.sleep(0.1)
        if not targets:
            fail('no page target in Chromium')
        ws_url = targets[0]['webSocketDebuggerUrl']
        title = asyncio.run(title_of(ws_url, 'REGISTER', 20))
        if title != 'REGISTER SIP/2.0 200 OK':
            fail(f'the page shows {title!r}, not the 200 to its REGISTER')
        print('Chromium registered over WSS: ' + title)
        # bob gets the page's INVITE over his TLS flow and answers 200.
        inv = tls.recv(65535).decode()
        if not inv.startswith('INVITE sip:bob@192.0.2.1:5999'):
            fail(f'bob got {inv.splitlines()[0] if inv else "nothing"}')
        keep = [l for l in inv.split('\r\n') if l.split(':')[0].lower() in ('via', 'record-route', 'from', 'call-id', 'cseq')]
        to = [l for l in inv.split('\r\n') if l.lower().startswith('to:')][0] + ';tag=bobT'
        tls.sendall(('SIP/2.0 200 OK\r\n' + '\r\n'.join(keep) + '\r\n' + to +
                     '\r\nContact: <sip:bob@192.0.2.1:5999;transport=tls>\r\nContent-Length: 0\r\n\r\n').encode())
        title = asyncio.run(title_of(ws_url, 'CALL', 20))
        if title != 'CALL SIP/2.0 200 OK':
            fail(f'the page shows {title!r}, not the 200 to its INVITE')
        print('Chromium called bob over TLS through the proxy: ' + title)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print('OK')


main()
