# SPDX-License-Identifier: MIT
"""bench/fetch/report.py - the table, the consistency checks and the goal
checks of the whole-job fetch benchmark, from the results run.sh collected
(one line per job, client and run: job client run user sys wall maxrss_kb,
then the client's key=value tally).

Per job and client: the median of user, sys, user + sys ("CPU") and wall
over the runs, and the largest peak RSS of any run. Exit status 1 when a
check failed or a job did not run, else 0 (goals are reported, never
enforced).
"""
import argparse
import statistics
import sys

ORDER = ["imapkit", "libetpan", "imaplib", "mbsync", "mbsync-resync"]
PEERS_OF_GOAL = ("libetpan", "imaplib", "mbsync")  # not mbsync-resync: see (3)
TITLES = {
    "metadata": "metadata: UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE), INBOX",
    "bodies": "bodies: UID FETCH 1:* (BODY.PEEK[]), INBOX",
    "huge": "huge: UID FETCH 1:* (BODY.PEEK[]) of the one %d MB message in Huge",
}
NOTES = """\
  (1) mbsync: a sync into an empty Maildir, so it also writes every message to disk
      (FSync off; LF line ends plus one X-TUID line per message)
  (2) mbsync cannot ask for ENVELOPE; its closest equivalent: a first sync into an
      empty Maildir with MaxSize 1k, so that every message becomes a placeholder made
      of its header: UID FETCH 1:* (UID FLAGS RFC822.SIZE), then UID FETCH <uid>
      (BODY.PEEK[HEADER]) for each message, and a placeholder file written for each
  (3) mbsync re-syncing an up-to-date mirror: UID FETCH 1:<max> (UID FLAGS) and a scan
      of its Maildir; no ENVELOPE, no RFC822.SIZE, so not a peer for the goal (shown
      for scale)"""
MBSYNC_TUID_BYTES = 21  # "X-TUID: <12 characters>\n", added by mbsync to each message


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            job, client = fields[0], fields[1]
            user, sys_, wall, rss = map(float, fields[3:7])
            tally = dict(kv.split("=", 1) for kv in fields[7:] if "=" in kv)
            rows.setdefault((job, client), []).append(
                dict(user=user, sys=sys_, cpu=user + sys_, wall=wall, rss=rss, tally=tally))
    return rows


