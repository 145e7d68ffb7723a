"""A real SMTP server for Tenure's tests (aiosmtpd): one listener that requires STARTTLS and
then AUTH, one that speaks TLS from the first byte (SMTPS) and requires AUTH. Every message
received is appended to a mailbox file as one JSON line: the listener, whether the session was
encrypted, who logged in, the envelope and the raw message."""

import argparse
import asyncio
import json
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--starttls-port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mailbox", required=True)
    args = ap.parse_args()

    def context() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        return ctx

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        # handled=False: the server answers a failure itself (535).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    class Mailbox:
        def __init__(self, listener: str) -> None:
            self.listener = listener

        async def handle_DATA(self, server, session, envelope):
            encrypted = bool(session.ssl) or server.transport.get_extra_info("ssl_object") is not None
            login = getattr(session.auth_data, "login", b"") or b""
            record = {
                "listener": self.listener,
                "tls": encrypted,
                "login": login.decode(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "received": time.time(),
            }
            with open(args.mailbox, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return "250 Message accepted for delivery"

    starttls = Controller(
        Mailbox("starttls"),
        hostname=args.host,
        port=args.starttls_port,
        server_hostname="localhost",
        tls_context=context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    smtps = Controller(
        Mailbox("tls"),
        hostname=args.host,
        port=args.tls_port,
        server_hostname="localhost",
        ssl_context=context(),
        auth_required=True,
        auth_require_tls=False,
        authenticator=authenticator,
    )
    starttls.start()
    smtps.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        starttls.stop()
        smtps.stop()


if __name__ == "__main__":
    main()
