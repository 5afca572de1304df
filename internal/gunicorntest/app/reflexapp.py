"""reflexapp: a plain-WSGI application for gunicorn-reflex tests.

It needs nothing beyond the standard library; psycopg2 is imported only by
/db, so the app loads where psycopg2 is missing. Every endpoint answers
text/plain. Durations are seconds (floats allowed) and are capped so a typo in
a test cannot hold a worker for an hour.
"""

import os
import socket
import threading
import time
from urllib.parse import parse_qs

MAX_SECONDS = 120.0
MAX_MIB = 1024


class BadRequest(Exception):
    pass


def _float(query, name, default):
    values = query.get(name)
    if not values:
        return default
    try:
        v = float(values[0])
    except ValueError:
        raise BadRequest("%s must be a number" % name)
    if v < 0 or v > MAX_SECONDS:
        raise BadRequest("%s must be in [0, %g]" % (name, MAX_SECONDS))
    return v


def _int(query, name, default, lo, hi):
    values = query.get(name)
    if not values:
        return default
    try:
        v = int(values[0])
    except ValueError:
        raise BadRequest("%s must be an integer" % name)
    if v < lo or v > hi:
        raise BadRequest("%s must be in [%d, %d]" % (name, lo, hi))
    return v


def ok(query):
    return "ok"


def pid(query):
    return "%d" % os.getpid()


def sleep(query):
    s = _float(query, "s", 1.0)
    time.sleep(s)
    return "slept %g" % s


def spin(query):
    # A pure-Python busy loop: the worker stays runnable (state R) and never
    # reaches its heartbeat, like a CPU-bound view.
    s = _float(query, "s", 1.0)
    deadline = time.monotonic() + s
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return "spun %g (%d)" % (s, n)


def error(query):
    raise RuntimeError("reflexapp: /error requested")


def alloc(query):
    mb = _int(query, "mb", 16, 0, MAX_MIB)
    hold = _float(query, "s", 0.0)
    buf = bytearray(mb << 20)
    # Write one byte per page so the memory is resident, not just reserved.
    if mb:
        buf[::4096] = b"\x01" * len(range(0, len(buf), 4096))
    if hold:
        time.sleep(hold)
    n = len(buf)
    del buf
    return "allocated %d MiB" % (n >> 20)


def lock(query):
    # The request thread blocks in a futex wait on a lock that a background
    # thread holds for s seconds.
    s = _float(query, "s", 1.0)
    lk = threading.Lock()
    held = threading.Event()

    def holder():
        with lk:
            held.set()
            time.sleep(s)

    t = threading.Thread(target=holder, name="reflexapp-lock-holder", daemon=True)
    t.start()
    held.wait()
    with lk:
        pass
    t.join()
    return "locked %g" % s


def recv(query):
    # The request thread blocks in recv() on a loopback connection until the
    # peer sends something or closes.
    port = _int(query, "port", 0, 1, 65535)
    if not port:
        raise BadRequest("port is required")
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conn.settimeout(None)
        data = conn.recv(65536)
    finally:
        conn.close()
    return "received %d bytes" % len(data)


def db(query):
    s = _float(query, "s", 1.0)
    dsn = os.environ.get("REFLEX_TEST_PG_DSN")
    if not dsn:
        raise RuntimeError("reflexapp: REFLEX_TEST_PG_DSN is not set")
    import psycopg2  # lazily, so the app loads without it

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s)", (s,))
            cur.fetchall()
    finally:
        conn.close()
    return "db slept %g" % s


def _db_exec(sql, args=()):
    dsn = os.environ.get("REFLEX_TEST_PG_DSN")
    if not dsn:
        raise RuntimeError("reflexapp: REFLEX_TEST_PG_DSN is not set")
    import psycopg2  # lazily, so the app loads without it

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            n = cur.rowcount
        conn.commit()
    finally:
        conn.close()
    return n


def dbview(query):
    # A slow query the app does not know is slow: a view over pg_sleep that
    # the test created (reflex_slow).
    _db_exec("SELECT * FROM reflex_slow")
    return "db view read"


def dbrow(query):
    # An update of one row: it waits on the row lock when another session
    # holds it (the lock-wait scenario's idle-in-transaction session).
    row = _int(query, "id", 1, 1, 1000000)
    n = _db_exec("UPDATE reflex_items SET n = n + 1 WHERE id = %s", (row,))
    return "updated %d" % n


ROUTES = {
    "/ok": ok,
    "/pid": pid,
    "/sleep": sleep,
    "/spin": spin,
    "/error": error,
    "/alloc": alloc,
    "/lock": lock,
    "/recv": recv,
    "/db": db,
    "/dbview": dbview,
    "/dbrow": dbrow,
}


def _respond(start_response, status, text):
    body = text.encode("utf-8")
    start_response(status, [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ])
    return [body]


def app(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", "/"))
    if handler is None:
        return _respond(start_response, "404 Not Found", "not found")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        text = handler(query)
    except BadRequest as e:
        return _respond(start_response, "400 Bad Request", str(e))
    # Any other exception propagates so Gunicorn logs "Error handling
    # request" and answers 500, which is what /error is for.
    return _respond(start_response, "200 OK", text)