def main():
    ap = argparse.ArgumentParser()
    for name in ("results", "machine", "versions", "skipped", "failed"):
        ap.add_argument("--" + name, default="")
    for name in ("messages", "file-bytes", "wire-bytes", "huge-mb", "huge-file-bytes",
                 "huge-wire-bytes", "runs"):
        ap.add_argument("--" + name, type=int, default=0)
    a = ap.parse_args()

    rows = load(a.results)
    med = {}
    for key, runs in rows.items():
        med[key] = dict(
            user=statistics.median(r["user"] for r in runs),
            sys=statistics.median(r["sys"] for r in runs),
            cpu=statistics.median(r["cpu"] for r in runs),
            wall=statistics.median(r["wall"] for r in runs),
            rss=max(r["rss"] for r in runs) / 1024.0,
            tally=runs[-1]["tally"],
            runs=runs)
    jobs = [j for j in ("metadata", "bodies", "huge") if any(k[0] == j for k in med)]

    print()
    print("Whole-job fetch benchmark: %d messages, %.1f MB as sent (RFC822.SIZE total); "
          "%d run(s): medians, peak RSS the largest of any run"
          % (a.messages, a.wire_bytes / 1e6, a.runs))
    print("machine: " + a.machine)
    print("versions: " + a.versions)
    for job in jobs:
        print()
        print(TITLES[job] % a.huge_mb if job == "huge" else TITLES[job])
        print("  %-13s %8s %8s %8s %8s %10s %9s %12s"
              % ("client", "user s", "sys s", "CPU s", "wall s", "peak RSS", "messages", "bytes"))
        for c in ORDER:
            m = med.get((job, c))
            if not m:
                continue
            t = m["tally"]
            nbytes = int(t.get("size_sum" if job == "metadata" else "body_bytes", 0))
            note = ""
            if c == "mbsync":
                note = "  (2)" if job == "metadata" else "  (1)"
            elif c == "mbsync-resync":
                note = "  (3)"
            print("  %-13s %8.3f %8.3f %8.3f %8.3f %7.1f MB %9s %12s%s"
                  % (c, m["user"], m["sys"], m["cpu"], m["wall"], m["rss"],
                     t.get("messages", "?"), nbytes if nbytes else "-", note))
    if any(k[1].startswith("mbsync") for k in med):
        print()
        print(NOTES)

    # ---- consistency: every client got everything, the C clients the same bytes ----
    problems = []
    expected = {"metadata": a.messages, "bodies": a.messages, "huge": 1}
    wire = {"metadata": a.wire_bytes, "bodies": a.wire_bytes, "huge": a.huge_wire_bytes}
    files = {"bodies": a.file_bytes, "huge": a.huge_file_bytes}

    def tally(job, c):
        return med[(job, c)]["tally"] if (job, c) in med else None

    for (job, c), m in sorted(med.items()):
        for r in m["runs"]:
            got = int(r["tally"].get("messages", -1))
            if got != expected[job]:
                problems.append("%s %s: %d messages, expected %d" % (job, c, got, expected[job]))
                break
    for job in jobs:
        keys = ("uid_sum", "size_sum", "flags", "addresses") if job == "metadata" else \
               ("uid_sum", "body_bytes", "checksum")
        ik, le = tally(job, "imapkit"), tally(job, "libetpan")
        if ik and le:
            for k in keys:
                if ik.get(k) != le.get(k):
                    problems.append("%s: imapkit %s=%s, libetpan %s" % (job, k, ik.get(k), le.get(k)))
        field = "size_sum" if job == "metadata" else "body_bytes"
        for c in ("imapkit", "libetpan", "imaplib"):
            t = tally(job, c)
            if t and int(t.get(field, 0)) != wire[job]:
                problems.append("%s: %s got %s=%s, the generator wrote %d"
                                % (job, c, field, t.get(field), wire[job]))
        mb = tally(job, "mbsync")
        if mb and job in files:
            want = files[job] + MBSYNC_TUID_BYTES * expected[job]
            if int(mb.get("body_bytes", 0)) != want:
                problems.append("%s: mbsync wrote %s bytes, expected %d (the generator's files "
                                "plus its X-TUID lines)" % (job, mb.get("body_bytes"), want))
    print()
    print("checks:")
    for p in problems:
        print("  MISMATCH " + p)
    if not problems:
        print("  every client received every message of every job, and the bytes the "
              "generator wrote")
        if tally("bodies", "imapkit") and tally("bodies", "libetpan"):
            print("  imapkit and libetpan: the same UIDs, RFC822.SIZE total, flags, addresses, "
                  "body bytes and body checksum")
    if a.skipped:
        print("  not run: " + a.skipped)
    if a.failed.strip():
        print("  FAILED jobs:" + a.failed)

    # ---- the goals ----
    print()
    print("goals: metadata CPU <= 1/3 of the best peer's; bodies CPU below libetpan's; "
          "imapkit peak RSS < 16 MB whatever the message sizes")
    ik_m = med.get(("metadata", "imapkit"))
    peers = [(med[("metadata", c)]["cpu"], c) for c in PEERS_OF_GOAL if ("metadata", c) in med]
    if ik_m and peers:
        best, who = min(peers)
        ratio = ik_m["cpu"] / best if best > 0 else float("inf")
        print("  metadata: imapkit %.3f s CPU, best peer %s %.3f s: ratio %.2f (goal <= 0.33): %s"
              % (ik_m["cpu"], who, best, ratio, "MET" if ratio <= 1 / 3 else "NOT MET"))
    else:
        print("  metadata: not measured")
    ik_b, le_b = med.get(("bodies", "imapkit")), med.get(("bodies", "libetpan"))
    if ik_b and le_b:
        print("  bodies: imapkit %.3f s CPU, libetpan %.3f s (ratio %.2f): %s"
              % (ik_b["cpu"], le_b["cpu"], ik_b["cpu"] / le_b["cpu"] if le_b["cpu"] else 0,
                 "MET" if ik_b["cpu"] < le_b["cpu"] else "NOT MET"))
    else:
        print("  bodies: not measured")
    ik = [(med[(j, "imapkit")]["rss"], j) for j in jobs if (j, "imapkit") in med]
    if ik:
        rss, worst = max(ik)
        print("  imapkit peak RSS: %.1f MB at most (%s), every job and run: %s"
              % (rss, ", ".join("%s %.1f MB" % (j, r) for r, j in ik),
                 "MET" if rss < 16 else "NOT MET"))
    return 1 if problems or a.failed.strip() else 0


if __name__ == "__main__":
    sys.exit(main())
