"""A fresh clone with nothing beside it passes its own tests: no code or test reads outside the checkout."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|['\"]shared['\"]")


def test_no_code_or_test_reads_a_path_beside_the_checkout():
    tracked = subprocess.run(["git", "ls-files", "*.py", "bin/*", ".ci/*", "*.toml", "*.cfg"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    hits = [f"{name}:{number}" for name in tracked if (ROOT / name).is_file()
            for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1)
            if OUTSIDE.search(line) and name != "tests/test_self_contained.py"]
    assert hits == [], f"these lines read beside the checkout; copy the file into tests/fixtures/: {hits}"


def test_the_fixtures_the_suite_reads_are_in_the_repository_with_their_source():
    for folder in ("sdc", "synthea"):
        assert (ROOT / "tests" / "fixtures" / folder / "README.md").is_file()
