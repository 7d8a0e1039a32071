#!/usr/bin/env python3
"""A real SMTP server for the mail tests (aiosmtpd 1.4.6, installed by scripts/test-deps).

    smtp_sink.py PORT DIR [--cert C --key K] [--smtps] [--auth USER:PASS]
                 [--reject-rcpt ADDRESS] [--tempfail N] [--delay SECONDS]

Listens on 127.0.0.1:PORT (0 picks a free port) and prints "ready PORT" once it accepts
connections. Every accepted mail is written to DIR/0001.eml, 0002.eml, ... (numbering
continues after the highest file already there, so a restarted sink adds to the same
folder), complete or not at all (written as .tmp, then renamed), with X-MailFrom,
X-RcptTo and X-Peer (the client's address and port: one per connection) lines put
before the message as received.

  --cert/--key     TLS certificate chain and key (PEM). Without --smtps: STARTTLS, which
                   is then required before MAIL.
  --smtps          implicit TLS from the first byte (needs --cert/--key).
  --auth U:P       AUTH (PLAIN, LOGIN) required; only U with password P succeeds (535 else).
  --reject-rcpt A  answer "550 5.1.1 <A>: no such user" to RCPT TO:<A>.
  --tempfail N     answer "451 4.3.0 try again later" to the first N messages (after DATA).
  --delay S        wait S seconds before answering each message (a slow server).

Stops on SIGTERM (or SIGINT) within milliseconds.
"""

import argparse
import asyncio
import hmac
import itertools
import logging
import re
import signal
import ssl
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out: Path, reject_rcpt: str | None, tempfail: int, delay: float):
        self.out = out
        self.reject_rcpt = reject_rcpt.lower() if reject_rcpt else None
        self.tempfail = tempfail
        self.delay = delay
        taken = [int(m.group(1)) for p in out.iterdir() if (m := re.fullmatch(r"(\d+)\.eml", p.name))]
        self.seq = itertools.count(max(taken, default=0) + 1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_rcpt and address.lower() == self.reject_rcpt:
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 try again later"
        path = self.out / f"{next(self.seq):04d}.eml"
        tmp = path.with_name(f".{path.name}.tmp")
        host, port = session.peer[:2]
        head = (f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
                f"X-Peer: {host}:{port}\r\n")
        tmp.write_bytes(head.encode() + envelope.original_content)
        tmp.rename(path)
        return "250 2.0.0 OK: queued"


def authenticator(user: bytes, password: bytes):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, user)
            and hmac.compare_digest(auth_data.password, password)
        )
        # handled=False: aiosmtpd answers 235 or 535 itself (True would leave the client hanging).
        return AuthResult(success=ok, handled=False)

    return check


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", type=int)
    p.add_argument("dir", type=Path)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--reject-rcpt")
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args()
    if bool(a.cert) != bool(a.key) or (a.smtps and not a.cert):
        p.error("--cert and --key go together, and --smtps needs them")
    a.dir.mkdir(parents=True, exist_ok=True)

    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)

    kw = dict(hostname="sink.test")
    if tls and not a.smtps:
        kw.update(tls_context=tls, require_starttls=True)
    if a.auth:
        user, _, password = a.auth.partition(":")
        # With implicit TLS aiosmtpd does not know the connection is encrypted.
        kw.update(authenticator=authenticator(user.encode(), password.encode()),
                  auth_required=True, auth_require_tls=bool(tls) and not a.smtps)
    handler = Sink(a.dir, a.reject_rcpt, a.tempfail, a.delay)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kw), "127.0.0.1", a.port,
                                      ssl=tls if a.smtps else None, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await stop.wait()
    server.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # "Session.login_data is deprecated" and similar lines are noise.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    sys.exit(asyncio.run(main()))
