"""Grade a copy of the project: run each assignment's graded tests (test_graded.py, one pytest marker
per assignment) and print one line per assignment, `aK <title>: passed/total`, with the property
each failing test names. Exit code 0 only when every selected assignment passes.

    python assignments/grade.py            # every assignment
    python assignments/grade.py a1 a3      # some

Runs offline in under a minute on a laptop CPU: the tests build tiny models in code.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assignments.tasks import TASKS  # noqa: E402


class Tally:
    """pytest plugin: each graded test's outcome and first failure line, by assignment."""

    def __init__(self, wanted):
        self.wanted, self.ids, self.results = wanted, {}, {k: [] for k in wanted}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            marks = [m.name for m in item.iter_markers() if m.name in self.wanted]
            if marks:
                self.ids[item.nodeid] = marks[0]

    def pytest_runtest_logreport(self, report):
        key = self.ids.get(report.nodeid)
        if key is None or (report.when != "call" and report.passed):
            return
        if report.when == "call" or report.failed:
            why = "" if report.passed else _reason(report)
            self.results[key].append((report.nodeid.split("::")[-1], report.passed, why))


def _reason(report):
    """The property a failed test names (its assertion message), or the exception's first line."""
    text = str(report.longrepr.reprcrash.message) if hasattr(report.longrepr, "reprcrash") else ""
    return text.splitlines()[0][:160] if text else "failed"


def main(argv):
    wanted = argv or list(TASKS)
    unknown = [a for a in wanted if a not in TASKS]
    if unknown:
        print(f"grade.py: error: unknown assignment {unknown[0]!r}; choose from {', '.join(TASKS)}")
        return 2
    os.chdir(ROOT)
    tally = Tally(wanted)
    args = ["-p", "no:cacheprovider", "-p", "no:terminal", "-o", "addopts="]
    args += [str(ROOT / "assignments" / "test_graded.py"), "-m", " or ".join(wanted)]
    pytest.main(args, plugins=[tally])
    ok = True
    for key in wanted:
        got = tally.results[key]
        passed = sum(p for _, p, _ in got)
        ok &= passed == len(got) > 0
        print(f"{key} {TASKS[key]['title']}: {passed}/{len(got)}")
        for name, p, why in got:
            if not p:
                print(f"    {name}: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
