"""Where the shared corpora are: `FACTFLOW_CORPORA`, else `../shared/corpora` beside the checkout.

They are not part of the repository (aeb-dev: 97 real article pages with gold article text, MIT).
"""

from __future__ import annotations

import os
from pathlib import Path

CORPORA = Path(os.environ.get("FACTFLOW_CORPORA") or Path(__file__).resolve().parents[2] / "shared" / "corpora")
AEB_DEV = CORPORA / "aeb-dev"
