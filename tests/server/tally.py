"""tally.py - the pass/fail count the Python checkers of tests/server share.

    import tally
    tally.ok("what is checked", condition, "detail shown on failure")
    ... tally.passed, tally.failed at the end
"""
passed = failed = 0


def ok(desc, cond, detail=""):
    """Counts a pass, or prints "FAIL: desc detail" (at once) and counts a failure."""
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s %s" % (desc, detail), flush=True)
