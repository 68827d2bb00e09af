"""Schemathesis hooks of scripts/openapi-check.sh.

The generated requests share one fake workspace per chat, so an earlier
request can make a valid path a directory (PUT of `0/x` makes `0` one); a
later GET or PUT of `0` is then refused 400 `not_a_file` for the
workspace's state, not for the request's form. Likewise a PUT of `0` makes
a later `GET 0?list=true` a 400 `not_a_directory`. This check is
positive_data_acceptance with those two answers let through; every other
refusal of a schema-valid request still fails it.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _code(response):
    try:
        return response.json().get("error", {}).get("code")
    except Exception:  # not JSON: not our error body
        return None


STATE_MADE = ("not_a_file", "not_a_directory")
# Live processes: the answers a valid request gets from the processes that
# earlier requests started (or did not): an id taken by another body or a
# closed stdin (409), an offset past a stream's end (400 invalid_offset), an
# output the buffer dropped (410), the running limit (429); and the terminal
# route asked without a WebSocket upgrade, which the document cannot state (426).
PROCESS_STATE_MADE = {
    409: ("conflict",),
    400: ("invalid_offset",),
    410: ("cursor_expired",),
    429: ("too_many_processes",),
    426: ("upgrade_required",),
}


@schemathesis.check
def positive_data_acceptance_but_state(ctx, response, case):
    if response.status_code == 400 and _code(response) in STATE_MADE:
        return None
    if _code(response) in PROCESS_STATE_MADE.get(response.status_code, ()):
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.hook
def filter_query(ctx, query):
    """No follow streams: one of a process still running (stdin kept open)
    lasts until the process ends, past the request timeout."""
    return not query or str(query.get("follow", "")).lower() != "true"
