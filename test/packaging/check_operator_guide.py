#!/usr/bin/env python3
# The operator's guide (packaging/README.md) against the code: its troubleshooting tables name exactly what the proxy reports.
"""The code has no single list of rejection reasons: they come from literals at the answer
sites (respond_text, abort_response, the connection_closed log line, and any function that
passes its `std::string_view reason` on to them) and from a few enums' to_string() functions
or SCEPPROXY_LABEL_ENUM lists (base/label_enum.h). This reads them from the sources the
way they are written (and fails if it finds none, so a refactoring can't silently turn the
check into a no-op), then compares them with the tables of the guide that follow a marker
comment `<!-- checked: KIND -->`:

  scep_rejections     the `reason` of the access log and scepproxy_rejections_total: equal sets
  challenge_outcomes  NDES mscep_admin fetch outcomes (ChallengeOutcome, without ok): equal sets
  fail_info           CertRep failInfo names (pkcs7 FailInfo): equal sets
  admin_errors        the admin API's {"error": ...} codes: each one the code answers with
  log_events          log `event=` names: equal sets

A table's codes are the `backticked` words of its first column; every row must say what to do
(a non-empty last column).

Usage: check_operator_guide.py [REPO_ROOT]   (default: two directories up from this file)
"""

import glob
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
GUIDE = os.path.join(ROOT, "packaging", "README.md")


# The daemon's folders whose answers are SCEP rejections (http/ and challenge/ are read separately).
DAEMON_FOLDERS = ("net", "upstream", "scep", "admin", "limits", "telemetry", "server")


def source(relative):
    with open(os.path.join(ROOT, relative)) as f:
        return f.read()


def sources(*patterns):
    """{relative path: text} of the library and daemon sources (tests excluded)."""
    found = {}
    for pattern in patterns:
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            found[os.path.relpath(path, ROOT)] = source(os.path.relpath(path, ROOT))
    return found


def switch_strings(text, function, enum):
    """{enumerator: string} of `case ENUM::x: return "y";` inside FUNCTION's body."""
    start = text.find(function)
    assert start >= 0, f"{function} not found"
    body = text[start:text.find("\n}\n", start)]
    cases = dict(re.findall(rf'case {enum}::(\w+):\s*return "([^"]+)";', body))
    assert cases, f"no `case {enum}::...: return \"...\";` in {function}"
    return cases


def label_list_names(text, macro):
    """[enumerator, ...] of `#define MACRO(X) X(a) X(b) ...` (base/label_enum.h: the names are the printed strings)."""
    m = re.search(rf"#define {macro}\(X\)((?:[^\n]*\\\n)*[^\n]*)", text)
    assert m, f"#define {macro}(X) not found"
    names = re.findall(r"\bX\((\w+)\)", re.sub(r"/\*.*?\*/", "", m.group(1)))
    assert names, f"no X(name) in {macro}"
    return names


def nonempty(name, values):
    assert values, f"found no {name} in the sources: has the code changed shape? Update {__file__}"
    return set(values)


# Where a request's reason ends up: the answer, or the access log line of a connection closed
# without one. The reasons of answers that aren't refusals are left out.
REASON_SINKS = ("respond_text", "abort_response", "write_connection_closed_log")
NOT_REJECTIONS = {"forwarded", "cache_hit", "ok"}
DEFINITION = re.compile(r"\b(?:\w+::)?(\w+)\(([^()]*\bstd::string_view reason\b[^()]*)\)\s*(?:const\s*)?\{")


def split_arguments(text):
    """Top-level comma-separated pieces of an argument list."""
    pieces, depth, current, quoted = [], 0, "", False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            pieces.append(current.strip())
            current = ""
            continue
        current += ch
    return pieces + [current.strip()]


