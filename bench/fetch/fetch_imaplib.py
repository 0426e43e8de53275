# SPDX-License-Identifier: MIT
"""bench/fetch/fetch_imaplib.py - the Python imaplib client of the whole-job
fetch benchmark: the same two jobs as fetch_imapkit.c, written the way the
imaplib documentation shows.

    python3 fetch_imaplib.py metadata|bodies HOST PORT USER PASSWORD [MAILBOX]

IMAP4 (plain TCP), LOGIN, SELECT, then one conn.uid('FETCH', '1:*', ...):

    metadata  (UID FLAGS ENVELOPE RFC822.SIZE)
    bodies    (BODY.PEEK[])

imaplib returns the whole reply as one list (every body in memory at once,
as with libetpan). The work done on it is what a Python program would do
at the least: count the messages and add up the UIDs and RFC822.SIZE values
(metadata; a regular expression over each response's text, not its
literals) or the body lengths (bodies). No byte checksum: a per-byte loop
in Python would cost more than the fetch itself and would measure the
interpreter, not the library.

Prints the same line as the C drivers (fields it does not compute are 0).
"""
import imaplib
import re
import sys

UID_RE = re.compile(rb"\bUID (\d+)")
SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
START_RE = re.compile(rb"^\d+ \(")


def main():
    if len(sys.argv) < 6 or sys.argv[1] not in ("metadata", "bodies"):
        sys.stderr.write(
            "usage: fetch_imaplib.py metadata|bodies HOST PORT USER PASSWORD [MAILBOX]\n")
        return 2
    job, host, port, user, password = sys.argv[1:6]
    mailbox = sys.argv[6] if len(sys.argv) > 6 else "INBOX"

    conn = imaplib.IMAP4(host, int(port))
    conn.login(user, password)
    typ, _ = conn.select(mailbox)
    if typ != "OK":
        sys.stderr.write("fetch_imaplib: SELECT %s refused\n" % mailbox)
        return 1

    messages = uid_sum = size_sum = body_bytes = 0
    if job == "metadata":
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS ENVELOPE RFC822.SIZE)")
        if typ != "OK":
            sys.stderr.write("fetch_imaplib: UID FETCH refused\n")
            return 1
        # A response with literals (8-bit strings in the ENVELOPE) is split
        # into (text, literal) tuples followed by its remaining text; only
        # the text parts are searched, and a new message starts with
        # "<seq> (".
        for part in data:
            text = part[0] if isinstance(part, tuple) else part
            if START_RE.match(text):
                messages += 1
            m = UID_RE.search(text)
            if m:
                uid_sum += int(m.group(1))
            m = SIZE_RE.search(text)
            if m:
                size_sum += int(m.group(1))
    else:
        typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
        if typ != "OK":
            sys.stderr.write("fetch_imaplib: UID FETCH refused\n")
            return 1
        for part in data:
            if isinstance(part, tuple):
                messages += 1
                m = UID_RE.search(part[0])
                if m:
                    uid_sum += int(m.group(1))
                body_bytes += len(part[1])
    del data
    conn.logout()
    print("messages=%d uid_sum=%d size_sum=%d flags=0 addresses=0 body_bytes=%d checksum=0"
          % (messages, uid_sum, size_sum, body_bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
