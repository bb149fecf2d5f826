"""Bench worker (baseline): the provider's own Python example for `POST /stop-sms/add`, in a loop.

The example (spec seed page 000) posts `data=json.dumps(OrderedDict([("apiKey", key),
("phoneNumbers", number)]))` with `requests.post` and reads `r.json()["success"]`; here every call
goes through one `requests.Session` (a kept-alive connection instead of one per call, which
only favours the baseline) and the answers are counted instead of printed. One call per CSV
row, sequentially, with no list fetch, no deduplication and no record of the outcomes.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import OrderedDict
from itertools import islice
from pathlib import Path

import requests
from push_common import emit, peak_rss_mib


def read_numbers(path: Path, limit: int) -> list[str]:
    with path.open(newline="", encoding="utf-8") as stream:
        rows = csv.reader(stream)
        next(rows)  # the header
        return [row[0] for row in islice(rows, limit)]


def add_stop(session: requests.Session, url: str, api_key: str, phone_number: str) -> bool:
    data = OrderedDict([("apiKey", api_key), ("phoneNumbers", phone_number)])
    r = session.post(url, data=json.dumps(data))
    return r.json().get("success") is True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--csv-path", type=Path, required=True)
    parser.add_argument("--limit", type=int, required=True, help="Rows of the CSV to send.")
    args = parser.parse_args()
    url = f"{args.base_url}/stop-sms/add"
    with requests.Session() as session:
        started = time.perf_counter()
        numbers = read_numbers(args.csv_path, args.limit)
        succeeded = sum(add_stop(session, url, args.api_key, number) for number in numbers)
        seconds = time.perf_counter() - started
    emit(
        {
            "seconds": seconds,
            "calls": len(numbers),
            "succeeded": succeeded,
            "peak_mib": peak_rss_mib(),
        }
    )


if __name__ == "__main__":
    main()
