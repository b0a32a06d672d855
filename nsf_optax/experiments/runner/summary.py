"""The summary block of a command that trains many runs (the comparison, the
budgeted comparison, the landscape sweep): one table as markdown, JSON and CSV.

Files are written through :func:`.workdirs.write_text` (a temporary file and a
rename), the JSON standard (nan and infinities as null).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nsf_optax.experiments.runner import workdirs


def strict_json(x: Any) -> Any:
    """``x`` with every non-finite float (nan, inf) as None and numpy scalars as
    Python numbers, for standard JSON.

    Examples:
      >>> strict_json({"a": [1.0, float("nan")], "b": (2, float("inf"))})
      {'a': [1.0, None], 'b': [2, None]}
    """
    if isinstance(x, dict):
        return {k: strict_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [strict_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    return None if isinstance(x, float) and not math.isfinite(x) else x


def write_summary(
    stem: str,
    *,
    markdown: str,
    record: Any,
    fields: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
) -> None:
    """Writes ``<stem>.md``, ``<stem>.json`` and ``<stem>.csv``.

    Args:
      stem: the path without its suffix, e.g. ``<workdir>/results``.
      markdown: the text of the ``.md`` file.
      record: what the ``.json`` file holds (see :func:`strict_json`).
      fields: the CSV columns.
      rows: the CSV rows, one mapping from ``fields`` each.
    """
    workdirs.write_text(f"{stem}.md", markdown)
    workdirs.write_text(
        f"{stem}.json", json.dumps(strict_json(record), indent=1, allow_nan=False)
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(rows)
    workdirs.write_text(f"{stem}.csv", text.getvalue())
