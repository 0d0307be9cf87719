"""Where the tests find the published Phase 5 weights: STRATFORGE_PHASE5_DIR, else ../shared beside the repo.

CI checks the repository out with ``shared/`` next to it (``<repo>/../shared/data/cmsf-phase5``); the
tests that need the weights skip, saying where they looked, when neither is there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PHASE5_DATA = Path(
    os.environ.get("STRATFORGE_PHASE5_DIR") or REPO.parent / "shared" / "data" / "cmsf-phase5"
).resolve()
needs_phase5 = pytest.mark.skipif(
    not (PHASE5_DATA / "rl_model.safetensors").exists(),
    reason=f"published Phase 5 weights not found at {PHASE5_DATA} (set STRATFORGE_PHASE5_DIR, or put "
    "shared/ beside the repository)",
)
