"""`make demo`: the whole chain headless through qgis_process on the embedded demo scene.

The scene is real data from eo-learn's test patch (Slovenia, MIT) turned into per-band COGs
and STAC items by demo/scene.py (see demo/data/README.md for what is generated and how),
served by a STAC API on 127.0.0.1 for the download step.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from demo.chain import ChainSettings, run_chain  # noqa: E402
from demo.qgis_cli import run_algorithm  # noqa: E402
from demo.scene import build_scene  # noqa: E402
from demo.stac_server import StacServer  # noqa: E402
from lc_plugin.validation.report import lead_value  # noqa: E402

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def main() -> int:
    scene = build_scene(os.path.join(OUTPUT, "scene"))
    with StacServer(scene.root) as server:
        settings = ChainSettings.for_demo(scene, server.url)

        def run(alg: str, params: dict) -> dict:
            print(f"qgis_process run landcover:{alg}", flush=True)
            return run_algorithm(alg, params)

        result = run_chain(run, settings, os.path.join(OUTPUT, "run"), log=lambda line: print("  " + line, flush=True))
    with open(result["report"]["OUTPUT_JSON"]) as f:
        metrics = json.load(f)
    print()
    lead = metrics["assessment"]["lead"]
    print(f"{lead['label']}: {lead_value(lead)} (kappa {metrics['kappa']:.3f}, n = {metrics['n']}). {lead['why']}")
    print(f"Report:       {result['report']['OUTPUT_HTML']}")
    print(f"Land cover:   {result['mosaic']['OUTPUT_COG']} (VRT: {result['mosaic']['OUTPUT_VRT']})")
    print(f"Model:        {result['model']}")
    print(f"All outputs:  {os.path.join(OUTPUT, 'run')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