def reason_passers(texts):
    """{function: index of its `reason` parameter} for the sinks and every function that takes a
    `std::string_view reason` and hands it on to one of them (answer_deadline, close_for_deadline,
    refuse_if_rate_limited, ...)."""
    passers = {}
    changed = True
    while changed:
        changed = False
        for text in texts:
            for m in DEFINITION.finditer(text):
                name = m.group(1)
                if name in passers:
                    continue
                index = [piece.split()[-1] for piece in split_arguments(m.group(2))].index("reason")
                body = text[m.end():text.find("\n}\n", m.end())]
                if name in REASON_SINKS or re.search(rf"\b(?:{'|'.join(sorted(passers) or ['^'])})\([^;]*\breason\b", body):
                    passers[name] = index
                    changed = True
    missing = set(REASON_SINKS) - set(passers)
    assert not missing, f"no definitions with a `std::string_view reason` parameter for {missing}"
    return passers


def calls(text, name):
    """The argument lists of the calls of `name` in `text` (balanced parentheses)."""
    found = []
    for m in re.finditer(rf"\b{name}\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        arguments = text[m.end():i - 1]
        if "std::string_view" in arguments:
            continue  # a definition or declaration: typed parameters
        found.append(split_arguments(arguments))
    return found


def literal_reasons(texts, passers):
    """The literal `reason` arguments of calls to `passers`; a call answering with a status below
    400 is no refusal."""
    reasons = set()
    for text in texts:
        for name, index in passers.items():
            for arguments in calls(text, name):
                if re.fullmatch(r"\d{3}", arguments[0]) and int(arguments[0]) < 400:
                    continue
                if index < len(arguments) and (literal := re.fullmatch(r'"([a-z0-9_]+)"', arguments[index])):
                    reasons.add(literal.group(1))
    return reasons - NOT_REJECTIONS


def scep_rejection_reasons():
    proxy = sources(*(f"proxy/{folder}/*.cpp" for folder in DAEMON_FOLDERS))
    # Literal reasons at the answer sites: respond_text(403, "token_malformed", ...), and at the
    # calls of functions that pass theirs on: answer_deadline("header_timeout"), ...
    reasons = literal_reasons(proxy.values(), reason_passers(proxy.values()))
    nonempty("respond_text(STATUS, \"reason\", ...) calls", reasons)

    handler = proxy["proxy/scep/scep_request_handler.cpp"]
    # respond_text(400, to_string(routed.status), ...): the route's statuses but ok.
    assert "to_string(routed.status)" in handler
    route = switch_strings(source("proxy/scep/scep_route.cpp"), "const char* to_string(RouteStatus", "RouteStatus")
    reasons |= {name for key, name in route.items() if key != "ok"}
    # respond_text(..., to_string(failure), ...) and abort_response(..., to_string(failure)).
    assert re.search(r"respond_text\(502, to_string\(failure\)", handler)
    reasons |= set(switch_strings(source("proxy/upstream/upstream_connection.cpp"), "const char* to_string(UpstreamFailure",
                                  "UpstreamFailure").values())
    # Token and device verdicts: the `case token::XVerdict::y:` labels of a branch that answers
    # with token::to_string(decision.verdict).
    verdict_names = {}
    store = source("token/enrollment_store.cpp")
    for enum in ("AccessVerdict", "BindVerdict"):
        verdict_names[enum] = switch_strings(store, f"const char* to_string({enum}", enum)
    pending, verdicts = [], set()
    for line in handler.splitlines():
        if m := re.search(r"case token::(AccessVerdict|BindVerdict)::(\w+):", line):
            pending.append(verdict_names[m.group(1)][m.group(2)])
            if re.search(r"\b(return|break);", line):  # `case X: break;` on one line
                pending = []
        elif "respond_text(" in line and "to_string(decision.verdict)" in line:
            verdicts.update(pending)
        elif re.search(r"\b(return|break);", line):
            pending = []
    reasons |= nonempty("verdict answers in scep_request_handler.cpp", verdicts)
    # The HTTP codec's request-side rejections: respond_text(error.status, error.reason(), ...).
    assert "respond_text(error.status, error.reason()" in proxy["proxy/net/http_connection.cpp"]
    names = switch_strings(source("proxy/http/http_error.cpp"), "std::string_view reason_code", "HttpErrorCode")
    request_side = set()
    for path in ("chunked_body_decoder.cpp", "http_field_syntax.cpp", "http_head_scanner.cpp", "http_request_parser.cpp"):
        request_side |= set(re.findall(r"HttpErrorCode::(\w+)", source(f"proxy/http/{path}")))
    # none: no error; head_not_parsed: a caller bug, never sent.
    reasons |= {names[code] for code in request_side - {"none", "head_not_parsed"}}
    return reasons


def challenge_outcomes():
    names = label_list_names(source("proxy/challenge/challenge_outcome.h"), "SCEPPROXY_CHALLENGE_OUTCOMES")
    return {name for name in names if name != "ok"}


def fail_infos():
    return set(switch_strings(source("pkcs7/pki_message.cpp"), "const char* to_string(FailInfo", "FailInfo").values())


def admin_errors():
    text = source("proxy/admin/admin_api_handler.cpp")
    codes = set(re.findall(r'error_answer\(\s*\d{3}\s*,\s*"([a-z_]+)"', text))
    # Routing errors (404, 405) come from admin_api_request.cpp as route.error.
    codes |= set(re.findall(r'route\.error\s*=\s*"([a-z_]+)"', source("proxy/admin/admin_api_request.cpp")))
    return nonempty("admin API error codes", codes) | challenge_outcomes()


def log_events():
    events = set()
    for text in sources("proxy/**/*.cpp", "token/**/*.cpp").values():
        # LogLine(LogLevel::warn, "event") and LogLine line(cond ? LogLevel::info : LogLevel::warn, "event").
        events |= set(re.findall(r'LogLine(?:\s+\w+)?\([^;"]*"([a-z_]+)"', text))
        # Store events: event.name = "store_webhook_denied" (or cond ? "a" : "b").
        for statement in re.findall(r"event\.name\s*=[^;]*;", text):
            events |= set(re.findall(r'"([a-z_]+)"', statement))
    return nonempty("log events", events)


def guide_tables():
    """{kind: [(codes, last column, row text)]} of the tables after `<!-- checked: KIND -->`."""
    with open(GUIDE) as f:
        lines = f.read().splitlines()
    tables, kind = {}, None
    for line in lines:
        if m := re.match(r"<!-- checked: (\w+) -->", line.strip()):
            kind = m.group(1)
            assert kind not in tables, f"two tables marked {kind}"
            tables[kind] = []
            continue
        if kind is None:
            continue
        if not line.startswith("|"):
            if tables[kind]:
                kind = None  # the table ended
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue  # the separator row
        if not re.search(r"`[^`]+`", cells[0]):
            continue  # the header row
        tables[kind].append((re.findall(r"`([^`]+)`", cells[0]), cells[-1], line))
    return tables


def main():
    failures = []
    tables = guide_tables()
    expected = {
        "scep_rejections": (scep_rejection_reasons(), True),
        "challenge_outcomes": (challenge_outcomes(), True),
        "fail_info": (fail_infos(), True),
        "admin_errors": (admin_errors(), False),
        "log_events": (log_events(), True),
    }
    for kind, (in_code, complete) in expected.items():
        rows = tables.get(kind)
        if not rows:
            failures.append(f"{GUIDE}: no table marked <!-- checked: {kind} --> (or it has no rows)")
            continue
        listed = set()
        for codes, action, row in rows:
            listed.update(codes)
            if len(action) < 10:
                failures.append(f"{kind}: this row says nothing about what to do: {row}")
        for code in sorted(listed - in_code):
            failures.append(f"{kind}: the guide lists `{code}`, which the code never reports")
        if complete:
            for code in sorted(in_code - listed):
                failures.append(f"{kind}: the code reports `{code}`, which the guide's table lacks")
        print(f"{kind}: {len(listed)} in the guide, {len(in_code)} in the code"
              + (" (must match)" if complete else " (each listed one must exist)"))
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
