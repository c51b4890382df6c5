#!/usr/bin/env python3
"""Check the or3-sync conformance vectors.

Validates the structure of hlc.json, lww.json, validation.json and push.json and
recomputes every expected result with a small, independent, deliberately
plain Python implementation of the rules in PROTOCOL.md sections 2 and 4
(as pinned in README.md). Standard library only.

    python3 conformance/check_vectors.py

Exit status 0 when every vector agrees, 1 otherwise.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

MAX_SAFE = 2 ** 53 - 1          # 9007199254740991
MAX_MS = 10 ** 13 - 1           # 13 decimal digits
MAX_COUNTER = 999999            # 6 decimal digits
DRIFT_MS = 60000                # receive: remote ms may be at most now + 60 s

DIGITS = "0123456789"
LOWER_HEX = "0123456789abcdef"
ANY_HEX = "0123456789abcdefABCDEF"

REJECTION_CODES = ["invalid_op", "unknown_table", "invalid_pk", "invalid_hlc",
                   "pk_mismatch", "payload_too_large", "clock_skew"]

errors = []


def fail(where, msg):
    errors.append("%s: %s" % (where, msg))


# --------------------------------------------------------------------------
# Loading: strict JSON (no duplicate keys, no NaN/Infinity, no lone surrogates)

class DuplicateKey(Exception):
    pass


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def _bad_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


def load(name):
    path = os.path.join(HERE, name)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(name, "not UTF-8: %s" % e)
        return None
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_bad_constant)
    except DuplicateKey as e:
        fail(name, "duplicate object key %r" % e.args[0])
        return None
    except ValueError as e:
        fail(name, "invalid JSON: %s" % e)
        return None
    _check_surrogates(name, doc)
    return doc


def _check_surrogates(where, value):
    """Lone surrogates are not portable (serde_json refuses them)."""
    if isinstance(value, str):
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            fail(where, "string contains a lone surrogate: %r" % value)
    elif isinstance(value, list):
        for item in value:
            _check_surrogates(where, item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_surrogates(where, k)
            _check_surrogates(where, v)


def is_int(x):
    return type(x) is int   # bool is a subclass of int in Python; exclude it


def check_keys(where, obj, required, optional=()):
    if not isinstance(obj, dict):
        fail(where, "expected an object, got %r" % (obj,))
        return False
    ok = True
    for k in required:
        if k not in obj:
            fail(where, "missing key %r" % k)
            ok = False
    for k in obj:
        if k not in required and k not in optional:
            fail(where, "unexpected key %r" % k)
            ok = False
    return ok


def check_why(where, v, seen):
    why = v.get("why")
    if not isinstance(why, str) or not why.strip():
        fail(where, "'why' must be a non-empty string")
        return
    if "\n" in why or "\r" in why:
        fail(where, "'why' must be one line")
    if why in seen:
        fail(where, "duplicate 'why' %r (each vector should say something new)" % why)
    seen.add(why)


def check_unique(where, v, seen):
    body = dict(v)
    body.pop("why", None)
    key = json.dumps(body, sort_keys=True)
    if key in seen:
        fail(where, "duplicate vector (same inputs as another one)")
    seen.add(key)


# --------------------------------------------------------------------------
# HLC reference implementation

def hlc_parse(s):
    """Return (ms, counter, device_id) or None. Hand-rolled, no regex."""
    if not isinstance(s, str):
        return None
    parts = s.split("-")
    if len(parts) != 3:
        return None
    ms_s, c_s, dev = parts
    if len(ms_s) != 13 or any(ch not in DIGITS for ch in ms_s):
        return None
    if len(c_s) != 6 or any(ch not in DIGITS for ch in c_s):
        return None
    if not device_id_ok(dev):
        return None
    # only ASCII digits reach int(), so int() cannot be lenient here
    return int(ms_s), int(c_s), dev


def hlc_format(ms, counter, dev):
    if not (0 <= ms <= MAX_MS) or not (0 <= counter <= MAX_COUNTER) or not device_id_ok(dev):
        raise ValueError("out of range")
    return "%013d-%06d-%s" % (ms, counter, dev)


def device_id_ok(dev):
    return (isinstance(dev, str) and 16 <= len(dev) <= 64
            and all(ch in LOWER_HEX for ch in dev))


def bytes_cmp(a, b):
    ab, bb = a.encode("utf-8"), b.encode("utf-8")
    return (ab > bb) - (ab < bb)


def hlc_send(ms, c, now):
    if now > ms:
        ms, c = now, 0
    else:
        c = c + 1
    if c > MAX_COUNTER:
        ms, c = ms + 1, 0
    return ms, c


def hlc_receive(ms, c, rms, rc, now):
    if rms > now + DRIFT_MS:
        return ms, c
    m = max(ms, rms, now)
    if m == ms and m == rms:
        c = max(c, rc) + 1
    elif m == ms:
        c = c + 1
    elif m == rms:
        c = rc + 1
    else:
        c = 0
    ms = m
    if c > MAX_COUNTER:
        ms, c = ms + 1, 0
    return ms, c


def check_state(where, st):
    if check_keys(where, st, ["ms", "counter"]):
        if not is_int(st["ms"]) or not (0 <= st["ms"] <= MAX_MS):
            fail(where, "ms must be an integer 0..%d" % MAX_MS)
            return False
        if not is_int(st["counter"]) or not (0 <= st["counter"] <= MAX_COUNTER):
            fail(where, "counter must be an integer 0..999999")
            return False
        return True
    return False


def check_hlc_file():
    doc = load("hlc.json")
    counts = {}
    if doc is None:
        return counts
    if not check_keys("hlc.json", doc, ["description", "vectors"]):
        return counts
    whys, bodies = set(), set()
    for i, v in enumerate(doc["vectors"]):
        w = "hlc.json vector %d" % i
        if not isinstance(v, dict):
            fail(w, "vector must be an object")
            continue
        kind = v.get("kind")
        if kind == "format":
            shape = ["kind", "why", "ms", "counter", "device_id", "expect"]
        elif kind == "parse_error":
            shape = ["kind", "why", "hlc"]
        elif kind == "compare":
            shape = ["kind", "why", "a", "b", "expect"]
        elif kind == "send":
            shape = ["kind", "why", "state", "now", "expect"]
        elif kind == "receive":
            shape = ["kind", "why", "state", "remote", "now", "expect"]
        else:
            fail(w, "unknown kind %r" % (kind,))
            continue
        if not check_keys(w, v, shape):
            continue
        w = "%s (%s: %s)" % (w, kind, v.get("why"))
        check_why(w, v, whys)
        check_unique(w, v, bodies)
        counts[kind] = counts.get(kind, 0) + 1

        if kind == "format":
            ms, c, dev = v["ms"], v["counter"], v["device_id"]
            if not (is_int(ms) and is_int(c) and isinstance(dev, str)):
                fail(w, "ms/counter must be integers and device_id a string")
                continue
            try:
                got = hlc_format(ms, c, dev)
            except ValueError:
                fail(w, "inputs out of range")
                continue
            if got != v["expect"]:
                fail(w, "format gives %r, vector expects %r" % (got, v["expect"]))
            if hlc_parse(v["expect"]) != (ms, c, dev):
                fail(w, "parse(expect) gives %r, not the inputs" % (hlc_parse(v["expect"]),))
        elif kind == "parse_error":
            if not isinstance(v["hlc"], str):
                fail(w, "hlc must be a string")
            elif hlc_parse(v["hlc"]) is not None:
                fail(w, "%r parses, vector says it must not" % v["hlc"])
        elif kind == "compare":
            a, b = v["a"], v["b"]
            if hlc_parse(a) is None or hlc_parse(b) is None:
                fail(w, "a and b must both be valid HLCs")
                continue
            if v["expect"] not in (-1, 0, 1) or not is_int(v["expect"]):
                fail(w, "expect must be -1, 0 or 1")
                continue
            got = bytes_cmp(a, b)
            if got != v["expect"]:
                fail(w, "compare gives %d, vector expects %r" % (got, v["expect"]))
            # the comparison must agree with numeric (ms, counter) then device bytes
            pa, pb = hlc_parse(a), hlc_parse(b)
            ta = (pa[0], pa[1], pa[2].encode())
            tb = (pb[0], pb[1], pb[2].encode())
            if ((ta > tb) - (ta < tb)) != got:
                fail(w, "bytewise order disagrees with numeric order")
        elif kind == "send":
            if not (check_state(w + " state", v["state"]) and check_state(w + " expect", v["expect"])):
                continue
            if not is_int(v["now"]) or v["now"] < 0:
                fail(w, "now must be a non-negative integer")
                continue
            got = hlc_send(v["state"]["ms"], v["state"]["counter"], v["now"])
            exp = (v["expect"]["ms"], v["expect"]["counter"])
            if got != exp:
                fail(w, "send gives %r, vector expects %r" % (got, exp))
        elif kind == "receive":
            if not (check_state(w + " state", v["state"]) and check_state(w + " remote", v["remote"])
                    and check_state(w + " expect", v["expect"])):
                continue
            if not is_int(v["now"]) or v["now"] < 0:
                fail(w, "now must be a non-negative integer")
                continue
            got = hlc_receive(v["state"]["ms"], v["state"]["counter"],
                              v["remote"]["ms"], v["remote"]["counter"], v["now"])
            exp = (v["expect"]["ms"], v["expect"]["counter"])
            if got != exp:
                fail(w, "receive gives %r, vector expects %r" % (got, exp))
    return counts


# --------------------------------------------------------------------------
# LWW reference implementation

def uuid_ok(s, lowercase_only=False):
    if not isinstance(s, str) or len(s) != 36:
        return False
    hexset = LOWER_HEX if lowercase_only else ANY_HEX
    for i, ch in enumerate(s):
        if i in (8, 13, 18, 23):
            if ch != "-":
                return False
        elif ch not in hexset:
            return False
    return True


def lww_winner(a, b):
    ka = (a["clock"], a["hlc"].encode("utf-8"), a["op_id"].encode("utf-8"))
    kb = (b["clock"], b["hlc"].encode("utf-8"), b["op_id"].encode("utf-8"))
    if ka > kb:
        return "a"
    if kb > ka:
        return "b"
    return "equal"


def check_stamp(where, s):
    if not check_keys(where, s, ["clock", "hlc", "op_id", "deleted"]):
        return False
    ok = True
    if not is_int(s["clock"]) or not (0 <= s["clock"] <= MAX_SAFE):
        fail(where, "clock must be an integer 0..2^53-1")
        ok = False
    if hlc_parse(s["hlc"]) is None:
        fail(where, "hlc %r does not parse" % (s["hlc"],))
        ok = False
    if not uuid_ok(s["op_id"], lowercase_only=True):
        fail(where, "op_id %r is not a lowercase UUID" % (s["op_id"],))
        ok = False
    if not isinstance(s["deleted"], bool):
        fail(where, "deleted must be a boolean")
        ok = False
    return ok


def check_lww_file():
    doc = load("lww.json")
    counts = {}
    if doc is None:
        return counts
    if not check_keys("lww.json", doc, ["description", "vectors"]):
        return counts
    whys, bodies = set(), set()
    for i, v in enumerate(doc["vectors"]):
        w = "lww.json vector %d" % i
        if not check_keys(w, v, ["why", "a", "b", "expect"]):
            continue
        w = "%s (%s)" % (w, v.get("why"))
        check_why(w, v, whys)
        check_unique(w, v, bodies)
        if not (check_stamp(w + " a", v["a"]) and check_stamp(w + " b", v["b"])):
            continue
        if v["expect"] not in ("a", "b", "equal"):
            fail(w, "expect must be 'a', 'b' or 'equal'")
            continue
        counts[v["expect"]] = counts.get(v["expect"], 0) + 1
        got = lww_winner(v["a"], v["b"])
        if got != v["expect"]:
            fail(w, "winner is %r, vector expects %r" % (got, v["expect"]))
        # symmetry: swapping a and b must swap the answer
        swapped = lww_winner(v["b"], v["a"])
        if swapped != {"a": "b", "b": "a", "equal": "equal"}[got]:
            fail(w, "rule is not antisymmetric on this vector")
    return counts


# --------------------------------------------------------------------------
# Op validation reference implementation

REQUIRED_FIELDS = ("op_id", "table_name", "operation", "pk", "clock", "hlc", "device_id")
OPTIONAL_FIELDS = ("payload",)
CONFIG_KEYS = ("tables", "max_payload_bytes", "max_clock_skew_ms", "now_ms")


def is_control(ch):
    cp = ord(ch)
    return cp <= 0x1F or 0x7F <= cp <= 0x9F


def compact_size(payload, ensure_ascii=False):
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=ensure_ascii)
    return len(text.encode("utf-8"))


def validate_op(op, cfg):
    """Return None when valid, else the rejection code of the first failing check."""
    # a. structure
    if not isinstance(op, dict):
        return "invalid_op"
    for k in op:
        if k not in REQUIRED_FIELDS and k not in OPTIONAL_FIELDS:
            return "invalid_op"
    for k in REQUIRED_FIELDS:
        if k not in op:
            return "invalid_op"
    if not uuid_ok(op["op_id"]):
        return "invalid_op"
    for k in ("table_name", "pk", "hlc", "device_id"):
        if not isinstance(op[k], str):
            return "invalid_op"
    if op["operation"] not in ("put", "delete"):
        return "invalid_op"
    if not is_int(op["clock"]) or op["clock"] < 0 or op["clock"] > MAX_SAFE:
        return "invalid_op"
    if not device_id_ok(op["device_id"]):
        return "invalid_op"
    # b. table
    if op["table_name"] not in cfg["tables"]:
        return "unknown_table"
    # c. pk: 1..256 code points, no C0/DEL/C1 controls
    pk = op["pk"]
    if len(pk) < 1 or len(pk) > 256:
        return "invalid_pk"
    if any(is_control(ch) for ch in pk):
        return "invalid_pk"
    # d. hlc
    parsed = hlc_parse(op["hlc"])
    if parsed is None or parsed[2] != op["device_id"]:
        return "invalid_hlc"
    # e. payload shape
    has_payload = "payload" in op
    payload = op.get("payload")
    if op["operation"] == "put":
        if not has_payload or not isinstance(payload, dict):
            return "invalid_op"
    else:
        if has_payload and payload is not None and not isinstance(payload, dict):
            return "invalid_op"
    if isinstance(payload, dict):
        # f. payload carries its own pk
        field = cfg["tables"][op["table_name"]]
        if field not in payload or not isinstance(payload[field], str) or payload[field] != pk:
            return "pk_mismatch"
        # g. size of compact JSON in UTF-8 bytes
        if compact_size(payload) > cfg["max_payload_bytes"]:
            return "payload_too_large"
    # h. future clock skew
    if parsed[0] > cfg["now_ms"] + cfg["max_clock_skew_ms"]:
        return "clock_skew"
    return None


def check_config(where, cfg, partial):
    if not isinstance(cfg, dict):
        fail(where, "config must be an object")
        return False
    ok = True
    for k in cfg:
        if k not in CONFIG_KEYS:
            fail(where, "unknown config key %r" % k)
            ok = False
    if not partial:
        for k in CONFIG_KEYS:
            if k not in cfg:
                fail(where, "config is missing %r" % k)
                ok = False
    if "tables" in cfg:
        t = cfg["tables"]
        if not isinstance(t, dict) or not t or not all(isinstance(x, str) and x for x in t.values()):
            fail(where, "tables must map table names to pk field names")
            ok = False
    for k in ("max_payload_bytes", "max_clock_skew_ms", "now_ms"):
        if k in cfg and (not is_int(cfg[k]) or cfg[k] < 0):
            fail(where, "%s must be a non-negative integer" % k)
            ok = False
    return ok


def contains_float(value):
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(contains_float(x) for x in value)
    if isinstance(value, dict):
        return any(contains_float(x) for x in value.values())
    return False


def check_validation_file():
    doc = load("validation.json")
    counts = {}
    if doc is None:
        return counts
    if not check_keys("validation.json", doc, ["description", "config", "vectors"]):
        return counts
    if not check_config("validation.json config", doc["config"], partial=False):
        return counts
    base = doc["config"]
    whys, bodies = set(), set()
    for i, v in enumerate(doc["vectors"]):
        w = "validation.json vector %d" % i
        if not check_keys(w, v, ["why", "op", "expect"], ["config"]):
            continue
        w = "%s (%s)" % (w, v.get("why"))
        check_why(w, v, whys)
        check_unique(w, v, bodies)
        cfg = dict(base)
        if "config" in v:
            if not check_config(w + " config", v["config"], partial=True):
                continue
            if not v["config"]:
                fail(w, "empty config override; leave it out")
            cfg.update(v["config"])   # shallow: an overridden key replaces the base value whole
        exp = v["expect"]
        if exp == "ok":
            exp_code = None
        elif (isinstance(exp, dict) and list(exp.keys()) == ["rejected"]
              and exp["rejected"] in REJECTION_CODES):
            exp_code = exp["rejected"]
        else:
            fail(w, "expect must be \"ok\" or {\"rejected\": <code>}")
            continue
        label = exp_code or "ok"
        counts[label] = counts.get(label, 0) + 1

        op = v["op"]
        # portability of payload sizes: no floats in payloads; where the size limit
        # is overridden (so the size matters), the outcome must not depend on
        # whether non-ASCII text is escaped.
        if isinstance(op, dict) and "payload" in op:
            if contains_float(op["payload"]):
                fail(w, "payload contains a float; floats serialize differently per language")
            if ("config" in v and "max_payload_bytes" in v["config"]
                    and isinstance(op["payload"], dict)):
                lim = cfg["max_payload_bytes"]
                raw = compact_size(op["payload"])
                esc = compact_size(op["payload"], ensure_ascii=True)
                if (raw > lim) != (esc > lim):
                    fail(w, "size outcome depends on escaping of non-ASCII text")

        got = validate_op(op, cfg)
        if got != exp_code:
            fail(w, "checker gives %r, vector expects %r" % (got or "ok", label))
    return counts


# --------------------------------------------------------------------------
# Push reference implementation: the whole workspace lives in one dict and
# every applied op is written to it at once, so later ops of a batch see it.

PUSH_LIMITS = {"max_payload_bytes": 1 << 20, "max_clock_skew_ms": 300000}
THREADS, MESSAGES = "threads", "messages"


def str_field(row, name):
    value = row.get(name)
    return value if isinstance(value, str) else None


class Workspace:
    def __init__(self):
        self.records = {}       # (table, pk) -> dict
        self.applied = {}       # lowercase op_id -> (version, content)
        self.head = 0

    def push(self, ops, cfg):
        results = []
        for op in ops:
            code = validate_op(op, cfg)
            if code is not None:
                results.append({"status": "rejected", "code": code})
                continue
            results.append(self.apply(op, cfg["tables"]))
        return results

    def apply(self, op, tables):
        op_id = op["op_id"].lower()
        payload = op.get("payload")
        deleted = op["operation"] == "delete" or payload is not None and payload.get("deleted") is True
        # what makes two ops with one id the same op (payload aside)
        content = (op["table_name"], op["pk"], deleted, op["clock"], op["hlc"], op["device_id"])
        if op_id in self.applied:
            version, applied = self.applied[op_id]
            if applied != content:
                return {"status": "rejected", "code": "op_id_reused"}
            return {"status": "duplicate", "server_version": version}
        key = (op["table_name"], op["pk"])
        cur = self.records.get(key)
        stamp = (op["clock"], op["hlc"].encode("utf-8"), op_id.encode("utf-8"))
        if cur is not None:
            if stamp == cur["stamp"]:
                return {"status": "duplicate", "server_version": cur["version"]}
            if stamp < cur["stamp"]:
                return {"status": "superseded", "winner": {
                    "server_version": cur["version"], "op_id": cur["stamp"][2].decode("utf-8"),
                    "deleted": cur["deleted"]}}
        if payload is not None:
            row = dict(payload)
        elif cur is not None and cur["row"] is not None:
            row = dict(cur["row"])
        else:
            row = {}
        row[tables[op["table_name"]]] = op["pk"]
        row.update({"clock": op["clock"], "hlc": op["hlc"], "deleted": deleted})
        table = op["table_name"]
        thread = str_field(row, "thread_id") if table == MESSAGES else None
        if table == THREADS:
            project = str_field(row, "project_id")
        elif table == MESSAGES and thread is not None and (THREADS, thread) in self.records:
            project = self.records[(THREADS, thread)]["project"]
        else:
            project = None
        if cur is not None:
            previous, known = cur["project"], True
        elif table == THREADS and any(t == MESSAGES and r["thread"] == op["pk"]
                                      for (t, _), r in self.records.items()):
            previous, known = None, True
        else:
            previous, known = None, False
        if table in (THREADS, MESSAGES):
            moved = known and previous != project
            scope = {"scoped": True, "project_id": project,
                     "prev_project_id": previous if moved else None, "scope_change": moved}
        else:
            scope = {"scoped": False, "project_id": None, "prev_project_id": None, "scope_change": False}
        if thread is None and cur is not None:
            thread = cur["thread"]
        self.head += 1
        self.applied[op_id] = (self.head, content)
        self.records[key] = {"stamp": stamp, "version": self.head, "deleted": deleted, "row": row,
                             "project": project, "thread": thread}
        return {"status": "applied", "server_version": self.head, "scope": scope}


def check_push_file():
    doc = load("push.json")
    counts = {}
    if doc is None:
        return counts
    if not check_keys("push.json", doc, ["description", "config", "vectors"]):
        return counts
    base = doc["config"]
    if not check_keys("push.json config", base, ["tables", "now_ms"]):
        return counts
    cfg = dict(PUSH_LIMITS, **base)
    whys, bodies = set(), set()
    for i, v in enumerate(doc["vectors"]):
        w = "push.json vector %d" % i
        if not check_keys(w, v, ["why", "stored", "batch", "expect"]):
            continue
        w = "%s (%s)" % (w, v.get("why"))
        check_why(w, v, whys)
        check_unique(w, v, bodies)
        if not check_keys(w + " expect", v["expect"], ["results", "head"]):
            continue
        if len(v["batch"]) != len(v["expect"]["results"]):
            fail(w, "one expected result per batch op")
            continue
        for r in v["expect"]["results"]:
            counts[r.get("status")] = counts.get(r.get("status"), 0) + 1
        ws = Workspace()
        for j, got in enumerate(ws.push(v["stored"], cfg)):
            if got["status"] != "applied" or got["server_version"] != j + 1:
                fail(w, "stored op %d must be applied at version %d, checker gives %r" % (j, j + 1, got))
        got = ws.push(v["batch"], cfg)
        if got != v["expect"]["results"]:
            for j, (g, e) in enumerate(zip(got, v["expect"]["results"])):
                if g != e:
                    fail(w, "op %d: checker gives %s, vector expects %s" % (
                        j, json.dumps(g), json.dumps(e)))
        if ws.head != v["expect"]["head"]:
            fail(w, "head is %d, vector expects %d" % (ws.head, v["expect"]["head"]))
    return counts


def main():
    results = [
        ("hlc.json", check_hlc_file()),
        ("lww.json", check_lww_file()),
        ("validation.json", check_validation_file()),
        ("push.json", check_push_file()),
    ]
    # coverage: every kind and every code appears at least once
    need = {
        "hlc.json": ["format", "parse_error", "compare", "send", "receive"],
        "lww.json": ["a", "b", "equal"],
        "validation.json": ["ok"] + REJECTION_CODES,
        "push.json": ["applied", "duplicate", "superseded", "rejected"],
    }
    total = 0
    for name, counts in results:
        for k in need[name]:
            if counts.get(k, 0) == 0:
                fail(name, "no vector covers %r" % k)
        n = sum(counts.values())
        total += n
        detail = ", ".join("%s %d" % (k, counts[k]) for k in need[name] if k in counts)
        print("%-16s %4d vectors  (%s)" % (name, n, detail))
    print("%-16s %4d vectors" % ("total", total))
    if errors:
        print("\n%d problem(s):" % len(errors))
        for e in errors:
            print("  " + e)
        return 1
    print("all vectors agree with the reference checker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
