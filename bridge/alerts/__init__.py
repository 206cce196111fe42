"""Alerts: tell the writer when something needs them, once per problem, and once when it clears.

    problems.py      what needs the writer now, read from the state (the fixes are the ones status shows)
    engine.py        diff against the problems recorded in the state; what to tell now (or in the daily digest)
    send.py          the sending, through Apprise (ntfy, email, Matrix, Telegram, Discord, Slack, webhooks...)
    destinations.py  the destination and ping URLs: credentials, resolved like the accounts' and never logged
    ping.py          the dead-man's switch (healthchecks.io convention: /start, success, /fail)
    watch.py         the daemon's alert thread: evaluates after cycles, notices a stall, sends off the job threads
    oneshot.py       the same for one `bridge poll` run (timer-driven installs)

Alerting never delays posting: sending happens after a `bridge poll` has posted, or in the daemon's own thread.
"""
