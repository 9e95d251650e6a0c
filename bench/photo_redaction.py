"""What a photo redaction costs the API process: CPU and wall time of ``blacken`` (decode
the stored display JPEG, fill the rectangles, encode the display copy and the thumbnail
again), the part of ``app.complaints.redaction.redact`` that is not I/O.

    uv run python -m bench.photo_redaction            # 1, 5 and 20 rectangles, 30 runs each
    uv run python -m bench.photo_redaction -n 100

The input is what the upload pipeline stores for a 12 MP phone photo: its display copy
(2048x1536, quality 82) made by ``process_photo`` from a photo-like 4000x3000 JPEG
(gradients, shapes and grain, so it does not compress trivially).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from app.complaints.images import PhotoLimits, process_photo
from app.complaints.redaction import blacken


def _rectangles(count: int, width: int, height: int) -> list[dict[str, int]]:
    rnd = random.Random(count)
    out = []
    for _ in range(count):
        w, h = rnd.randint(40, 300), rnd.randint(40, 200)
        out.append(
            {
                "x": rnd.randint(0, width - w),
                "y": rnd.randint(0, height - h),
                "width": w,
                "height": h,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="runs per case")
    args = parser.parse_args()
    from bench.photo_pipeline import _generate

    display = process_photo(_generate("jpeg")).display
    limits = PhotoLimits()
    blacken(display, _rectangles(1, 2048, 1536), limits)  # warm-up
    print(f"display copy: {len(display) / 1e6:.2f} MB, 2048x1536; {args.n} runs per case")
    print("rectangles | cpu ms p50 | cpu ms p95 | wall ms p50")
    for count in (1, 5, 20):
        rects = _rectangles(count, 2048, 1536)
        cpu, wall = [], []
        for _ in range(args.n):
            c0, w0 = time.process_time(), time.perf_counter()
            blacken(display, rects, limits)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        cpu.sort()
        p95 = cpu[min(len(cpu) - 1, round(0.95 * (len(cpu) - 1)))]
        p50, wall50 = statistics.median(cpu), statistics.median(wall)
        print(f"{count:>10} | {p50:>10.1f} | {p95:>10.1f} | {wall50:>11.1f}")


if __name__ == "__main__":
    main()
