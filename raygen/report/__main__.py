"""``python -m raygen.report RUN_DIR [RUN_DIR ...]``: write a run's comparison report."""
from __future__ import annotations

import sys

from raygen.core.errors import RaygenError, one_line_parser
from raygen.report.page import write_report


def main(argv: list[str] | None = None) -> int:
    p = one_line_parser(prog="python -m raygen.report", description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="+", help="a run folder (results/<sweep>/<run>), its results.parquet, or a "
                                          "sweep's folder (results/<sweep>: its latest run); several runs make "
                                          "one report of them all")
    p.add_argument("--out", help="folder for the report of several runs (default: <sweep folder>/combined)")
    p.add_argument("--metric", help="what 'best' means (default: the sweep's metric, from its best.json; "
                                    "else fid, else the first metric measured of cls_fid, kid, recon_mse, "
                                    "recon_bce, inception_score, cls_is)")
    args = p.parse_args(argv)
    try:
        path = write_report(args.run, args.metric, args.out)
    except RaygenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}\n        {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
