"""scikit-learn's own test files, run against mixtura's estimators as a user checking a drop-in would.

    python tests/sklearn_suites.py            # run, print the failures grouped by cause
    python tests/sklearn_suites.py -v         # also list every test of each group
    python tests/sklearn_suites.py -k elkan   # pytest's -k, passed through

The test files are copied from the installed scikit-learn (nothing is fetched) into a temporary
directory; the import of the estimator under test is followed by ``from mixtura import ...``, and a
conftest.py supplies scikit-learn's two global fixtures (``global_random_seed`` = 42, ``global_dtype`` =
float32 and float64). pytest runs in a subprocess. Exit status 1 only when a test fails that
``ALLOWED`` does not list; an allowed test that passes is reported, so that the list shrinks.
"""
import argparse
import ast
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

#: The scikit-learn whose test files ALLOWED was written against (other versions' tests differ).
SKLEARN_VERSION = "1.9.1"

#: Test file (inside the sklearn package) -> the names whose import is replaced by mixtura's.
SUITES = {
    "mixture/tests/test_gaussian_mixture.py": ["GaussianMixture"],
    "mixture/tests/test_mixture.py": ["GaussianMixture"],
    "cluster/tests/test_k_means.py": ["KMeans", "MiniBatchKMeans"],
}

_VERBOSE = "verbose output is mixtura's (one line per iteration), not scikit-learn's wording"

#: (test id pattern, ``*`` matching anything; the reason a user would accept). The first match wins.
ALLOWED = [
    ("test_k_means.py::test_warning_elkan_1_cluster",
     "scikit-learn falls back to lloyd for one cluster with a RuntimeWarning; mixtura's bounds work for one "
     "cluster too (every row is settled after the first pass), so there is nothing to warn about"),
    ("test_k_means.py::test_kmeans_init_auto_with_initial_centroids[*", "reads the private attribute _n_init"),
    ("test_k_means.py::test_n_init_auto[*", "reads the private attribute _n_init"),
    ("test_k_means.py::test_sample_weight_init[*", "calls the private method _init_centroids"),
    ("test_k_means.py::test_sample_weight_zero[*", "calls the private method _init_centroids"),
    ("test_k_means.py::test_minibatch_kmeans_init_size", "reads the private attribute _init_size"),
    ("test_k_means.py::test_kmeans_verbose[*", _VERBOSE),
    ("test_k_means.py::test_minibatch_declared_convergence[*", _VERBOSE),
    ("test_k_means.py::test_relocating_with_duplicates[*",
     "n_iter_ is 2, not 1: with more centres than distinct rows an empty cluster is re-seeded each iteration, "
     "and the fit stops on the second, when the centres no longer move"),
    ("test_k_means.py::test_minibatch_kmeans_partial_fit_init[random]",
     "other random numbers than scikit-learn's: at random_state=0 init='random' puts two centres in one blob "
     "(random_state 1 to 7 find the three)"),
    ("test_gaussian_mixture.py::test_gaussian_mixture_precisions_init[*", "calls the private method _set_parameters"),
    ("test_gaussian_mixture.py::test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters",
     "mocks the private function _estimate_gaussian_parameters"),
    ("test_gaussian_mixture.py::test_check_weights",
     "weights outside [0, 1] are refused as not summing to 1; the test wants scikit-learn's range message, which "
     "calls the smallest weight 'max value' and the largest 'min value'"),
    ("test_gaussian_mixture.py::test_score[float32]",
     "score is the float64 mean of float64 log-densities; the test wants it within 1.5e-7 of a float32 mean of "
     "the rounded ones, which is 3e-7 off"),
    ("test_gaussian_mixture.py::test_gaussian_mixture_precisions_init_diag[*",
     "compares with a start from scikit-learn's KMeans at random_state=0; mixtura's k-means draws other random "
     "numbers, so the starts and n_iter_ differ"),
    ("test_gaussian_mixture.py::test_regularisation",
     "by default a degenerate component is recovered (recorded in events_); on_degenerate='raise' gives "
     "scikit-learn's ValueError"),
]

CONFTEST = '''\
import numpy as np
import pytest


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def global_dtype(request):
    return request.param


@pytest.fixture
def global_random_seed():
    return 42
'''


def _rewrite(source, names):
    """``source`` with ``from mixtura import <names>`` after the import statement that brings each name
    in from scikit-learn (scikit-learn's other names, and the line numbers of the tests, are kept)."""
    lines = source.splitlines(keepends=True)
    after = {}  # end line of the import statement -> names it imports that mixtura replaces
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
            hit = [a.name for a in node.names if a.name in names and a.asname is None]
            if hit:
                after[node.end_lineno] = hit
    missing = set(names) - {n for hit in after.values() for n in hit}
    if missing:
        raise RuntimeError(f"no scikit-learn import of {sorted(missing)} to replace")
    for end in sorted(after, reverse=True):
        # Appended to the statement's last line: line numbers in tracebacks stay scikit-learn's.
        lines[end - 1] = lines[end - 1].rstrip("\n") + f"; from mixtura import {', '.join(after[end])}\n"
    return "".join(lines)


