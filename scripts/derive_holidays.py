#!/usr/bin/env python3
"""Write data/holidays_jp.tsv: Japan's national holidays (国民の祝日, 振替休日
and 国民の休日), one date a line.

The source is `holidays.yml` of the public GitHub repository
holiday-jp/holiday_jp (MIT), the dataset behind the holiday_jp libraries
for Ruby, Python, Go, JavaScript and others. Its own tests compare it with
the Cabinet Office's 「国民の祝日」CSV (syukujitsu.csv), which lists only the
years the Cabinet Office has published; for later years the dataset
computes the holidays by the law (春分・秋分 by the astronomical formula).

The file is a YAML mapping of `YYYY-MM-DD: 名称`; it is read line by line so
that no YAML library is needed.

Usage: python3 scripts/derive_holidays.py holidays.yml > data/holidays_jp.tsv
"""
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "holidays.yml"
line_re = re.compile(r"^(\d{4}-\d{2}-\d{2}):\s*(.+?)\s*$")
rows = []
with open(src, encoding="utf-8") as f:
    for line in f:
        m = line_re.match(line)
        if m:
            rows.append((m.group(1), m.group(2).strip("'\"")))
if len(rows) < 1000:
    sys.exit(f"{src}: only {len(rows)} holidays found; is this holiday_jp's holidays.yml?")
rows.sort()
dates = [d for d, _ in rows]
if len(set(dates)) != len(dates):
    sys.exit(f"{src}: a date is listed twice")
print("# date\tname (holiday-jp/holiday_jp holidays.yml)")
for d, name in rows:
    print(f"{d}\t{name}")
