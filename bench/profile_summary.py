"""Sum a py-spy folded profile (``py-spy record --format raw``) per function: self and inclusive shares.

``python -m bench.profile_summary ailb.folded [--top 40]``; file paths are shortened to the package's own.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)")
_SITE = re.compile(r"\S*/(site-packages|src|lib/python3\.\d+)/")


def short(frame: str) -> str:
    return _SITE.sub("", _LINE.sub(")", frame))


def summarize(path: Path, top: int) -> list[str]:
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [short(f) for f in stack.split(";")]
        if not frames or "concurrent/futures/thread.py" in frames[-1]:
            continue  # idle pool threads that py-spy could not tell idle
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            within[frame] += samples
    out = [f"samples: {total}", "", "self:"]
    out += [f"{100 * n / total:5.1f}% {frame}" for frame, n in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"{100 * n / total:5.1f}% {frame}" for frame, n in within.most_common(top)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folded", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print("\n".join(summarize(args.folded, args.top)))


if __name__ == "__main__":
    main()