def prepare(directory):
    """Writes the rewritten test files and the conftest into ``directory``; returns the test paths."""
    import sklearn
    root = os.path.dirname(sklearn.__file__)
    paths = []
    for rel, names in SUITES.items():
        with open(os.path.join(root, rel)) as f:
            source = f.read()
        path = os.path.join(directory, os.path.basename(rel))
        with open(path, "w") as f:
            f.write(_rewrite(source, names))
        paths.append(path)
    with open(os.path.join(directory, "conftest.py"), "w") as f:
        f.write(CONFTEST)
    return paths


def _cause(message):
    """A failure's message with its numbers, arrays and addresses blanked, to group failures by."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    first = re.sub(r"\[[^\]]{20,}\]", "[…]", first)
    first = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", first)
    return first[:160]


def _matches(pattern, test_id):
    """Whether ``test_id`` matches ``pattern``, in which only ``*`` is special (brackets are literal)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), test_id) is not None


def allowed_reason(test_id):
    for pattern, reason in ALLOWED:
        if _matches(pattern, test_id):
            return reason
    return None


def run(pytest_args=(), directory=None):
    """Runs the suites; returns {test id: (outcome, message)}, outcome in passed/failed/skipped."""
    with tempfile.TemporaryDirectory(prefix="mixtura-sklearn-suites-") as tmp:
        directory = directory or tmp
        paths = prepare(directory)
        report = os.path.join(tmp, "report.xml")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--rootdir", directory, "--confcutdir", directory, f"--junitxml={report}",
               "-o", "junit_family=xunit2", "--tb=line", "-W", "ignore", *pytest_args, *paths]
        # The subprocess tests the mixtura this process imports (a relative PYTHONPATH would not survive cwd).
        import mixtura
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(mixtura.__file__)),
                                             *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
        proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, env=env)
        if not os.path.exists(report):
            raise RuntimeError(f"pytest wrote no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        results = {}
        for case in ET.parse(report).iter("testcase"):
            test_id = f"{case.get('classname').rsplit('.', 1)[-1]}.py::{case.get('name')}"
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if bad is not None:  # a collection error's message is only "collection failure": add its text
                message = bad.get("message") or ""
                results[test_id] = ("failed", message if message != "collection failure" else
                                    f"collection failure: {(bad.text or '').strip().splitlines()[-1:]}")
            elif case.find("skipped") is not None:
                results[test_id] = ("skipped", case.find("skipped").get("message") or "")
            else:
                results[test_id] = ("passed", "")
        return results


def summarize(results):
    """(unexpected failures, allowed failures by reason, allowed tests that pass, counts per file/dtype)."""
    unexpected, allowed, now_pass = {}, collections.defaultdict(list), []
    counts = collections.defaultdict(collections.Counter)
    for test_id, (outcome, message) in sorted(results.items()):
        file = test_id.split("::")[0]
        dtype = next((d for d in ("float32", "float64") if d in test_id.split("::")[1]), "-")
        counts[(file, dtype)][outcome] += 1
        reason = allowed_reason(test_id)
        if outcome == "failed":
            if reason:
                allowed[reason].append(test_id)
            else:
                unexpected[test_id] = message
        elif outcome == "passed" and reason:
            now_pass.append(test_id)
    return unexpected, dict(allowed), now_pass, counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list the tests of each group")
    parser.add_argument("-k", help="pytest's -k expression")
    parser.add_argument("--keep", help="write the rewritten files into this directory (kept) and run there")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    results = run(["-k", args.k] if args.k else [], directory=args.keep)
    unexpected, allowed, now_pass, counts = summarize(results)
    import sklearn
    print(f"scikit-learn {sklearn.__version__}'s suites against mixtura ({time.perf_counter() - start:.0f} s)")
    if sklearn.__version__ != SKLEARN_VERSION:
        print(f"  (ALLOWED was written for scikit-learn {SKLEARN_VERSION}: expect other tests here)")
    for (file, dtype), c in sorted(counts.items()):
        print(f"  {file:28s} {dtype:8s} " + ", ".join(f"{c[o]} {o}" for o in ("passed", "failed", "skipped")))
    by_cause = collections.defaultdict(list)
    for test_id, message in unexpected.items():
        by_cause[_cause(message)].append(test_id)
    if by_cause:
        print(f"\n{len(unexpected)} unexpected failures, by cause:")
        for cause, ids in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(ids):3d}  {cause}")
            for test_id in ids if args.verbose else ids[:3]:
                print(f"         {test_id}")
            if not args.verbose and len(ids) > 3:
                print(f"         ... {len(ids) - 3} more (-v lists them)")
    print(f"\n{sum(map(len, allowed.values()))} allowed failures, by reason:")
    for reason, ids in sorted(allowed.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(ids):3d}  {reason}")
        if args.verbose:
            for test_id in ids:
                print(f"         {test_id}")
    if now_pass:
        print(f"\n{len(now_pass)} allowed tests now pass (remove them from ALLOWED):")
        for test_id in now_pass:
            print(f"         {test_id}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
