"""The chunked forward+backward of a step (capture.CHUNK) against one pass over all 100 requests:
seconds (median of 4, after one untimed pass) on the synthetic stream and on ZsRE, on SmolLM2-135M,
and how far the chunked G is from the one-pass G (max over layers of |G_25 - G_100| / |G_100|).
CHUNK >= the batch is the single pass. Run on an otherwise idle machine:

    python results/capture_chunks.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import capture  # noqa: E402
import editor  # noqa: E402
from data import load  # noqa: E402
from lab.models import PRESETS, load_model, preset_layers  # noqa: E402
from lab.request import DataError  # noqa: E402

model, tok, _ = load_model("smollm2-135m")
preset = PRESETS["smollm2-135m"]
ed = editor.Editor(
    model, tok, preset_layers(preset, "synthetic"), "stableedit", 2.5e-4, preset["alpha"]
)
for name, offset in (("synthetic", 500), ("zsre", 0)):
    try:
        batch, groups = ed._batch(load(name, 100, offset=offset))
    except DataError as e:
        print(f"{name}: skipped ({e})")
        continue
    G = {}
    for chunk in (100, 25):
        capture.CHUNK = chunk
        G[chunk] = {n: g for n, (_, g) in ed.capture(batch, groups)[1].items()}
        ts = []
        for _ in range(4):
            t0 = time.perf_counter()
            ed.capture(batch, groups)
            ts.append(time.perf_counter() - t0)
        print(
            f"{name} ({batch['input_ids'].shape[1]} tokens padded): chunk {chunk:3d}: median "
            f"{sorted(ts)[1] / 2 + sorted(ts)[2] / 2:.2f} s ({', '.join(f'{t:.2f}' for t in ts)})"
        )
    print(
        f"{name}: chunked G vs one pass, max relative difference over layers "
        f"{max(((G[25][n] - G[100][n]).norm() / G[100][n].norm()).item() for n in G[100]):.1e}"
    )
