#!/usr/bin/env python3
"""Write data/jsic.tsv from the official JSIC CSV.

Source: 総務省「日本標準産業分類（平成25年10月改定）（平成26年4月1日施行）」
分類項目名 CSV (000420038.csv), as kept in the public repository
code4fukui/IndustryCode (commit b7295f64c44c3cfca98c95f707523dec510486b5).
No package on the registries this project reaches ships the classification.

Usage: python3 scripts/derive_jsic.py 000420038.csv > data/jsic.tsv
"""
import csv
import sys

print("# code\tlevel\tname\tparent")
for r in csv.DictReader(open(sys.argv[1], encoding="utf-8-sig")):
    big, mid, small, fine = r["大分類コード"], r["中分類コード"], r["小分類コード"], r["細分類コード"]
    name = r["項目名"].strip()
    # The "administrative and auxiliary establishments" (管理，補助的経済活動を
    # 行う事業所) are bookkeeping classes no owner describes their trade with.
    # 小分類 x0 of every 中分類 holds them (with 自家用倉庫 under it).
    if small != "000" and small.endswith("0"):
        continue
    if mid == "00":
        print(f"{big}\t大\t{name}\t")
    elif small == "000":
        print(f"{mid}\t中\t{name}\t{big}")
    elif fine == "0000":
        print(f"{small}\t小\t{name}\t{mid}")
    else:
        print(f"{fine}\t細\t{name}\t{small}")
