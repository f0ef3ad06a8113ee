"""Command line: ``medlab reproduce``, ``medlab download``, ``medlab datasets``."""

from __future__ import annotations

import argparse
import sys

import yaml

__all__ = ["main"]


def _param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), yaml.safe_load(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medlab", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("reproduce", help="execute notebooks headless and compare their numbers "
                       "with notebooks/expected_results.yaml")
    r.add_argument("notebooks", nargs="*", help="notebook stems or prefixes (default: all)")
    r.add_argument("--quick", action="store_true", help="quick mode (CI): small, fast runs")
    r.add_argument("--output", default="outputs", help="output folder (default: ./outputs)")
    r.add_argument("--data-dir", default=None, help="folder with the MedMNIST .npz files "
                   "(default: $MEDLAB_DATA_DIR or ~/.medmnist)")
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("-p", "--parameter", action="append", type=_param, default=[],
                   metavar="NAME=VALUE", help="extra papermill parameter, e.g. -p dataset=breastmnist")
    r.add_argument("--update-expected", action="store_true",
                   help="write the values of this run into notebooks/expected_results.yaml")
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")

    d = sub.add_parser("download", help="download official MedMNIST files (md5-verified)")
    d.add_argument("names", nargs="+", help="official dataset names, e.g. pneumoniamnist")
    d.add_argument("--size", type=int, default=28)
    d.add_argument("--data-dir", default=None)

    sub.add_parser("datasets", help="list the data cards")

    args = parser.parse_args(argv)
    if args.cmd == "reproduce":
        from medlab.reproduce import reproduce

        return reproduce(args.notebooks, quick=args.quick, output=args.output,
                         data_dir=args.data_dir, seed=args.seed,
                         parameters=dict(args.parameter), update=args.update_expected,
                         html=not args.no_html)
    if args.cmd == "download":
        from medlab.data import DataError, download, file_md5

        status = 0
        for name in args.names:
            try:
                path = download(name, size=args.size, data_dir=args.data_dir, progressbar=True)
                print(f"{name}: {path} (md5 {file_md5(path)})")
            except DataError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                status = 1
        return status
    if args.cmd == "datasets":
        from medlab.cards import cards_table

        for row in cards_table():
            print(f"{row['dataset']:<32} {row['kind']:<9} {row['task']:<26} "
                  f"{row['train/val/test']:<18} {row['modality']}")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
