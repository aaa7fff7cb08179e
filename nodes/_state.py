"""Checkpoints of what a node learned: one JSON file, written atomically, read defensively.

A node that learns (the task planner's costs, the cognitive map) keeps its state in a file
named by its `state_file` parameter, so that a node killed and respawned resumes with what it
knew. A file that cannot be read is moved aside (never deleted) and the node starts afresh.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


class StateFile:
    """A JSON checkpoint at `path` (empty path: no checkpointing)."""

    def __init__(self, path: str):
        self.path = Path(path).expanduser() if path else None

    def __bool__(self) -> bool:
        return self.path is not None

    def load(self) -> tuple[dict | None, str]:
        """Return (state, '') or (None, why not).

        A missing file is not an error; a corrupt one is moved to '<name>.corrupt-<mtime>'
        (its modification time, in unix seconds) and named in the message.
        """
        if self.path is None or not self.path.exists():
            return None, ''
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError('the top level is not an object')
            return data, ''
        except (OSError, ValueError) as exc:
            try:
                aside = self.path.with_name(
                    f'{self.path.name}.corrupt-{int(self.path.stat().st_mtime)}')
                os.replace(self.path, aside)
                where = f'moved to {aside}'
            except OSError as move_error:
                where = f'could not be moved aside ({move_error})'
            return None, f'checkpoint {self.path} is unreadable ({exc}); {where}'

    def save(self, data: dict) -> str:
        """Write atomically (temporary file + rename); return '' or why it failed."""
        if self.path is None:
            return ''
        tmp = self.path.with_name(f'.{self.path.name}.tmp-{os.getpid()}')
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
            return ''
        except OSError as exc:
            return f'checkpoint {self.path} not written: {exc}'
