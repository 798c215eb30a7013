"""7. The repository stands alone: the reference data the tests and benchmarks read is inside it.

(.ci/run proves it end to end by running the suite in a clone with nothing beside it.)
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "reference"
FILES = [
    "fill.py",
    "mirl_full.json",
    "mirl_full_io.safetensors",
    "restormer_full.json",
    "restormer_full_io.safetensors",
    "restormer_full_biasfree.json",
    "restormer_full_biasfree_io.safetensors",
]


def test_reference_data_ships_inside_the_repository():
    assert all((REFERENCE / name).is_file() for name in FILES)
    assert sum((REFERENCE / name).stat().st_size for name in FILES) < 1_000_000


def test_nothing_reads_a_folder_beside_the_repository():
    outside = re.compile(r"\.\./shared|shared/reference|parents\[\d\]\s*/\s*[\"']shared")
    sources = [*REPO.glob("tests/**/*.py"), *REPO.glob("benchmarks/*.py"), *REPO.glob("examples/*.py")]
    offenders = [str(p.relative_to(REPO)) for p in sources if p != Path(__file__) and outside.search(p.read_text())]
    assert not offenders
    spec = importlib.util.spec_from_file_location("prune_step", REPO / "benchmarks" / "prune_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # definitions only; main() runs under __name__ == "__main__"
    assert bench.SPEC == REFERENCE / "mirl_full.json"
